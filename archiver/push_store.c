/* push_store.c - the push store's calls, each sent to the backend chosen
 * at open (push_store_backend.h), and the checks and names that need no
 * store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "err.h"
#include "push_store.h"
#include "push_store_backend.h"
#include "rand.h"
#include "store_conf.h"

/* The backend is the data folder's (common/store_conf.h). */
int push_store__open(const char *datadir, struct push_store **out, char *err, size_t errlen)
{
	struct store_conf conf;
	push_store_pg_open_fn *pg_open;
	int rc;

	*out = NULL;
	if(datadir == NULL) return push_store_sqlite__open(datadir, out, err, errlen);
	rc = store_conf__read(datadir, &conf, err, errlen);
	if(rc != MQC_OK) return rc;
	if(conf.kind == STORE_SQLITE) return push_store_sqlite__open(datadir, out, err, errlen);
	pg_open = (push_store_pg_open_fn *)store_conf__pg_symbol("push_store_pg__open", err, errlen);
	return pg_open ? pg_open(&conf, out, err, errlen) : MQC_ERR_IO;
}

void push_store__close(struct push_store *ps)
{
	if(ps != NULL) ps->ops->close(ps);
}

/* path is DATA/push.db: on PostgreSQL the folder's store.conf names the
 * store instead. */
const char *push_store__writable(const char *path, int busy_ms, char *why, size_t whylen)
{
	struct store_conf conf;
	push_store_pg_writable_fn *pg_writable;
	char dir[4096];

	store_conf__dir_of(path, dir, sizeof(dir));
	if(store_conf__read(dir, &conf, why, whylen) != MQC_OK) return why;
	if(conf.kind == STORE_SQLITE) return push_store_sqlite__writable(path, busy_ms, why, whylen);
	pg_writable = (push_store_pg_writable_fn *)store_conf__pg_symbol("push_store_pg__writable", why,
			whylen);
	return pg_writable ? pg_writable(&conf, busy_ms, why, whylen) : why;
}

int push_store__set_busy_ms(struct push_store *ps, int ms)
{
	return ps->ops->set_busy_ms(ps, ms);
}

/* ---- providers ---- */

const char *push_store__provider_name(enum push_provider p)
{
	if((int)p <= 0 || (int)p >= PUSH_STORE_NPROVIDERS) return "unknown";
	return push_store_provider_names[p];
}

int push_store__provider_parse(const char *name)
{
	return push_store_provider_parse(name);
}

/* ---- targets ---- */

/* A webhook's secret: base64url (no padding) of 32 random bytes, 43
 * characters, into out (at least 64 bytes). */
static int make_secret(char out[64])
{
	unsigned char raw[32], b64[48];
	int i, n, rc = rand__bytes(raw, sizeof(raw));

	if(rc != MQC_OK) return rc;
	n = EVP_EncodeBlock(b64, raw, (int)sizeof(raw));
	while(n > 0 && b64[n - 1] == '=') n--;
	for(i = 0; i < n; i++){
		out[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : (char)b64[i];
	}
	out[n] = '\0';
	OPENSSL_cleanse(raw, sizeof(raw));
	return MQC_OK;
}

int push_store__target_set(struct push_store *ps, const char *user, const char *device,
		enum push_provider p, json_t *data, char *secret, int64_t now_ms)
{
	char made[64] = "";
	char *text;
	int rc;

	if(secret) secret[0] = '\0';
	if(!names__valid_str(user) || device == NULL || !names__valid_device(device, strlen(device))
			|| push_store__provider_parse(push_store__provider_name(p)) == 0 || !json_is_object(data)){
		return MQC_ERR_INVAL;
	}
	if(p == PUSH_WEBHOOK && (rc = make_secret(made)) != MQC_OK) return rc;
	text = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS);
	if(text == NULL) return MQC_ERR_NOMEM;
	rc = ps->ops->target_set(ps, user, device, push_store__provider_name(p), text, made, now_ms);
	free(text);
	if(rc == MQC_OK && secret) memcpy(secret, made, sizeof(made));
	OPENSSL_cleanse(made, sizeof(made));
	return rc;
}

int push_store__target_remove(struct push_store *ps, const char *user, const char *device,
		int *removed)
{
	if(removed) *removed = 0;
	if(user == NULL) return MQC_ERR_INVAL;
	return ps->ops->target_remove(ps, user, device, false, removed);
}

int push_store__target_remove_others(struct push_store *ps, const char *user, const char *keep,
		int *removed)
{
	if(removed) *removed = 0;
	if(user == NULL) return MQC_ERR_INVAL;
	return ps->ops->target_remove(ps, user, keep, true, removed);
}

int push_store__user_forget(struct push_store *ps, const char *user)
{
	if(user == NULL) return MQC_ERR_INVAL;
	return ps->ops->user_forget(ps, user);
}

int push_store__targets_json(struct push_store *ps, const char *user, json_t **out)
{
	*out = NULL;
	return ps->ops->targets_json(ps, user, out);
}

int push_store__targets(struct push_store *ps, const char *user, struct push_target **out, int *n)
{
	*out = NULL;
	*n = 0;
	return ps->ops->targets(ps, user, out, n);
}

void push_store__target_free(struct push_target *t)
{
	if(t == NULL) return;
	json_decref(t->data);
	t->data = NULL;
	OPENSSL_cleanse(t->secret, sizeof(t->secret));
}

int push_store__target_count(struct push_store *ps, const char *user, int *n)
{
	*n = 0;
	return ps->ops->target_count(ps, user, n);
}

int push_store__target_result(struct push_store *ps, const char *user, const char *device, bool ok,
		int64_t now_ms)
{
	return ps->ops->target_result(ps, user, device, ok, now_ms);
}

/* ---- mutes and previews ---- */

int push_store__mute(struct push_store *ps, const char *user, const char *conv, int64_t until_ms)
{
	if(conv == NULL || until_ms < 0) return MQC_ERR_INVAL;
	return ps->ops->mute(ps, user, conv, until_ms);
}

int push_store__unmute(struct push_store *ps, const char *user, const char *conv)
{
	if(conv == NULL) return MQC_ERR_INVAL;
	return ps->ops->unmute(ps, user, conv);
}

int push_store__mutes_json(struct push_store *ps, const char *user, int64_t now_ms, json_t **out)
{
	*out = NULL;
	return ps->ops->mutes_json(ps, user, now_ms, out);
}

bool push_store__muted(struct push_store *ps, const char *user, const char *conv, int64_t now_ms)
{
	return conv != NULL && ps->ops->muted(ps, user, conv, now_ms);
}

int push_store__previews_set(struct push_store *ps, const char *user, bool on)
{
	return ps->ops->previews_set(ps, user, on);
}

bool push_store__previews(struct push_store *ps, const char *user)
{
	return ps->ops->previews(ps, user);
}

/* ---- the queue ---- */

int push_store__enqueue(struct push_store *ps, const char *user, const char *device,
		const char *conv, int64_t seq, const char *msg_id, const char *sender,
		const char *preview, int64_t due_ms)
{
	if(user == NULL || device == NULL || conv == NULL || msg_id == NULL || sender == NULL){
		return MQC_ERR_INVAL;
	}
	return ps->ops->enqueue(ps, user, device, conv, seq, msg_id, sender, preview, due_ms);
}

int push_store__due(struct push_store *ps, int64_t now_ms, struct push_job *jobs, int max, int *n)
{
	*n = 0;
	if(max <= 0) return MQC_OK;
	return ps->ops->due(ps, now_ms, jobs, max, n);
}

void push_store__job_free(struct push_job *j)
{
	if(j == NULL) return;
	free(j->preview);
	j->preview = NULL;
}

int push_store__next_due(struct push_store *ps, int64_t *due_ms)
{
	*due_ms = 0;
	return ps->ops->next_due(ps, due_ms);
}

int push_store__job_done(struct push_store *ps, int64_t id)
{
	return ps->ops->job_done(ps, id);
}

int push_store__job_sent(struct push_store *ps, const struct push_job *j)
{
	return ps->ops->job_sent(ps, j);
}

int push_store__job_retry(struct push_store *ps, int64_t id, int64_t due_ms)
{
	return ps->ops->job_retry(ps, id, due_ms);
}

int push_store__jobs_drop(struct push_store *ps, const char *user, const char *conv)
{
	return ps->ops->jobs_drop(ps, user, conv);
}

/* ---- transactions and the cursor ---- */

int push_store__begin(struct push_store *ps)
{
	return ps->ops->begin(ps);
}

int push_store__commit(struct push_store *ps)
{
	return ps->ops->commit(ps);
}

void push_store__rollback(struct push_store *ps)
{
	ps->ops->rollback(ps);
}

int push_store__cursor(struct push_store *ps, int64_t *seq)
{
	*seq = 0;
	return ps->ops->cursor(ps, seq);
}

int push_store__set_cursor(struct push_store *ps, int64_t seq)
{
	return ps->ops->set_cursor(ps, seq);
}
