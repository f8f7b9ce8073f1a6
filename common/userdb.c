/* userdb.c - the user store's calls, each sent to the backend chosen at
 * open (userdb_store.h), and the store's names and rules that need no
 * store: the checks of names and values, the retired names, the privacy
 * rules, one copy for every backend, made here before the backend is
 * called. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "devtoken.h"
#include "enumname.h"
#include "envelope.h"
#include "err.h"
#include "settings.h"
#include "store_conf.h"
#include "timeutil.h"
#include "userdb.h"
#include "userdb_store.h"

/* The backend is the data folder's (common/store_conf.h): path's folder. */
int userdb__open(const char *path, int flags, struct userdb **out, char *err, size_t errlen)
{
	struct store_conf conf;
	userdb_pg_open_fn *pg_open;
	char dir[4096];
	int rc;

	*out = NULL;
	if(path == NULL) return userdb_sqlite__open(path, flags, out, err, errlen);
	store_conf__dir_of(path, dir, sizeof(dir));
	rc = store_conf__read(dir, &conf, err, errlen);
	if(rc != MQC_OK) return rc;
	if(conf.kind == STORE_SQLITE) return userdb_sqlite__open(path, flags, out, err, errlen);
	pg_open = (userdb_pg_open_fn *)store_conf__pg_symbol("userdb_pg__open", err, errlen);
	return pg_open ? pg_open(&conf, flags, out, err, errlen) : MQC_ERR_IO;
}

const char *userdb__writable(const char *path, int busy_ms, char *why, size_t whylen)
{
	return userdb_sqlite__writable(path, busy_ms, why, whylen);
}

const char *userdb__path(const struct userdb *udb)
{
	return udb->path;
}

int64_t userdb__committed_ns(const struct userdb *udb)
{
	return udb->committed_ns;
}

void userdb__close(struct userdb *udb)
{
	if(udb != NULL) udb->ops->close(udb);
}

void userdb__set_busy_ms(struct userdb *udb, int ms)
{
	udb->ops->set_busy_ms(udb, ms);
}

int userdb__begin_read(struct userdb *udb)
{
	return udb->ops->begin_read(udb);
}

int userdb__begin_write(struct userdb *udb)
{
	return udb->ops->begin_write(udb);
}

int userdb__commit(struct userdb *udb)
{
	return udb->ops->commit(udb);
}

void userdb__rollback(struct userdb *udb)
{
	udb->ops->rollback(udb);
}

int userdb__data_version(struct userdb *udb, int64_t *version)
{
	return udb->ops->data_version(udb, version);
}

int userdb__watch_fd(struct userdb *udb)
{
	return udb->ops->watch_fd(udb);
}

int userdb__watch_drain(struct userdb *udb, userdb_told_fn *told, void *arg)
{
	return udb->ops->watch_drain(udb, told, arg);
}

int userdb__node_applied(struct userdb *udb, const char *node, int64_t version)
{
	return udb->ops->node_applied(udb, node, version);
}

int64_t userdb__committed_change(const struct userdb *udb)
{
	return udb->committed_change;
}

int userdb__in_force_version(struct userdb *udb, int64_t *version)
{
	return udb->ops->in_force_version(udb, version);
}

#define IN_FORCE_POLL_MS 10

int userdb__in_force_wait(struct userdb *udb, int timeout_ms)
{
	int64_t end = time__mono_ms() + timeout_ms, version;
	int rc;

	if(udb->committed_change == 0) return MQC_OK;
	for(;;){
		rc = userdb__in_force_version(udb, &version);
		if(rc != MQC_OK || version >= udb->committed_change) return rc;
		if(time__mono_ms() >= end) return MQC_ERR_TIMEOUT;
		nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = IN_FORCE_POLL_MS * 1000000L}, NULL);
	}
}

static bool user_args_valid(const char *name, enum user_kind kind, const char *nick, const char *pwhash)
{
	/* A secret's fast form is for services only (pwhash.h). */
	return names__valid_str(name) && nick__valid(nick) && user_kind__name(kind)[0] != '?'
		&& (pwhash__iterations(pwhash) != 0
			|| (kind == USER_KIND_SERVICE && pwhash__is_secret(pwhash)));
}

int userdb__user_add(struct userdb *udb, const char *name, enum user_kind kind,
		const char *nick, const char *pwhash)
{
	if(!user_args_valid(name, kind, nick, pwhash)) return MQC_ERR_INVAL;
	return udb->ops->user_add(udb, name, kind, nick, pwhash);
}

int userdb__user_restore(struct userdb *udb, const char *name, enum user_kind kind,
		const char *nick, const char *pwhash)
{
	if(!user_args_valid(name, kind, nick, pwhash)) return MQC_ERR_INVAL;
	return udb->ops->user_restore(udb, name, kind, nick, pwhash);
}

/* A deletion "in the future" (the clock was set back) is recent too. */
static int retired_free(int rc, int64_t deleted)
{
	if(rc != MQC_OK) return rc == MQC_ERR_NOTFOUND ? MQC_OK : rc;
	return time__now_ms() - deleted < USERDB_RETIRE_MS ? MQC_ERR_EXISTS : MQC_OK;
}

int userdb__name_free(struct userdb *udb, const char *name)
{
	struct userdb_user u;
	int64_t created, deleted = 0;
	int rc = userdb__user_get(udb, name, &u);

	if(rc != MQC_ERR_NOTFOUND) return rc == MQC_OK ? MQC_ERR_EXISTS : rc;
	rc = userdb__retired_get(udb, name, &created, &deleted);
	return retired_free(rc, deleted);
}

int userdb__retired_get(struct userdb *udb, const char *name, int64_t *created, int64_t *deleted)
{
	return udb->ops->retired_get(udb, name, created, deleted);
}

int userdb__retired_each(struct userdb *udb,
		int (*cb)(const char *name, int64_t created, int64_t deleted, void *arg), void *arg)
{
	return udb->ops->retired_each(udb, cb, arg);
}

int userdb__user_get(struct userdb *udb, const char *name, struct userdb_user *out)
{
	if(!names__valid_str(name)) return MQC_ERR_NOTFOUND;
	return udb->ops->user_get(udb, name, out);
}

int userdb__user_set_enabled(struct userdb *udb, const char *name, bool enabled)
{
	return udb->ops->user_set_enabled(udb, name, enabled);
}

int userdb__user_set_pwhash(struct userdb *udb, const char *name, const char *pwhash)
{
	/* A secret's fast form: the backend sets it on a service only. */
	if(!pwhash__is_secret(pwhash) && pwhash__iterations(pwhash) == 0) return MQC_ERR_INVAL;
	return udb->ops->user_set_pwhash(udb, name, pwhash);
}

int userdb__user_set_nick(struct userdb *udb, const char *name, const char *nick)
{
	if(!nick__valid(nick)) return MQC_ERR_INVAL;
	return udb->ops->user_set_nick(udb, name, nick);
}

int userdb__service_secret(struct userdb *udb, const char *name, const char *secret, bool *changed)
{
	struct userdb_user u;
	char hash[PWHASH_STR_LEN];
	bool ok = false;
	int rc;

	*changed = false;
	rc = userdb__user_get(udb, name, &u);
	if(rc != MQC_OK) return rc;
	if(u.kind != USER_KIND_SERVICE || pwhash__is_secret(u.pwhash)) return MQC_OK;
	if(strlen(secret) < PWHASH_MIN_SECRET) return MQC_OK;
	rc = pwhash__verify(secret, strlen(secret), u.pwhash, &ok);
	if(rc != MQC_OK || !ok) return MQC_OK;  /* not ours to change: the login will say */
	rc = pwhash__make_secret(secret, strlen(secret), hash, sizeof(hash));
	if(rc == MQC_OK) rc = userdb__user_set_pwhash(udb, name, hash);
	*changed = rc == MQC_OK;
	return rc;
}

int userdb__user_del(struct userdb *udb, const char *name)
{
	return udb->ops->user_del(udb, name);
}

int userdb__user_each(struct userdb *udb,
		int (*cb)(const struct userdb_user *user, void *arg), void *arg)
{
	return udb->ops->user_each(udb, cb, arg);
}

int userdb__room_create(struct userdb *udb, const char *room, int retention_days)
{
	if(!names__valid_str(room)) return MQC_ERR_INVAL;
	return udb->ops->room_create(udb, room, retention_days);
}

int userdb__room_del(struct userdb *udb, const char *room)
{
	return udb->ops->room_del(udb, room);
}

int userdb__room_get(struct userdb *udb, const char *room, int *retention_days, int64_t *created)
{
	return udb->ops->room_get(udb, room, retention_days, created);
}

int userdb__member_add(struct userdb *udb, const char *room, const char *user)
{
	return udb->ops->member_add(udb, room, user);
}

int userdb__member_remove(struct userdb *udb, const char *room, const char *user)
{
	return udb->ops->member_remove(udb, room, user);
}

bool userdb__is_member(struct userdb *udb, const char *room, const char *user)
{
	return udb->ops->is_member(udb, room, user);
}

int userdb__rooms_of(struct userdb *udb, const char *user,
		int (*cb)(const char *room, int64_t created, void *arg), void *arg)
{
	return udb->ops->rooms_of(udb, user, cb, arg);
}

int userdb__room_each(struct userdb *udb,
		int (*cb)(const char *room, int retention_days, int64_t created, void *arg), void *arg)
{
	return udb->ops->room_each(udb, cb, arg);
}

int userdb__member_each(struct userdb *udb, const char *room, const char *user,
		int (*cb)(const char *room, const char *user, void *arg), void *arg)
{
	return udb->ops->member_each(udb, room, user, cb, arg);
}

int userdb__room_name_free(struct userdb *udb, const char *room)
{
	int64_t deleted = 0;
	int rc = userdb__room_get(udb, room, NULL, NULL);

	if(rc != MQC_ERR_NOTFOUND) return rc == MQC_OK ? MQC_ERR_EXISTS : rc;
	rc = userdb__room_retired_get(udb, room, &deleted);
	return retired_free(rc, deleted);
}

int userdb__room_retired_get(struct userdb *udb, const char *room, int64_t *deleted)
{
	return udb->ops->room_retired_get(udb, room, deleted);
}

int userdb__room_meta_get(struct userdb *udb, const char *room, struct userdb_room_meta *out)
{
	return udb->ops->room_meta_get(udb, room, out);
}

int userdb__room_meta_set(struct userdb *udb, const char *room, const struct userdb_room_meta *m)
{
	if(!room_text__valid(m->title, ROOM_TITLE_MAX_CHARS)
			|| !room_text__valid(m->description, ROOM_DESCRIPTION_MAX_CHARS)){
		return MQC_ERR_INVAL;
	}
	return udb->ops->room_meta_set(udb, room, m);
}

int userdb__room_role(struct userdb *udb, const char *room, const char *user, enum room_role *out)
{
	return udb->ops->room_role(udb, room, user, out);
}

int userdb__room_roles(struct userdb *udb, const char *room,
		int (*cb)(const char *user, enum room_role role, void *arg), void *arg)
{
	return udb->ops->room_roles(udb, room, cb, arg);
}

int userdb__room_admin_set(struct userdb *udb, const char *room, const char *user, bool admin,
		int64_t now)
{
	return udb->ops->room_admin_set(udb, room, user, admin, now);
}

int userdb__rooms_owned(struct userdb *udb, const char *owner, int *n)
{
	return udb->ops->rooms_owned(udb, owner, n);
}

int userdb__room_size(struct userdb *udb, const char *room, int *n)
{
	return udb->ops->room_size(udb, room, n);
}

int userdb__room_successor(struct userdb *udb, const char *room, const char *leaving,
		char *out, size_t outlen)
{
	return udb->ops->room_successor(udb, room, leaving, out, outlen);
}

int userdb__block_add(struct userdb *udb, const char *user, const char *blocked)
{
	return udb->ops->block_add(udb, user, blocked);
}

int userdb__block_del(struct userdb *udb, const char *user, const char *blocked)
{
	return udb->ops->block_del(udb, user, blocked);
}

int userdb__block_each(struct userdb *udb, const char *user,
		int (*cb)(const char *user, const char *blocked, void *arg), void *arg)
{
	return udb->ops->block_each(udb, user, cb, arg);
}

int userdb__device_set(struct userdb *udb, const char *user, const char *device,
		const char *token_sha256, int64_t now)
{
	unsigned char digest[DEVTOKEN_DIGEST_LEN];

	if(device == NULL || !names__valid_device(device, strlen(device))
			|| !devtoken__from_hex(token_sha256, digest)){
		return MQC_ERR_INVAL;
	}
	return udb->ops->device_set(udb, user, device, token_sha256, now);
}

int userdb__device_del(struct userdb *udb, const char *user, const char *device)
{
	return udb->ops->device_del(udb, user, device);
}

int userdb__device_del_others(struct userdb *udb, const char *user, const char *keep, int *count)
{
	return udb->ops->device_del_others(udb, user, keep, count);
}

int userdb__device_each(struct userdb *udb, const char *user,
		int (*cb)(const struct userdb_device *d, void *arg), void *arg)
{
	return udb->ops->device_each(udb, user, cb, arg);
}

int userdb__device_seen(struct userdb *udb, const char *user, const char *device, int64_t ts)
{
	return udb->ops->device_seen(udb, user, device, ts);
}

int userdb__privacy_get(struct userdb *udb, const char *user, struct userdb_privacy *out)
{
	return udb->ops->privacy_get(udb, user, out);
}

int userdb__privacy_set(struct userdb *udb, const char *user, const struct userdb_privacy *p)
{
	if(privacy__name(p->presence)[0] == '?' || privacy__name(p->room_adds)[0] == '?') return MQC_ERR_INVAL;
	return udb->ops->privacy_set(udb, user, p);
}

int userdb__privacy_each(struct userdb *udb,
		int (*cb)(const char *user, const struct userdb_privacy *p, void *arg), void *arg)
{
	return udb->ops->privacy_each(udb, cb, arg);
}

int userdb__contact_add(struct userdb *udb, const char *user, const char *contact, int64_t since)
{
	if(user == NULL || contact == NULL || !strcmp(user, contact)) return MQC_ERR_INVAL;
	return udb->ops->contact_add(udb, user, contact, since);
}

int userdb__contact_del(struct userdb *udb, const char *user, const char *contact)
{
	return udb->ops->contact_del(udb, user, contact);
}

/* The privacy rules (docs/PROTOCOL.md, "Privacy"), the same on every
 * backend: only whether two people are contacts is the store's. */
int userdb__sees(struct userdb *udb, const char *target, const char *viewer, bool *out)
{
	struct userdb_privacy p;
	struct userdb_user u;
	int rc = userdb__user_get(udb, target, &u);

	*out = false;
	if(rc == MQC_OK) rc = userdb__privacy_get(udb, target, &p);
	if(rc != MQC_OK) return rc;
	/* A service (the archiver) is the system's own: shown to all. */
	if(!strcmp(target, viewer) || p.presence == PRIVACY_EVERYONE || u.kind == USER_KIND_SERVICE){
		*out = true;
		return MQC_OK;
	}
	if(p.presence == PRIVACY_NOBODY) return MQC_OK;
	*out = udb->ops->is_contact(udb, target, viewer);
	return MQC_OK;
}

int userdb__may_add(struct userdb *udb, const char *target, const char *adder, bool *out)
{
	struct userdb_privacy p;
	int rc = userdb__privacy_get(udb, target, &p);

	*out = false;
	if(rc != MQC_OK) return rc;
	if(!strcmp(target, adder) || p.room_adds == PRIVACY_EVERYONE) *out = true;
	else if(p.room_adds == PRIVACY_CONTACTS) *out = udb->ops->is_contact(udb, target, adder);
	return MQC_OK;
}

int userdb__contact_each(struct userdb *udb, const char *user,
		int (*cb)(const char *user, const char *contact, int64_t since, void *arg), void *arg)
{
	return udb->ops->contact_each(udb, user, cb, arg);
}

int userdb__setting_get(struct userdb *udb, const char *key, char *out, size_t outlen)
{
	return udb->ops->setting_get(udb, key, out, outlen);
}

int userdb__setting_set(struct userdb *udb, const char *key, const char *value)
{
	const struct setting_def *d = settings__find(key);

	if(d == NULL || settings__check(d, value) != NULL) return MQC_ERR_INVAL;
	return udb->ops->setting_set(udb, key, value);
}

int userdb__setting_unset(struct userdb *udb, const char *key)
{
	return udb->ops->setting_unset(udb, key);
}

int userdb__setting_each(struct userdb *udb,
		int (*cb)(const char *key, const char *value, void *arg), void *arg)
{
	return udb->ops->setting_each(udb, cb, arg);
}

int userdb__invite_create(struct userdb *udb, const char *code, int uses, int64_t expires)
{
	if(code == NULL || !names__valid_msgid(code, strlen(code)) || uses < 1) return MQC_ERR_INVAL;
	return udb->ops->invite_create(udb, code, uses, expires);
}

int userdb__invite_use(struct userdb *udb, const char *code, int64_t now)
{
	return udb->ops->invite_use(udb, code, now);
}

int userdb__invite_revoke(struct userdb *udb, const char *code)
{
	return udb->ops->invite_revoke(udb, code);
}

int userdb__invite_each(struct userdb *udb,
		int (*cb)(const char *code, int uses_left, int64_t expires, int64_t created, void *arg),
		void *arg)
{
	return udb->ops->invite_each(udb, cb, arg);
}

int userdb__nick_walk(struct userdb *udb, const char *except,
		bool (*cb)(const char *name, const char *nick, void *arg), void *arg)
{
	return udb->ops->nick_walk(udb, except, cb, arg);
}

const char *userdb__errmsg(struct userdb *udb)
{
	return udb != NULL ? udb->ops->errmsg(udb) : "no database";
}

/* Each kind's name (in the store, on the wire, in the CLI) by value: the
 * one spelling that user_kind__name and user_kind__parse both read. */
static const char *const kind_names[] = {
	[USER_KIND_USER] = "user",
	[USER_KIND_DEVICE] = "device",
	[USER_KIND_SERVICE] = "service",
};
#define KIND_NAMES (sizeof(kind_names) / sizeof(kind_names[0]))

const char *user_kind__name(enum user_kind kind)
{
	return enumname__name(kind_names, KIND_NAMES, (int)kind);
}

enum user_kind user_kind__parse(const char *s)
{
	int v = enumname__parse(kind_names, KIND_NAMES, s);

	return v < 0 ? 0 : (enum user_kind)v;
}

bool nick__valid(const char *s)
{
	/* The rule is names.h's; the store refuses what it refuses. */
	return s != NULL && names__nick_valid(s, strnlen(s, NICK_MAX_LEN + 1), NULL, 0);
}

static const char *const role_names[ROOM_ROLE_COUNT] = {
	[ROOM_ROLE_MEMBER] = "member",
	[ROOM_ROLE_ADMIN] = "admin",
	[ROOM_ROLE_OWNER] = "owner",
};

const char *room_role__name(enum room_role role)
{
	return enumname__name(role_names, ROOM_ROLE_COUNT, (int)role);
}

bool room_text__valid(const char *s, size_t max_chars)
{
	size_t i, chars = 0, len;

	if(s == NULL) return false;
	len = strlen(s);
	if(!utf8__valid(s, len)) return false;
	for(i = 0; i < len; i++){
		unsigned char c = (unsigned char)s[i];

		if(c < 0x20 || c == 0x7f) return false;
		if((c & 0xC0) != 0x80) chars++;
	}
	return chars <= max_chars;
}

static const char *const privacy_names[PRIVACY_LEVEL_COUNT] = {
	[PRIVACY_CONTACTS] = "contacts",
	[PRIVACY_EVERYONE] = "everyone",
	[PRIVACY_NOBODY] = "nobody",
};

const char *privacy__name(enum privacy_level level)
{
	return enumname__name(privacy_names, PRIVACY_LEVEL_COUNT, (int)level);
}

bool privacy__parse(const char *s, enum privacy_level *out)
{
	int v = enumname__parse(privacy_names, PRIVACY_LEVEL_COUNT, s);

	if(v < 0) return false;
	*out = (enum privacy_level)v;
	return true;
}

