/* archive_ops.c - the archive's calls, each sent to the backend chosen at
 * open (archive_store.h): SQLite's file archive.db, or PostgreSQL's
 * schema archive when the data folder's store.conf says so, as for the
 * user store (common/store_conf.h). */
#include <stdio.h>

#include "archive.h"
#include "archive_ext.h"
#include "archive_store.h"
#include "err.h"
#include "store_conf.h"

/* The data folder's backend (path's folder): MQC_OK with *conf, or the
 * reason store.conf cannot be read. */
static int conf_of(const char *path, struct store_conf *conf, char *err, size_t errlen)
{
	char dir[4096];

	store_conf__dir_of(path, dir, sizeof(dir));
	return store_conf__read(dir, conf, err, errlen);
}

int archive__open(const char *path, struct archive **out, char *err, size_t errlen)
{
	struct store_conf conf;
	archive_pg_open_fn *pg_open;
	int rc;

	*out = NULL;
	if(path == NULL) return archive_sqlite__open(path, out, err, errlen);
	rc = conf_of(path, &conf, err, errlen);
	if(rc != MQC_OK) return rc;
	if(conf.kind == STORE_SQLITE) return archive_sqlite__open(path, out, err, errlen);
	pg_open = (archive_pg_open_fn *)store_conf__pg_symbol("archive_pg__open", err, errlen);
	return pg_open ? pg_open(&conf, out, err, errlen) : MQC_ERR_IO;
}

int archive__feed_open(const char *path, struct archive_feed **out, char *err, size_t errlen)
{
	struct store_conf conf;
	archive_pg_feed_open_fn *pg_open;
	int rc;

	*out = NULL;
	rc = conf_of(path, &conf, err, errlen);
	if(rc != MQC_OK) return rc == MQC_ERR_NOMEM ? rc : MQC_ERR_DB;
	if(conf.kind == STORE_SQLITE) return archive_sqlite__feed_open(path, out, err, errlen);
	pg_open = (archive_pg_feed_open_fn *)store_conf__pg_symbol("archive_pg__feed_open", err, errlen);
	return pg_open ? pg_open(&conf, out, err, errlen) : MQC_ERR_DB;
}

const char *archive__writable(const char *path, int busy_ms, char *why, size_t whylen)
{
	struct store_conf conf;
	archive_pg_writable_fn *pg_writable;

	if(conf_of(path, &conf, why, whylen) != MQC_OK) return why;
	if(conf.kind == STORE_SQLITE) return archive_sqlite__writable(path, busy_ms, why, whylen);
	pg_writable = (archive_pg_writable_fn *)store_conf__pg_symbol("archive_pg__writable", why, whylen);
	return pg_writable ? pg_writable(&conf, busy_ms, why, whylen) : why;
}

void archive__close(struct archive *ar)
{
	if(ar != NULL) ar->ops->close(ar);
}

int archive__begin(struct archive *ar)
{
	return ar->ops->begin(ar);
}

int archive__commit(struct archive *ar)
{
	return ar->ops->commit(ar);
}

void archive__rollback(struct archive *ar)
{
	ar->ops->rollback(ar);
}

const char *archive__errmsg(struct archive *ar)
{
	return ar ? ar->ops->errmsg(ar) : "no archive";
}

int archive__batch_begin(struct archive *ar)
{
	return ar->ops->batch_begin(ar);
}

int archive__batch_commit(struct archive *ar)
{
	return ar->ops->batch_commit(ar);
}

void archive__batch_rollback(struct archive *ar)
{
	ar->ops->batch_rollback(ar);
}

int archive__store(struct archive *ar, const struct archive_msg *m, archive_created_fn created_of,
		void *arg, bool *stored)
{
	return ar->ops->store(ar, m, created_of, arg, stored);
}

int archive__receipt(struct archive *ar, const char *orig_sender, const char *ref,
		const char *reader, const char *status, archive_created_fn created_of, void *arg,
		bool *updated)
{
	return ar->ops->receipt(ar, orig_sender, ref, reader, status, created_of, arg, updated);
}

int archive__start_checkpointer(struct archive *ar, int interval_ms)
{
	return ar->ops->start_checkpointer(ar, interval_ms);
}

int archive__count_invalid(struct archive *ar, int64_t n)
{
	return ar->ops->count_invalid(ar, n);
}

int archive__probe(struct archive *ar)
{
	return ar->ops->probe(ar);
}

json_t *archive__history(struct archive *ar, const char *conv, int64_t since_ms, int64_t before,
		int limit, bool *more)
{
	return ar->ops->history(ar, conv, since_ms, before, limit, more);
}

json_t *archive__get(struct archive *ar, int64_t seq)
{
	return ar->ops->get(ar, seq);
}

int archive__seq_floor(struct archive *ar, int64_t since_ms, int64_t *floor)
{
	return ar->ops->seq_floor(ar, since_ms, floor);
}

int archive__dm_convs(struct archive *ar, const char *user, int64_t min_seq, int64_t before,
		int (*fn)(const struct archive_conv *c, void *arg), void *arg)
{
	return ar->ops->dm_convs(ar, user, min_seq, before, fn, arg);
}

int archive__conv_get(struct archive *ar, const char *user, const char *conv, struct archive_conv *out)
{
	return ar->ops->conv_get(ar, user, conv, out);
}

int archive__text_n_at(struct archive *ar, const char *conv, int64_t seq, int64_t *n)
{
	return ar->ops->text_n_at(ar, conv, seq, n);
}

int archive__conv_target(struct archive *ar, const char *conv, int64_t seq, const char *of,
		const char *ref, int64_t since_ms, int64_t *found)
{
	return ar->ops->conv_target(ar, conv, seq, of, ref, since_ms, found);
}

int archive__read_set(struct archive *ar, const char *user, const char *conv, const char *peer,
		const char *room, int64_t seq, int64_t n)
{
	return ar->ops->read_set(ar, user, conv, peer, room, seq, n);
}

json_t *archive__sync(struct archive *ar, const char *user, int64_t user_since,
		const struct archive_room *rooms, size_t nrooms, int64_t after, int limit, bool changes,
		bool *more)
{
	return ar->ops->sync(ar, user, user_since, rooms, nrooms, after, limit, changes, more);
}

int archive__expire_step(struct archive *ar, const char *conv,
		const char *const *skip_rooms, size_t nskip, int64_t cutoff_ms, int max_scan,
		int64_t *cursor, int64_t *deleted, bool *done)
{
	return ar->ops->expire_step(ar, conv, skip_rooms, nskip, cutoff_ms, max_scan, cursor, deleted,
			done);
}

int archive__index_step(struct archive *ar, int max_rows, int64_t *left)
{
	return ar->ops->index_step(ar, max_rows, left);
}

int archive__index_mark(struct archive *ar, int64_t *mark)
{
	return ar->ops->index_mark(ar, mark);
}

int archive__purge(struct archive *ar, int64_t cutoff_ms, int64_t *deleted)
{
	return ar->ops->purge(ar, cutoff_ms, deleted);
}

int archive__erase_user(struct archive *ar, const char *user, int64_t since_ms, int64_t *deleted)
{
	return ar->ops->erase_user(ar, user, since_ms, deleted);
}

json_t *archive__export_user(struct archive *ar, const char *user, int64_t since_ms)
{
	return ar->ops->export_page(ar, user, since_ms, 0, -1, NULL);
}

json_t *archive__export_page(struct archive *ar, const char *user, int64_t since_ms, int64_t after,
		int limit, bool *more)
{
	return ar->ops->export_page(ar, user, since_ms, after, limit, more);
}

json_t *archive__stats(struct archive *ar)
{
	return ar->ops->stats(ar);
}

int archive__text_find(struct archive *ar, const char *sender, const char *id, const char *room,
		struct archive_text *t)
{
	return ar->ops->text_find(ar, sender, id, room, t);
}

int archive__text_edit(struct archive *ar, const struct archive_text *t, const char *body,
		const char *row_id, int64_t now, int64_t *seq)
{
	return ar->ops->text_edit(ar, t, body, row_id, now, seq);
}

int archive__text_delete(struct archive *ar, const struct archive_text *t, const char *who,
		const char *row_id, int64_t now, int64_t *seq)
{
	return ar->ops->text_delete(ar, t, who, row_id, now, seq);
}

json_t *archive__search(struct archive *ar, const struct archive_search *q, bool *more, int64_t *next)
{
	return ar->ops->search(ar, q, more, next);
}

void archive__feed_close(struct archive_feed *f)
{
	if(f != NULL) f->ops->close(f);
}

int archive__feed_end(struct archive_feed *f, int64_t *seq)
{
	return f->ops->end(f, seq);
}

int archive__feed_each(struct archive_feed *f, int64_t after, int max,
		int (*cb)(const struct archive_feed_row *row, void *arg), void *arg)
{
	return f->ops->each(f, after, max, cb, arg);
}

int archive__feed_body(struct archive_feed *f, int64_t seq,
		int (*cb)(const char *body, void *arg), void *arg)
{
	return f->ops->body(f, seq, cb, arg);
}

const char *archive__feed_errmsg(struct archive_feed *f)
{
	return f->ops->errmsg(f);
}
