/* archive_store.h - what an archive backend implements (see archive.h and
 * archive_ext.h).
 *
 * archive_ops.c checks nothing and adds nothing: each archive__* call on
 * a handle goes to the function of the same name in ar->ops, with the
 * same arguments, and returns its answer, so every backend gives the
 * meanings and MQC_ERR_* codes the headers document. A backend's open
 * fills a struct that begins with struct archive (ops set before
 * anything can fail: a failed open closes through them); the feed the
 * same with struct archive_feed. Only backends and their tests include
 * this file.
 *
 * Two backends: SQLite (archive.c, archive_edit.c, archive_search.c,
 * archive_feed.c: the file archive.db) and PostgreSQL (archive_pg.c, in
 * the module mqchat_store_pg.so, loaded when DATA/store.conf says `store
 * postgresql`: schema archive). What only SQLite has (checkpoints, the
 * FTS watermark) is a no-op on PostgreSQL where that keeps its meaning. */
#ifndef MQCHAT_ARCHIVE_STORE_H
#define MQCHAT_ARCHIVE_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "archive.h"
#include "archive_ext.h"
#include "err.h"

struct archive_ops {
	void (*close)(struct archive *ar);
	int (*begin)(struct archive *ar);
	int (*commit)(struct archive *ar);
	void (*rollback)(struct archive *ar);
	const char *(*errmsg)(struct archive *ar);
	int (*batch_begin)(struct archive *ar);
	int (*batch_commit)(struct archive *ar);
	void (*batch_rollback)(struct archive *ar);
	int (*store)(struct archive *ar, const struct archive_msg *m, archive_created_fn created_of,
		void *arg, bool *stored);
	int (*receipt)(struct archive *ar, const char *orig_sender, const char *ref,
		const char *reader, const char *status, archive_created_fn created_of, void *arg,
		bool *updated);
	int (*start_checkpointer)(struct archive *ar, int interval_ms);
	int (*count_invalid)(struct archive *ar, int64_t n);
	int (*probe)(struct archive *ar);
	json_t *(*history)(struct archive *ar, const char *conv, int64_t since_ms, int64_t before,
		int limit, bool *more);
	json_t *(*get)(struct archive *ar, int64_t seq);
	int (*seq_floor)(struct archive *ar, int64_t since_ms, int64_t *floor);
	int (*dm_convs)(struct archive *ar, const char *user, int64_t min_seq, int64_t before,
		int (*fn)(const struct archive_conv *c, void *arg), void *arg);
	int (*conv_get)(struct archive *ar, const char *user, const char *conv, struct archive_conv *out);
	int (*text_n_at)(struct archive *ar, const char *conv, int64_t seq, int64_t *n);
	int (*conv_target)(struct archive *ar, const char *conv, int64_t seq, const char *of,
		const char *ref, int64_t since_ms, int64_t *found);
	int (*read_set)(struct archive *ar, const char *user, const char *conv, const char *peer,
		const char *room, int64_t seq, int64_t n);
	json_t *(*sync)(struct archive *ar, const char *user, int64_t user_since,
		const struct archive_room *rooms, size_t nrooms, int64_t after, int limit, bool changes,
		bool *more);
	int (*expire_step)(struct archive *ar, const char *conv,
		const char *const *skip_rooms, size_t nskip, int64_t cutoff_ms, int max_scan,
		int64_t *cursor, int64_t *deleted, bool *done);
	int (*index_step)(struct archive *ar, int max_rows, int64_t *left);
	int (*index_mark)(struct archive *ar, int64_t *mark);
	int (*purge)(struct archive *ar, int64_t cutoff_ms, int64_t *deleted);
	int (*erase_user)(struct archive *ar, const char *user, int64_t since_ms, int64_t *deleted);
	json_t *(*stats)(struct archive *ar);
	json_t *(*export_page)(struct archive *ar, const char *user, int64_t since_ms, int64_t after,
		int limit, bool *more);
	int (*text_find)(struct archive *ar, const char *sender, const char *id, const char *room,
		struct archive_text *t);
	int (*text_edit)(struct archive *ar, const struct archive_text *t, const char *body,
		const char *row_id, int64_t now, int64_t *seq);
	int (*text_delete)(struct archive *ar, const struct archive_text *t, const char *who,
		const char *row_id, int64_t now, int64_t *seq);
	json_t *(*search)(struct archive *ar, const struct archive_search *q, bool *more, int64_t *next);
};

struct archive {
	const struct archive_ops *ops;
};

struct archive_feed_ops {
	void (*close)(struct archive_feed *f);
	int (*end)(struct archive_feed *f, int64_t *seq);
	int (*each)(struct archive_feed *f, int64_t after, int max,
		int (*cb)(const struct archive_feed_row *row, void *arg), void *arg);
	int (*body)(struct archive_feed *f, int64_t seq,
		int (*cb)(const char *body, void *arg), void *arg);
	const char *(*errmsg)(struct archive_feed *f);
};

struct archive_feed {
	const struct archive_feed_ops *ops;
};

/* The SQLite backend: path is the file. */
int archive_sqlite__open(const char *path, struct archive **out, char *err, size_t errlen);
int archive_sqlite__feed_open(const char *path, struct archive_feed **out, char *err, size_t errlen);
const char *archive_sqlite__writable(const char *path, int busy_ms, char *why, size_t whylen);
int archive_sqlite__text_find(struct archive *ar, const char *sender, const char *id,
		const char *room, struct archive_text *t);
int archive_sqlite__text_edit(struct archive *ar, const struct archive_text *t, const char *body,
		const char *row_id, int64_t now, int64_t *seq);
int archive_sqlite__text_delete(struct archive *ar, const struct archive_text *t, const char *who,
		const char *row_id, int64_t now, int64_t *seq);
json_t *archive_sqlite__search(struct archive *ar, const struct archive_search *q, bool *more,
		int64_t *next);

/* The PostgreSQL backend (archive_pg.c, in the module mqchat_store_pg.so
 * that archive_ops.c loads): conf is DATA/store.conf. */
struct store_conf;
typedef int archive_pg_open_fn(const struct store_conf *conf, struct archive **out, char *err,
		size_t errlen);
typedef int archive_pg_feed_open_fn(const struct store_conf *conf, struct archive_feed **out,
		char *err, size_t errlen);
typedef const char *archive_pg_writable_fn(const struct store_conf *conf, int busy_ms, char *why,
		size_t whylen);
/* ---- the rules both backends apply ---- */

/* The rank of a delivery status: sent 0, delivered 1, read 2; -1 for
 * none or another word. */
static inline int archive_store__status_rank(const char *st)
{
	if(st == NULL) return -1;
	if(strcmp(st, "sent") == 0) return 0;
	if(strcmp(st, "delivered") == 0) return 1;
	if(strcmp(st, "read") == 0) return 2;
	return -1;
}

/* Whether reader's receipt may set status on a message sent to recipient
 * (NULL: a room's) whose status is now cur. A room message keeps its
 * status: one member's receipt says nothing of the others (archive.h). A
 * status is never lowered. */
static inline bool archive_store__receipt_may(const char *recipient, const char *cur,
		const char *reader, const char *status)
{
	return recipient != NULL && strcmp(recipient, reader) == 0
		&& archive_store__status_rank(cur) < archive_store__status_rank(status);
}

/* The reader's name may have had another holder, whose message this is:
 * only the holder it was sent to (at server_ts) may mark it. *holder
 * (true without created_of): MQC_OK, or created_of's failure. */
static inline int archive_store__sent_to_holder(const char *reader, int64_t server_ts,
		archive_created_fn created_of, void *arg, bool *holder)
{
	int64_t created;
	int rc;

	*holder = true;
	if(created_of == NULL) return MQC_OK;
	rc = created_of(reader, &created, arg);
	*holder = rc == MQC_OK && server_ts >= created;
	return rc == MQC_ERR_NOTFOUND ? MQC_OK : rc;
}

/* The body column of a row of type into o: a membership event's members
 * (its body holds them as a JSON object: event, user, by), any other
 * message's "body" (len bytes). Non-zero if out of memory. */
static inline int archive_store__body_to_json(json_t *o, const char *type, const char *body, size_t len)
{
	static const char *const keys[] = {"event", "user", "by"};
	json_t *ev;

	if(type == NULL || strcmp(type, ARCHIVE_TYPE_EVENT) != 0){
		return json_object_set_new(o, "body", json_stringn(body ? body : "", body ? len : 0));
	}
	ev = json_loadb(body ? body : "{}", body ? len : 2, 0, NULL);
	if(!json_is_object(ev)){
		/* Only the archiver writes these: cannot happen, but say nothing
		 * rather than something wrong. */
		json_decref(ev);
		return 0;
	}
	for(size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++){
		json_t *v = json_object_get(ev, keys[i]);

		if(json_is_string(v) && json_object_set(o, keys[i], v)){
			json_decref(ev);
			return -1;
		}
	}
	json_decref(ev);
	return 0;
}

/* Add user's reaction emoji to *arr, the "reactions" form
 * [{"emoji","users"}] (made on the first): emojis in the order of their
 * first reaction, users in the order they reacted. Non-zero if out of
 * memory. */
static inline int archive_store__reaction_add(json_t **arr, const char *emoji, const char *user)
{
	json_t *e = NULL;
	size_t i;

	if(*arr == NULL && (*arr = json_array()) == NULL) return -1;
	for(i = 0; e == NULL && i < json_array_size(*arr); i++){
		json_t *x = json_array_get(*arr, i);

		if(strcmp(json_string_value(json_object_get(x, "emoji")), emoji) == 0) e = x;
	}
	if(e == NULL){
		e = json_pack("{sss[]}", "emoji", emoji, "users");
		if(e == NULL || json_array_append_new(*arr, e)) return -1;
	}
	return json_array_append_new(json_object_get(e, "users"), json_string(user));
}

archive_pg_open_fn archive_pg__open;
archive_pg_feed_open_fn archive_pg__feed_open;
archive_pg_writable_fn archive_pg__writable;

#endif
