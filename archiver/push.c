/* push.c - the push thread: from archive.db's texts to push.db's jobs to
 * the providers (push.h), and the presence map it reads. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "archive.h"
#include "datadir.h"
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "names.h"
#include "push.h"
#include "push_crypto.h"
#include "push_send.h"
#include "push_store.h"
#include "rand.h"
#include "timeutil.h"
#include "userdb.h"

#define PRESENCE_BUCKETS_MIN 256
#define IDLE_SCAN_MS 1000       /* a look at archive.db at least this often */
#define BUSY_WAIT_MS 100        /* due jobs wait for a token or a slot */
#define PUSH_NICE 10            /* the thread's nice value (Linux: per thread) */

/* One name of a string set (presence; a batch's cache of recipients). */
struct entry {
	struct entry *next;
	void *val;
	char name[];
};

struct set {
	struct entry **b;
	size_t nb, n;
};

/* A job on its way (its request's arg). */
struct flight {
	bool used;
	struct push_job job;
	enum push_provider provider;
};

/* What a batch knows of a recipient. */
struct recipient {
	struct push_target *targets;
	int n;
	bool previews;
};

struct push {
	const struct config *cfg;
	char archive_path[4096];
	char auth_path[4096];
	pthread_t thread;
	bool started;
	atomic_int stop;
	atomic_int kicked;

	pthread_mutex_t pmu;       /* guards online */
	struct set online;

	/* The push thread's own. */
	struct push_sender *snd;
	struct archive_feed *ar;   /* archive.db, read only */
	struct userdb *udb;        /* auth.db, read only */
	struct push_store *db;     /* push.db */
	int64_t cursor;
	struct flight flights[PUSH_INFLIGHT_MAX];
	int64_t sent, gone, failed, dropped;
	/* members of the room last asked (a batch is mostly a few rooms) */
	char members_room[NAME_MAX_LEN + 1];
	char **members;
	size_t nmembers, members_cap;
};

/* ---- string sets ---- */

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while(*s){
		h ^= (unsigned char)*s++;
		h *= 1099511628211ULL;
	}
	return h;
}

static struct entry **set_slot(struct set *s, const char *name)
{
	struct entry **e;

	if(s->nb == 0) return NULL;
	for(e = &s->b[hash(name) & (s->nb - 1)]; *e; e = &(*e)->next){
		if(strcmp((*e)->name, name) == 0) return e;
	}
	return e;
}

static struct entry *set_get(struct set *s, const char *name)
{
	struct entry **e = set_slot(s, name);

	return e ? *e : NULL;
}

/* Add name (if missing); returns its entry, or NULL without memory. */
static struct entry *set_add(struct set *s, const char *name)
{
	struct entry **e, *n;
	size_t len = strlen(name), i;

	if(s->n >= s->nb){
		size_t nb = s->nb ? s->nb * 2 : PRESENCE_BUCKETS_MIN;
		struct entry **b = calloc(nb, sizeof(*b));

		if(b == NULL) return NULL;
		for(i = 0; i < s->nb; i++){
			while(s->b[i]){
				struct entry *m = s->b[i];

				s->b[i] = m->next;
				m->next = b[hash(m->name) & (nb - 1)];
				b[hash(m->name) & (nb - 1)] = m;
			}
		}
		free(s->b);
		s->b = b;
		s->nb = nb;
	}
	e = set_slot(s, name);
	if(*e) return *e;
	n = calloc(1, sizeof(*n) + len + 1);
	if(n == NULL) return NULL;
	memcpy(n->name, name, len + 1);
	*e = n;
	s->n++;
	return n;
}

static void set_del(struct set *s, const char *name)
{
	struct entry **e = set_slot(s, name), *m;

	if(e == NULL || *e == NULL) return;
	m = *e;
	*e = m->next;
	free(m);
	s->n--;
}

/* Empty s; free_val (may be NULL) frees each value. */
static void set_clear(struct set *s, void (*free_val)(void *))
{
	size_t i;

	for(i = 0; i < s->nb; i++){
		while(s->b[i]){
			struct entry *m = s->b[i];

			s->b[i] = m->next;
			if(free_val) free_val(m->val);
			free(m);
		}
	}
	free(s->b);
	memset(s, 0, sizeof(*s));
}

/* ---- settings ---- */

bool push__url_ok(const char *url, int allow_http)
{
	CURLU *u;
	char *scheme = NULL, *host = NULL, *user = NULL, *pw = NULL;
	bool ok = false;

	if(url == NULL || strlen(url) > 2048) return false;
	u = curl_url();
	if(u == NULL) return false;
	if(curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK
			&& curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK
			&& curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host[0] != '\0'
			&& curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_NO_USER
			&& curl_url_get(u, CURLUPART_PASSWORD, &pw, 0) == CURLUE_NO_PASSWORD){
		ok = strcmp(scheme, "https") == 0 || (allow_http && strcmp(scheme, "http") == 0);
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(user);
	curl_free(pw);
	curl_url_cleanup(u);
	return ok;
}

/* Is path cfg's default VAPID key, DATADIR/vapid.pem? */
static bool default_vapid(const struct config *cfg)
{
	const char *dir = cfg->datadir;
	size_t len = strlen(dir);
	char path[4096];

	snprintf(path, sizeof(path), "%s%svapid.pem", dir, len && dir[len - 1] == '/' ? "" : "/");
	return strcmp(path, cfg->push_vapid_key) == 0;
}

static bool readable(const char *path, const char *key, char *err, size_t errlen)
{
	if(access(path, R_OK) == 0) return true;
	mqc_seterr(err, errlen, "%s %s: %s", key, path, strerror(errno));
	return false;
}

int push__check_config(const struct config *cfg, char *err, size_t errlen)
{
	int apns = !!cfg->push_apns_key + !!cfg->push_apns_key_id + !!cfg->push_apns_team_id
		+ !!cfg->push_apns_topic;

	if(!default_vapid(cfg) && !readable(cfg->push_vapid_key, "push_vapid_key", err, errlen)){
		return MQC_ERR_INVAL;
	}
	if(strncmp(cfg->push_vapid_subject, "mailto:", 7) != 0
			&& !push__url_ok(cfg->push_vapid_subject, 0)){
		mqc_seterr(err, errlen, "push_vapid_subject %s: not a mailto: or https: URL",
				cfg->push_vapid_subject);
		return MQC_ERR_INVAL;
	}
	if(cfg->push_fcm_credentials
			&& !readable(cfg->push_fcm_credentials, "push_fcm_credentials", err, errlen)){
		return MQC_ERR_INVAL;
	}
	if(!push__url_ok(cfg->push_fcm_url, cfg->push_allow_http)){
		mqc_seterr(err, errlen, "push_fcm_url %s: not an https URL%s", cfg->push_fcm_url,
				cfg->push_allow_http ? " or an http one" : " (http only with push_allow_http 1)");
		return MQC_ERR_INVAL;
	}
	if(!push__url_ok(cfg->push_apns_url, cfg->push_allow_http)){
		mqc_seterr(err, errlen, "push_apns_url %s: not an https URL%s", cfg->push_apns_url,
				cfg->push_allow_http ? " or an http one" : " (http only with push_allow_http 1)");
		return MQC_ERR_INVAL;
	}
	if(apns != 0 && apns != 4){
		mqc_seterr(err, errlen, "push_apns_key, push_apns_key_id, push_apns_team_id and"
				" push_apns_topic go together: %d of 4 set", apns);
		return MQC_ERR_INVAL;
	}
	if(cfg->push_apns_key && !readable(cfg->push_apns_key, "push_apns_key", err, errlen)){
		return MQC_ERR_INVAL;
	}
	return MQC_OK;
}

int push__vapid_ensure(const char *path, bool *made, char *err, size_t errlen)
{
	char pub[128];

	if(made) *made = false;
	if(access(path, F_OK) == 0) return MQC_OK;
	if(errno != ENOENT){
		mqc_seterr(err, errlen, "%s: %s", path, strerror(errno));
		return MQC_ERR_IO;
	}
	if(push_crypto__vapid_generate(path, pub, sizeof(pub), err, errlen) != 0) return MQC_ERR_IO;
	if(made) *made = true;
	return MQC_OK;
}

/* ---- the rules ---- */

int push__recipients(const char *sender, const char *recipient, const char *room,
		const char *const *members, size_t n, void (*cb)(const char *name, void *arg), void *arg)
{
	int count = 0;
	size_t i;

	if(room == NULL){
		if(recipient == NULL || strcmp(recipient, sender) == 0) return 0;
		cb(recipient, arg);
		return 1;
	}
	for(i = 0; i < n; i++){
		if(strcmp(members[i], sender) == 0) continue;
		cb(members[i], arg);
		count++;
	}
	return count;
}

bool push__conv(const char *sender, const char *room, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s:%s", room ? "r" : "d", room ? room : sender);

	return n > 0 && (size_t)n < outlen;
}

int64_t push__backoff_ms(int attempts, int64_t retry_after_ms, uint32_t rnd)
{
	int64_t d = PUSH_BACKOFF_MIN_MS;
	int i;

	for(i = 1; i < attempts && d < PUSH_BACKOFF_MAX_MS; i++) d *= 2;
	if(d > PUSH_BACKOFF_MAX_MS) d = PUSH_BACKOFF_MAX_MS;
	/* Jitter, so targets that failed together do not come back together. */
	d += (int64_t)(rnd % (uint32_t)(d / 4 + 1));
	return retry_after_ms > d ? retry_after_ms : d;
}

bool push__give_up(int attempts)
{
	int64_t total = 0, d = PUSH_BACKOFF_MIN_MS;
	int i;

	for(i = 0; i < attempts; i++){
		total += d;
		if(total >= PUSH_GIVE_UP_MS) return true;
		if(d < PUSH_BACKOFF_MAX_MS) d = d * 2 > PUSH_BACKOFF_MAX_MS ? PUSH_BACKOFF_MAX_MS : d * 2;
	}
	return false;
}

int64_t push__retry_after_ms(const char *value, int64_t now_ms)
{
	const char *p = value;
	int64_t s = 0;
	time_t t;

	if(value == NULL || *value == '\0') return -1;
	while(*p >= '0' && *p <= '9'){
		if(s > 10LL * 365 * 86400) return -1;
		s = s * 10 + (*p++ - '0');
	}
	if(*p == '\0') return s * 1000;
	if(p != value) return -1;
	/* An HTTP date: libcurl's parser. */
	t = curl_getdate(value, NULL);
	if(t == -1) return -1;
	return (int64_t)t * 1000 > now_ms ? (int64_t)t * 1000 - now_ms : 0;
}

char *push__preview(const char *body)
{
	const unsigned char *p = (const unsigned char *)body;
	size_t chars = 0, len = 0;
	char *out;

	while(p[len] && chars < PUSH_PREVIEW_MAX){
		size_t k = 1;

		/* Continuation bytes belong to the character before them. */
		while(p[len + k] && (p[len + k] & 0xC0) == 0x80) k++;
		len += k;
		chars++;
	}
	out = malloc(len + 1);
	if(out == NULL) return NULL;
	memcpy(out, body, len);
	out[len] = '\0';
	return out;
}

/* ---- presence ---- */

void push__presence(struct push *p, const char *user, size_t n, const void *payload, size_t len)
{
	char name[NAME_MAX_LEN + 1];
	bool online = false;
	json_t *o;

	if(p == NULL || !names__valid(user, n)) return;
	memcpy(name, user, n);
	name[n] = '\0';
	if(len > 0 && len < 1024){
		o = json_loadb(payload, len, 0, NULL);
		online = o && json_is_string(json_object_get(o, "status"))
			&& strcmp(json_string_value(json_object_get(o, "status")), "online") == 0;
		json_decref(o);
	}
	pthread_mutex_lock(&p->pmu);
	if(online){
		if(set_add(&p->online, name) == NULL) log_warnx("push: out of memory for presence");
	}else{
		set_del(&p->online, name);
	}
	pthread_mutex_unlock(&p->pmu);
}

bool push__online(struct push *p, const char *user)
{
	bool on;

	pthread_mutex_lock(&p->pmu);
	on = set_get(&p->online, user) != NULL;
	pthread_mutex_unlock(&p->pmu);
	return on;
}

void push__wake(struct push *p)
{
	if(p == NULL) return;
	if(atomic_exchange(&p->kicked, 1) == 0) push_send__wakeup(p->snd);
}

/* ---- reading the archive ---- */

static int member_cb(const char *room, const char *user, void *arg)
{
	struct push *p = arg;

	(void)room;
	if(p->nmembers == p->members_cap){
		size_t cap = p->members_cap ? p->members_cap * 2 : 64;
		char **m = realloc(p->members, cap * sizeof(*m));

		if(m == NULL) return MQC_ERR_NOMEM;
		p->members = m;
		p->members_cap = cap;
	}
	if((p->members[p->nmembers] = strdup(user)) == NULL) return MQC_ERR_NOMEM;
	p->nmembers++;
	return 0;
}

static void members_clear(struct push *p)
{
	size_t i;

	for(i = 0; i < p->nmembers; i++) free(p->members[i]);
	p->nmembers = 0;
	p->members_room[0] = '\0';
}

/* The members of room now, into p->members (kept while the same room
 * comes again in a batch). */
static int room_members(struct push *p, const char *room)
{
	int rc;

	if(strcmp(p->members_room, room) == 0) return MQC_OK;
	members_clear(p);
	rc = userdb__member_each(p->udb, room, NULL, member_cb, p);
	if(rc != MQC_OK){
		members_clear(p);
		return rc;
	}
	snprintf(p->members_room, sizeof(p->members_room), "%s", room);
	return MQC_OK;
}

static void recipient_free(void *v)
{
	struct recipient *r = v;
	int i;

	if(r == NULL) return;
	for(i = 0; i < r->n; i++) push_store__target_free(&r->targets[i]);
	free(r->targets);
	free(r);
}

static char muted_yes, muted_no;
#define MUTED (&muted_yes)
#define NOT_MUTED (&muted_no)

/* One text being decided (push__recipients' callback state). */
struct text {
	struct push *p;
	struct set *cache;         /* name -> struct recipient, for the batch */
	struct set *muted;         /* "name conv" -> MUTED or NOT_MUTED, for the batch */
	const char *sender, *room, *id;
	char *preview;             /* read when a recipient wants it */
	bool preview_read;
	int64_t seq, now;
	int rc;
	int enqueued;
	int rows;                  /* rows of the batch read */
	int64_t last;              /* the last one's seq */
	int stop;                  /* what stopped the batch (scan_row's answer), or MQC_OK */
};

/* The preview of t's body, read only now: most texts notify nobody who
 * wants one, and a body may be 64 KiB. */
static int preview_of(const char *body, void *arg)
{
	struct text *t = arg;

	if(body && (t->preview = push__preview(body)) == NULL) return MQC_ERR_NOMEM;
	return MQC_OK;
}

static int text_preview(struct push *p, struct text *t)
{
	t->preview_read = true;
	return archive__feed_body(p->ar, t->seq, preview_of, t);
}

static void notify_cb(const char *name, void *arg)
{
	struct text *t = arg;
	struct push *p = t->p;
	struct entry *e;
	struct recipient *r;
	char conv[NAME_MAX_LEN + 3], key[2 * NAME_MAX_LEN + 8];
	int i, rc;

	if(t->rc != MQC_OK || push__online(p, name)) return;
	e = set_get(t->cache, name);
	if(e == NULL){
		if((e = set_add(t->cache, name)) == NULL || (r = calloc(1, sizeof(*r))) == NULL){
			t->rc = MQC_ERR_NOMEM;
			return;
		}
		e->val = r;
		rc = push_store__targets(p->db, name, &r->targets, &r->n);
		if(rc != MQC_OK){
			t->rc = rc;
			return;
		}
		r->previews = r->n > 0 && push_store__previews(p->db, name);
	}
	r = e->val;
	if(r->n == 0) return;
	if(!push__conv(t->sender, t->room, conv, sizeof(conv))) return;
	/* A batch is mostly a few conversations: each person's mute of each
	 * is read once. */
	snprintf(key, sizeof(key), "%s %s", name, conv);
	if((e = set_add(t->muted, key)) == NULL){
		t->rc = MQC_ERR_NOMEM;
		return;
	}
	if(e->val == NULL) e->val = push_store__muted(p->db, name, conv, t->now) ? MUTED : NOT_MUTED;
	if(e->val == MUTED) return;
	if(r->previews && !t->preview_read){
		t->rc = text_preview(p, t);
		if(t->rc != MQC_OK) return;
	}
	for(i = 0; i < r->n && t->rc == MQC_OK; i++){
		t->rc = push_store__enqueue(p->db, name, r->targets[i].device, conv, t->seq, t->id, t->sender,
				r->previews ? t->preview : NULL, t->now + p->cfg->push_collapse_ms);
		if(t->rc == MQC_OK) t->enqueued++;
	}
}

/* One row of the batch: each moves the cursor; a text notifies. */
static int scan_row(const struct archive_feed_row *row, void *arg)
{
	struct text *t = arg;
	struct push *p = t->p;
	int rc;

	t->rows++;
	t->last = row->seq;
	/* Texts only, not deleted already, and not old news. */
	if(row->type == NULL || strcmp(row->type, "text") != 0 || row->deleted
			|| row->server_ts < t->now - PUSH_MAX_AGE_MS){
		return MQC_OK;
	}
	t->seq = row->seq;
	t->sender = row->sender;
	t->room = row->room;
	t->id = row->id;
	free(t->preview);
	t->preview = NULL;
	t->preview_read = false;
	if(t->sender == NULL || t->id == NULL) return MQC_OK;
	if(t->room){
		rc = room_members(p, t->room);
		if(rc != MQC_OK) return t->stop = rc;
		push__recipients(t->sender, NULL, t->room, (const char *const *)p->members, p->nmembers,
				notify_cb, t);
	}else{
		push__recipients(t->sender, row->recipient, NULL, NULL, 0, notify_cb, t);
	}
	return t->stop = t->rc;
}

/* Read the texts after the cursor (one batch), queue their jobs and move
 * the cursor, in one push.db transaction. Returns how many rows were
 * read (0: none new), or -1 after an error (logged; tried again later). */
static int scan(struct push *p)
{
	struct set cache = {0}, muted = {0};
	struct text t;
	int rc;

	memset(&t, 0, sizeof(t));
	t.p = p;
	t.cache = &cache;
	t.muted = &muted;
	t.now = time__now_ms();
	rc = push_store__begin(p->db);
	/* Read again inside the batch, which holds it: on a shared store
	 * another node's push thread may have moved it, and waits for this
	 * batch before it reads it again (push_store.h). */
	if(rc == MQC_OK) rc = push_store__cursor(p->db, &p->cursor);
	t.last = p->cursor;
	if(rc == MQC_OK){
		rc = archive__feed_each(p->ar, p->cursor, PUSH_BATCH, scan_row, &t);
		if(rc != MQC_OK && t.stop == MQC_OK){
			log_warnx("push: reading archive.db: %s", archive__feed_errmsg(p->ar));
			rc = MQC_ERR_DB;
		}
	}
	free(t.preview);
	members_clear(p);
	set_clear(&cache, recipient_free);
	set_clear(&muted, NULL);
	if(rc == MQC_OK && t.rows > 0) rc = push_store__set_cursor(p->db, t.last);
	if(rc == MQC_OK) rc = push_store__commit(p->db);
	else push_store__rollback(p->db);
	metrics__store_write(MS_PUSH, rc);
	if(rc != MQC_OK){
		log_warnx("push: queueing after seq %lld: %s", (long long)p->cursor, mqc_strerror(rc));
		return -1;
	}
	if(t.enqueued) log_debug("push: %d notification(s) queued from seq %lld to %lld", t.enqueued,
			(long long)p->cursor + 1, (long long)t.last);
	p->cursor = t.last;
	metrics__add(MC_PUSH_QUEUED, t.enqueued);
	return t.rows;
}

/* ---- sending ---- */

static uint32_t rnd32(void)
{
	uint32_t r = 0;

	if(rand__bytes(&r, sizeof(r)) != MQC_OK) r = (uint32_t)time__mono_ns();
	return r;
}

/* Apply what became of job (sent through provider). */
static void outcome(struct push *p, const struct push_job *job, enum push_provider provider,
		const struct push_result *r)
{
	int64_t now = time__now_ms();
	const char *name = push_store__provider_name(provider);
	int rc = MQC_OK;

	switch(r->outcome){
	case PUSH_SENT:
		p->sent++;
		metrics__count(MF_PUSH_SENT, name, NULL);
		log_debug("push: %s: notified %s@%s of %s (%d)", name, job->user, job->device, job->conv,
				job->count);
		/* A message that joined the job on its way stays queued. */
		rc = push_store__job_sent(p->db, job);
		if(rc == MQC_OK) rc = push_store__target_result(p->db, job->user, job->device, true, now);
		break;
	case PUSH_GONE:
		p->gone++;
		metrics__count(MF_PUSH_GONE, name, NULL);
		log_info("push: %s: the target of %s@%s is gone (%s): removed", name, job->user, job->device,
				r->why);
		rc = push_store__target_remove(p->db, job->user, job->device, NULL);
		break;
	case PUSH_RETRY:
		if(!push__give_up(job->attempts + 1)){
			int64_t wait = push__backoff_ms(job->attempts + 1, r->retry_after_ms, rnd32());

			log_debug("push: %s: %s@%s: %s; again in %lld ms", name, job->user, job->device, r->why,
					(long long)wait);
			rc = push_store__job_retry(p->db, job->id, now + wait);
			if(rc == MQC_OK) rc = push_store__target_result(p->db, job->user, job->device, false, now);
			break;
		}
		/* tried for long enough */
		__attribute__((fallthrough));
	case PUSH_FAILED:
		p->failed++;
		metrics__count(MF_PUSH_FAILED, name, NULL);
		log_warnx("push: %s: %s@%s: %s; given up", name, job->user, job->device, r->why);
		rc = push_store__job_done(p->db, job->id);
		if(rc == MQC_OK) rc = push_store__target_result(p->db, job->user, job->device, false, now);
		break;
	}
	metrics__store_write(MS_PUSH, rc);
	if(rc != MQC_OK) log_warnx("push: push.db: %s", mqc_strerror(rc));
}

static void done_cb(void *cbarg, void *arg, const struct push_result *r)
{
	struct push *p = cbarg;
	struct flight *f = arg;

	outcome(p, &f->job, f->provider, r);
	push_store__job_free(&f->job);
	f->used = false;
}

static bool in_flight(const struct push *p, int64_t id)
{
	int i;

	for(i = 0; i < PUSH_INFLIGHT_MAX; i++) if(p->flights[i].used && p->flights[i].job.id == id) return true;
	return false;
}

static struct flight *free_flight(struct push *p)
{
	int i;

	for(i = 0; i < PUSH_INFLIGHT_MAX; i++) if(!p->flights[i].used) return &p->flights[i];
	return NULL;
}

/* Start one due job, or drop it. Returns true if it left the due list
 * (started, done, removed), false if it waits (FCM's token). */
static bool dispatch_one(struct push *p, struct push_job *job, int64_t now)
{
	struct push_target *ts = NULL, *t = NULL;
	struct push_result r;
	struct flight *f;
	int n = 0, i, rc;
	bool moved = true;

	if(push__online(p, job->user) || push_store__muted(p->db, job->user, job->conv, now)){
		/* Came online (or muted it) since: nothing to say. */
		p->dropped++;
		metrics__add(MC_PUSH_DROPPED, 1);
		rc = push_store__job_done(p->db, job->id);
		if(rc != MQC_OK) log_warnx("push: push.db: %s", mqc_strerror(rc));
		push_store__job_free(job);
		return true;
	}
	rc = push_store__targets(p->db, job->user, &ts, &n);
	for(i = 0; rc == MQC_OK && i < n; i++) if(strcmp(ts[i].device, job->device) == 0) t = &ts[i];
	f = free_flight(p);
	if(rc != MQC_OK || f == NULL){
		moved = false;
	}else if(t == NULL){
		rc = push_store__job_done(p->db, job->id);   /* the target went */
	}else if((rc = push_send__job(p->snd, job, t, f, &r)) == MQC_OK){
		f->used = true;
		f->job = *job;               /* its preview goes with it */
		f->provider = t->provider;
		job->preview = NULL;
	}else if(rc == MQC_ERR_BUSY){
		moved = false;
	}else{
		outcome(p, job, t->provider, &r);
	}
	for(i = 0; i < n; i++) push_store__target_free(&ts[i]);
	free(ts);
	push_store__job_free(job);
	return moved;
}

/* Start the due jobs there is room for. Returns how many left the due
 * list; *waiting is set when due jobs stay (in flight, or waiting). */
static int dispatch(struct push *p, bool *waiting)
{
	struct push_job jobs[2 * PUSH_INFLIGHT_MAX];
	int64_t now = time__now_ms();
	int busy = push_send__inflight(p->snd), room = PUSH_INFLIGHT_MAX - busy, n = 0, i, moved = 0;

	*waiting = false;
	if(room <= 0){
		*waiting = true;
		return 0;
	}
	/* The jobs in flight are still due: ask for them and room more. */
	if(push_store__due(p->db, now, jobs, busy + room, &n) != MQC_OK) return 0;
	for(i = 0; i < n; i++){
		if(in_flight(p, jobs[i].id) || room == 0){
			*waiting = true;
			push_store__job_free(&jobs[i]);
			continue;
		}
		if(dispatch_one(p, &jobs[i], now)){
			moved++;
			room = PUSH_INFLIGHT_MAX - push_send__inflight(p->snd);
		}else{
			*waiting = true;
		}
	}
	return moved;
}

/* ---- the thread ---- */

static void *push_main(void *arg)
{
	struct push *p = arg;
	int64_t deadline, next_due, now;
	bool waiting;
	int timeout, rows, moved, i;

	/* Below the poll loop: on a busy machine storing gets the CPU first,
	 * and notifications catch up when it is idle. */
	if(setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), PUSH_NICE) != 0){
		log_debug("push: cannot lower the thread's priority: %s", strerror(errno));
	}
	while(!atomic_load(&p->stop)){
		atomic_store(&p->kicked, 0);
		rows = scan(p);
		moved = dispatch(p, &waiting);
		timeout = IDLE_SCAN_MS;
		if(rows == PUSH_BATCH || atomic_load(&p->kicked)) timeout = 0;
		if(push_store__next_due(p->db, &next_due) == MQC_OK && next_due > 0){
			now = time__now_ms();
			if(next_due > now){
				if(next_due - now < timeout) timeout = (int)(next_due - now);
			}else if(moved > 0 && !waiting){
				timeout = 0;
			}else if(timeout > BUSY_WAIT_MS){
				/* In flight or waiting: the network wakes us sooner. */
				timeout = BUSY_WAIT_MS;
			}
		}
		push_send__run(p->snd, timeout, done_cb, p);
	}
	/* Requests in flight may finish; unsent jobs stay queued. */
	deadline = time__mono_ms() + PUSH_STOP_GRACE_MS;
	while(push_send__inflight(p->snd) > 0 && (now = time__mono_ms()) < deadline){
		push_send__run(p->snd, (int)(deadline - now), done_cb, p);
	}
	if(push_send__inflight(p->snd) > 0){
		log_info("push: %d request(s) still in flight at the stop: sent again at the next start",
				push_send__inflight(p->snd));
	}
	for(i = 0; i < PUSH_INFLIGHT_MAX; i++){
		if(p->flights[i].used) push_store__job_free(&p->flights[i].job);
		p->flights[i].used = false;
	}
	return NULL;
}

/* archive.db read only, and the cursor: a push.db without one starts at
 * the archive's end (no notifications for history). */
static int open_archive(struct push *p, char *err, size_t errlen)
{
	int rc;

	rc = archive__feed_open(p->archive_path, &p->ar, err, errlen);
	if(rc != MQC_OK) return rc;
	if(push_store__cursor(p->db, &p->cursor) != MQC_OK){
		mqc_seterr(err, errlen, "push.db: cannot read the cursor");
		return MQC_ERR_DB;
	}
	if(p->cursor > 0) return MQC_OK;
	if(archive__feed_end(p->ar, &p->cursor) != MQC_OK){
		mqc_seterr(err, errlen, "%s: %s", p->archive_path, archive__feed_errmsg(p->ar));
		return MQC_ERR_DB;
	}
	if(p->cursor > 0 && push_store__set_cursor(p->db, p->cursor) != MQC_OK){
		mqc_seterr(err, errlen, "push.db: cannot write the cursor");
		return MQC_ERR_DB;
	}
	return MQC_OK;
}

static void push_free(struct push *p)
{
	if(p == NULL) return;
	push_send__free(p->snd);
	archive__feed_close(p->ar);
	userdb__close(p->udb);
	push_store__close(p->db);
	members_clear(p);
	free(p->members);
	set_clear(&p->online, NULL);
	pthread_mutex_destroy(&p->pmu);
	free(p);
}

int push__start(const struct config *cfg, const char *archive_path, const char *auth_path,
		struct push **out, char *err, size_t errlen)
{
	struct push *p;
	bool made = false;
	int rc;

	*out = NULL;
	rc = push__check_config(cfg, err, errlen);
	if(rc == MQC_OK && default_vapid(cfg)) rc = push__vapid_ensure(cfg->push_vapid_key, &made, err, errlen);
	if(rc != MQC_OK) return rc;
	if(made) log_info("push: made the Web Push (VAPID) key %s", cfg->push_vapid_key);
	if(curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK){
		mqc_seterr(err, errlen, "cannot set up libcurl");
		return MQC_ERR_NOMEM;
	}
	p = calloc(1, sizeof(*p));
	if(p == NULL || pthread_mutex_init(&p->pmu, NULL) != 0){
		free(p);
		curl_global_cleanup();
		mqc_seterr(err, errlen, "out of memory");
		return MQC_ERR_NOMEM;
	}
	p->cfg = cfg;
	snprintf(p->archive_path, sizeof(p->archive_path), "%s", archive_path);
	snprintf(p->auth_path, sizeof(p->auth_path), "%s", auth_path);
	rc = push_send__new(cfg, &p->snd, err, errlen);
	if(rc == MQC_OK) rc = push_store__open(cfg->datadir, &p->db, err, errlen);
	if(rc == MQC_OK) rc = userdb__open(auth_path, USERDB_READONLY, &p->udb, err, errlen);
	if(rc == MQC_OK) rc = open_archive(p, err, errlen);
	if(rc == MQC_OK && pthread_create(&p->thread, NULL, push_main, p) != 0){
		mqc_seterr(err, errlen, "cannot start the push thread");
		rc = MQC_ERR_NOMEM;
	}
	if(rc != MQC_OK){
		push_free(p);
		curl_global_cleanup();
		return rc;
	}
	p->started = true;
	log_info("push: on (providers:%s%s%s%s), from seq %lld",
			push_send__has(p->snd, PUSH_WEBPUSH) ? " webpush" : "",
			push_send__has(p->snd, PUSH_FCM) ? " fcm" : "", push_send__has(p->snd, PUSH_APNS) ? " apns" : "",
			push_send__has(p->snd, PUSH_WEBHOOK) ? " webhook" : "", (long long)p->cursor);
	*out = p;
	return MQC_OK;
}

void push__stop(struct push *p)
{
	if(p == NULL) return;
	if(p->started){
		atomic_store(&p->stop, 1);
		push_send__wakeup(p->snd);
		pthread_join(p->thread, NULL);
		log_info("push: stopped: %lld sent, %lld dropped (online), %lld targets removed, %lld given up",
				(long long)p->sent, (long long)p->dropped, (long long)p->gone, (long long)p->failed);
	}
	push_free(p);
	curl_global_cleanup();
}
