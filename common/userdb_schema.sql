-- userdb_schema.sql - schema version 1 of the user store (auth.db).
-- The single source of the schema: compiled into common/userdb.c at build
-- time and read by the integration tests.
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
INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', '1');
