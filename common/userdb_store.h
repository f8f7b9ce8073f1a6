/* userdb_store.h - what a user store backend implements (see userdb.h).
 *
 * userdb.c checks the arguments (names, nicks, hashes, texts, settings:
 * MQC_ERR_INVAL, or MQC_ERR_NOTFOUND for a name no account can have) and
 * holds the rules that need only other calls (retired names, a service's
 * secret, the privacy rules on top of is_contact); then each userdb__*
 * call goes to the function of the same name in udb->ops, with the same
 * arguments, and returns its answer. So a backend is called with valid
 * arguments only, and gives the meanings and MQC_ERR_* codes userdb.h
 * documents for the rest. A backend's open
 * fills a struct that begins with struct userdb (ops set before anything
 * can fail: a failed open closes through them). Only backends and their
 * tests include this file. */
#ifndef MQCHAT_USERDB_STORE_H
#define MQCHAT_USERDB_STORE_H

#include "userdb.h"

struct userdb_ops {
	void (*close)(struct userdb *udb);
	void (*set_busy_ms)(struct userdb *udb, int ms);
	int (*begin_read)(struct userdb *udb);
	int (*begin_write)(struct userdb *udb);
	int (*commit)(struct userdb *udb);
	void (*rollback)(struct userdb *udb);
	int (*data_version)(struct userdb *udb, int64_t *version);
	int (*watch_fd)(struct userdb *udb);
	int (*watch_drain)(struct userdb *udb, userdb_told_fn *told, void *arg);
	int (*node_applied)(struct userdb *udb, const char *node, int64_t version);
	int (*in_force_version)(struct userdb *udb, int64_t *version);
	int (*user_add)(struct userdb *udb, const char *name, enum user_kind kind,
		const char *nick, const char *pwhash);
	int (*user_restore)(struct userdb *udb, const char *name, enum user_kind kind,
		const char *nick, const char *pwhash);
	int (*retired_get)(struct userdb *udb, const char *name, int64_t *created, int64_t *deleted);
	int (*retired_each)(struct userdb *udb,
		int (*cb)(const char *name, int64_t created, int64_t deleted, void *arg), void *arg);
	int (*user_get)(struct userdb *udb, const char *name, struct userdb_user *out);
	int (*user_set_enabled)(struct userdb *udb, const char *name, bool enabled);
	int (*user_set_pwhash)(struct userdb *udb, const char *name, const char *pwhash);
	int (*user_set_nick)(struct userdb *udb, const char *name, const char *nick);
	int (*user_del)(struct userdb *udb, const char *name);
	int (*user_each)(struct userdb *udb,
		int (*cb)(const struct userdb_user *user, void *arg), void *arg);
	int (*room_create)(struct userdb *udb, const char *room, int retention_days);
	int (*room_del)(struct userdb *udb, const char *room);
	int (*room_get)(struct userdb *udb, const char *room, int *retention_days, int64_t *created);
	int (*member_add)(struct userdb *udb, const char *room, const char *user);
	int (*member_remove)(struct userdb *udb, const char *room, const char *user);
	bool (*is_member)(struct userdb *udb, const char *room, const char *user);
	int (*rooms_of)(struct userdb *udb, const char *user,
		int (*cb)(const char *room, int64_t created, void *arg), void *arg);
	int (*room_each)(struct userdb *udb,
		int (*cb)(const char *room, int retention_days, int64_t created, void *arg), void *arg);
	int (*member_each)(struct userdb *udb, const char *room, const char *user,
		int (*cb)(const char *room, const char *user, void *arg), void *arg);
	int (*room_retired_get)(struct userdb *udb, const char *room, int64_t *deleted);
	int (*room_meta_get)(struct userdb *udb, const char *room, struct userdb_room_meta *out);
	int (*room_meta_set)(struct userdb *udb, const char *room, const struct userdb_room_meta *m);
	int (*room_role)(struct userdb *udb, const char *room, const char *user, enum room_role *out);
	int (*room_roles)(struct userdb *udb, const char *room,
		int (*cb)(const char *user, enum room_role role, void *arg), void *arg);
	int (*room_admin_set)(struct userdb *udb, const char *room, const char *user, bool admin,
		int64_t now);
	int (*rooms_owned)(struct userdb *udb, const char *owner, int *n);
	int (*room_size)(struct userdb *udb, const char *room, int *n);
	int (*room_successor)(struct userdb *udb, const char *room, const char *leaving,
		char *out, size_t outlen);
	int (*block_add)(struct userdb *udb, const char *user, const char *blocked);
	int (*block_del)(struct userdb *udb, const char *user, const char *blocked);
	int (*block_each)(struct userdb *udb, const char *user,
		int (*cb)(const char *user, const char *blocked, void *arg), void *arg);
	int (*device_set)(struct userdb *udb, const char *user, const char *device,
		const char *token_sha256, int64_t now);
	int (*device_del)(struct userdb *udb, const char *user, const char *device);
	int (*device_del_others)(struct userdb *udb, const char *user, const char *keep, int *count);
	int (*device_each)(struct userdb *udb, const char *user,
		int (*cb)(const struct userdb_device *d, void *arg), void *arg);
	int (*device_seen)(struct userdb *udb, const char *user, const char *device, int64_t ts);
	int (*privacy_get)(struct userdb *udb, const char *user, struct userdb_privacy *out);
	int (*privacy_set)(struct userdb *udb, const char *user, const struct userdb_privacy *p);
	int (*privacy_each)(struct userdb *udb,
		int (*cb)(const char *user, const struct userdb_privacy *p, void *arg), void *arg);
	int (*contact_add)(struct userdb *udb, const char *user, const char *contact, int64_t since);
	int (*contact_del)(struct userdb *udb, const char *user, const char *contact);
	/* Is other one of user's contacts: in user's contacts table, or in a
	 * room with them? (The privacy rules built on it are userdb.c's.) */
	bool (*is_contact)(struct userdb *udb, const char *user, const char *other);
	int (*contact_each)(struct userdb *udb, const char *user,
		int (*cb)(const char *user, const char *contact, int64_t since, void *arg), void *arg);
	int (*setting_get)(struct userdb *udb, const char *key, char *out, size_t outlen);
	int (*setting_set)(struct userdb *udb, const char *key, const char *value);
	int (*setting_unset)(struct userdb *udb, const char *key);
	int (*setting_each)(struct userdb *udb,
		int (*cb)(const char *key, const char *value, void *arg), void *arg);
	int (*invite_create)(struct userdb *udb, const char *code, int uses, int64_t expires);
	int (*invite_use)(struct userdb *udb, const char *code, int64_t now);
	int (*invite_revoke)(struct userdb *udb, const char *code);
	int (*invite_each)(struct userdb *udb,
		int (*cb)(const char *code, int uses_left, int64_t expires, int64_t created, void *arg),
		void *arg);
	int (*nick_walk)(struct userdb *udb, const char *except,
		bool (*cb)(const char *name, const char *nick, void *arg), void *arg);
	const char *(*errmsg)(struct userdb *udb);
};

struct userdb {
	const struct userdb_ops *ops;
	int64_t committed_ns;   /* time__mono_ns after this connection's last commit; 0: none */
	int64_t committed_change; /* the version of its last committed change; 0: none or no versions */
	int version;            /* the schema version as opened (a reader does not upgrade) */
	char path[4096];
};

/* The SQLite backend (common/userdb_sqlite.c): path is the file. */
int userdb_sqlite__open(const char *path, int flags, struct userdb **out, char *err, size_t errlen);
const char *userdb_sqlite__writable(const char *path, int busy_ms, char *why, size_t whylen);

/* The PostgreSQL backend (common/userdb_pg.c, in the module
 * mqchat_store_pg.so that userdb.c loads): conf is DATA/store.conf. */
struct store_conf;
typedef int userdb_pg_open_fn(const struct store_conf *conf, int flags, struct userdb **out,
		char *err, size_t errlen);
userdb_pg_open_fn userdb_pg__open;

#endif
