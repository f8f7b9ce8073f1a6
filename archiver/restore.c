/* restore.c - `mqchat-archiver --data DIR restore SRC` (cli.h): a new data
 * folder made from a backup (backup.c, which says what a backup holds).
 *
 * Nothing half-written: the MANIFEST, every file's size and checksum and
 * the stores' schema versions are checked before anything is written;
 * then every file is written as NAME.part, checked again, fsynced, the
 * archive's numbering is moved on past what the lost service can have
 * given after the backup (renumber), and all are renamed at the end; on a
 * failure what was written is removed (and the data folder, if the
 * restore made it). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "archive.h"
#include "archive_sqlite.h"
#include "backup_internal.h"
#include "cli.h"
#include "envelope.h"
#include "err.h"
#include "timeutil.h"

/* A MANIFEST larger than this is not one of ours. */
#define MANIFEST_MAX (16 * 1024 * 1024)

/* The numbering after a restore (see renumber below). The lost service
 * may have numbered messages after the backup was made, and apps sync from
 * the largest seq they have seen, so the restored archive goes on above
 * anything it can have given: the backup's last seq, plus the time since
 * the MANIFEST's "created_ms" at SEQ_PER_MS, a ceiling rate no archiver
 * reaches (1,000,000 seqs a second; every row takes one: texts, events,
 * edits, deletes, reactions). Measured here, the archiver stores 45,555
 * msg/s (the median drain of a backlog, README.md "Benchmarks") and
 * 93,479 msg/s at best (archiver/README.md, bench/flood_drain.py): the
 * ceiling is ten times that. */
#define SEQ_PER_MS 1000
/* The least time counted: a day. A MANIFEST made by a clock that was
 * ahead (created after now) still moves the numbering on. */
#define SEQ_MIN_GAP_MS (24LL * 3600 * 1000)
/* Room left above the new start: ten years at the ceiling rate. Every seq
 * must stay exact in a JavaScript Number (the web app holds it as one) and
 * in a read envelope's "seq" (common/envelope.h: at most ENVELOPE_MAX_TS,
 * 2^53 - 1); a restore that would leave less than this is refused. */
#define SEQ_ROOM (3653LL * 24 * 3600 * 1000 * SEQ_PER_MS)

/* One file the MANIFEST lists. */
struct rfile {
	const char *path;            /* borrowed from the MANIFEST */
	const struct data_file *df;  /* a file of the data folder's, or NULL */
	bool config;                 /* config/NAME: checked, left in the backup */
	int64_t size;
	const char *sha256;
	int version;                 /* a store's, as the MANIFEST says */
	mode_t mode;                 /* in the restored folder */
	const char *from;            /* a config file's place, or NULL */
};

struct restore {
	const char *src;
	json_t *manifest;
	struct rfile *files;
	size_t n;
	int64_t created_ms;          /* the MANIFEST's: when the backup began */
	int64_t seq;                 /* the backup's archive: its last seq */
	int64_t next_seq;            /* the restored archive's: the new last seq */
};

/* The MANIFEST is damaged (why), or not one of ours: nothing restored. */
static int bad_manifest(const struct restore *r, const char *why, const char *what)
{
	return cli__error(CLI_ERR_INVALID, "%s/%s: %s%s%s: not a backup this program can restore", r->src,
			MANIFEST_NAME, why, what ? " " : "", what ? what : "");
}

/* Read SRC/MANIFEST into r->manifest. */
static int load_manifest(struct restore *r)
{
	char path[PATH_MAX], *text = NULL;
	size_t len = 0, cap = 0;
	json_error_t jerr;
	struct stat st;
	ssize_t got;
	int fd, rc = CLI_OK;

	if(stat(r->src, &st) != 0){
		return cli__error(errno == ENOENT ? CLI_ERR_NOTFOUND : CLI_ERR_RUNTIME, "%s: %s", r->src,
				errno == ENOENT ? "no such folder" : strerror(errno));
	}
	if(!S_ISDIR(st.st_mode)) return cli__error(CLI_ERR_INVALID, "%s: not a folder", r->src);
	if(!backup__join(path, sizeof(path), r->src, MANIFEST_NAME)) return cli__error(CLI_ERR_USAGE, "path too long");
	fd = backup__open_regular(path);
	if(fd < 0 && errno == ENOENT){
		return cli__error(CLI_ERR_INVALID, "%s: no such file: not a backup, or one that did not finish"
				" (a backup writes its MANIFEST last)", path);
	}
	if(fd < 0) return cli__error(CLI_ERR_INVALID, "%s: %s", path, backup__open_why(errno));
	for(;;){
		if(cap - len < 65536){
			char *t = cap + 65536 > MANIFEST_MAX ? NULL : realloc(text, cap + 65536);
			if(t == NULL){
				rc = cap + 65536 > MANIFEST_MAX ? bad_manifest(r, "larger than 16 MiB", NULL)
						: cli__error(CLI_ERR_RUNTIME, "out of memory");
				break;
			}
			text = t;
			cap += 65536;
		}
		got = read(fd, text + len, cap - len);
		if(got < 0 && errno == EINTR) continue;
		if(got < 0){
			rc = cli__error(CLI_ERR_RUNTIME, "cannot read %s: %s", path, strerror(errno));
			break;
		}
		if(got == 0) break;
		len += (size_t)got;
	}
	close(fd);
	if(rc == CLI_OK){
		r->manifest = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
		if(r->manifest == NULL || !json_is_object(r->manifest)){
			char why[256];
			snprintf(why, sizeof(why), "not valid JSON (line %d: %s)", jerr.line,
					r->manifest ? "not an object" : jerr.text);
			rc = bad_manifest(r, why, NULL);
		}
	}
	free(text);
	return rc;
}

static bool is_sha256_hex(const char *s)
{
	size_t i;

	for(i = 0; i < 64; i++){
		if(!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
	}
	return s[64] == '\0';
}

/* Fill f from the MANIFEST entry e; CLI_OK or the error printed. */
static int parse_file(const struct restore *r, json_t *e, struct rfile *f)
{
	json_t *path = json_object_get(e, "path"), *size = json_object_get(e, "size");
	json_t *sha = json_object_get(e, "sha256"), *ver = json_object_get(e, "schema_version");
	json_t *mode = json_object_get(e, "mode"), *from = json_object_get(e, "from");
	const char *p, *m;
	char *end;
	long mv = 0600;
	size_t i;

	memset(f, 0, sizeof(*f));
	if(!json_is_string(path)) return bad_manifest(r, "a file without a path", NULL);
	p = json_string_value(path);
	if(!json_is_integer(size) || json_integer_value(size) < 0) return bad_manifest(r, "no size for", p);
	if(!json_is_string(sha) || !is_sha256_hex(json_string_value(sha))) return bad_manifest(r, "no sha256 for", p);
	if(mode){
		m = json_string_value(mode);
		if(m == NULL || m[0] == '\0') return bad_manifest(r, "a bad mode for", p);
		mv = strtol(m, &end, 8);
		if(*end != '\0' || mv < 0 || mv > 07777) return bad_manifest(r, "a bad mode for", p);
	}
	if(from && !json_is_string(from)) return bad_manifest(r, "a bad origin for", p);
	f->path = p;
	f->size = json_integer_value(size);
	f->sha256 = json_string_value(sha);
	f->version = -1;
	f->from = from ? json_string_value(from) : NULL;
	for(i = 0; i < backup__n_data_files; i++){
		if(strcmp(p, backup__data_files[i].name) == 0) f->df = &backup__data_files[i];
	}
	if(f->df){
		f->mode = f->df->mode;
		if(f->df->store){
			if(!json_is_integer(ver) || json_integer_value(ver) < 1 || json_integer_value(ver) > INT_MAX){
				return bad_manifest(r, "no schema version for", p);
			}
			f->version = (int)json_integer_value(ver);
		}
	}else if(strncmp(p, "tls/", 4) == 0 && backup__safe_name(p + 4)){
		/* Keys stay the owner's only; nothing becomes executable or
		 * writable by others. */
		f->mode = (mode_t)mv & 0644;
	}else if(strncmp(p, "config/", 7) == 0 && backup__safe_name(p + 7)){
		f->config = true;
	}else{
		return bad_manifest(r, "a file no backup holds:", p);
	}
	return CLI_OK;
}

/* Check the MANIFEST's head and list its files in r->files. */
static int parse_manifest(struct restore *r)
{
	json_t *m = r->manifest, *files = json_object_get(m, "files"), *fv = json_object_get(m, "format_version");
	json_t *created;
	const char *format = json_string_value(json_object_get(m, "format"));
	bool have_auth = false, have_archive = false;
	size_t i, k;
	int rc;

	if(format == NULL || strcmp(format, BACKUP_FORMAT) != 0) return bad_manifest(r, "no \"format\": \"" BACKUP_FORMAT "\"", NULL);
	if(!json_is_integer(fv) || json_integer_value(fv) < 1) return bad_manifest(r, "no format version", NULL);
	if(json_integer_value(fv) > BACKUP_FORMAT_VERSION){
		return cli__error(CLI_ERR_NODB, "%s/%s: backup format version %lld is newer than this program's"
				" (%d): restore with the mqchat-archiver that made it, or a newer one", r->src,
				MANIFEST_NAME, (long long)json_integer_value(fv), BACKUP_FORMAT_VERSION);
	}
	if(!json_is_array(files) || json_array_size(files) == 0) return bad_manifest(r, "no files", NULL);
	r->files = calloc(json_array_size(files), sizeof(*r->files));
	if(r->files == NULL) return cli__error(CLI_ERR_RUNTIME, "out of memory");
	for(i = 0; i < json_array_size(files); i++){
		if((rc = parse_file(r, json_array_get(files, i), &r->files[i])) != CLI_OK) return rc;
		for(k = 0; k < i; k++){
			if(strcmp(r->files[k].path, r->files[i].path) == 0) return bad_manifest(r, "twice:", r->files[i].path);
		}
		r->n++;
		have_auth |= r->files[i].df && r->files[i].df->store == STORE_AUTH;
		have_archive |= r->files[i].df && r->files[i].df->store == STORE_ARCHIVE;
	}
	if(!have_auth || !have_archive) return bad_manifest(r, "no", have_auth ? "archive.db" : "auth.db");
	/* When the backup began: the numbering moves on from it. */
	created = json_object_get(m, "created_ms");
	if(!json_is_integer(created) || json_integer_value(created) < 0) return bad_manifest(r, "no created_ms", NULL);
	r->created_ms = json_integer_value(created);
	return CLI_OK;
}

/* ---- the numbering ---- */

/* The last seq the archive open as db has given (sqlite_sequence: rows
 * deleted since keep theirs taken) into *seq, and its last row's (0: none)
 * into *row. An SQLite status. */
static int last_seq(sqlite3 *db, int64_t *seq, int64_t *row)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name='messages'), 0),"
			" COALESCE((SELECT MAX(seq) FROM messages), 0)", -1, &st, NULL);

	*seq = *row = 0;
	if(rc == SQLITE_OK) rc = sqlite3_step(st);
	if(rc == SQLITE_ROW){
		*row = sqlite3_column_int64(st, 1);
		*seq = sqlite3_column_int64(st, 0) > *row ? sqlite3_column_int64(st, 0) : *row;
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

/* The last seq a restored archive starts from, into *next: past seq, the
 * backup's, by SEQ_PER_MS for each ms from created_ms (the MANIFEST's) to
 * now_ms, and at least SEQ_MIN_GAP_MS's worth. false (*next unset) when
 * that leaves less than SEQ_ROOM below ENVELOPE_MAX_TS. */
static bool next_seq(int64_t seq, int64_t created_ms, int64_t now_ms, int64_t *next)
{
	const int64_t limit = ENVELOPE_MAX_TS - SEQ_ROOM;
	int64_t ms;

	if(seq < 0 || seq > limit || created_ms < 0 || now_ms < 0) return false;
	ms = now_ms - created_ms;
	if(ms < SEQ_MIN_GAP_MS) ms = SEQ_MIN_GAP_MS;
	if(ms > (limit - seq) / SEQ_PER_MS) return false;
	*next = seq + ms * SEQ_PER_MS;
	return true;
}

/* Run sql with ?1 bound to v, once. MQC_OK or an MQC_ERR_*. */
static int exec_seq(sqlite3 *db, const char *sql, int64_t v)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

	if(rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 1, v);
	if(rc == SQLITE_OK) rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? MQC_OK : MQC_ERR_DB;
}

/* fsync the file at path. CLI_OK or CLI_ERR_RUNTIME (printed). */
static int sync_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), e;

	if(fd < 0 || fsync(fd) != 0){
		e = errno;
		if(fd >= 0) close(fd);
		return cli__error(CLI_ERR_RUNTIME, "cannot sync %s: %s", path, strerror(e));
	}
	close(fd);
	return CLI_OK;
}

/* r->next_seq, from r->seq and r->created_ms, before anything is
 * written; CLI_OK or the refusal (printed). */
static int plan_numbering(struct restore *r)
{
	char created[32], now_s[32];
	int64_t now = time__now_ms();

	if(next_seq(r->seq, r->created_ms, now, &r->next_seq)) return CLI_OK;
	return cli__error(CLI_ERR_INVALID, "%s/archive.db: last seq %lld, backup begun %s (now %s): numbering"
			" on past every seq the lost service can have given since (%d a second, at least a day's"
			" worth) would leave less than ten years of them below %lld, the largest seq an app holds"
			" exactly: check the clock and the MANIFEST's created_ms; nothing restored", r->src,
			(long long)r->seq, cli__fmt_time(r->created_ms, created, sizeof(created)),
			cli__fmt_time(now, now_s, sizeof(now_s)), SEQ_PER_MS * 1000, (long long)ENVELOPE_MAX_TS);
}

/* The restored archive (the copy SRC/archive.db.part, j's) numbers its
 * next message above r->next_seq: sqlite_sequence's row for messages goes
 * up to it. What else follows seq was checked for this jump:
 * - Reads compare seqs and walk rows, never count seqs: sync, history,
 *   conversations (convs.last_seq, reads.read_seq), expiry, the push
 *   thread's cursor in push.db (seq > cursor, row by row), search's tail;
 *   seq_floor's binary search takes a few more look-ups (log2 of the
 *   range). Gaps are there already: expiry, purge and erasure delete
 *   rows and AUTOINCREMENT never gives a seq twice. The per-conversation
 *   count n and unread (convs.n - reads.read_n) do not come from seq.
 * - The full-text index's watermark (meta fts_seq) is the one that walks
 *   seqs: archive__index_step goes up ARCHIVE_INDEX_BATCH seqs a step,
 *   and would take ~40 million steps to cross a day's gap. So the index
 *   is first brought up to the last row with the archive's own code,
 *   then the watermark is moved to r->next_seq with the numbering (no row
 *   lies between).
 * The archive is opened with archive__open: an older one (version 1) is
 *   upgraded now, which its first open would do anyway (the upgrade
 *   places fts_seq at the last row). */
static int renumber(struct job *j, const struct restore *r)
{
	static const char *const sides[] = {"-wal", "-shm", "-journal"};
	char part[PATH_MAX], side[PATH_MAX], err[PATH_MAX + 256] = "";
	struct archive *ar = NULL;
	int64_t left = 0, seq = -1, row = -1, mark = -1;
	sqlite3 *db;
	size_t i;
	int rc;

	if(!backup__join(part, sizeof(part), j->root, "archive.db" PART)) return cli__error(CLI_ERR_USAGE, "path too long");
	/* What SQLite may make beside the copy goes too on a failure. */
	for(i = 0; i < sizeof(sides) / sizeof(sides[0]); i++){
		if((size_t)snprintf(side, sizeof(side), "%s%s", part, sides[i]) >= sizeof(side)){
			return cli__error(CLI_ERR_USAGE, "path too long");
		}
		if((rc = backup__note_written(j, side)) != CLI_OK) return rc;
	}
	rc = archive__open(part, &ar, err, sizeof(err));
	if(rc != MQC_OK) return cli__error(CLI_ERR_RUNTIME, "%s", err[0] ? err : mqc_strerror(rc));
	db = archive__db(ar);
	do{
		rc = archive__index_step(ar, 1 << 20, &left);
	}while(rc == MQC_OK && left > 0);
	if(rc == MQC_OK) rc = archive__begin(ar);
	if(rc == MQC_OK && (last_seq(db, &seq, &row) != SQLITE_OK || archive__index_mark(ar, &mark) != MQC_OK)){
		rc = MQC_ERR_DB;
	}
	if(rc == MQC_OK && (seq != r->seq || mark < row)){
		snprintf(err, sizeof(err), "last seq %lld (the backup's: %lld), last row %lld indexed up to %lld",
				(long long)seq, (long long)r->seq, (long long)row, (long long)mark);
		rc = MQC_ERR_INVAL;
	}
	/* sqlite_sequence has no row for messages until one was stored. */
	if(rc == MQC_OK){
		rc = exec_seq(db, "INSERT INTO sqlite_sequence(name, seq) SELECT 'messages', ?1"
				" WHERE NOT EXISTS(SELECT 1 FROM sqlite_sequence WHERE name='messages')", r->next_seq);
	}
	if(rc == MQC_OK) rc = exec_seq(db, "UPDATE sqlite_sequence SET seq=?1 WHERE name='messages'", r->next_seq);
	if(rc == MQC_OK) rc = exec_seq(db, "UPDATE meta SET value=CAST(?1 AS TEXT) WHERE key='fts_seq'", r->next_seq);
	if(rc == MQC_OK && sqlite3_changes(db) != 1){
		snprintf(err, sizeof(err), "no fts_seq in meta");
		rc = MQC_ERR_INVAL;
	}
	if(rc == MQC_OK) rc = archive__commit(ar);
	if(rc != MQC_OK){
		rc = cli__error(CLI_ERR_RUNTIME, "%s: cannot move the numbering on: %s; nothing restored", part,
				rc == MQC_ERR_INVAL ? err : sqlite3_errmsg(db));
		archive__rollback(ar);
		archive__close(ar);
		return rc;
	}
	/* Closing checkpoints the WAL into the copy and removes it; then the
	 * copy is made durable before the renames. */
	archive__close(ar);
	return sync_file(part);
}

/* SRC/f->path's size and checksum against the MANIFEST's. */
static int verify_file(struct job *j, const struct restore *r, const struct rfile *f)
{
	char path[PATH_MAX], hex[SHA256_HEX];
	int64_t size;
	bool wrote;
	int fd, e;

	if(!backup__join(path, sizeof(path), r->src, f->path)) return cli__error(CLI_ERR_USAGE, "path too long");
	fd = backup__open_regular(path);
	if(fd < 0 && errno == ENOENT){
		return cli__error(CLI_ERR_INVALID, "%s: missing (the MANIFEST lists it): the backup is"
				" incomplete; nothing restored", path);
	}
	if(fd < 0) return cli__error(CLI_ERR_INVALID, "%s: %s; nothing restored", path, backup__open_why(errno));
	if(backup__pump(j, fd, -1, &size, hex, &wrote) != 0){
		e = errno;
		close(fd);
		return cli__error(CLI_ERR_RUNTIME, "cannot read %s: %s", path, strerror(e));
	}
	close(fd);
	if(size != f->size || strcmp(hex, f->sha256) != 0){
		return cli__error(CLI_ERR_INVALID, "%s: checksum mismatch (%lld bytes, sha256 %s; the MANIFEST"
				" says %lld bytes, %s): the backup is damaged; nothing restored", path, (long long)size,
				hex, (long long)f->size, f->sha256);
	}
	return CLI_OK;
}

/* A store of the backup: its own schema version must be the MANIFEST's,
 * and one this program can take; the archive's last seq into r->seq. Read without writing a byte (immutable:
 * a backup's stores are whole files, no WAL beside them). */
static int verify_store(struct restore *r, const struct rfile *f)
{
	char path[PATH_MAX], uri[PATH_MAX * 3 + 32], *u;
	const char *s;
	sqlite3 *db = NULL;
	int64_t row;
	int rc, version;

	if(!backup__join(path, sizeof(path), r->src, f->path)) return cli__error(CLI_ERR_USAGE, "path too long");
	u = uri + sprintf(uri, "file:");
	for(s = path; *s; s++){
		if(*s == '%' || *s == '?' || *s == '#') u += sprintf(u, "%%%02X", (unsigned char)*s);
		else *u++ = *s;
	}
	strcpy(u, "?immutable=1");
	if(sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL)
			!= SQLITE_OK){
		rc = cli__error(CLI_ERR_INVALID, "%s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close_v2(db);
		return rc;
	}
	rc = backup__store_version(db, f->df->store, &version);
	if(rc != MQC_OK){
		rc = rc == MQC_ERR_SCHEMA ? cli__error(CLI_ERR_INVALID, "%s: not an mqchat %s", path,
				backup__store_info[f->df->store].what) : backup__version_failed(rc, path, f->df->store, db);
	}else if(version != f->version){
		rc = cli__error(CLI_ERR_INVALID, "%s: schema version %d, the MANIFEST says %d: the backup is"
				" damaged; nothing restored", path, version, f->version);
	}else{
		rc = backup__check_version(path, f->df->store, version);
	}
	if(rc == CLI_OK && f->df->store == STORE_ARCHIVE && last_seq(db, &r->seq, &row) != SQLITE_OK){
		rc = cli__error(CLI_ERR_INVALID, "%s: %s", path, sqlite3_errmsg(db));
	}
	sqlite3_close_v2(db);
	return rc;
}

/* Copy SRC/f->path into the data folder as NAME.part (renamed by
 * restore_publish), checking it is still what the MANIFEST says. */
static int restore_copy(struct job *j, const struct restore *r, const struct rfile *f)
{
	char src[PATH_MAX], part[PATH_MAX], hex[SHA256_HEX];
	int64_t size;
	int fd, rc;

	if(!backup__join(src, sizeof(src), r->src, f->path) || !backup__join(part, sizeof(part), j->root, f->path)
			|| strlen(part) + strlen(PART) >= sizeof(part)){
		return cli__error(CLI_ERR_USAGE, "path too long");
	}
	strcat(part, PART);
	if(f->df == NULL && (rc = backup__make_sub(j, SUB_TLS, 0755)) != CLI_OK) return rc;
	fd = backup__open_regular(src);
	if(fd < 0) return cli__error(CLI_ERR_INVALID, "%s: %s", src, backup__open_why(errno));
	rc = backup__copy_fd(j, fd, src, part, f->mode, &size, hex);
	close(fd);
	if(rc == CLI_OK && (size != f->size || strcmp(hex, f->sha256) != 0)){
		rc = cli__error(CLI_ERR_INVALID, "%s changed while it was restored: the backup is damaged;"
				" nothing restored", src);
	}
	return rc;
}

static int restore_publish(struct job *j, const struct rfile *f)
{
	char final[PATH_MAX], part[PATH_MAX];

	if(!backup__join(final, sizeof(final), j->root, f->path)
			|| (size_t)snprintf(part, sizeof(part), "%s%s", final, PART) >= sizeof(part)){
		return cli__error(CLI_ERR_USAGE, "path too long");
	}
	return backup__publish(j, part, final);
}

static int do_restore(struct cli *cli, const char *src)
{
	struct job j = {.cli = cli, .root = cli->datadir};
	struct restore r = {.src = src};
	char when[32] = "", parent[PATH_MAX];
	int64_t bytes = 0;
	size_t i;
	int rc = CLI_OK;

	if((j.buf = malloc(COPY_CHUNK)) == NULL) rc = cli__error(CLI_ERR_RUNTIME, "out of memory");
	/* Everything is checked before anything is written. */
	if(rc == CLI_OK) rc = load_manifest(&r);
	if(rc == CLI_OK) rc = parse_manifest(&r);
	for(i = 0; rc == CLI_OK && i < r.n; i++) rc = verify_file(&j, &r, &r.files[i]);
	for(i = 0; rc == CLI_OK && i < r.n; i++){
		if(r.files[i].df && r.files[i].df->store) rc = verify_store(&r, &r.files[i]);
	}
	if(rc == CLI_OK) rc = plan_numbering(&r);
	if(rc == CLI_OK) rc = backup__empty_root(&j, 0750, "restore");
	for(i = 0; rc == CLI_OK && i < r.n; i++){
		if(!r.files[i].config) rc = restore_copy(&j, &r, &r.files[i]);
	}
	/* Every copy checked: the archive's numbering moves on, then all
	 * are renamed. */
	if(rc == CLI_OK) rc = renumber(&j, &r);
	for(i = 0; rc == CLI_OK && i < r.n; i++){
		if(!r.files[i].config) rc = restore_publish(&j, &r.files[i]);
	}
	if(rc == CLI_OK) rc = backup__sync_all(&j);
	if(rc == CLI_OK && j.made_root){
		backup__parent_of(j.root, parent, sizeof(parent));
		rc = backup__sync_dir(parent);
	}
	if(rc != CLI_OK){
		backup__job_undo(&j);
		goto done;
	}
	for(i = 0; i < r.n; i++){
		const struct rfile *f = &r.files[i];

		if(f->config){
			printf("%s/%s (was %s) is not restored: copy it back if it is needed\n", src, f->path,
					f->from ? f->from : "a --config file");
			continue;
		}
		bytes += f->size;
		printf("%s %lld\n", f->path, (long long)f->size);
		if(f->df && f->df->store == STORE_ARCHIVE && f->version < ARCHIVE_SCHEMA_VERSION){
			/* renumber opened it. */
			printf("%s had schema version %d: it is upgraded to %d\n", f->path, f->version,
					ARCHIVE_SCHEMA_VERSION);
		}else if(f->df && f->df->store && f->version < backup__store_info[f->df->store].version){
			printf("%s has schema version %d: it is upgraded to %d when it is first opened\n", f->path,
					f->version, backup__store_info[f->df->store].version);
		}
	}
	printf("archive.db numbers its next message above %lld (its last seq %lld, plus %d a second since"
			" the backup began, at least a day's worth): above any seq given after the backup\n",
			(long long)r.next_seq, (long long)r.seq, SEQ_PER_MS * 1000);
	snprintf(when, sizeof(when), "%s", json_string_value(json_object_get(r.manifest, "created"))
			? json_string_value(json_object_get(r.manifest, "created")) : "?");
	printf("%s restored from %s (backup of %s): %lld bytes\n", cli->datadir, src, when, (long long)bytes);
done:
	free(r.files);
	json_decref(r.manifest);
	backup__job_free(&j);
	return rc;
}

int cli_backup__restore(struct cli *cli)
{
	static const struct cmdline_opt none[] = {{0}};
	struct cmdline cl;
	int c;

	cli__options(cli, &cl, none, cli->nargs, cli->args);
	while((c = cmdline__next(&cl)) > 0) ;
	if(c < 0) return cli__options_end(cli, &cl, c);
	if(cl.nargs != 1) return cli__bad_args(cli, cl.nargs == 0 ? "missing the backup folder SRC" : "too many arguments");
	if(cli__says_postgresql(cli)){
		/* Its SQLite files would not be used: PostgreSQL has its own tools. */
		return cli__error(CLI_ERR_USAGE, "%s/store.conf puts the stores on PostgreSQL: restore puts"
				" back SQLite files only; use pg_restore or the server's own recovery", cli->datadir);
	}
	return do_restore(cli, cl.args[0]);
}
