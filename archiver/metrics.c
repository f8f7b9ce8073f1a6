/* metrics.c - the archiver's figures: the registry and its Prometheus text
 * (metrics.h says what is counted where, and why this way). */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "err.h"
#include "log.h"
#include "metrics.h"

const double metrics__rpc_bounds[METRICS_RPC_BUCKETS] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

/* ---- the registry ---- */

/* Label values of a family: slots[0..used) are filled and never change
 * (until metrics__reset); a new one is filled under mu, then published by
 * the release store of used. */
struct labels {
	pthread_mutex_t mu;
	atomic_size_t used;
	char v[METRICS_SLOTS][2][METRICS_LABEL_MAX];
};

struct family {
	const char *name, *help;
	const char *label[2];    /* label[1] NULL: one label */
	struct labels keys;
	atomic_uint_least64_t n[METRICS_SLOTS];
};

static const struct {
	const char *name, *help;
} counter_desc[MC_COUNT] = {
	[MC_MESSAGES_STORED] = {"mqchat_archiver_messages_stored_total",
		"Messages stored in archive.db (committed)."},
	[MC_MESSAGES_DUPLICATE] = {"mqchat_archiver_messages_duplicate_total",
		"Messages received again (same sender and id) and not stored twice."},
	[MC_MESSAGES_INVALID] = {"mqchat_archiver_messages_invalid_total",
		"Messages refused as invalid (topic, envelope, size)."},
	[MC_RECEIPTS] = {"mqchat_archiver_receipts_total", "Delivery and read receipts applied."},
	[MC_COMMITS] = {"mqchat_archiver_commits_total", "Batches committed to archive.db."},
	[MC_REQUESTS_REFUSED] = {"mqchat_archiver_requests_refused_total",
		"Requests answered rate_limited at once: the worker's queue was full."},
	[MC_PUSH_QUEUED] = {"mqchat_archiver_push_queued_total", "Push notifications queued."},
	[MC_PUSH_DROPPED] = {"mqchat_archiver_push_dropped_total",
		"Push notifications dropped: the person came online or muted the conversation first."},
	[MC_EXPIRED] = {"mqchat_archiver_expired_total", "Messages deleted past their retention."},
	[MC_SPOOL_RECORDS] = {"mqchat_archiver_spool_records_total",
		"Records read from the node's spool (spool yes)."},
	[MC_REQUESTS_DROPPED] = {"mqchat_archiver_requests_dropped_total",
		"Requests read from the spool while the broker connection was down: not answered."},
};

static const struct {
	const char *name, *help;
	double scale;            /* the value is multiplied by it */
} gauge_desc[MG_COUNT] = {
	[MG_PENDING] = {"mqchat_archiver_pending_messages",
		"Messages in the journal (acknowledged), not yet committed to archive.db.", 1},
	[MG_COMMIT_LAG_MS] = {"mqchat_archiver_commit_lag_seconds",
		"The last batch: from its oldest message's arrival to its commit.", 0.001},
	[MG_BROKER_CONNECTIONS] = {"mqchat_archiver_broker_connections",
		"Broker connections up.", 1},
	[MG_SPOOL_LAG_BYTES] = {"mqchat_archiver_spool_lag_bytes",
		"Bytes in the node's spool the archiver has not consumed yet (spool yes).", 1},
};

static const char *const store_name[MS_COUNT] = {
	[MS_AUTH] = "auth.db", [MS_ARCHIVE] = "archive.db", [MS_PUSH] = "push.db",
};

/* The files whose sizes are shown, in the data folder. */
static const char *const size_files[] = {
	"auth.db", "auth.db-wal", "archive.db", "archive.db-wal", "archive.journal", "push.db",
	"push.db-wal",
};

/* Cumulative $SYS/broker figures (the rest are gauges): mosquitto
 * 2.0's src/sys_tree.c. */
static const char *const broker_counters[] = {
	"bytes/received", "bytes/sent", "messages/received", "messages/sent",
	"publish/bytes/received", "publish/bytes/sent", "publish/messages/received",
	"publish/messages/sent", "publish/messages/dropped", "clients/expired", "uptime",
};

#define PLUGIN_TOPIC "$SYS/mqchat/plugin"
#define BROKER_PREFIX "$SYS/broker/"
/* The plugin's default interval, until two payloads show the real one. */
#define PLUGIN_DEFAULT_GAP_MS 5000
#define PLUGIN_STALE_INTERVALS 3

struct broker_fig {
	char name[96];
	bool counter;
	double v;
};

static struct registry {
	atomic_int_least64_t counter[MC_COUNT];
	atomic_int_least64_t gauge[MG_COUNT];
	struct family fam[MF_COUNT];
	/* RPC latency by op: non-cumulative buckets (the last is +Inf). */
	struct labels ops;
	atomic_uint_least64_t bucket[METRICS_SLOTS][METRICS_RPC_BUCKETS + 1];
	atomic_uint_least64_t sum_ns[METRICS_SLOTS];
	atomic_int store_rc[MS_COUNT];
	atomic_bool broker_up;

	/* From the broker, under sys_mu. */
	pthread_mutex_t sys_mu;
	struct broker_fig fig[METRICS_BROKER_MAX];
	size_t nfig;
	char plugin[METRICS_PLUGIN_MAX];
	size_t plugin_len;
	int64_t plugin_at;       /* mono ms of the last payload; 0: none */
	int64_t plugin_gap;      /* ms between the last two */
	bool plugin_warned;
} reg = {
	.fam = {
		[MF_RPC_ERRORS] = {.name = "mqchat_archiver_rpc_errors_total",
			.help = "RPC answers that were errors, by op and error code.",
			.label = {"op", "code"}, .keys = {.mu = PTHREAD_MUTEX_INITIALIZER}},
		[MF_REGISTRATIONS] = {.name = "mqchat_archiver_registrations_total",
			.help = "Registration requests answered, by result (ok or the error code).",
			.label = {"result", NULL}, .keys = {.mu = PTHREAD_MUTEX_INITIALIZER}},
		[MF_PUSH_SENT] = {.name = "mqchat_archiver_push_sent_total",
			.help = "Push notifications the provider accepted.",
			.label = {"provider", NULL}, .keys = {.mu = PTHREAD_MUTEX_INITIALIZER}},
		[MF_PUSH_FAILED] = {.name = "mqchat_archiver_push_failed_total",
			.help = "Push notifications given up (refused, or retried for too long).",
			.label = {"provider", NULL}, .keys = {.mu = PTHREAD_MUTEX_INITIALIZER}},
		[MF_PUSH_GONE] = {.name = "mqchat_archiver_push_gone_total",
			.help = "Push targets the provider said are gone (removed).",
			.label = {"provider", NULL}, .keys = {.mu = PTHREAD_MUTEX_INITIALIZER}},
	},
	.ops = {.mu = PTHREAD_MUTEX_INITIALIZER},
	.sys_mu = PTHREAD_MUTEX_INITIALIZER,
};

#define RELAXED memory_order_relaxed

/* Copy value into out (METRICS_LABEL_MAX), cut to fit; NULL is "". */
static void label_copy(char *out, const char *value)
{
	snprintf(out, METRICS_LABEL_MAX, "%s", value ? value : "");
}

/* The slot of the label pair (a, b) in l, made the first time. A full
 * table answers its last slot, labelled "other". */
static size_t slot_of(struct labels *l, const char *a, const char *b)
{
	char va[METRICS_LABEL_MAX], vb[METRICS_LABEL_MAX];
	size_t n, i;

	label_copy(va, a);
	label_copy(vb, b);
	n = atomic_load_explicit(&l->used, memory_order_acquire);
	for(i = 0; i < n; i++){
		if(strcmp(l->v[i][0], va) == 0 && strcmp(l->v[i][1], vb) == 0) return i;
	}
	pthread_mutex_lock(&l->mu);
	/* Another thread may have added it meanwhile. */
	n = atomic_load_explicit(&l->used, RELAXED);
	for(i = 0; i < n; i++){
		if(strcmp(l->v[i][0], va) == 0 && strcmp(l->v[i][1], vb) == 0) break;
	}
	if(i == n && n >= METRICS_SLOTS - 1){
		i = METRICS_SLOTS - 1;
		if(n == METRICS_SLOTS - 1){
			label_copy(l->v[i][0], "other");
			label_copy(l->v[i][1], vb[0] ? "other" : "");
			atomic_store_explicit(&l->used, METRICS_SLOTS, memory_order_release);
		}
	}else if(i == n){
		memcpy(l->v[i][0], va, sizeof(va));
		memcpy(l->v[i][1], vb, sizeof(vb));
		atomic_store_explicit(&l->used, n + 1, memory_order_release);
	}
	pthread_mutex_unlock(&l->mu);
	return i;
}

void metrics__add(enum metrics_counter c, int64_t n)
{
	atomic_fetch_add_explicit(&reg.counter[c], n, RELAXED);
}

void metrics__set(enum metrics_gauge g, int64_t v)
{
	atomic_store_explicit(&reg.gauge[g], v, RELAXED);
}

void metrics__count(enum metrics_family f, const char *a, const char *b)
{
	struct family *fm = &reg.fam[f];

	atomic_fetch_add_explicit(&fm->n[slot_of(&fm->keys, a, fm->label[1] ? b : NULL)], 1, RELAXED);
}

void metrics__rpc(const char *op, const char *code, int64_t ns)
{
	size_t s, b;
	double secs;

	if(op == NULL) op = "none";
	if(ns < 0) ns = 0;
	secs = (double)ns / 1e9;
	s = slot_of(&reg.ops, op, NULL);
	for(b = 0; b < METRICS_RPC_BUCKETS && secs > metrics__rpc_bounds[b]; b++){
		/* the first bucket that holds it */
	}
	atomic_fetch_add_explicit(&reg.bucket[s][b], 1, RELAXED);
	atomic_fetch_add_explicit(&reg.sum_ns[s], (uint64_t)ns, RELAXED);
	if(code) metrics__count(MF_RPC_ERRORS, op, code);
}

void metrics__committed(const struct ingest_stats *before, const struct ingest_stats *after,
		int64_t lag_ms)
{
	metrics__add(MC_MESSAGES_STORED, after->stored - before->stored);
	metrics__add(MC_MESSAGES_DUPLICATE, after->duplicates - before->duplicates);
	metrics__add(MC_MESSAGES_INVALID, after->invalid - before->invalid);
	metrics__add(MC_RECEIPTS, after->receipts - before->receipts);
	metrics__add(MC_COMMITS, 1);
	metrics__set(MG_COMMIT_LAG_MS, lag_ms);
	metrics__set(MG_PENDING, 0);
}

void metrics__store_write(enum metrics_store s, int rc)
{
	atomic_store_explicit(&reg.store_rc[s], rc, RELAXED);
}

void metrics__broker_up(bool up)
{
	atomic_store_explicit(&reg.broker_up, up, RELAXED);
}

bool metrics__broker_is_up(void)
{
	return atomic_load_explicit(&reg.broker_up, RELAXED);
}

int metrics__store_last(enum metrics_store s)
{
	return atomic_load_explicit(&reg.store_rc[s], RELAXED);
}

/* ---- $SYS ---- */

bool metrics__broker_name(const char *path, char *out, size_t outlen, bool *counter)
{
	size_t i, n = 0;
	const char *p;
	int w;

	*counter = false;
	if(*path == '\0') return false;
	if(strcmp(path, "uptime") == 0){
		*counter = true;
		return snprintf(out, outlen, "mosquitto_uptime_seconds") < (int)outlen;
	}
	for(i = 0; i < sizeof(broker_counters) / sizeof(broker_counters[0]); i++){
		if(strcmp(path, broker_counters[i]) == 0) *counter = true;
	}
	w = snprintf(out, outlen, "mosquitto_");
	if(w < 0 || (size_t)w >= outlen) return false;
	n = (size_t)w;
	for(p = path; *p; p++){
		char c = *p;

		if(c == '/' || c == ' ' || c == '-') c = '_';
		else if(!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')){
			return false;
		}
		if(n + 1 >= outlen) return false;
		out[n++] = c;
	}
	out[n] = '\0';
	if(*counter && snprintf(out + n, outlen - n, "_total") >= (int)(outlen - n)) return false;
	return true;
}

bool metrics__broker_value(const void *payload, size_t len, double *out)
{
	char buf[64], *end;
	size_t n;
	double v;

	if(len == 0 || len >= sizeof(buf)) return false;
	memcpy(buf, payload, len);
	buf[len] = '\0';
	/* Decimal only: strtod would take "inf", "nan", hex and exponents
	 * too. */
	n = strspn(buf, "-.0123456789");
	if(n == 0 || (buf[n] != '\0' && strcmp(buf + n, " seconds") != 0)) return false;
	v = strtod(buf, &end);
	if(end != buf + n) return false;
	if(!isfinite(v)) return false;
	*out = v;
	return true;
}

/* Does line[0..len) start with s? */
static bool starts(const char *line, size_t len, const char *s)
{
	size_t n = strlen(s);

	return len >= n && memcmp(line, s, n) == 0;
}

/* Is line[0..len) (a whole line less its '\n') about mqchat_plugin_up,
 * the archiver's own? */
static bool names_up(const char *line, size_t len)
{
	static const char up[] = "mqchat_plugin_up";
	size_t n = sizeof(up) - 1;

	if(starts(line, len, "# HELP ") || starts(line, len, "# TYPE ")){
		line += 7;
		len -= 7;
	}
	return len >= n && memcmp(line, up, n) == 0 && (len == n || line[n] == ' ' || line[n] == '{');
}

bool metrics__plugin_valid(const void *payload, size_t len)
{
	const char *p = payload, *end = p + len;

	if(len == 0 || p[len - 1] != '\n') return false;
	while(p < end){
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *q;
		size_t n = (size_t)(nl - p);

		for(q = p; q < nl; q++){
			if(*q < 0x20 || *q > 0x7e) return false;
		}
		if(starts(p, n, "# HELP ") || starts(p, n, "# TYPE ")){
			if(!starts(p + 7, n - 7, "mqchat_plugin_")) return false;
		}else if(!starts(p, n, "mqchat_plugin_") && !starts(p, n, "# ")){
			return false;
		}
		if(names_up(p, n)) return false;
		p = nl + 1;
	}
	return true;
}

/* Keep the figure name = v (under sys_mu). */
static void broker_keep(const char *name, bool counter, double v)
{
	size_t i;

	for(i = 0; i < reg.nfig; i++){
		if(strcmp(reg.fig[i].name, name) == 0) break;
	}
	if(i == reg.nfig){
		if(reg.nfig == METRICS_BROKER_MAX) return;
		snprintf(reg.fig[i].name, sizeof(reg.fig[i].name), "%s", name);
		reg.nfig++;
	}
	reg.fig[i].counter = counter;
	reg.fig[i].v = v;
}

void metrics__sys_message(const char *topic, const void *payload, size_t len, int64_t now)
{
	char name[96];
	bool counter;
	double v;

	if(strcmp(topic, PLUGIN_TOPIC) == 0){
		if(len > METRICS_PLUGIN_MAX || !metrics__plugin_valid(payload, len)){
			pthread_mutex_lock(&reg.sys_mu);
			if(!reg.plugin_warned){
				log_warnx("metrics: a payload on %s that is not the plugin's figures (%zu bytes)"
						" is left out (said once)", PLUGIN_TOPIC, len);
			}
			reg.plugin_warned = true;
			pthread_mutex_unlock(&reg.sys_mu);
			return;
		}
		pthread_mutex_lock(&reg.sys_mu);
		memcpy(reg.plugin, payload, len);
		reg.plugin_len = len;
		if(reg.plugin_at > 0 && now > reg.plugin_at) reg.plugin_gap = now - reg.plugin_at;
		reg.plugin_at = now > 0 ? now : 1;
		pthread_mutex_unlock(&reg.sys_mu);
		return;
	}
	if(strncmp(topic, BROKER_PREFIX, strlen(BROKER_PREFIX)) != 0) return;
	if(!metrics__broker_value(payload, len, &v)) return;
	if(!metrics__broker_name(topic + strlen(BROKER_PREFIX), name, sizeof(name), &counter)) return;
	pthread_mutex_lock(&reg.sys_mu);
	broker_keep(name, counter, v);
	pthread_mutex_unlock(&reg.sys_mu);
}

void metrics__broker_forget(void)
{
	pthread_mutex_lock(&reg.sys_mu);
	reg.nfig = 0;
	pthread_mutex_unlock(&reg.sys_mu);
}

/* ---- rendering ---- */

void metrics_buf__printf(struct metrics_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if(b->failed) return;
	for(;;){
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if(n < 0){
			b->failed = true;
			return;
		}
		if((size_t)n < room){
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 16384;
		while(cap - b->len <= (size_t)n) cap *= 2;
		char *p = realloc(b->p, cap);
		if(p == NULL){
			if(b->p) b->p[b->len] = '\0';
			b->failed = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

void metrics_buf__free(struct metrics_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

void metrics__escape(const char *value, char *out, size_t outlen)
{
	size_t n = 0;
	const char *p;

	if(outlen == 0) return;
	for(p = value; *p; p++){
		const char *e = NULL;

		if(*p == '\\') e = "\\\\";
		else if(*p == '"') e = "\\\"";
		else if(*p == '\n') e = "\\n";
		if(e){
			if(n + 2 >= outlen) break;
			out[n++] = e[0];
			out[n++] = e[1];
		}else{
			if(n + 1 >= outlen) break;
			out[n++] = *p;
		}
	}
	out[n] = '\0';
}

static void head(struct metrics_buf *b, const char *name, const char *help, const char *type)
{
	metrics_buf__printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_family(struct metrics_buf *b, struct family *f)
{
	size_t n = atomic_load_explicit(&f->keys.used, memory_order_acquire), i;
	char e0[2 * METRICS_LABEL_MAX], e1[2 * METRICS_LABEL_MAX];

	head(b, f->name, f->help, "counter");
	for(i = 0; i < n; i++){
		uint64_t v = atomic_load_explicit(&f->n[i], RELAXED);

		metrics__escape(f->keys.v[i][0], e0, sizeof(e0));
		if(f->label[1]){
			metrics__escape(f->keys.v[i][1], e1, sizeof(e1));
			metrics_buf__printf(b, "%s{%s=\"%s\",%s=\"%s\"} %llu\n", f->name, f->label[0], e0,
					f->label[1], e1, (unsigned long long)v);
		}else{
			metrics_buf__printf(b, "%s{%s=\"%s\"} %llu\n", f->name, f->label[0], e0,
					(unsigned long long)v);
		}
	}
}

static void render_rpc(struct metrics_buf *b)
{
	static const char name[] = "mqchat_archiver_rpc_seconds";
	size_t n = atomic_load_explicit(&reg.ops.used, memory_order_acquire), i, k;
	char op[2 * METRICS_LABEL_MAX];

	head(b, name, "RPC requests, from their arrival at the archiver to their answer, by op.",
			"histogram");
	for(i = 0; i < n; i++){
		uint64_t cum = 0;

		metrics__escape(reg.ops.v[i][0], op, sizeof(op));
		for(k = 0; k <= METRICS_RPC_BUCKETS; k++){
			cum += atomic_load_explicit(&reg.bucket[i][k], RELAXED);
			if(k < METRICS_RPC_BUCKETS){
				metrics_buf__printf(b, "%s_bucket{op=\"%s\",le=\"%g\"} %llu\n", name, op,
						metrics__rpc_bounds[k], (unsigned long long)cum);
			}else{
				metrics_buf__printf(b, "%s_bucket{op=\"%s\",le=\"+Inf\"} %llu\n", name, op,
						(unsigned long long)cum);
			}
		}
		/* _count is the +Inf bucket as read, so the two always agree. */
		metrics_buf__printf(b, "%s_sum{op=\"%s\"} %.9f\n%s_count{op=\"%s\"} %llu\n", name, op,
				(double)atomic_load_explicit(&reg.sum_ns[i], RELAXED) / 1e9, name, op,
				(unsigned long long)cum);
	}
}

static void render_files(struct metrics_buf *b, const char *datadir)
{
	static const char name[] = "mqchat_archiver_file_size_bytes";
	size_t i;

	head(b, name, "Size of the stores, their write-ahead logs and the journal in the data folder.",
			"gauge");
	for(i = 0; i < sizeof(size_files) / sizeof(size_files[0]); i++){
		char path[4200];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", datadir, size_files[i]);
		if(stat(path, &st) != 0) continue;
		metrics_buf__printf(b, "%s{file=\"%s\"} %lld\n", name, size_files[i], (long long)st.st_size);
	}
}

/* The broker's figures and the plugin's payload, copied under the lock. */
static void render_sys(struct metrics_buf *b, int64_t now)
{
	int64_t gap, at;
	bool fresh;
	size_t i;

	pthread_mutex_lock(&reg.sys_mu);
	for(i = 0; i < reg.nfig; i++){
		const struct broker_fig *f = &reg.fig[i];

		metrics_buf__printf(b, "# TYPE %s %s\n%s %.17g\n", f->name, f->counter ? "counter" : "gauge",
				f->name, f->v);
	}
	at = reg.plugin_at;
	gap = reg.plugin_gap > 0 ? reg.plugin_gap : PLUGIN_DEFAULT_GAP_MS;
	fresh = at > 0 && now - at <= PLUGIN_STALE_INTERVALS * gap;
	if(fresh) metrics_buf__printf(b, "%.*s", (int)reg.plugin_len, reg.plugin);
	pthread_mutex_unlock(&reg.sys_mu);
	head(b, "mqchat_plugin_up", "1 while the plugin's figures are fresh (its last payload is younger"
			" than 3 of its intervals), else 0 and they are left out.", "gauge");
	metrics_buf__printf(b, "mqchat_plugin_up %d\n", fresh ? 1 : 0);
}

void metrics__render(struct metrics_buf *b, const char *datadir, int64_t now)
{
	size_t i;

	for(i = 0; i < MC_COUNT; i++){
		head(b, counter_desc[i].name, counter_desc[i].help, "counter");
		metrics_buf__printf(b, "%s %lld\n", counter_desc[i].name,
				(long long)atomic_load_explicit(&reg.counter[i], RELAXED));
	}
	for(i = 0; i < MG_COUNT; i++){
		int64_t v = atomic_load_explicit(&reg.gauge[i], RELAXED);

		head(b, gauge_desc[i].name, gauge_desc[i].help, "gauge");
		if(gauge_desc[i].scale == 1) metrics_buf__printf(b, "%s %lld\n", gauge_desc[i].name, (long long)v);
		else metrics_buf__printf(b, "%s %g\n", gauge_desc[i].name, (double)v * gauge_desc[i].scale);
	}
	head(b, "mqchat_archiver_broker_up", "1 while the archiver's connection 0 to the broker is up.",
			"gauge");
	metrics_buf__printf(b, "mqchat_archiver_broker_up %d\n", metrics__broker_is_up() ? 1 : 0);
	head(b, "mqchat_archiver_store_write_ok", "1 if the archiver's last write to the store succeeded.",
			"gauge");
	for(i = 0; i < MS_COUNT; i++){
		metrics_buf__printf(b, "mqchat_archiver_store_write_ok{file=\"%s\"} %d\n", store_name[i],
				metrics__store_last((enum metrics_store)i) == MQC_OK ? 1 : 0);
	}
	for(i = 0; i < MF_COUNT; i++) render_family(b, &reg.fam[i]);
	render_rpc(b);
	render_files(b, datadir);
	render_sys(b, now);
}

/* ---- tests ---- */

static void labels_reset(struct labels *l)
{
	pthread_mutex_lock(&l->mu);
	atomic_store(&l->used, 0);
	memset(l->v, 0, sizeof(l->v));
	pthread_mutex_unlock(&l->mu);
}

void metrics__reset(void)
{
	size_t i, k;

	for(i = 0; i < MC_COUNT; i++) atomic_store(&reg.counter[i], 0);
	for(i = 0; i < MG_COUNT; i++) atomic_store(&reg.gauge[i], 0);
	for(i = 0; i < MF_COUNT; i++){
		labels_reset(&reg.fam[i].keys);
		for(k = 0; k < METRICS_SLOTS; k++) atomic_store(&reg.fam[i].n[k], 0);
	}
	labels_reset(&reg.ops);
	for(i = 0; i < METRICS_SLOTS; i++){
		for(k = 0; k <= METRICS_RPC_BUCKETS; k++) atomic_store(&reg.bucket[i][k], 0);
		atomic_store(&reg.sum_ns[i], 0);
	}
	for(i = 0; i < MS_COUNT; i++) atomic_store(&reg.store_rc[i], MQC_OK);
	atomic_store(&reg.broker_up, false);
	pthread_mutex_lock(&reg.sys_mu);
	reg.nfig = 0;
	reg.plugin_len = 0;
	reg.plugin_at = 0;
	reg.plugin_gap = 0;
	reg.plugin_warned = false;
	pthread_mutex_unlock(&reg.sys_mu);
}
