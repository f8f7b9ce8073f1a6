/* push_store_backend.h - what a push store backend implements (see
 * push_store.h).
 *
 * push_store.c checks the arguments every backend would check (names,
 * providers, NULLs), makes a webhook's secret, and sends each call to the
 * function of the same name in ps->ops, which gives the meanings and
 * MQC_ERR_* codes push_store.h documents. A backend's open fills a struct
 * that begins with struct push_store (ops set before anything can fail: a
 * failed open closes through them). Only backends and their tests include
 * this file; the PostgreSQL backend is in the module mqchat_store_pg.so,
 * which carries no archiver code, so what both need is inline here. */
#ifndef MQCHAT_PUSH_STORE_BACKEND_H
#define MQCHAT_PUSH_STORE_BACKEND_H

#include <string.h>

#include "err.h"
#include "push_store.h"

struct push_store_ops {
	void (*close)(struct push_store *ps);
	int (*set_busy_ms)(struct push_store *ps, int ms);
	/* provider: push_store__provider_name's; data: compact JSON text;
	 * secret: made by push_store.c ("" unless a webhook). */
	int (*target_set)(struct push_store *ps, const char *user, const char *device,
		const char *provider, const char *data, const char *secret, int64_t now_ms);
	/* device NULL: all; except: every one but device. */
	int (*target_remove)(struct push_store *ps, const char *user, const char *device, bool except,
		int *removed);
	int (*user_forget)(struct push_store *ps, const char *user);
	int (*targets_json)(struct push_store *ps, const char *user, json_t **out);
	int (*targets)(struct push_store *ps, const char *user, struct push_target **out, int *n);
	int (*target_count)(struct push_store *ps, const char *user, int *n);
	int (*target_result)(struct push_store *ps, const char *user, const char *device, bool ok,
		int64_t now_ms);
	int (*mute)(struct push_store *ps, const char *user, const char *conv, int64_t until_ms);
	int (*unmute)(struct push_store *ps, const char *user, const char *conv);
	int (*mutes_json)(struct push_store *ps, const char *user, int64_t now_ms, json_t **out);
	bool (*muted)(struct push_store *ps, const char *user, const char *conv, int64_t now_ms);
	int (*previews_set)(struct push_store *ps, const char *user, bool on);
	bool (*previews)(struct push_store *ps, const char *user);
	int (*enqueue)(struct push_store *ps, const char *user, const char *device, const char *conv,
		int64_t seq, const char *msg_id, const char *sender, const char *preview, int64_t due_ms);
	int (*due)(struct push_store *ps, int64_t now_ms, struct push_job *jobs, int max, int *n);
	int (*next_due)(struct push_store *ps, int64_t *due_ms);
	int (*job_done)(struct push_store *ps, int64_t id);
	int (*job_sent)(struct push_store *ps, const struct push_job *j);
	int (*job_retry)(struct push_store *ps, int64_t id, int64_t due_ms);
	int (*jobs_drop)(struct push_store *ps, const char *user, const char *conv);
	int (*begin)(struct push_store *ps);
	int (*commit)(struct push_store *ps);
	void (*rollback)(struct push_store *ps);
	int (*cursor)(struct push_store *ps, int64_t *seq);
	int (*set_cursor)(struct push_store *ps, int64_t seq);
};

struct push_store {
	const struct push_store_ops *ops;
};

/* The providers' names in the store (push_store__provider_name). */
static const char *const push_store_provider_names[] = {
	[PUSH_WEBPUSH] = "webpush",
	[PUSH_FCM] = "fcm",
	[PUSH_APNS] = "apns",
	[PUSH_WEBHOOK] = "webhook",
};
#define PUSH_STORE_NPROVIDERS (int)(sizeof(push_store_provider_names) / sizeof(push_store_provider_names[0]))

static inline int push_store_provider_parse(const char *name)
{
	int i;

	for(i = 1; name && i < PUSH_STORE_NPROVIDERS; i++){
		if(strcmp(name, push_store_provider_names[i]) == 0) return i;
	}
	return 0;
}

/* The lists' rows, as push_store.h gives them, the same from every
 * backend: append a target's to arr; MQC_OK or MQC_ERR_NOMEM. */
static inline int push_store_target_append(json_t *arr, const char *device, const char *provider,
		int64_t created, int64_t last_ok, int64_t failures)
{
	json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I}", "device", device, "provider", provider,
			"created", (json_int_t)created, "last_ok", (json_int_t)last_ok,
			"failures", (json_int_t)failures);

	return o == NULL || json_array_append_new(arr, o) ? MQC_ERR_NOMEM : MQC_OK;
}

/* A mute's, conv "d:<peer>" or "r:<room>"; anything else is not ours to
 * show and is skipped. */
static inline int push_store_mute_append(json_t *arr, const char *conv, int64_t until)
{
	json_t *o;

	if(conv == NULL || (conv[0] != 'd' && conv[0] != 'r') || conv[1] != ':') return MQC_OK;
	o = json_pack("{s:s, s:I}", conv[0] == 'd' ? "with" : "room", conv + 2, "until", (json_int_t)until);
	return o == NULL || json_array_append_new(arr, o) ? MQC_ERR_NOMEM : MQC_OK;
}

/* The SQLite backend (archiver/push_store_sqlite.c): DATADIR/push.db. */
int push_store_sqlite__open(const char *datadir, struct push_store **out, char *err, size_t errlen);
const char *push_store_sqlite__writable(const char *path, int busy_ms, char *why, size_t whylen);

/* The PostgreSQL backend (archiver/push_store_pg.c, in the module
 * mqchat_store_pg.so that push_store.c loads): conf is DATA/store.conf. */
struct store_conf;
typedef int push_store_pg_open_fn(const struct store_conf *conf, struct push_store **out,
		char *err, size_t errlen);
push_store_pg_open_fn push_store_pg__open;
typedef const char *push_store_pg_writable_fn(const struct store_conf *conf, int busy_ms, char *why,
		size_t whylen);
push_store_pg_writable_fn push_store_pg__writable;

#endif
