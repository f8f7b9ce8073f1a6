/* loader.c - the loader process: builds snapshots away from the broker.
 *
 * Why a process and not a thread: Mosquitto 2.0 is single-threaded, and a
 * second thread in its process is not free even when idle. glibc then takes
 * locks in every malloc/free and wraps every read, write and epoll_wait as a
 * cancellation point: about 400 user-space instructions per message, 18% of
 * what the whole plugin added (bench/callgrind.py). So the loader is a child
 * process, forked at plugin init, which Mosquitto runs after dropping
 * privileges and before opening its listeners.
 *
 * Memory: one shared anonymous mapping, made before the fork, so an address
 * in it means the same in both processes: a header (struct loader_shared)
 * and two slots. The loader builds a whole snapshot, hash tables included,
 * inside one slot (snapshot__new_in); the broker thread only reads slots,
 * and the loader writes only the slot the broker does not use.
 *
 * Hand-over, through the header:
 *   loader  builds in the free slot; published_slot = it; published = gen
 *           (release); news++.
 *   broker  TICK sees news: reads published_slot; when it no longer uses the
 *           old snapshot (loader__retire), taken = gen (release).
 *   loader  builds again only when taken == published, and wipes the slot
 *           first (MADV_REMOVE: the pages go back to the system, read zero).
 * Log lines go the same way (message, msg_seq; msg_ack from the broker):
 * the loader never calls into the broker.
 *
 * A socket pair (SOCK_SEQPACKET: each write is one message, sent whole or
 * not at all) carries the rest. Broker to loader: a byte = reload now
 * (SIGHUP); a struct rehash_req = a rehash (below); end of file = the
 * broker is gone, exit at once. Loader to broker: a byte once its first
 * build is done (or failed), which plugin init waits for.
 *
 * Noticing changes: every commit to the store (WAL mode) writes its -wal
 * file, and a checkpoint, a replacement or a deletion touches the file
 * itself. The loader watches both with inotify and checks data_version
 * when either changes, so an idle store costs no wake-ups (each one costs
 * ~60 us of CPU on a small VM, and a check with SQLite ~120 more: at 4 a
 * second that was 0.5% of a busy broker's CPU). It still checks every
 * LOADER_WATCHED_POLLS * reload_ms in case an event was missed, and every
 * reload_ms when the files cannot be watched (no -wal yet, no inotify, a
 * watch lost to a deletion).
 *
 * An event can come before its commit is visible: a writer writes its
 * frames to the -wal (the event) and only then publishes the commit in the
 * wal-index (shared memory, no event), and with synchronous=FULL an fsync
 * sits in between. A check that comes too early finds the old data_version
 * and no later event follows. So an event with no change is followed by a
 * few more checks, 5 ms apart and doubling, before the loader sleeps.
 *
 * A store with a watch of its own (userdb__watch_fd: PostgreSQL's LISTEN
 * connection, docs/SCALING.md "How the plugin learns of changes") is
 * polled instead of the files. A notification is sent after its commit,
 * so one check follows it, no rechecks. Nothing is kept for a session that
 * was not listening: a new watch (the first, or after a lost connection)
 * is followed at once by a check of the version. While there is none the
 * loader polls every reload_ms, and the store tries to make one again.
 * A notification that cuts someone off (disable, delete, revoke) also goes
 * on the short list in the shared header before the rebuild begins
 * (cuts.c): the broker closes and refuses from it at its next tick.
 *
 * Telling writers: once the broker takes a snapshot, the loader writes when
 * it began reading it to "<store>-applied" (common/applied.h), so the CLI
 * and the archiver answer "done" only when a change is in force. A store
 * shared by several nodes (PostgreSQL) also gets the version the broker
 * uses, under this node's name (host and store.conf path), written again
 * every second while the store takes it (userdb__node_applied): a writer
 * there waits for every node heard from lately (userdb__in_force_wait).
 *
 * Rehashing: accounts imported from Mosquitto (archiver/cli_import.c) keep
 * Mosquitto's hash ($6$: one SHA-512; $7$: PBKDF2 with 101 iterations)
 * until their first login. After a login with one, the broker thread
 * sends name, password and the hash it verified over the socket pair
 * (loader__rehash): one message, sent whole or refused (EAGAIN: the
 * socket is full, the request dropped; the next login asks again); nothing
 * waits. The loader checks the password against that hash again, makes our
 * form (pwhash__make, PWHASH_DEFAULT_ITERATIONS: ~2 ms, here and not on
 * the broker's thread) and stores it only if the row still holds the old
 * hash (a transaction: BEGIN IMMEDIATE, read, compare, update; the busy
 * timeout of every writer), then rebuilds at once: PRAGMA data_version
 * does not change for a connection's own commits. The plaintext never
 * leaves the two processes' memory (no MQTT, no log, no file) and each
 * copy is wiped after use. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "applied.h"
#include "err.h"
#include "plugin.h"
#include "timeutil.h"

/* After a failed build, try again this often even without a change. */
#define LOADER_RETRY_MS 5000
/* Plugin init waits this long for the first snapshot. */
#define LOADER_START_MS 60000
/* A dead loader is noticed this often and restarted at most this often. */
#define LOADER_WATCH_MS 1000
#define LOADER_RESTART_MS 5000
/* Cleanup waits this long for the loader to exit before killing it. */
#define LOADER_STOP_MS 2000

/* How often the version in force is written to a shared store again, so
 * writers know this node is alive (userdb__node_applied). */
#define LOADER_NODE_MS 1000

/* With the store's files watched, poll anyway every this many reload_ms. */
#define LOADER_WATCHED_POLLS 8
/* How often the loader looks while the broker has yet to take a build. */
#define LOADER_BUSY_MS 5
/* After a change event that showed no new data_version, look again after
 * 5, 10, 20, ... ms, this many times (5 ms to 635 ms in all): see
 * "Noticing changes". */
#define LOADER_RECHECKS 7
#define LOADER_RECHECK_FIRST_MS 5

#define START_OK 'R'
#define START_FAILED 'E'

/* One rehash request (loader__rehash): the three lengths (no NULs), then
 * that many bytes of name, password and hash, back to back. Sent as long
 * as it is (~150 bytes for a typical one), so the socket's buffer holds
 * hundreds of them. */
struct rehash_req {
	uint16_t namelen, pwlen, hashlen;
	char data[NAME_MAX_LEN + PWHASH_MAX_PASSWORD + PWHASH_STR_LEN];
};
#define REHASH_HEAD offsetof(struct rehash_req, data)
/* The kernel queues at most net.unix.max_dgram_qlen (10 by default)
 * messages on the socket, ~40 ms of rehashing: the loader moves them into
 * a queue of its own as they come, between rehashes, and drops only when
 * that is full too (2,048 slots, ~2.5 MB of address space, touched only as
 * deep as a burst fills it). Measured on 2 busy cores: 1,000 logins of
 * imported accounts in 1.7 s, every row upgraded 1.0 s after the last
 * one; with 256 slots 316 requests were dropped (those accounts are
 * upgraded at their next login). */
#define REHASH_QUEUE 2048
/* Rehashes (~3 ms each) between two looks at the store, so a burst of
 * logins does not hold back the snapshot builds. */
#define REHASH_BATCH 16

struct rehash_slot {
	size_t len;
	struct rehash_req r;
};

struct loader_shared {
	uint32_t news;                  /* loader: bumped after a publish or a message */
	uint32_t published;             /* loader: generation of the newest build; 0 none */
	uint32_t published_slot;        /* loader: where it is */
	uint32_t taken;                 /* broker: the generation it uses */
	uint32_t msg_seq;               /* loader: bumped after writing message */
	uint32_t msg_ack;               /* broker: the msg_seq it has logged */
	int msg_level;
	char message[512];
	struct cut_ring cuts;           /* loader: the revocation short list (cuts.c) */
};

#define HEAD_BYTES 16384u
_Static_assert(sizeof(struct loader_shared) <= HEAD_BYTES, "the shared header outgrew its pages");

/* ---- the loader process ---- */

struct child {
	struct loader *l;               /* the broker's struct, as copied by fork */
	int fd;
	bool broker_gone;               /* end of file on fd */
	struct rehash_slot *rq;         /* REHASH_QUEUE slots (made at the first request), a ring */
	unsigned rq_head, rq_count;
	struct userdb *udb;
	bool have_version;
	int64_t version;
	bool have_ino;
	unsigned long long dev, ino;
	bool failing;
	int64_t retry_at;
	bool started;                   /* the start byte was sent */
	bool dirty[2];                  /* the slot may hold bytes */
	char pending[sizeof(((struct loader_shared *)0)->message)];
	int pending_level;
	bool has_pending;
	int watch_fd;                   /* inotify on the store and its -wal, or -1 */
	int store_fd;                   /* the store's own watch (userdb__watch_fd), or -1 */
	int rechecks_left;              /* checks still due after an event */
	int64_t recheck_at;             /* mono ms of the next one */
	int64_t building_started;       /* mono ns: when the published build began reading */
	uint32_t applied_gen;           /* generation written to the applied mark */
	int64_t built_version;          /* the version of the newest published build */
	int64_t in_force;               /* the version the broker uses; -1 not known yet */
	bool node_off;                  /* the store keeps no node record */
	int64_t node_next;              /* mono ms of the next node record */
	char node[320];                 /* this node's name in it */
	struct applied_mark mark;
	bool mark_reported;             /* a failure to write it was logged */
};

/* Hand the pending line to the broker if it took the last one. */
static void flush_message(struct child *c)
{
	struct loader_shared *sh = c->l->sh;
	uint32_t seq = __atomic_load_n(&sh->msg_seq, __ATOMIC_RELAXED);

	if(!c->has_pending || __atomic_load_n(&sh->msg_ack, __ATOMIC_ACQUIRE) != seq) return;
	memcpy(sh->message, c->pending, sizeof(sh->message));
	sh->msg_level = c->pending_level;
	__atomic_store_n(&sh->msg_seq, seq + 1, __ATOMIC_RELEASE);
	__atomic_add_fetch(&sh->news, 1, __ATOMIC_RELEASE);
	c->has_pending = false;
}

static void post(struct child *c, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void post(struct child *c, int level, const char *fmt, ...)
{
	va_list ap;

	/* One line waits at most a tick; a newer one replaces it. */
	va_start(ap, fmt);
	vsnprintf(c->pending, sizeof(c->pending), fmt, ap);
	va_end(ap);
	c->pending_level = level;
	c->has_pending = true;
	flush_message(c);
}

static void send_start(struct child *c, char what)
{
	ssize_t n;

	if(c->started) return;
	c->started = true;
	do{
		n = write(c->fd, &what, 1);
	}while(n < 0 && errno == EINTR);
}

/* A build failed: report once per failure streak (at start: the reason
 * plugin init logs before refusing to start). */
static void build_failed(struct child *c, const char *why)
{
	if(!c->started){
		post(c, MOSQ_LOG_ERR, "mqchat: cannot open user store %s: %s", c->l->path, why);
		send_start(c, START_FAILED);
	}else if(!c->failing){
		post(c, MOSQ_LOG_WARNING,
				"mqchat: cannot reload user store %s: %s (keeping the last good snapshot)",
				c->l->path, why);
	}
	c->failing = true;
	c->retry_at = time__mono_ms() + LOADER_RETRY_MS;
}

/* True if the file at path is no longer the one we have open (replaced by
 * rename, or deleted). */
static bool file_replaced(struct child *c)
{
	struct stat st;

	/* The store's own name: auth.db, or store.conf for PostgreSQL (a new
	 * setting file is read by a restart, as a new auth.db is). */
	if(stat(userdb__path(c->udb), &st) != 0) return true;
	if(!c->have_ino){
		c->dev = (unsigned long long)st.st_dev;
		c->ino = (unsigned long long)st.st_ino;
		c->have_ino = true;
		return false;
	}
	return (unsigned long long)st.st_dev != c->dev || (unsigned long long)st.st_ino != c->ino;
}

/* Give a slot's pages back; it reads as zeros afterwards. */
static void wipe(struct child *c, int slot)
{
	struct loader *l = c->l;

	if(!c->dirty[slot]) return;
	if(madvise(l->slot[slot], l->slot_bytes, MADV_REMOVE) != 0){
		memset(l->slot[slot], 0, l->slot_bytes);
	}
	c->dirty[slot] = false;
}

/* Open the store if needed. False (and reported) if it cannot be. */
static bool open_store(struct child *c)
{
	char err[400];
	int rc;

	if(c->udb != NULL) return true;
	if(c->started && c->failing && time__mono_ms() < c->retry_at) return false;
	rc = userdb__open(c->l->path, 0, &c->udb, err, sizeof(err));
	if(rc){
		c->udb = NULL;
		build_failed(c, err[0] ? err : mqc_strerror(rc));
		return false;
	}
	(void)file_replaced(c);
	return true;
}

/* One poll: build a snapshot if data_version changed (or force). Returns
 * false if a wanted build has to wait for the broker (keep the force). */
static bool poll_once(struct child *c, bool force)
{
	struct loader *l = c->l;
	struct loader_shared *sh = l->sh;
	struct snapshot *s;
	char err[400];
	int64_t version = 0, started = time__mono_ns();
	uint32_t gen, taken;
	int rc, slot;

	if(!open_store(c)) return true;
	/* A WAL database must not be replaced or deleted under an open
	 * connection: SQLite finds the -wal and -shm by name, so a new file
	 * would be read through the old file's log. Keep what we have, say so
	 * loudly, and let a restart read the new file. */
	if(file_replaced(c)){
		build_failed(c, "the file was replaced or deleted while in use;"
				" restart the broker to read the new one");
		return true;
	}
	rc = userdb__data_version(c->udb, &version);
	if(rc){
		snprintf(err, sizeof(err), "data_version: %s (%s)", mqc_strerror(rc), userdb__errmsg(c->udb));
		build_failed(c, err);
		return true;
	}
	/* After a failure, retry on the next change, or every few seconds (a
	 * lock held too long clears by itself): a broken store must not make
	 * this process rebuild 100,000 users four times a second. */
	if(!force && c->have_version && version == c->version
			&& (!c->failing || time__mono_ms() < c->retry_at)){
		if(c->rechecks_left > 0){
			c->rechecks_left--;
			c->recheck_at = time__mono_ms()
				+ (LOADER_RECHECK_FIRST_MS << (LOADER_RECHECKS - 1 - c->rechecks_left));
		}
		return true;
	}
	c->rechecks_left = 0;

	gen = __atomic_load_n(&sh->published, __ATOMIC_RELAXED);
	taken = __atomic_load_n(&sh->taken, __ATOMIC_ACQUIRE);
	if(taken != gen) return false;  /* the broker still reads both slots */
	slot = gen == 0 ? 0 : 1 - (int)sh->published_slot;
	wipe(c, slot);
	c->dirty[slot] = true;
	s = snapshot__new_in(l->slot[slot], l->slot_bytes);
	rc = s ? snapshot__load_into(c->udb, s, err, sizeof(err)) : MQC_ERR_NOMEM;
	/* Accounts the broker's snapshot has and this one lacks (deleted: the
	 * broker clears their presence), found here rather than on its thread. */
	if(rc == MQC_OK && gen != 0){
		rc = snapshot__vanished(s, (const struct snapshot *)(const void *)l->slot[sh->published_slot]);
		if(rc) snprintf(err, sizeof(err), "noting deleted accounts: the store needs more than the"
				" %zu MiB of plugin_opt_snapshot_mb", l->slot_bytes >> 20);
	}
	c->have_version = true;
	c->version = version;
	if(rc){
		if(s == NULL) snprintf(err, sizeof(err), "plugin_opt_snapshot_mb is too small");
		build_failed(c, err);
		return true;
	}
	s->data_version = version;
	c->built_version = version;
	c->building_started = started;
	sh->published_slot = (uint32_t)slot;
	__atomic_store_n(&sh->published, gen + 1, __ATOMIC_RELEASE);
	__atomic_add_fetch(&sh->news, 1, __ATOMIC_RELEASE);
	if(c->failing && c->started){
		post(c, MOSQ_LOG_NOTICE, "mqchat: user store %s readable again", l->path);
	}
	c->failing = false;
	send_start(c, START_OK);
	return true;
}

/* The broker uses the newest build: tell writers (once per build; a
 * restarted loader knows nothing of the build it found, and waits for its
 * own). */
static void tell_writers(struct child *c)
{
	uint32_t gen = __atomic_load_n(&c->l->sh->published, __ATOMIC_RELAXED);
	int64_t mark = c->building_started, now = time__mono_ns(), version;

	if(gen == c->applied_gen || c->building_started == 0) return;
	c->applied_gen = gen;
	c->in_force = c->built_version;
	c->node_next = 0;               /* say so now */
	/* A commit that was visible when the build began is in it; a writer
	 * takes its time only after its commit is visible, so a commit made
	 * just before the build can carry a later time than the build's start.
	 * If nothing was committed since the build's data_version was read,
	 * every commit visible now is in the build: say "now". */
	if(c->udb != NULL && userdb__data_version(c->udb, &version) == MQC_OK && version == c->version){
		mark = now;
	}
	/* Next to the store's own name, where its writers look (auth.db, or
	 * store.conf for PostgreSQL: this node's writers). */
	if(applied__publish(&c->mark, userdb__path(c->udb), mark) == MQC_OK || c->mark_reported){
		return;
	}
	c->mark_reported = true;
	post(c, MOSQ_LOG_WARNING, "mqchat: cannot write %s%s (%s): the CLI and the archiver"
			" will not wait for changes to be in force", userdb__path(c->udb), APPLIED_SUFFIX,
			strerror(errno));
}

/* Write the version in force under this node's name, now if it changed
 * and again every LOADER_NODE_MS; ms until the next time (or INT_MAX). */
static int tell_nodes(struct child *c)
{
	int64_t now = time__mono_ms();
	char host[256];
	int rc;

	if(c->node_off || c->udb == NULL || c->in_force < 0) return INT_MAX;
	if(now < c->node_next) return (int)(c->node_next - now);
	if(c->node[0] == '\0'){
		if(gethostname(host, sizeof(host)) != 0) snprintf(host, sizeof(host), "?");
		host[sizeof(host) - 1] = '\0';
		snprintf(c->node, sizeof(c->node), "%s:%s", host, userdb__path(c->udb));
	}
	rc = userdb__node_applied(c->udb, c->node, c->in_force);
	if(rc == MQC_ERR_INVAL){
		c->node_off = true;     /* SQLite: the file mark is enough */
		return INT_MAX;
	}
	/* A failure (the store unreachable) is retried at the same pace: the
	 * writers stop waiting for this node meanwhile, as they should. */
	c->node_next = now + LOADER_NODE_MS;
	return LOADER_NODE_MS;
}

/* Stop watching the store's files (polling every reload_ms again). */
static void watch_stop(struct child *c)
{
	if(c->watch_fd >= 0) close(c->watch_fd);
	c->watch_fd = -1;
}

/* Watch the open store's file and its -wal, if not yet. Both or neither:
 * a commit shows in the -wal only. */
static void watch_start(struct child *c)
{
	const uint32_t file_events = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVE_SELF
		| IN_DELETE_SELF;
	char wal[PATH_MAX];

	if(!c->l->watch || c->watch_fd >= 0 || c->udb == NULL) return;
	if(snprintf(wal, sizeof(wal), "%s-wal", c->l->path) >= (int)sizeof(wal)) return;
	c->watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if(c->watch_fd < 0) return;
	if(inotify_add_watch(c->watch_fd, c->l->path, file_events) < 0
			|| inotify_add_watch(c->watch_fd, wal, file_events) < 0){
		watch_stop(c);
	}
}

/* Read every pending event; stop watching if a watch went away (its file
 * was deleted or moved) or events were lost, so polling takes over. */
static void watch_drain(struct child *c)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	while((n = read(c->watch_fd, buf, sizeof(buf))) > 0){
		const char *p = buf;

		while(p < buf + n){
			const struct inotify_event *ev = (const struct inotify_event *)(const void *)p;

			if(ev->mask & (IN_IGNORED | IN_Q_OVERFLOW | IN_DELETE_SELF | IN_MOVE_SELF)){
				watch_stop(c);
				return;
			}
			p += sizeof(*ev) + ev->len;
		}
	}
	if(n < 0 && errno != EAGAIN && errno != EINTR) watch_stop(c);
}

/* Store our form of r's password if r's name still holds r's hash (see
 * "Rehashing"). True if the row was changed. */
static bool rehash_one(struct child *c, const struct rehash_req *r, size_t len)
{
	char name[NAME_MAX_LEN + 1], old[PWHASH_STR_LEN], hash[PWHASH_STR_LEN];
	const char *password = r->data + r->namelen;
	struct userdb_user u;
	bool ok = false;
	int rc;

	if(r->namelen == 0 || r->namelen > NAME_MAX_LEN || r->pwlen > PWHASH_MAX_PASSWORD
			|| r->hashlen == 0 || r->hashlen >= PWHASH_STR_LEN
			|| len != REHASH_HEAD + (size_t)r->namelen + r->pwlen + r->hashlen){
		return false;
	}
	memcpy(name, r->data, r->namelen);
	name[r->namelen] = '\0';
	memcpy(old, password + r->pwlen, r->hashlen);
	old[r->hashlen] = '\0';
	/* The broker verified it; so does this process, before it writes. */
	if(!pwhash__is_legacy(old) || pwhash__verify(password, r->pwlen, old, &ok) != MQC_OK || !ok
			|| !open_store(c)){
		return false;
	}
	rc = pwhash__make(password, r->pwlen, PWHASH_DEFAULT_ITERATIONS, hash, sizeof(hash));
	if(rc == MQC_OK) rc = userdb__begin_write(c->udb);
	if(rc == MQC_OK){
		rc = userdb__user_get(c->udb, name, &u);
		/* Changed meanwhile (a new password, a new account): not ours to touch. */
		if(rc == MQC_OK && strcmp(u.pwhash, old) != 0) rc = MQC_ERR_NOTFOUND;
		if(rc == MQC_OK) rc = userdb__user_set_pwhash(c->udb, name, hash);
		if(rc == MQC_OK) rc = userdb__commit(c->udb);
		if(rc != MQC_OK) userdb__rollback(c->udb);
	}
	OPENSSL_cleanse(hash, sizeof(hash));
	OPENSSL_cleanse(&u, sizeof(u));
	if(rc == MQC_OK){
		post(c, MOSQ_LOG_INFO, "mqchat: user \"%s\": Mosquitto's %.3s password hash replaced by"
				" $pbkdf2-sha512$ after a login", name, old);
	}else if(rc != MQC_ERR_NOTFOUND){
		post(c, MOSQ_LOG_WARNING, "mqchat: user \"%s\": cannot store the stronger password hash"
				" (%s: %s); the next login tries again", name, mqc_strerror(rc),
				userdb__errmsg(c->udb));
	}
	return rc == MQC_OK;
}

/* A change the store's watch named (userdb__watch_drain): on the short
 * list at once if it cuts someone off. */
static void told(int64_t version, const char *kind, const char *name, void *arg)
{
	struct child *c = arg;

	cuts__post(&c->l->sh->cuts, version, kind, name);
}

/* Read every message the broker has sent: a byte asks for a reload
 * (*force), anything longer is a rehash request, queued (dropped if the
 * queue is full or cannot be made). Sets broker_gone at end of file. */
static void serve_broker(struct child *c, bool *force)
{
	struct rehash_slot *slot;
	char byte;
	ssize_t n;

	while(!c->broker_gone){
		if(c->rq == NULL) c->rq = calloc(REHASH_QUEUE, sizeof(*c->rq));
		slot = c->rq != NULL && c->rq_count < REHASH_QUEUE
			? &c->rq[(c->rq_head + c->rq_count) % REHASH_QUEUE] : NULL;
		/* No room: read one byte of it, which drops the rest (MSG_TRUNC:
		 * n is the message's whole length all the same). */
		n = slot ? recv(c->fd, &slot->r, sizeof(slot->r), MSG_DONTWAIT)
			: recv(c->fd, &byte, 1, MSG_DONTWAIT | MSG_TRUNC);
		if(n < 0 && errno == EINTR) continue;
		if(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
		if(n <= 0){
			c->broker_gone = true;
			break;
		}
		if(n == 1){
			*force = true;          /* a reload */
			continue;
		}
		if(slot == NULL){
			OPENSSL_cleanse(&byte, 1);
			continue;
		}
		slot->len = (size_t)n;
		c->rq_count++;
	}
}

/* Serve up to REHASH_BATCH queued requests, reading the socket between
 * them; a changed row asks for a rebuild. Each slot is wiped after use. */
static void rehash_some(struct child *c, bool *force)
{
	struct rehash_slot *slot;
	int i;

	for(i=0; i<REHASH_BATCH && c->rq_count > 0; i++){
		slot = &c->rq[c->rq_head];
		if(rehash_one(c, &slot->r, slot->len)) *force = true;
		OPENSSL_cleanse(slot, sizeof(*slot));
		c->rq_head = (c->rq_head + 1) % REHASH_QUEUE;
		c->rq_count--;
		serve_broker(c, force);
	}
}

/* Close every descriptor from lo up to and including hi. */
static void close_from(unsigned lo, unsigned hi)
{
	unsigned fd;

	if(lo > hi) return;
	if(close_range(lo, hi, 0) == 0) return;
	/* Kernels before 5.9: one by one, up to the limit. */
	if(hi > 65535) hi = 65535;
	for(fd=lo; fd<=hi; fd++) close((int)fd);
}

/* The process's own setup: no broker signal handlers, no broker
 * descriptors (listeners and clients when restarted), death with the
 * broker. */
static void child_setup(int fd, pid_t parent)
{
	static const int ignored[] = {SIGHUP, SIGUSR1, SIGUSR2, SIGPIPE};
	sigset_t none;
	size_t i;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if(getppid() != parent) _exit(0);
	prctl(PR_SET_NAME, "mqchat-loader");
	/* SIGINT/SIGTERM end it (a terminal's Ctrl-C, a service manager
	 * stopping the whole group); the broker's reload and debug signals
	 * are the broker's. */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	for(i=0; i<sizeof(ignored)/sizeof(ignored[0]); i++) signal(ignored[i], SIG_IGN);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Everything the broker had open (log file, pid file, sockets, other
	 * plugins' descriptors) stays the broker's. */
	close_from(3, (unsigned)fd - 1);
	close_from((unsigned)fd + 1, ~0U);
}

static void child_main(struct loader *l, int fd, pid_t parent)
{
	struct loader_shared *sh = l->sh;
	struct child c;
	struct pollfd pfd[2];
	bool force = true;              /* the first build is unconditional */
	bool check_now;
	int timeout, store_fd, wfd, node_in;

	child_setup(fd, parent);
	memset(&c, 0, sizeof(c));
	c.l = l;
	c.fd = fd;
	c.watch_fd = -1;
	c.store_fd = -1;
	c.in_force = -1;
	c.mark.fd = -1;
	/* A restarted loader: the slot the broker does not use may hold an
	 * old build; a first one: both are fresh zeros. */
	c.dirty[0] = c.dirty[1] = __atomic_load_n(&sh->published, __ATOMIC_ACQUIRE) != 0;
	for(;;){
		flush_message(&c);
		if(__atomic_load_n(&sh->taken, __ATOMIC_ACQUIRE)
				== __atomic_load_n(&sh->published, __ATOMIC_RELAXED)
				&& sh->published != 0){
			/* The broker left the other slot: give its memory back now. */
			wipe(&c, 1 - (int)sh->published_slot);
			tell_writers(&c);
		}
		if(poll_once(&c, force)) force = false;
		/* The store's own watch (PostgreSQL's LISTEN), else its files'. */
		store_fd = c.udb != NULL ? userdb__watch_fd(c.udb) : -1;
		/* A new watch (the first, or after a lost connection): what was
		 * committed before it told nobody, so compare the version now. */
		check_now = store_fd >= 0 && c.store_fd < 0;
		c.store_fd = store_fd;
		if(store_fd < 0) watch_start(&c);
		wfd = store_fd >= 0 ? store_fd : c.watch_fd;

		pfd[0] = (struct pollfd){.fd = fd, .events = POLLIN};
		pfd[1] = (struct pollfd){.fd = wfd, .events = POLLIN};
		/* Soon while something waits: a build, a log line, or the broker
		 * taking the newest build (its old slot is then wiped, and writers
		 * told), or having taken it since the top of this round: seen
		 * only here, it would wait for the next wake-up (up to 8 x
		 * reload_ms) to be told. */
		timeout = c.rq_count > 0 || check_now ? 0
			: force || c.has_pending
			|| __atomic_load_n(&sh->taken, __ATOMIC_ACQUIRE) != sh->published
			|| (c.building_started != 0 && c.applied_gen != sh->published) ? LOADER_BUSY_MS
			: wfd >= 0 ? l->reload_ms * LOADER_WATCHED_POLLS : l->reload_ms;
		if(c.rechecks_left > 0){
			int64_t left = c.recheck_at - time__mono_ms();

			if(left < timeout) timeout = left > 0 ? (int)left : 0;
		}
		node_in = tell_nodes(&c);
		if(node_in < timeout) timeout = node_in;
		if(poll(pfd, wfd >= 0 ? 2 : 1, timeout) < 0 && errno != EINTR) break;
		if(pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) serve_broker(&c, &force);
		rehash_some(&c, &force);
		if(c.broker_gone) break;
		if(wfd < 0 || !(pfd[1].revents & (POLLIN | POLLERR | POLLHUP))) continue;
		if(store_fd >= 0){
			/* A notification comes after its commit: the next check sees
			 * it. A lost connection: the next round asks for a new one. */
			if(userdb__watch_drain(c.udb, told, &c) != MQC_OK) c.store_fd = -1;
		}else{
			watch_drain(&c);
			c.rechecks_left = LOADER_RECHECKS;
		}
	}
	watch_stop(&c);
	if(c.rq != NULL) OPENSSL_cleanse(c.rq, REHASH_QUEUE * sizeof(*c.rq));
	free(c.rq);
	applied__close(&c.mark);
	userdb__close(c.udb);
	_exit(0);
}

/* ---- the broker side ---- */

/* Fork a loader process. MQC_OK or MQC_ERR_* with err set. */
static int spawn(struct loader *l, char *err, size_t errlen)
{
	int sv[2];
	pid_t pid, parent = getpid();

	if(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0){
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		return MQC_ERR_IO;
	}
	pid = fork();
	if(pid < 0){
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return MQC_ERR_IO;
	}
	if(pid == 0){
		close(sv[0]);
		child_main(l, sv[1], parent);
		_exit(0);
	}
	close(sv[1]);
	/* Never wait on the loader: a force byte that does not fit means one
	 * is pending already, a rehash request that does not fit is dropped,
	 * and start bytes are read when poll says so. */
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	l->pid = pid;
	l->fd = sv[0];
	return MQC_OK;
}

/* Reap the loader if it exited; true if it did (or none runs). */
static bool reap(struct loader *l, int *status)
{
	pid_t r;

	if(l->pid == 0) return true;
	do{
		r = waitpid(l->pid, status, WNOHANG);
	}while(r < 0 && errno == EINTR);
	if(r == 0) return false;
	l->pid = 0;
	return true;
}

static void stop_child(struct loader *l)
{
	int64_t end;
	int status;

	if(l->fd >= 0){
		close(l->fd);           /* end of file: the loader exits */
		l->fd = -1;
	}
	if(l->pid == 0) return;
	end = time__mono_ms() + LOADER_STOP_MS;
	while(!reap(l, &status)){
		if(time__mono_ms() >= end){
			kill(l->pid, SIGKILL);
			while(waitpid(l->pid, &status, 0) < 0 && errno == EINTR){}
			l->pid = 0;
			break;
		}
		nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = 5000000}, NULL);
	}
}

/* Clean up after a failed start; err gets the whole log line. */
static int start_failed(struct loader *l, const char *path, const char *why, char *err,
		size_t errlen)
{
	snprintf(err, errlen, "mqchat: cannot open user store %s: %s", path, why);
	loader__cleanup(l);
	return MQC_ERR_IO;
}

int loader__start(struct loader *l, const char *path, int reload_ms, bool watch, int slot_mb,
		struct snapshot **first, char *err, size_t errlen)
{
	struct pollfd pfd;
	char what = 0, why[sizeof(l->sh->message)] = "the loader process failed";
	char msg[sizeof(l->sh->message)];
	bool has_msg;
	int level;
	int64_t end;

	memset(l, 0, sizeof(*l));
	l->fd = -1;
	*first = NULL;
	l->path = strdup(path);
	if(l->path == NULL) return start_failed(l, path, "out of memory", err, errlen);
	l->reload_ms = reload_ms;
	l->watch = watch;
	l->slot_bytes = (size_t)slot_mb << 20;
	l->map_len = HEAD_BYTES + 2 * l->slot_bytes;
	/* Address space only: pages are used as a build touches them. */
	l->map = mmap(NULL, l->map_len, PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if(l->map == MAP_FAILED){
		l->map = NULL;
		snprintf(why, sizeof(why), "cannot map 2 x %d MiB for snapshots: %s", slot_mb, strerror(errno));
		return start_failed(l, path, why, err, errlen);
	}
	l->sh = (struct loader_shared *)(void *)l->map;
	l->slot[0] = l->map + HEAD_BYTES;
	l->slot[1] = l->slot[0] + l->slot_bytes;

	if(spawn(l, why, sizeof(why)) != MQC_OK) return start_failed(l, path, why, err, errlen);
	/* Wait for the first build, bounded. */
	end = time__mono_ms() + LOADER_START_MS;
	for(;;){
		int64_t left = end - time__mono_ms();
		ssize_t n;

		if(left <= 0){
			snprintf(why, sizeof(why), "no snapshot after %d s", LOADER_START_MS / 1000);
			break;
		}
		pfd.fd = l->fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if(poll(&pfd, 1, (int)left) < 0){
			if(errno == EINTR) continue;
			snprintf(why, sizeof(why), "poll: %s", strerror(errno));
			break;
		}
		if(pfd.revents == 0) continue;
		n = read(l->fd, &what, 1);
		if(n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
		if(n <= 0) snprintf(why, sizeof(why), "the loader process exited");
		break;
	}
	if(what == START_OK){
		*first = loader__take(l, msg, sizeof(msg), &level, &has_msg);
	}
	if(*first == NULL){
		/* The loader's own line (it names the store and the reason) is
		 * better than ours. */
		if(__atomic_load_n(&l->sh->msg_seq, __ATOMIC_ACQUIRE) != 0){
			snprintf(err, errlen, "%s", l->sh->message);
			loader__cleanup(l);
			return MQC_ERR_IO;
		}
		return start_failed(l, path, why, err, errlen);
	}
	loader__retire(l, NULL);
	l->next_check = time__mono_ms() + LOADER_WATCH_MS;
	return MQC_OK;
}

void loader__force(struct loader *l)
{
	char b = 'F';
	ssize_t n;

	if(l->fd < 0) return;
	/* Non-blocking: a full socket already holds a request. */
	n = write(l->fd, &b, 1);
	(void)n;
}

void loader__rehash(struct loader *l, const char *name, const char *password, size_t pwlen,
		const char *stored)
{
	struct rehash_req r;
	size_t namelen = strnlen(name, NAME_MAX_LEN + 1), hashlen = strnlen(stored, PWHASH_STR_LEN), len;
	ssize_t n;

	if(l->sh == NULL || l->fd < 0 || namelen > NAME_MAX_LEN || pwlen > PWHASH_MAX_PASSWORD
			|| hashlen >= PWHASH_STR_LEN){
		return;
	}
	r.namelen = (uint16_t)namelen;
	r.pwlen = (uint16_t)pwlen;
	r.hashlen = (uint16_t)hashlen;
	memcpy(r.data, name, namelen);
	memcpy(r.data + namelen, password, pwlen);
	memcpy(r.data + namelen + pwlen, stored, hashlen);
	len = REHASH_HEAD + namelen + pwlen + hashlen;
	/* One message, whole or EAGAIN; a failure just drops it. */
	n = send(l->fd, &r, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	(void)n;
	OPENSSL_cleanse(&r, len);
}

struct snapshot *loader__take(struct loader *l, char *msg, size_t msglen, int *level,
		bool *has_msg)
{
	struct loader_shared *sh = l->sh;
	struct snapshot *s = NULL;
	uint32_t news, gen, seq;

	*has_msg = false;
	if(sh == NULL) return NULL;
	news = __atomic_load_n(&sh->news, __ATOMIC_ACQUIRE);
	if(news == l->news_seen) return NULL;
	l->news_seen = news;
	seq = __atomic_load_n(&sh->msg_seq, __ATOMIC_ACQUIRE);
	if(seq != __atomic_load_n(&sh->msg_ack, __ATOMIC_RELAXED)){
		snprintf(msg, msglen, "%s", sh->message);
		*level = sh->msg_level;
		*has_msg = true;
		__atomic_store_n(&sh->msg_ack, seq, __ATOMIC_RELEASE);
	}
	gen = __atomic_load_n(&sh->published, __ATOMIC_ACQUIRE);
	if(gen != l->take_gen){
		s = (struct snapshot *)(void *)l->slot[sh->published_slot];
		l->take_gen = gen;
	}
	return s;
}

const struct cut_ring *loader__cuts(const struct loader *l)
{
	return l->sh != NULL ? &l->sh->cuts : NULL;
}

void loader__retire(struct loader *l, struct snapshot *old)
{
	/* No loader (tests): old was built with snapshot__new. */
	if(l->sh == NULL){
		snapshot__free(old);
		return;
	}
	__atomic_store_n(&l->sh->taken, l->take_gen, __ATOMIC_RELEASE);
}

void loader__watch(struct loader *l, int64_t now)
{
	char err[256], b[16];
	int status = 0;

	if(l->sh == NULL || now < l->next_check) return;
	l->next_check = now + LOADER_WATCH_MS;
	if(l->pid != 0){
		if(l->fd >= 0){
			while(read(l->fd, b, sizeof(b)) > 0){}     /* start bytes */
		}
		if(!reap(l, &status)) return;
		mosquitto_log_printf(MOSQ_LOG_ERR,
				"mqchat: the loader process exited (%s %d); user store changes wait for a new one",
				WIFSIGNALED(status) ? "signal" : "status",
				WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
		if(l->fd >= 0) close(l->fd);
		l->fd = -1;
		l->restart_at = now + LOADER_RESTART_MS;
	}
	if(now < l->restart_at) return;
	if(spawn(l, err, sizeof(err)) != MQC_OK){
		mosquitto_log_printf(MOSQ_LOG_ERR, "mqchat: cannot start a loader process: %s", err);
		l->restart_at = now + LOADER_RESTART_MS;
		return;
	}
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "mqchat: started a new loader process");
}

void loader__cleanup(struct loader *l)
{
	stop_child(l);
	if(l->map != NULL) munmap(l->map, l->map_len);
	l->map = NULL;
	l->sh = NULL;
	free(l->path);
	l->path = NULL;
}
