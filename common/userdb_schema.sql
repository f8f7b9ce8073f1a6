-- userdb_schema.sql - schema version 3 of the user store (auth.db).
-- The single source of the schema: compiled into common/userdb_sqlite.c at build
-- time and read by the integration tests. Every statement is idempotent:
-- userdb_sqlite.c runs the whole file again to upgrade a store of version 1
-- (tests/fixtures/userdb_schema_v1.sql, which lacks `retired` and
-- `devices`) or 2 (tests/fixtures/userdb_schema_v2.sql, which lacks
-- `devices`). No semicolon in a comment: tests split the file on them.
CREATE TABLE IF NOT EXISTS meta(
  key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS users(
  name TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK(kind IN ('user','device','service')),
  nick TEXT NOT NULL,
  pwhash TEXT NOT NULL,
  enabled INTEGER NOT NULL DEFAULT 1,
  created INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rooms(
  name TEXT PRIMARY KEY,
  retention_days INTEGER NOT NULL DEFAULT 0,
  created INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS members(
  room TEXT NOT NULL REFERENCES rooms(name) ON DELETE CASCADE,
  user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
  PRIMARY KEY(room, user)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS members_by_user ON members(user, room);
CREATE TABLE IF NOT EXISTS blocks(
  user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
  blocked TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
  PRIMARY KEY(user, blocked)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blocks_by_blocked ON blocks(blocked);
CREATE TABLE IF NOT EXISTS invites(
  code TEXT PRIMARY KEY,
  uses_left INTEGER NOT NULL,
  expires INTEGER NOT NULL DEFAULT 0,
  created INTEGER NOT NULL) WITHOUT ROWID;
-- Version 2: the names of deleted accounts. The broker keeps a deleted
-- account's sessions, with the messages queued for them, for 30 days, and
-- the archive keeps its conversations: a name stays retired (nobody may
-- take it) for USERDB_RETIRE_DAYS after `deleted`, and `created` is what
-- `user add NAME --restore` gives back to the same person. The row goes
-- when the name has a holder again. Times in ms since the epoch.
CREATE TABLE IF NOT EXISTS retired(
  name TEXT PRIMARY KEY,
  created INTEGER NOT NULL,
  deleted INTEGER NOT NULL) WITHOUT ROWID;
-- Version 3: the devices of a person that hold a device token
-- (common/devtoken.h). One token per device: the store keeps its SHA-256
-- in hex, never the token. created: when the token was issued, last_seen:
-- the device's last login as the broker reported it (a minute coarse), 0
-- before its first. A row goes with its account (ON DELETE CASCADE).
CREATE TABLE IF NOT EXISTS devices(
  user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
  device TEXT NOT NULL,
  token_sha256 TEXT NOT NULL,
  created INTEGER NOT NULL,
  last_seen INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(user, device)) WITHOUT ROWID;
-- Version 3 too: privacy. Who sees a person's presence and whois
-- (`presence`), and who may add them to a room (`room_adds`): 'everyone',
-- 'contacts' or 'nobody'. No row: 'contacts' for both. A person's
-- contacts are the people they share a room with, and those in
-- `contacts`: whom they added, and whom they sent a direct message
-- (the archiver adds that row as it stores the message).
CREATE TABLE IF NOT EXISTS privacy(
  user TEXT PRIMARY KEY REFERENCES users(name) ON DELETE CASCADE,
  presence TEXT NOT NULL DEFAULT 'contacts' CHECK(presence IN ('everyone','contacts','nobody')),
  room_adds TEXT NOT NULL DEFAULT 'contacts' CHECK(room_adds IN ('everyone','contacts','nobody'))
  ) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS contacts(
  user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
  contact TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
  since INTEGER NOT NULL,
  PRIMARY KEY(user, contact)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS contacts_by_contact ON contacts(contact, user);
-- Version 3 too: the service's settings that the plugin and the archiver
-- both obey (common/settings.h), set with `mqchat-archiver settings`. A
-- key not here takes each program's own configuration.
CREATE TABLE IF NOT EXISTS settings(
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL) WITHOUT ROWID;
-- Version 3 too: rooms run by their members (docs/PROTOCOL.md, "Rooms
-- run by their members"). room_meta: the owner (a member, or NULL for a
-- room an operator made and nobody owns yet), title and description.
-- room_admins: the members who run the room with its owner (the owner is
-- not listed). since: when they were made admin, for the hand-over of an
-- owner who leaves. Both go with their room (ON DELETE CASCADE). Neither
-- has users as a parent table (userdb__user_del clears a deleted
-- account's rows): with two parents every delete of a room looks up both,
-- and a store whose users table is gone could not lose its rooms either.
CREATE TABLE IF NOT EXISTS room_meta(
  room TEXT PRIMARY KEY REFERENCES rooms(name) ON DELETE CASCADE,
  owner TEXT,
  title TEXT NOT NULL DEFAULT '',
  description TEXT NOT NULL DEFAULT '') WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS room_admins(
  room TEXT NOT NULL REFERENCES rooms(name) ON DELETE CASCADE,
  user TEXT NOT NULL,
  since INTEGER NOT NULL,
  PRIMARY KEY(room, user)) WITHOUT ROWID;
-- room_joined: when each member joined (for the same hand-over), a row
-- per members row. A member without one (added by a release before)
-- counts as the longest-standing.
CREATE TABLE IF NOT EXISTS room_joined(
  room TEXT NOT NULL,
  user TEXT NOT NULL,
  since INTEGER NOT NULL,
  PRIMARY KEY(room, user),
  FOREIGN KEY(room, user) REFERENCES members(room, user) ON DELETE CASCADE) WITHOUT ROWID;
-- Version 3 too: the names of deleted rooms, retired like account names
-- for USERDB_RETIRE_DAYS after `deleted`: nobody may create a room of
-- that name until then. The row goes when the name is taken again.
CREATE TABLE IF NOT EXISTS rooms_retired(
  name TEXT PRIMARY KEY,
  deleted INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', '3');
