/* userdb.h - the user store (auth.db) shared by the plugin and the CLI.
 *
 * The handle is opaque: userdb.c dispatches each call to the backend chosen
 * at open (struct userdb_ops, common/userdb_store.h); SQLite
 * (common/userdb_sqlite.c) is the only one so far.
 *
 * Schema version 3 (common/userdb_schema.sql):
 *   meta(key, value)                       schema_version = "2"
 *   users(name, kind, nick, pwhash, enabled, created)
 *   rooms(name, retention_days, created)
 *   members(room, user)                    room membership
 *   blocks(user, blocked)                  <user> refuses messages from <blocked>
 *   invites(code, uses_left, expires, created)
 *   retired(name, created, deleted)        names of deleted accounts (version 2)
 *   devices, privacy, contacts, settings,  (version 3: see the schema file)
 *   room_meta, room_admins, room_joined, rooms_retired
 *
 * A name is not an identity: an account deleted and a new one made under
 * the same name are two people. `created` tells them apart (the archiver
 * answers a holder only with what arrived since its account or room was
 * created), and a deleted account's name is retired for USERDB_RETIRE_DAYS,
 * while the broker still holds the messages queued for its sessions.
 *
 * A store of version 1 (the previous release) is upgraded in place by the
 * first open that may write; a USERDB_READONLY open reads it as it is.
 *
 * The store runs in WAL mode so the broker's plugin reads while the CLI and
 * the archiver write. Every writer keeps its transactions short. Times are
 * milliseconds since the Unix epoch. Names are validated here too (every
 * entry point refuses invalid names), nicknames are 1..64 bytes of UTF-8. */
#ifndef MQCHAT_USERDB_H
#define MQCHAT_USERDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "names.h"
#include "pwhash.h"

#define USERDB_SCHEMA_VERSION 3
/* Previous releases' versions, upgraded on open by a writer. */
#define USERDB_SCHEMA_VERSION_V1 1
#define USERDB_SCHEMA_VERSION_V2 2
#define NICK_MAX_LEN 64
/* How long a writer waits for a lock before MQC_ERR_BUSY. */
#define USERDB_BUSY_TIMEOUT_MS 5000
/* How long a deleted account's name stays retired. It must not be shorter
 * than the broker's persistent_client_expiration (config/mosquitto.conf,
 * 30d): until then the broker may still hold a session of the old account
 * (<name>@<device>), with the messages queued for it, which the next
 * holder of the name would be handed on its first login. */
#define USERDB_RETIRE_DAYS 30
#define USERDB_RETIRE_MS ((int64_t)USERDB_RETIRE_DAYS * 24 * 3600 * 1000)

enum user_kind {
	USER_KIND_USER = 1,
	USER_KIND_DEVICE = 2,
	USER_KIND_SERVICE = 3,
};

/* Open flags. */
#define USERDB_CREATE   0x1 /* create the file and schema if missing */
#define USERDB_READONLY 0x2 /* no writes (SQLITE_OPEN_READONLY is not used: WAL readers need the -shm) */

struct userdb;  /* an open store: common/userdb_store.h */

struct userdb_user {
	char name[NAME_MAX_LEN + 1];
	enum user_kind kind;
	char nick[NICK_MAX_LEN + 1];
	char pwhash[PWHASH_STR_LEN];
	bool enabled;
	int64_t created;
};

/* Open the store at path. Without USERDB_CREATE a missing file is
 * MQC_ERR_NOTFOUND; a file without our tables or of another schema version is
 * MQC_ERR_SCHEMA. On failure a message is written to err (if not NULL) and
 * *out is NULL. The caller frees a success with userdb__close. */
int userdb__open(const char *path, int flags, struct userdb **out, char *err, size_t errlen);
/* Close and free; NULL is fine. */
void userdb__close(struct userdb *udb);
/* Can the store at path be written now (the archiver's /health)? NULL if
 * so, else why, in why. Waits up to busy_ms for another writer's lock;
 * changes nothing. */
const char *userdb__writable(const char *path, int busy_ms, char *why, size_t whylen);
/* The path it was opened with. */
const char *userdb__path(const struct userdb *udb);
/* time__mono_ns after this handle's last commit of a change (every new
 * reader sees it from then on); 0: none yet. */
int64_t userdb__committed_ns(const struct userdb *udb);
/* How long a statement waits for another writer's lock before
 * MQC_ERR_BUSY (USERDB_BUSY_TIMEOUT_MS after open). */
void userdb__set_busy_ms(struct userdb *udb, int ms);

/* Transactions for multi-statement reads or writes. begin_write takes the
 * write lock at once (BEGIN IMMEDIATE), so a writer waits at the start, not
 * half way. */
int userdb__begin_read(struct userdb *udb);
int userdb__begin_write(struct userdb *udb);
int userdb__commit(struct userdb *udb);
void userdb__rollback(struct userdb *udb);

/* A number that changes whenever another connection commits (SQLite's
 * PRAGMA data_version). */
int userdb__data_version(struct userdb *udb, int64_t *version);

/* Being told of other programs' commits (the plugin's loader). watch_fd:
 * a descriptor that turns readable when the version may have moved, to
 * poll for POLLIN, or -1 when there is none now (the caller compares the
 * version every so often instead). SQLite: always -1 (the loader watches
 * the files itself). PostgreSQL: a second connection of its own that
 * LISTENs; when it is lost, -1 until it is made again (tried at most
 * every 0.1 s doubling to 5 s; each call may try once, blocking up to the
 * connection's connect_timeout). After a new one is made, compare the
 * version: what was committed meanwhile sent no notification.
 * watch_drain: read what made it readable, calling told (if not NULL) with
 * each change it names: its version, kind and name as userdb_pg.c's
 * change rows have them ("disable", "alice"; "revoke", "alice/phone");
 * MQC_OK, or MQC_ERR_IO when the watch was lost (ask watch_fd again). */
typedef void userdb_told_fn(int64_t version, const char *kind, const char *name, void *arg);
int userdb__watch_fd(struct userdb *udb);
int userdb__watch_drain(struct userdb *udb, userdb_told_fn *told, void *arg);

/* "Done" when in force on every node (docs/SCALING.md, "How the plugin
 * learns of changes"). node_applied: the loader says that node's broker
 * uses the store as of version (userdb__data_version), and that the node
 * is alive; called again every second. MQC_ERR_INVAL when the store has
 * no such record (SQLite: the file mark of common/applied.h does it):
 * stop calling. in_force_version: the lowest version in use by the nodes
 * heard from in the last 3 s (INT64_MAX with none, and on SQLite).
 * committed_change: the version of this connection's last committed
 * change (0: none, or SQLite). in_force_wait: wait until in_force_version
 * reaches committed_change, at most timeout_ms; MQC_OK (also with no
 * change or no node, or on SQLite), MQC_ERR_TIMEOUT, or another MQC_ERR_*
 * when the store cannot say. */
int userdb__node_applied(struct userdb *udb, const char *node, int64_t version);
int userdb__in_force_version(struct userdb *udb, int64_t *version);
int64_t userdb__committed_change(const struct userdb *udb);
int userdb__in_force_wait(struct userdb *udb, int timeout_ms);

const char *user_kind__name(enum user_kind kind);
/* 0 if the text is not a kind. */
enum user_kind user_kind__parse(const char *s);
/* True if s may be a nick (names__nick_valid; common/nick.h also compares
 * it with the other accounts). */
bool nick__valid(const char *s);

/* ---- users ---- */
/* Add an account, created now. MQC_ERR_INVAL (bad name/nick/kind),
 * MQC_ERR_EXISTS (an account has the name, or the name is retired:
 * userdb__name_free), MQC_ERR_DB/BUSY. A retired row whose time is over
 * goes in the same statement sequence: call inside a write transaction. */
int userdb__user_add(struct userdb *udb, const char *name, enum user_kind kind,
		const char *nick, const char *pwhash);
/* Give a deleted account's name back to the same person: like user_add,
 * but with the `created` of the deleted account (so the archive answers
 * them with their old conversations), retired or not any more.
 * MQC_ERR_NOTFOUND if the name was never deleted (or has had a holder
 * since), MQC_ERR_EXISTS if an account has it; call inside a write
 * transaction. */
int userdb__user_restore(struct userdb *udb, const char *name, enum user_kind kind,
		const char *nick, const char *pwhash);
/* Whether a new account may take name now: MQC_OK, MQC_ERR_EXISTS (an
 * account has it, or it was deleted less than USERDB_RETIRE_DAYS ago), or
 * an MQC_ERR_* of the store. The one definition of "taken". */
int userdb__name_free(struct userdb *udb, const char *name);
/* When the account that had name was created and deleted (ms), if the
 * name has no holder since: MQC_OK, MQC_ERR_NOTFOUND, or an MQC_ERR_*. */
int userdb__retired_get(struct userdb *udb, const char *name, int64_t *created, int64_t *deleted);
/* Calls cb for every retired name (an account deleted, no holder since),
 * in name order, with its account's created and deleted times, retired
 * for USERDB_RETIRE_DAYS or longer ago alike; a non-zero return from cb
 * stops the walk and is returned. A store of version 1 (opened
 * USERDB_READONLY) has none. */
int userdb__retired_each(struct userdb *udb,
		int (*cb)(const char *name, int64_t created, int64_t deleted, void *arg), void *arg);
/* MQC_ERR_NOTFOUND if there is no such user. */
int userdb__user_get(struct userdb *udb, const char *name, struct userdb_user *out);
int userdb__user_set_enabled(struct userdb *udb, const char *name, bool enabled);
int userdb__user_set_pwhash(struct userdb *udb, const char *name, const char *pwhash);
int userdb__user_set_nick(struct userdb *udb, const char *name, const char *nick);
/* The service account name logs in with secret (a random string of at
 * least PWHASH_MIN_SECRET bytes, made by `init`): if its row still holds a
 * slow hash of it (a data folder from before), store the fast secret form
 * instead (pwhash.h), which the plugin never throttles. Nothing happens if
 * the account is not a service, already has that form, or secret does not
 * verify. *changed says whether the row was rewritten. */
int userdb__service_secret(struct userdb *udb, const char *name, const char *secret, bool *changed);
/* Deletes the user and their memberships and blocks (both directions), and
 * retires the name (with the account's `created`, for user_restore). Call
 * inside a write transaction. MQC_ERR_NOTFOUND if there is no such user. */
int userdb__user_del(struct userdb *udb, const char *name);
/* Calls cb for every user in name order; a non-zero return from cb stops the
 * walk and is returned. The struct is only valid during the call. */
int userdb__user_each(struct userdb *udb,
		int (*cb)(const struct userdb_user *user, void *arg), void *arg);

/* ---- rooms ---- */
/* retention_days <= 0 means "the global retention". MQC_ERR_EXISTS if the
 * name is taken or retired (userdb__room_name_free). */
int userdb__room_create(struct userdb *udb, const char *room, int retention_days);
/* Delete room, its memberships and metadata, and retire its name. Call
 * inside a write transaction. MQC_ERR_NOTFOUND: no such room. */
int userdb__room_del(struct userdb *udb, const char *room);
/* MQC_ERR_NOTFOUND if the room does not exist; *retention_days 0 if unset. */
int userdb__room_get(struct userdb *udb, const char *room, int *retention_days, int64_t *created);
/* MQC_ERR_NOTFOUND (room or user), MQC_ERR_EXISTS (already a member). */
int userdb__member_add(struct userdb *udb, const char *room, const char *user);
/* MQC_ERR_NOTFOUND if not a member. */
int userdb__member_remove(struct userdb *udb, const char *room, const char *user);
bool userdb__is_member(struct userdb *udb, const char *room, const char *user);
/* Calls cb for each room user is a member of now, in name order, with the
 * room's `created`; a non-zero return from cb stops the walk and is returned. */
int userdb__rooms_of(struct userdb *udb, const char *user,
		int (*cb)(const char *room, int64_t created, void *arg), void *arg);
int userdb__room_each(struct userdb *udb,
		int (*cb)(const char *room, int retention_days, int64_t created, void *arg), void *arg);
/* Every (room, user) pair; room NULL for all rooms, user NULL for all users. */
int userdb__member_each(struct userdb *udb, const char *room, const char *user,
		int (*cb)(const char *room, const char *user, void *arg), void *arg);

/* ---- rooms run by their members (docs/PROTOCOL.md) ----
 * A room's owner, title and description (room_meta), its admins
 * (room_admins), when each member joined (room_joined), and the names of
 * deleted rooms, retired for USERDB_RETIRE_DAYS (rooms_retired):
 * userdb__room_create refuses one with MQC_ERR_EXISTS, userdb__room_del
 * retires the name. */
#define ROOM_TITLE_MAX_CHARS 100
#define ROOM_DESCRIPTION_MAX_CHARS 1000

enum room_role {
	ROOM_ROLE_NONE = 0,             /* not a member */
	ROOM_ROLE_MEMBER,
	ROOM_ROLE_ADMIN,
	ROOM_ROLE_OWNER,
	ROOM_ROLE_COUNT
};
/* "member", "admin", "owner"; "?" for anything else. */
const char *room_role__name(enum room_role role);
/* A title or description: UTF-8 without control characters, at most
 * max_chars characters. */
bool room_text__valid(const char *s, size_t max_chars);

struct userdb_room_meta {
	char owner[NAME_MAX_LEN + 1];   /* "": nobody owns the room */
	char title[ROOM_TITLE_MAX_CHARS * 4 + 1];
	char description[ROOM_DESCRIPTION_MAX_CHARS * 4 + 1];
	int64_t created;                /* the room's (read only) */
};
/* Whether a room may be created under room now: MQC_OK, MQC_ERR_EXISTS
 * (a room has it, or one was deleted less than USERDB_RETIRE_DAYS ago),
 * or an MQC_ERR_* of the store. */
int userdb__room_name_free(struct userdb *udb, const char *room);
/* When the room that had the name was deleted: MQC_OK, MQC_ERR_NOTFOUND. */
int userdb__room_retired_get(struct userdb *udb, const char *room, int64_t *deleted);
/* room's metadata (owner "", title and description "" when never set).
 * MQC_ERR_NOTFOUND: no such room. */
int userdb__room_meta_get(struct userdb *udb, const char *room, struct userdb_room_meta *out);
/* Write all of m (created is ignored). MQC_ERR_INVAL for a title or
 * description room_text__valid refuses, MQC_ERR_NOTFOUND for no such room
 * or owner. */
int userdb__room_meta_set(struct userdb *udb, const char *room, const struct userdb_room_meta *m);
/* user's role in room into *out (ROOM_ROLE_NONE: not a member). */
int userdb__room_role(struct userdb *udb, const char *room, const char *user, enum room_role *out);
/* Every member of room with their role: the owner, then admins, then
 * members, each in name order. */
int userdb__room_roles(struct userdb *udb, const char *room,
		int (*cb)(const char *user, enum room_role role, void *arg), void *arg);
/* Make a member an admin (since now; twice is MQC_OK) or not (MQC_OK
 * either way). MQC_ERR_NOTFOUND: user is not a member. */
int userdb__room_admin_set(struct userdb *udb, const char *room, const char *user, bool admin,
		int64_t now);
/* How many rooms owner owns, and how many members room has. */
int userdb__rooms_owned(struct userdb *udb, const char *owner, int *n);
int userdb__room_size(struct userdb *udb, const char *room, int *n);
/* Who takes room over when leaving leaves: the longest-standing admin,
 * else the longest-standing member. MQC_ERR_NOTFOUND: nobody else. */
int userdb__room_successor(struct userdb *udb, const char *room, const char *leaving,
		char *out, size_t outlen);

/* ---- blocks: <user> does not accept messages from <blocked> ---- */
/* MQC_ERR_NOTFOUND if either user is unknown; blocking twice is MQC_OK. */
int userdb__block_add(struct userdb *udb, const char *user, const char *blocked);
/* MQC_ERR_NOTFOUND if there was no such block. */
int userdb__block_del(struct userdb *udb, const char *user, const char *blocked);
/* user NULL for every block. */
int userdb__block_each(struct userdb *udb, const char *user,
		int (*cb)(const char *user, const char *blocked, void *arg), void *arg);

/* ---- devices: the device tokens of a person (common/devtoken.h) ---- */
struct userdb_device {
	char user[NAME_MAX_LEN + 1];
	char device[DEVICE_MAX_LEN + 1];
	char token_sha256[64 + 1];      /* hex */
	int64_t created;
	int64_t last_seen;              /* 0: not since the token was issued */
};
/* Give user's device a token of digest token_sha256 (hex), issued at now:
 * a device that had one gets the new one (the old one stops working).
 * MQC_ERR_NOTFOUND if the user is unknown, MQC_ERR_INVAL for a bad device
 * name or digest. */
int userdb__device_set(struct userdb *udb, const char *user, const char *device,
		const char *token_sha256, int64_t now);
/* Revoke one device: MQC_ERR_NOTFOUND if it has no token. */
int userdb__device_del(struct userdb *udb, const char *user, const char *device);
/* Revoke every device of user but keep (NULL: every device); *count (if
 * not NULL) gets how many. */
int userdb__device_del_others(struct userdb *udb, const char *user, const char *keep, int *count);
/* The devices of user (NULL: of everybody), by user then device. A store
 * opened read-only at an older version has none. */
int userdb__device_each(struct userdb *udb, const char *user,
		int (*cb)(const struct userdb_device *d, void *arg), void *arg);
/* user's device logged in at ts: last_seen moves forward only; nothing if
 * the device has no token. */
int userdb__device_seen(struct userdb *udb, const char *user, const char *device, int64_t ts);

/* ---- privacy and contacts (docs/PROTOCOL.md, "Privacy") ---- */
enum privacy_level {
	PRIVACY_CONTACTS = 0,           /* the default */
	PRIVACY_EVERYONE,
	PRIVACY_NOBODY,
	PRIVACY_LEVEL_COUNT
};
struct userdb_privacy {
	enum privacy_level presence;    /* who sees my presence and whois */
	enum privacy_level room_adds;   /* who may add me to a room */
};
/* "contacts", "everyone", "nobody"; "?" for anything else. */
const char *privacy__name(enum privacy_level level);
/* The level named s; false (out unchanged) if s names none. */
bool privacy__parse(const char *s, enum privacy_level *out);
/* user's settings (the defaults if never set). MQC_ERR_NOTFOUND: no user. */
int userdb__privacy_get(struct userdb *udb, const char *user, struct userdb_privacy *out);
int userdb__privacy_set(struct userdb *udb, const char *user, const struct userdb_privacy *p);
/* Every user who has settings (the others have the defaults). */
int userdb__privacy_each(struct userdb *udb,
		int (*cb)(const char *user, const struct userdb_privacy *p, void *arg), void *arg);
/* user makes contact one of their contacts (contact may then see user).
 * MQC_ERR_NOTFOUND if either is unknown, MQC_ERR_INVAL for oneself;
 * twice is MQC_OK (since is kept). */
int userdb__contact_add(struct userdb *udb, const char *user, const char *contact, int64_t since);
/* MQC_ERR_NOTFOUND if contact was not one. */
int userdb__contact_del(struct userdb *udb, const char *user, const char *contact);
/* May viewer see target's presence and whois? The rule of
 * docs/PROTOCOL.md ("Privacy"), read from the store: the plugin applies
 * the same rule to its snapshot (snapshot__sees); a service is shown to
 * everyone. MQC_OK with *out, or
 * MQC_ERR_NOTFOUND when target is no account. */
int userdb__sees(struct userdb *udb, const char *target, const char *viewer, bool *out);
/* May adder add target to a room? target's room_adds setting: everyone,
 * nobody, or contacts (adder is in target's contacts table or shares a
 * room with them); oneself always. MQC_ERR_NOTFOUND: no such target. */
int userdb__may_add(struct userdb *udb, const char *target, const char *adder, bool *out);
/* user's contacts (NULL: everybody's), by user then contact. A store
 * opened read-only at an older version has none. */
int userdb__contact_each(struct userdb *udb, const char *user,
		int (*cb)(const char *user, const char *contact, int64_t since, void *arg), void *arg);

/* ---- settings (common/settings.h): key -> value ---- */
/* The value of key into out: MQC_OK, MQC_ERR_NOTFOUND (not set: the
 * program's own configuration applies). */
int userdb__setting_get(struct userdb *udb, const char *key, char *out, size_t outlen);
/* MQC_ERR_INVAL for a key settings.h does not know or a value it does not
 * take. */
int userdb__setting_set(struct userdb *udb, const char *key, const char *value);
/* MQC_ERR_NOTFOUND if it was not set. */
int userdb__setting_unset(struct userdb *udb, const char *key);
/* Every setting the store holds, by key (only those settings.h knows
 * matter; others are left alone). */
int userdb__setting_each(struct userdb *udb,
		int (*cb)(const char *key, const char *value, void *arg), void *arg);

/* ---- invites ---- */
/* expires 0 for never. */
int userdb__invite_create(struct userdb *udb, const char *code, int uses, int64_t expires);
/* Atomically spend one use of code: MQC_OK, MQC_ERR_NOTFOUND (unknown, used
 * up or expired at now). Call inside the write transaction that adds the user
 * so a failed registration does not spend the code. */
int userdb__invite_use(struct userdb *udb, const char *code, int64_t now);
int userdb__invite_revoke(struct userdb *udb, const char *code);
int userdb__invite_each(struct userdb *udb,
		int (*cb)(const char *code, int uses_left, int64_t expires, int64_t created, void *arg),
		void *arg);

/* Every account's name and nick but except's (a name, not NULL), in
 * the store's order, until cb returns true: the names and nicks alone, for
 * common/nick.c's check, which reads every account. MQC_OK (stopped or
 * not), MQC_ERR_BUSY, MQC_ERR_DB. */
int userdb__nick_walk(struct userdb *udb, const char *except,
		bool (*cb)(const char *name, const char *nick, void *arg), void *arg);

/* Last error message of this connection (the database's own words). */
const char *userdb__errmsg(struct userdb *udb);

#endif
