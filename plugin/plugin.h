/* plugin.h - private header of the mqchat auth/ACL plugin for Mosquitto 2.0.
 *
 * One struct mqchat owns everything the plugin holds; the broker hands it
 * back to every callback as userdata. Everything here runs on the broker's
 * only thread, and the plugin starts no other: snapshots are built by a
 * child process (loader.c) that talks to it solely through memory shared
 * before the fork and a socket pair. */
#ifndef MQCHAT_PLUGIN_H
#define MQCHAT_PLUGIN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* Out of memory in a hash add must never exit the broker: the add fails
 * and uthash_nonfatal_oom (redefined where it matters) records it. */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

/* Delete every element of the uthash table head (handle hh) and free() it;
 * head is NULL after. el and tmp are scratch pointers of the element type.
 * For tables whose elements hold nothing else to release. */
#define HASH_FREE_ALL(head, el, tmp) do{ \
		HASH_ITER(hh, head, el, tmp){ \
			HASH_DELETE(hh, head, el); \
			free(el); \
		} \
	}while(0)

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "devtoken.h"
#include "names.h"
#include "pwhash.h"
#include "settings.h"
#include "userdb.h"

struct mosquitto;
struct mqchat;
struct plugin_bus;

/* ================================================================
 * Options (config.c)
 * ================================================================ */

#define CONFIG_DEFAULT_MAX_PAYLOAD 65536L
#define CONFIG_MIN_MAX_PAYLOAD 256L
#define CONFIG_MAX_MAX_PAYLOAD 268435455L
#define CONFIG_DEFAULT_RELOAD_MS 250L
#define CONFIG_DEFAULT_REGISTER_TIMEOUT 30L
#define CONFIG_DEFAULT_LOG_RATE 20L
#define CONFIG_DEFAULT_SNAPSHOT_MB 256L
#define CONFIG_DEFAULT_SEEN_REPORT_S 30L
#define CONFIG_DEFAULT_SEND_RATE 20L
#define CONFIG_DEFAULT_SEND_BURST 100L
#define CONFIG_DEFAULT_MAX_CONNECTIONS 16L
#define CONFIG_DEFAULT_MAX_SESSIONS 32L
#define CONFIG_DEFAULT_MAX_SUBSCRIPTIONS 1000L
#define CONFIG_DEFAULT_STATS_INTERVAL 5L
/* Entries plugin_opt_front_addresses may hold (a front is a few machines). */
#define FRONT_MAX 64
#define CONFIG_DEFAULT_SPOOL_MB 0L      /* no spool */

struct mqchat_config {
	char *db;                       /* plugin_opt_dbpath, malloc'd */
	enum registration_mode registration;
	uint32_t max_payload;
	int reload_ms;
	int register_timeout_s;
	int log_rate;
	int snapshot_mb;                /* size of each of the two snapshot slots */
	bool watch;                     /* plugin_opt_watch: inotify on the store */
	int send_rate;                  /* messages a second one account may send; 0: no limit */
	int send_burst;                 /* ... and at once */
	int max_connections;            /* per account at once; 0: no limit */
	int max_sessions;               /* client ids keeping a session, per account; 0: no limit */
	int max_subscriptions;          /* per connection; 0: no limit */
	int seen_report_s;              /* device logins reported this often (devices.c) */
	int stats_interval_s;           /* figures on $SYS/mqchat/plugin this often (stats.c); 0: off */
	/* plugin_opt_front_addresses (front.c): networks whose connections
	 * skip the per-address throttles; addr as IPv6 (IPv4 mapped). */
	struct front_net {
		unsigned char addr[16];
		unsigned prefix;                /* 0..128 */
	} front[FRONT_MAX];
	size_t front_count;
	int spool_mb;                   /* the node's spool, MiB (spool.c); 0: none */
	int bus_inbox_mb;               /* DATA/inbox for the bus, MiB (bus.c); 0: no bus */
};

/* Set every field to its default (db NULL). */
void plugin_config__defaults(struct mqchat_config *cfg);
struct snapshot;
/* The registration mode in force: the store's setting if it has one
 * (snapshot s, may be NULL), else plugin_opt_registration. */
enum registration_mode plugin_config__registration(const struct mqchat_config *cfg,
		const struct snapshot *s);
/* Parse the broker's plugin_opt_* list into cfg (defaults first). Unknown
 * options are logged as a warning and ignored. Returns MQC_OK, or
 * MQC_ERR_INVAL with a message in err. cfg must be freed with
 * plugin_config__cleanup either way. */
int plugin_config__parse(struct mqchat_config *cfg, const struct mosquitto_opt *opts, int count,
		char *err, size_t errlen);
/* Free what cfg owns; safe on a defaulted or half-parsed struct. */
void plugin_config__cleanup(struct mqchat_config *cfg);
/* Add the addresses and networks of one plugin_opt_front_addresses value
 * (separated by spaces or commas: "10.0.0.5, 10.0.1.0/24 fd00::/64") to
 * cfg (front.c). MQC_OK, or MQC_ERR_INVAL with a message in err. */
int front__add(struct mqchat_config *cfg, const char *value, char *err, size_t errlen);
/* Is addr (a client's address as the broker gives it) a front's? */
bool front__match(const struct mqchat_config *cfg, const char *addr);

/* ================================================================
 * Snapshot (snapshot.c): the user store in memory, immutable once built.
 * ================================================================ */

/* An open-addressing table of users, rooms or names: a snapshot never
 * changes once built, so a flat array probed linearly (at most half full)
 * beats a chained table on the broker's every look-up: one hash (or none,
 * when the caller has it), usually one slot, one name compare. */
struct snap_slot {
	uint32_t hash;
	uint32_t len;
	void *item;                     /* snap_user / snap_room / snap_name; NULL: empty */
};

struct snap_index {
	struct snap_slot *slots;        /* mask + 1 of them, in the arena; NULL when empty */
	size_t mask;
	size_t count;
};

/* A name in a set (room members, a user's blocked names). */
struct snap_name {
	uint8_t len;
	char name[NAME_MAX_LEN + 1];
};

/* A device of a person that holds a token (common/devtoken.h). */
struct snap_device {
	struct snap_device *next;
	unsigned char digest[DEVTOKEN_DIGEST_LEN];  /* the token's SHA-256 */
	uint8_t len;
	char name[DEVICE_MAX_LEN + 1];
};

/* One room of a user's (snap_user.rooms). */
struct snap_room_ref {
	struct snap_room_ref *next;
	const struct snap_room *room;
};

struct snap_user {
	struct snap_user *next;         /* every user, in load order (the presence sweep) */
	struct snap_index blocked;      /* names this user refuses messages from */
	const char *pwhash;             /* in the snapshot's arena */
	struct snap_device *devices;    /* logins only: never read per message */
	/* Privacy (docs/PROTOCOL.md): read for presence, never per message. */
	struct snap_index contacts;     /* names this user added or wrote to */
	struct snap_room_ref *rooms;    /* the rooms this user is in */
	uint8_t presence_vis;           /* enum privacy_level */
	uint8_t room_adds;              /* enum privacy_level */
	uint32_t hash;                  /* snapshot__name_hash of name: sets need no rehash */
	enum user_kind kind;
	bool enabled;
	uint8_t len;
	char name[NAME_MAX_LEN + 1];
};

struct snap_room {
	struct snap_index members;
	uint8_t len;
	char name[NAME_MAX_LEN + 1];
};

struct arena_chunk;

/* A name that no account has any more (presence.c clears its topic). */
struct snap_gone {
	struct snap_gone *next;
	enum user_kind kind;            /* 0 when not known (retired) */
	uint8_t len;
	char name[NAME_MAX_LEN + 1];
};

struct snapshot {
	struct snap_user *users;        /* list head (snap_user.next) */
	struct snap_index user_index;
	struct snap_index room_index;
	/* The arena: malloc'd chunks, or (region != NULL) one fixed region
	 * that starts with this struct. */
	struct arena_chunk *chunks;
	unsigned char *region;
	size_t region_size, region_used;
	bool full;                      /* the region ran out during the build */
	int64_t data_version;
	size_t user_count, room_count, member_count, block_count, device_count, contact_count;
	/* A digest of every (user, device, token) of the snapshot: equal in
	 * two snapshots when no token was issued or revoked in between (a
	 * new last_seen changes nothing here), so the broker looks at its
	 * token connections only when it differs. */
	uint64_t devices_sum;
	/* The store's settings (common/settings.h) the plugin obeys; has_*
	 * false: not set there, the plugin_opt_* applies. */
	bool has_registration;
	enum registration_mode registration;
	size_t bytes;                   /* arena bytes in use */
	/* Accounts of the snapshot built before this one that this one lacks
	 * (snapshot__vanished), and the store's retired names (deleted
	 * accounts') that no account has again. */
	struct snap_gone *vanished, *retired;
	size_t vanished_count, retired_count;
};

/* Build a complete snapshot from udb inside one read transaction.
 * On success *out is a new snapshot the caller frees with snapshot__free.
 * On failure returns MQC_ERR_* with a message in err and *out is NULL. */
int snapshot__load(struct userdb *udb, struct snapshot **out, char *err, size_t errlen);
/* The same into the empty snapshot s (from snapshot__new or
 * snapshot__new_in). On failure s holds part of the store: discard it. */
int snapshot__load_into(struct userdb *udb, struct snapshot *s, char *err, size_t errlen);
/* An empty snapshot (tests build one by hand with the add functions). */
struct snapshot *snapshot__new(void);
/* An empty snapshot built entirely inside region[0..size), which must be
 * zero bytes and aligned for any type; the struct itself is at region.
 * A build that does not fit fails with s->full set. NULL if size is too
 * small for the struct. snapshot__free leaves the region alone. */
struct snapshot *snapshot__new_in(void *region, size_t size);
/* Add helpers used by the loader and by tests; NULL/MQC_ERR_NOMEM on failure. */
struct snap_user *snapshot__add_user(struct snapshot *s, const char *name, enum user_kind kind,
		bool enabled, const char *pwhash);
struct snap_room *snapshot__add_room(struct snapshot *s, const char *name);
int snapshot__add_member(struct snapshot *s, const char *room, const char *user);
int snapshot__add_block(struct snapshot *s, const char *user, const char *blocked);
/* user's device device holds the token of SHA-256 digest. MQC_OK,
 * MQC_ERR_NOTFOUND (no such user), MQC_ERR_INVAL, MQC_ERR_NOMEM. */
int snapshot__add_device(struct snapshot *s, const char *user, const char *device,
		const unsigned char digest[DEVTOKEN_DIGEST_LEN]);
/* user's privacy settings, and one of their contacts (contact may see
 * user). MQC_OK, MQC_ERR_NOTFOUND (no such user), MQC_ERR_NOMEM. */
int snapshot__set_privacy(struct snapshot *s, const char *user, enum privacy_level presence,
		enum privacy_level room_adds);
int snapshot__add_contact(struct snapshot *s, const char *user, const char *contact);
/* May viewer see target's presence (and whois)? Themselves and services
 * always; others by target's setting: everyone, nobody, or its contacts (in
 * target's contacts, or sharing a room with target). */
bool snapshot__sees(const struct snap_user *target, const struct snap_user *viewer);
/* The device of u named name[0..len), or NULL. */
const struct snap_device *snapshot__device(const struct snap_user *u, const char *name, size_t len);
/* Look-ups on a (pointer, length) slice, for topic levels in place. */
struct snap_user *snapshot__user(const struct snapshot *s, const char *name, size_t len);
struct snap_room *snapshot__room(const struct snapshot *s, const char *name, size_t len);
bool snapshot__name_in(const struct snap_index *set, const char *name, size_t len);
/* The same for a user's own name: snapshot__user_in (snapshot.h). */
/* Record in s (built, not yet handed over) every account of prev (the
 * snapshot the broker uses; NULL: none) that s lacks. MQC_OK or
 * MQC_ERR_NOMEM (s is full: discard it). */
int snapshot__vanished(struct snapshot *s, const struct snapshot *prev);
/* Free everything; NULL is fine. */
void snapshot__free(struct snapshot *s);

/* ================================================================
 * Loader process (loader.c)
 * ================================================================ */

struct loader_shared;

/* The revocation short list (cuts.c; docs/SCALING.md "Revocation within
 * 1 s"): changes that cut someone off, as the store's watch names them
 * (userdb__watch_drain), written by the loader process into the shared
 * header the moment they arrive, read by the broker's tick, which acts on
 * them before the snapshot that holds them is built. A ring: the loader
 * writes entry seq % CUT_RING, then bumps seq (release); a reader that
 * fell CUT_RING behind skips to what is still there (the snapshot brings
 * the rest). */
#define CUT_RING 32
struct cut_entry {
	int64_t version;                /* the change's version (userdb__data_version) */
	char kind;                      /* CUT_USER or CUT_DEVICE */
	char name[CLIENTID_MAX_LEN + 1]; /* <user>, or <user>@<device> */
};
struct cut_ring {
	uint32_t seq;                   /* entries ever written */
	struct cut_entry e[CUT_RING];
};
#define CUT_USER 'u'                /* disabled or deleted: every login and connection */
#define CUT_DEVICE 'd'              /* a device's token revoked or replaced: its token logins */
/* Loader process: note a change if its kind cuts someone off. */
void cuts__post(struct cut_ring *r, int64_t version, const char *kind, const char *name);

/* What the broker holds of the list until a snapshot has each change. */
#define CUTS_KEPT 64
struct cuts {
	uint32_t seen;                  /* ring entries read */
	unsigned count, next;           /* kept entries; the slot written next */
	struct cut_entry kept[CUTS_KEPT];
};

struct loader {
	struct loader_shared *sh;       /* head of the shared mapping; NULL: not started */
	unsigned char *map;
	size_t map_len;
	unsigned char *slot[2];         /* the two snapshot slots in the mapping */
	size_t slot_bytes;
	char *path;
	int reload_ms;
	bool watch;                     /* watch the store's files (inotify) */
	pid_t pid;                      /* the loader process; 0 when none runs */
	int fd;                         /* broker's end of the socket pair; -1 */
	uint32_t news_seen;             /* sh->news when last looked at */
	uint32_t take_gen;              /* generation handed out by loader__take */
	int64_t next_check;             /* next look for a dead loader (mono ms) */
	int64_t restart_at;             /* when a dead loader may be started again */
};

/* Map the two slots of slot_mb MiB each, fork the loader process and wait
 * (at most a minute) for its first snapshot of the store at path, which
 * it then checks for changes every reload_ms, or (watch) whenever its
 * files change and every 8 x reload_ms. On success *first is that snapshot (in
 * slot memory: never snapshot__free'd) and MQC_OK is returned; on failure
 * err holds the whole log line ("mqchat: cannot open user store PATH:
 * why") and everything is cleaned up. Call before the broker opens its listeners:
 * the child closes every inherited descriptor it does not need. */
int loader__start(struct loader *l, const char *path, int reload_ms, bool watch, int slot_mb,
		struct snapshot **first, char *err, size_t errlen);
/* Ask for a reload at once, whatever data_version says (SIGHUP). */
void loader__force(struct loader *l);
/* name logged in with password[0..pwlen), which verified against stored,
 * one of Mosquitto's forms (pwhash__is_legacy): ask the loader process to
 * store pwhash__make's form of it instead, if the row still holds stored
 * (compare-and-set), and to reload. One non-blocking message on the
 * loader's socket: dropped if the socket is full (the next login asks
 * again), the copy wiped. No loader process (tests): nothing. Broker
 * thread only. */
void loader__rehash(struct loader *l, const char *name, const char *password, size_t pwlen,
		const char *stored);
/* Take the newest snapshot if there is one the broker thread has not seen
 * (else NULL), and any log line (copied to msg, *level set, *has_msg true).
 * No system call and no lock when there is no news. Broker thread only. */
struct snapshot *loader__take(struct loader *l, char *msg, size_t msglen, int *level,
		bool *has_msg);
/* The broker thread no longer uses old (the snapshot before the one last
 * taken): the loader may wipe its slot and build the next one there.
 * Without a loader process (tests) old is snapshot__free'd. Broker thread
 * only. */
void loader__retire(struct loader *l, struct snapshot *old);
/* The short list in the shared header; NULL without a loader (tests). */
const struct cut_ring *loader__cuts(const struct loader *l);
/* From TICK: about once a second, notice a loader process that died (it
 * is logged) and start a new one, at most every 5 s. */
void loader__watch(struct loader *l, int64_t now);
/* Stop the process (bounded wait), unmap; safe on a never-started loader.
 * Snapshots taken from it are gone afterwards. */
void loader__cleanup(struct loader *l);

/* ================================================================
 * Rate-limited log (plog.c)
 * ================================================================ */

struct plog {
	int rate;                       /* lines per second */
	int64_t window;                 /* current second (monotonic ms / 1000) */
	int count;                      /* lines logged in this window */
	unsigned long suppressed;       /* lines dropped in this window */
};

/* True if a NOTICE line may be written now (and counted), false if it is
 * to be dropped: more than rate lines were logged this second. Dropped
 * lines are counted and reported by one "N messages suppressed" line when
 * the second is over. Callers skip formatting (escaping) what would be
 * dropped, then log with mosquitto_log_printf(MOSQ_LOG_NOTICE, ...).
 * now_ms is a monotonic time. */
bool plog__begin(struct plog *p, int64_t now_ms);
/* Emit the pending "suppressed" line if the window is over (from TICK). */
void plog__flush(struct plog *p, int64_t now_ms);

/* ================================================================
 * Throttles (throttle.c): exponential backoff and token buckets.
 * ================================================================ */

struct throttle_entry {
	UT_hash_handle hh;
	uint32_t failures;              /* consecutive failures */
	double tokens;                  /* token bucket mode */
	int64_t locked_until;           /* backoff mode: refuse before this */
	int64_t last;                   /* last failure / refill (ms) */
	uint16_t len;
	char key[];
};

struct throttle {
	struct throttle_entry *head;
	size_t count;
	size_t max_entries;
	/* Backoff: from the free_failures-th consecutive failure lock for
	 * base_ms * 2^(n - free_failures), at most cap_ms. */
	uint32_t free_failures;
	int64_t base_ms;
	int64_t cap_ms;
	/* Token bucket: burst tokens, refilled at burst per period_ms. */
	double burst;
	int64_t period_ms;
};

/* A backoff throttle. */
void throttle__init_backoff(struct throttle *t, uint32_t free_failures, int64_t base_ms,
		int64_t cap_ms, size_t max_entries);
/* A token bucket limiter. */
void throttle__init_bucket(struct throttle *t, double burst, int64_t period_ms,
		size_t max_entries);
/* Backoff: true if key is locked at now (*wait_ms gets the rest, may be NULL). */
bool throttle__locked(struct throttle *t, const char *key, size_t len, int64_t now,
		int64_t *wait_ms);
/* Backoff: record one failure for key at now. Returns the consecutive count. */
uint32_t throttle__fail(struct throttle *t, const char *key, size_t len, int64_t now);
/* Backoff: forget key (a success). */
void throttle__reset(struct throttle *t, const char *key, size_t len);
/* Bucket: take one token for key; false if there is none. */
bool throttle__take(struct throttle *t, const char *key, size_t len, int64_t now);
/* Drop entries that no longer hold anything back (idle for > 2 * cap/period). */
void throttle__prune(struct throttle *t, int64_t now);
void throttle__cleanup(struct throttle *t);

/* ================================================================
 * Send rate limit per account (ratelimit.c)
 * ================================================================ */

struct ratelimit_slot {
	int64_t tat;                    /* theoretical arrival time (us); <= now: idle */
	uint32_t hash;                  /* snapshot__name_hash of name */
	uint8_t len;                    /* 0: never used */
	char name[NAME_MAX_LEN + 1];
};

struct ratelimit {
	struct ratelimit_slot *slots;   /* NULL: no limit */
	size_t mask;
	int64_t interval_us;            /* 1 s / rate */
	int64_t tolerance_us;           /* (burst - 1) intervals */
};

#define RATELIMIT_SLOTS 16384

/* rate messages a second, bursts of burst; rate 0: no limit (take always
 * says yes). MQC_OK or MQC_ERR_NOMEM. */
int ratelimit__init(struct ratelimit *r, int rate, int burst, size_t slots);
/* One message of bytes payload by u at now_ms: 0 if it may go (and is
 * counted), else the milliseconds until the next one may. It counts as one
 * message per started RATELIMIT_UNIT_BYTES (a 64 KiB message as 8), so one
 * account cannot push more than rate x 8 KiB a second at the broker and
 * the archiver; a receipt (light) counts as 1/RATELIMIT_LIGHT of one, so a
 * device catching up on a backlog may acknowledge it. No allocation, no
 * system call. */
#define RATELIMIT_LIGHT 8
#define RATELIMIT_UNIT_BYTES 8192
/* Typing indicators (chat/typing/..., chat/roomtyping/...) per account:
 * a bucket of their own, so that typing never holds a message back. */
#define TYPING_RATE 2
#define TYPING_BURST 6
#define TYPING_SLOTS 4096
int64_t ratelimit__take(struct ratelimit *r, const struct snap_user *u, int64_t now_ms, bool light,
		uint32_t bytes);
void ratelimit__cleanup(struct ratelimit *r);

/* ================================================================
 * What one account may hold (limits.c)
 * ================================================================ */

struct limit_account;
struct limit_id;
struct limit_conn;

struct limits {
	struct limit_account *accounts;
	struct limit_id *ids;
	struct limit_conn *conns;
};

enum limit_result {
	LIMIT_OK = 0,
	LIMIT_CONNECTIONS,              /* plugin_opt_max_connections open already */
	LIMIT_SESSIONS,                 /* plugin_opt_max_sessions client ids seen */
	LIMIT_NOMEM
};

/* A login of name (a person or device) as clientid on client that passed
 * every other check: LIMIT_OK and it is counted until its DISCONNECT, or
 * the limit it would break (nothing counted). */
enum limit_result limits__admit(struct mqchat *m, const struct mosquitto *client,
		const char *name, const char *clientid);
/* client went away (any client; untracked ones are ignored). */
void limits__disconnect(struct mqchat *m, const struct mosquitto *client);
/* For the log: "too many connections for this account". */
const char *limits__why(enum limit_result r);
void limits__cleanup(struct limits *l);

/* ================================================================
 * Verified-credential cache (credcache.c)
 * ================================================================ */

#define CREDCACHE_MAX_ENTRIES 200000
#define CREDCACHE_DIGEST_LEN 32

struct cred_entry {
	UT_hash_handle hh;
	unsigned char digest[CREDCACHE_DIGEST_LEN];
	uint8_t len;
	char name[NAME_MAX_LEN + 1];
};

struct credcache {
	struct cred_entry *head;
	size_t count;
	size_t max_entries;
	unsigned char key[32];
};

/* Make a fresh random key. MQC_OK or MQC_ERR_CRYPTO. */
int credcache__init(struct credcache *c, size_t max_entries);
/* True if (name, password, pwhash) verified before and nothing changed. */
bool credcache__check(struct credcache *c, const char *name, const char *password,
		size_t pwlen, const char *pwhash);
/* Remember a verified credential (one per name; oldest evicted when full). */
void credcache__store(struct credcache *c, const char *name, const char *password,
		size_t pwlen, const char *pwhash);
void credcache__forget(struct credcache *c, const char *name);
void credcache__cleanup(struct credcache *c);

/* ================================================================
 * Presence and connection tracking (presence.c)
 * ================================================================ */

/* When an account's presence is published (presence.c): at most once per
 * interval, PRESENCE_MIN_MS doubling to PRESENCE_MAX_MS while it keeps
 * changing. A pure state machine on the caller's clocks. */
#define PRESENCE_MIN_MS 1000
#define PRESENCE_MAX_MS 30000
#define PRESENCE_LEVELS 6               /* intervals 1, 2, 4, 8, 16, 30 s */
#define PRESENCE_SHOWN_ONLINE 1
#define PRESENCE_SHOWN_OFFLINE 2

struct presence_gate {
	int64_t since;                  /* wall ms of the last real change */
	int64_t due;                    /* mono ms the interval ends; 0: none runs */
	uint8_t level;                  /* interval: presence__gate_interval(level) */
	uint8_t shown;                  /* last published: 0 nothing, PRESENCE_SHOWN_* */
	bool online;                    /* the real state */
	bool pending;                   /* it changed during the interval */
	bool cooling;                   /* a quiet interval: a change goes at once */
};

enum presence_action { PRESENCE_KEEP = 0, PRESENCE_PUBLISH, PRESENCE_FORGET };

/* The account went online/offline at now (mono ms), wall (since). PUBLISH:
 * publish g->online, g->since now. */
enum presence_action presence__gate_change(struct presence_gate *g, bool online, int64_t now,
		int64_t wall);
/* From TICK once now >= g->due: PUBLISH (as above), KEEP, or FORGET (no
 * connection and nothing running: the entry may go). */
enum presence_action presence__gate_fire(struct presence_gate *g, int64_t now, bool connected);
int64_t presence__gate_interval(unsigned level);

/* Connections per account name (outside the snapshot), and its presence
 * gate; kept after the last connection while the gate runs. */
struct conn_user {
	UT_hash_handle hh;
	unsigned count;
	bool kick_pending;              /* missing/disabled in a new snapshot */
	bool elsewhere;                 /* the bus: online over all nodes (bus_presence.c) */
	enum user_kind kind;
	struct presence_gate gate;
	struct conn_user *tprev, *tnext;        /* in presence.timers[queued] while gate.due */
	uint8_t queued;
	uint8_t len;
	char name[NAME_MAX_LEN + 1];
};

/* One authenticated client context. */
struct conn {
	UT_hash_handle hh;              /* keyed by the client pointer */
	const struct mosquitto *client;
	struct conn_user *user;         /* NULL for a _register connection */
	int64_t deadline;               /* _register: kick after this (mono ms) */
	char clientid[CLIENTID_MAX_LEN + 1];
};

#define REGISTER_MAX_CONNS 1024

struct presence {
	struct conn *conns;
	struct conn_user *users;
	struct conn *registers;         /* _register connections (own table) */
	size_t register_count;
	size_t kicks_pending;           /* conn_user entries with kick_pending */
	/* Start-up sweep: clear the retained presence of every account not
	 * connected, so no "online" from before a broker restart stays behind. */
	bool sweep_active;
	bool sweep_started;
	const struct snapshot *sweep_snap;
	const struct snap_user *sweep_pos;
	const struct snap_gone *sweep_retired;  /* then these */
	/* Running presence gates, one FIFO per interval (due order). */
	struct conn_user *timers[PRESENCE_LEVELS];
	size_t timed;
};

/* Track an authenticated user/device/service connection; publishes
 * "online" on the account's first. MQC_OK or MQC_ERR_NOMEM. */
int presence__connect(struct mqchat *m, const struct mosquitto *client, const char *name,
		enum user_kind kind);
/* Track a _register connection that must be closed at deadline.
 * MQC_ERR_TOOBIG when REGISTER_MAX_CONNS are open. */
int presence__register(struct mqchat *m, const struct mosquitto *client, const char *clientid,
		int64_t deadline);
/* A context went away (any context, tracked or not); "offline" on the
 * account's last connection, or a cleared topic if it was deleted. */
void presence__disconnect(struct mqchat *m, const struct mosquitto *client);
/* Publish what gates due by now decided (up to budget of them). TICK. */
void presence__tick(struct mqchat *m, int64_t now, size_t budget);
/* s was just swapped in: clear the presence of its vanished accounts that
 * are not connected (those are kicked; their last DISCONNECT clears it). */
void presence__vanished(struct mqchat *m, const struct snapshot *s);
/* Clear the retained presence (empty retained message) of up to budget
 * more accounts of the start-up sweep: users and devices that are not
 * connected, then retired names. Call from TICK. */
void presence__sweep(struct mqchat *m, size_t budget);
/* The bus says name is online on some node or on none (since: wall ms of
 * the change): published with the rate rule; "offline" never while name
 * has a connection here. */
void presence__global(struct mqchat *m, const char *name, bool online, int64_t since);
/* Connections of name (0 if none). */
unsigned presence__count(struct mqchat *m, const char *name);
void presence__cleanup(struct presence *p);

/* ================================================================
 * The plugin
 * ================================================================ */

enum acl_reason {
	ACL_OK = 0,
	ACL_DENY_NO_USER,       /* username unknown or missing */
	ACL_DENY_DISABLED,      /* account disabled */
	ACL_DENY_TOPIC,         /* no rule allows this topic/filter */
	ACL_DENY_NOT_OWNER,     /* sender level is not the publisher */
	ACL_DENY_RETAIN,        /* retained publish */
	ACL_DENY_TOO_BIG,       /* payload over max_payload */
	ACL_DENY_ENVELOPE,      /* payload is not a valid envelope / JSON */
	ACL_DENY_RECIPIENT,     /* recipient missing, disabled or not a user/device */
	ACL_DENY_BLOCKED,       /* recipient blocks the sender */
	ACL_DENY_NOT_MEMBER,    /* room missing or not a member */
	ACL_DENY_REGISTER,      /* _register outside its own topics */
	ACL_DENY_RATE,          /* over the account's send rate (acl__check_cb) */
	ACL_DENY_QOS,           /* QoS 0 subscription to messages (acl__check_cb) */
	ACL_DENY_SUBSCRIPTIONS, /* max_subscriptions held (acl__check_cb) */
	ACL_DENY_PRIVATE,       /* a presence its owner does not show the reader */
	ACL_DENY_TYPING_QOS,    /* QoS 1 or 2 subscription to typing (acl__check_cb) */
	ACL_DENY_UNAVAILABLE,   /* the spool cannot take it (spool.c) */
	ACL_REASON_COUNT
};

/* For the log: "not a room member". */
const char *acl__reason_name(enum acl_reason reason);
/* For apps (docs/PROTOCOL.md, "Refusals"): "not_member". Stable. */
const char *acl__reason_code(enum acl_reason reason);

/* What the ACL remembers between checks; cleared on every snapshot swap,
 * so nothing in it outlives the snapshot it points into.
 *
 * users: the broker passes the same username pointer (the client's own
 * copy) to every check of a connection. Each entry says which account a
 * pointer named, and is trusted only if that account's name equals the
 * string at the pointer (a freed and reused pointer then simply misses).
 *
 * Each entry also keeps the last topic its account published on whose
 * topic checks passed (owner, recipient or room, blocks): those depend on
 * the snapshot, the account and the topic's bytes only, so the next
 * publish on the same bytes (a conversation goes on) skips them; the
 * payload is checked every time.
 *
 * topic: the broker checks a message's WRITE and then its READ for every
 * subscriber with the same topic pointer (the stored message's). What the
 * topic named is kept with a copy of its bytes - a room topic's room, or
 * an inbox topic's recipient and sender - and reused only for a READ of
 * the same pointer holding the same bytes. */
#define ACL_CACHE_USERS 1024            /* a power of two */
#define ACL_TOPIC_CACHE_MAX 160         /* longer topics are not kept */
#define ACL_SENT_TOPIC_MAX 48           /* nor longer published-on topics */

enum acl_topic_kind {
	ACL_TOPIC_ROOM = 1,             /* chat/room/<room>/<sender> */
	ACL_TOPIC_INBOX                 /* chat/inbox/<to>/<from>, both accounts */
};

struct acl_cache {
	struct acl_cache_user {
		const char *username;
		const struct snap_user *user;
		enum acl_topic_kind sent_kind;  /* of sent; 0: sent is empty */
		size_t sent_len;
		const struct snap_room *sent_room;      /* ROOM */
		const struct snap_user *sent_to;        /* INBOX */
		char sent[ACL_SENT_TOPIC_MAX];
	} users[ACL_CACHE_USERS];
	struct {
		const char *topic;      /* NULL: empty */
		enum acl_topic_kind kind;
		const struct snap_room *room;   /* ROOM: NULL if there is no such room */
		const struct snap_user *to;     /* INBOX */
		const struct snap_user *from;   /* INBOX */
		char copy[ACL_TOPIC_CACHE_MAX];
	} topic;
};

/* ================================================================
 * Devices that hold a token (devices.c)
 * ================================================================ */

struct device_conn;
struct device_seen;

struct devices {
	struct device_conn *conns;      /* tracked connections, by client pointer */
	struct device_seen *seen;       /* logins not yet reported, by client id */
	uint64_t devices_sum;           /* of the snapshot last checked */
	int64_t next_report;            /* mono ms */
};

/* client logged in as clientid (<user>@<device>, the user ulen bytes
 * long), whose device holds the token d (NULL: none yet), with that token
 * (by_token) or the password. MQC_OK, or MQC_ERR_NOMEM: not tracked, so
 * refuse it. */
int devices__login(struct mqchat *m, const struct mosquitto *client, const char *clientid,
		size_t ulen, const struct snap_device *d, bool by_token);
void devices__disconnect(struct mqchat *m, const struct mosquitto *client);
/* The broker takes snapshot s: close every tracked connection whose
 * device lost its token (or, logged in with one, whose token changed).
 * Returns how many were closed. */
size_t devices__snapshot(struct mqchat *m, const struct snapshot *s);
/* Report the logins seen (chat/seen/<node>) when it is time. */
void devices__tick(struct mqchat *m, int64_t now);
void devices__cleanup(struct mqchat *m);

/* ================================================================
 * Figures (stats.c): counted where they happen, published from TICK.
 * ================================================================ */

/* How a login ended (auth.c), one counter each: the label pair
 * result/reason of mqchat_plugin_logins_total (stats__login_result,
 * stats__login_reason). */
enum login_reason {
	LOGIN_OK_PASSWORD = 0,          /* ok: a person's password, hashed */
	LOGIN_OK_SECRET,                /* ok: a service's secret */
	LOGIN_OK_TOKEN,                 /* ok: a device token */
	LOGIN_OK_REGISTER,              /* ok: a _register connection */
	LOGIN_CACHED,                   /* cached: a credential that verified before */
	LOGIN_THROTTLED_USER,           /* throttled: this name from this address */
	LOGIN_THROTTLED_ADDRESS,        /* throttled: this address */
	LOGIN_THROTTLED_REGISTER,       /* throttled: registration connections per address */
	LOGIN_BAD_PASSWORD,             /* refused: ... */
	LOGIN_UNKNOWN_USER,
	LOGIN_DISABLED,
	LOGIN_BAD_TOKEN,
	LOGIN_NO_USERNAME,
	LOGIN_BAD_USERNAME,
	LOGIN_BAD_CLIENT_ID,
	LOGIN_NO_PASSWORD,
	LOGIN_PASSWORD_TOO_LONG,
	LOGIN_BAD_HASH,                 /* the stored hash is unreadable */
	LOGIN_CONNECTIONS,              /* plugin_opt_max_connections */
	LOGIN_SESSIONS,                 /* plugin_opt_max_sessions */
	LOGIN_REGISTER_CLIENT_ID,
	LOGIN_REGISTER_FULL,            /* REGISTER_MAX_CONNS open */
	LOGIN_NOMEM,
	LOGIN_REASON_COUNT
};

/* Why the plugin closed connections (tick.c): one per kick call. */
enum kick_reason {
	KICK_DISABLED = 0,              /* an account disabled: all its connections */
	KICK_DELETED,                   /* an account deleted: all its connections */
	KICK_REVOKED,                   /* a device's token revoked or replaced: that connection */
	KICK_REGISTER_TIMEOUT,          /* a _register connection past register_timeout */
	KICK_REASON_COUNT
};

#define STATS_TOPIC "$SYS/mqchat/plugin"
/* The buffer the figures are built in; a payload is always shorter (the
 * archiver takes at most 16 KiB). */
#define STATS_MAX_BYTES 16384

struct plugin_stats {
	unsigned long logins[LOGIN_REASON_COUNT];
	unsigned long kicks[KICK_REASON_COUNT];
	unsigned long reloads;          /* snapshots swapped in since start */
	int64_t snapshot_since;         /* mono ms the snapshot in use was swapped in */
	int64_t next;                   /* next publish (mono ms); 0: not yet started */
	bool warned;                    /* "does not fit" was logged */
	char buf[STATS_MAX_BYTES];
};

/* Label values of mqchat_plugin_logins_total and _kicks_total. */
const char *stats__login_result(enum login_reason r);
const char *stats__login_reason(enum login_reason r);
const char *stats__kick_reason(enum kick_reason r);
/* value as a Prometheus label value (\\, \" and \n escaped) into out,
 * NUL-terminated. False if it does not fit in outlen bytes. */
bool stats__escape(char *out, size_t outlen, const char *value);
/* m's figures at now (mono ms) in the Prometheus text format 0.0.4 into
 * buf[0..buflen): MQC_OK and *len bytes (plus a NUL), or MQC_ERR_TOOBIG:
 * buf then holds, in *len bytes, the whole families that fitted. Reads m
 * only; no allocation, no system call. */
int stats__build(const struct mqchat *m, int64_t now, char *buf, size_t buflen, size_t *len);
/* From TICK: publish the figures on STATS_TOPIC (QoS 0, not retained) at
 * the first call and then every plugin_opt_stats_interval seconds. */
void stats__tick(struct mqchat *m, int64_t now);

/* ================================================================
 * The node's spool, writer side (spool.c; the file: common/spool.h)
 * ================================================================ */

/* When to send again after an `unavailable` refusal (the notice's retry_ms). */
#define SPOOL_RETRY_MS 1000

struct plugin_spool {
	struct spool *sp;               /* NULL: no spool (plugin_opt_spool_mb 0) */
	unsigned long appends;          /* publishes spooled */
	unsigned long refused;          /* publishes refused: no room */
	unsigned long reports_lost;     /* seen reports that found no room */
	unsigned long refused_logged;   /* refused when "no room" was last logged */
	int64_t said_ms;                /* when "full" was last logged (mono ms) */
	bool refusing;                  /* the last append found no room */
};

/* Open (or make) DATA/spool, DATA the folder of plugin_opt_dbpath, with a
 * ring of plugin_opt_spool_mb MiB, if that is not 0. MQC_OK (also when
 * off), or an MQC_ERR_* with the whole log line in err: the broker must
 * not start. */
int plugin_spool__init(struct mqchat *m, char *err, size_t errlen);
void plugin_spool__cleanup(struct plugin_spool *ps);
/* Is topic one the node's archiver takes (the filters it subscribes to
 * without a spool: chat/inbox/#, chat/room/#, chat/rpc/+/req,
 * chat/register/+/req, chat/seen/+)? */
bool plugin_spool__takes(const char *topic);
/* MESSAGE: spool an accepted publish the archiver takes, or refuse it
 * (MOSQ_ERR_ACL_DENIED, notice `unavailable`) when the spool has no room.
 * Registered after limits__message_cb, whose property drop it relies on. */
int plugin_spool__message_cb(int event, void *event_data, void *userdata);
/* The plugin's own report of device logins, text[0..len) on topic, which
 * mosquitto_broker_publish sends past MESSAGE: spooled here too. */
void plugin_spool__report(struct mqchat *m, const char *topic, const char *text, size_t len);

struct mqchat {
	mosquitto_plugin_id_t *pid;
	struct mqchat_config cfg;
	struct snapshot *snap;          /* current; broker thread only */
	struct acl_cache acl_cache;     /* of m->snap */
	struct loader loader;
	struct credcache creds;
	struct throttle user_throttle;
	struct throttle addr_throttle;
	struct throttle register_limit;
	struct throttle notice_limit;   /* refusal notices per account */
	struct throttle locked_addr_checks; /* logins of real accounts from a locked address */
	/* auth__user_key of logins refused for a disabled account whose
	 * password was right (login_status may say "disabled" to that address). */
	struct throttle disabled_seen;
	/* ... and of logins with the right password refused by a limit. */
	struct throttle connections_seen;
	struct throttle sessions_seen;
	struct limits limits;
	struct ratelimit send_limit;
	struct ratelimit typing_limit;  /* typing indicators: a bucket of their own */
	struct presence presence;
	struct devices devices;
	struct cuts cuts;               /* the revocation short list (cuts.c) */
	struct plog log;
	int64_t (*clock_ms)(void);      /* monotonic ms; tests inject their own */
	int64_t now_ms;                 /* clock_ms() at the last TICK: the hot path's clock */
	int64_t next_prune;
	int64_t next_tick;              /* TICK's next run (mono ms), see tick.c */
	unsigned long acl_denied[ACL_REASON_COUNT];
	unsigned long auth_ok, auth_failed, auth_throttled, auth_cached;
	char dummy_hash[PWHASH_STR_LEN];
	struct plugin_stats stats;      /* the figures (stats.c) */
	struct plugin_spool spool;      /* the node's spool (spool.c) */
	struct plugin_bus *bus;         /* the bus between nodes (bus.c); NULL: off */
};

/* Input to the ACL decision. */
struct acl_request {
	const char *username;           /* may be NULL */
	const char *clientid;           /* may be NULL */
	int access;                     /* MOSQ_ACL_* */
	const char *topic;
	const void *payload;
	uint32_t payloadlen;
	bool retain;
	const struct snap_user *user;   /* out: the account decided for, if known */
	bool receipt;                   /* out: an accepted envelope was a receipt */
	bool typing;                    /* out: a WRITE on a typing topic */
};

/* What a decision found a message topic to name, for the cache: kind 0
 * if nothing. A READ or WRITE of chat/room/<room>/<sender> names the room
 * (NULL if there is none), whatever the verdict; a WRITE of
 * chat/inbox/<to>/<me> whose topic checks passed names both accounts.
 * sent: a WRITE whose topic checks all passed (the payload's are left). */
struct acl_named {
	enum acl_topic_kind kind;
	size_t len;                     /* the topic's length */
	const struct snap_room *room;   /* ROOM */
	const struct snap_user *to;     /* INBOX */
	const struct snap_user *from;   /* INBOX: the publisher */
	bool sent;
};

/* How the ACL reads a username: its length, bounded (NAME_MAX_LEN + 1 if
 * longer), and true if it is the registration pseudo-user. */
static inline bool acl__is_register(const char *username, size_t *len)
{
	/* REGISTER_USER is shorter than the bound, so this is strcmp's answer. */
	*len = strnlen(username, NAME_MAX_LEN + 1);
	return *len == sizeof(REGISTER_USER) - 1 && memcmp(username, REGISTER_USER, *len) == 0;
}

/* The whole topic policy on the snapshot s (acl.c): a pure function of s,
 * the configuration and req. Returns ACL_OK or the reason of the denial.
 * Allocates nothing, logs nothing, remembers nothing. */
enum acl_reason acl__decide(const struct mqchat *m, const struct snapshot *s,
		struct acl_request *req);
/* The same for an account: me is what req->username (not REGISTER_USER)
 * names in s, or NULL. named: if not NULL, gets what the topic named
 * (the caller sets named->kind = 0 and named->sent = false first). */
enum acl_reason acl__decide_account(const struct mqchat *m, const struct snapshot *s,
		const struct snap_user *me, struct acl_request *req, struct acl_named *named);
/* The payload's checks of a WRITE on an inbox or room topic, the part of
 * the policy a kept topic leaves (sets req->receipt). */
enum acl_reason acl__write_payload(const struct mqchat *m, struct acl_request *req);

/* The cached decision (aclcache.c): acl__decide's answer, through cache
 * (which must belong to s: cleared whenever s is swapped). What the
 * broker calls for every check. */
enum acl_reason aclcache__decide(const struct mqchat *m, const struct snapshot *s,
		struct acl_cache *cache, struct acl_request *req);

/* Broker callbacks (event, event_data, userdata = struct mqchat). */
int auth__basic_auth_cb(int event, void *event_data, void *userdata);
int acl__check_cb(int event, void *event_data, void *userdata);
int tick__tick_cb(int event, void *event_data, void *userdata);
int tick__reload_cb(int event, void *event_data, void *userdata);
int presence__disconnect_cb(int event, void *event_data, void *userdata);
int limits__disconnect_cb(int event, void *event_data, void *userdata);
int devices__disconnect_cb(int event, void *event_data, void *userdata);
int limits__message_cb(int event, void *event_data, void *userdata);

/* The BASIC_AUTH decision, for the callback and tests. Returns
 * MOSQ_ERR_SUCCESS or MOSQ_ERR_AUTH. */
int auth__check(struct mqchat *m, const struct mosquitto *client, const char *username,
		const char *password);
/* The address the per-address throttles key on: addr, or NULL when addr
 * is a front's (plugin_opt_front_addresses), which skips them. */
const char *auth__throttle_address(const struct mqchat *m, const char *addr);
/* The user throttle's key: a name as seen from one address (addr "": the
 * name alone, for logins through a front). */
#define AUTH_USER_KEY_LEN (NAME_MAX_LEN + 2 + 64)
size_t auth__user_key(char out[AUTH_USER_KEY_LEN], const char *name, const char *addr);
/* Prepare the auth state (cache key, throttles, the dummy hash). */
int auth__init(struct mqchat *m);
void auth__cleanup(struct mqchat *m);

/* Swap in a new snapshot, mark connected accounts that are now missing or
 * disabled for a kick, and free the old one. Takes ownership of s. */
void tick__swap_snapshot(struct mqchat *m, struct snapshot *s);
/* Kick up to max marked accounts (each kick walks every connection in the
 * broker, so a mass disable is spread over ticks; the ACL already denies
 * them everything meanwhile). Returns how many were kicked. */
size_t tick__kick_pending(struct mqchat *m, size_t max);
/* The periodic work of one TICK at monotonic time now (the callback runs
 * it at most every TICK_EVERY_MS). */
void tick__run(struct mqchat *m, int64_t now);

/* ================================================================
 * Notices to the client that sent something (notice.c)
 * ================================================================ */

/* Tell username's subscribed connections why client's publish of payload
 * on topic was refused, on chat/notice/<username> (QoS 0), at most
 * NOTICE_BURST at once and NOTICE_BURST a second per account. retry_ms > 0
 * goes with ACL_DENY_RATE and ACL_DENY_UNAVAILABLE. */
#define NOTICE_BURST 10.0
#define NOTICE_PERIOD_MS 1000

void notice__refused(struct mqchat *m, const struct mosquitto *client, const char *username,
		const char *topic, const void *payload, uint32_t payloadlen, enum acl_reason reason,
		int64_t retry_ms);
/* A request on a _register connection that the plugin answers itself, on
 * chat/register/<clientid>/resp: login_status, and any registration while
 * plugin_opt_registration is off ("closed", whatever the archiver is set
 * to). True if answered (the request goes no further); false: a
 * registration for the archiver. */
bool notice__register_request(struct mqchat *m, const struct mosquitto *client,
		const char *clientid, const void *payload, uint32_t payloadlen);

/* Escape untrusted text for a log line (see log_escape). */
#define ESC_LEN 80
const char *plugin__esc(const char *s, char *buf, size_t buflen);

/* cuts.c, broker thread. take: read the loader's new entries, keep those
 * the snapshot in use lacks, close what they cut off (its account's
 * connections; a device's token connections). applied: forget what the
 * snapshot of version now has. denies: is a login of username (with
 * clientid, by a device token or not) cut off by a kept entry? */
void cuts__take(struct mqchat *m, const struct cut_ring *r);
void cuts__applied(struct cuts *c, int64_t version);
bool cuts__denies(const struct cuts *c, const char *username, const char *clientid, bool by_token);
/* devices.c: close clientid's connections that logged in with a token;
 * how many. */
size_t devices__close_token(struct mqchat *m, const char *clientid);

#endif
