/* backup.c - `mqchat-archiver backup DEST` (cli.h): a copy of a data folder
 * taken while the daemon runs under load; and what `restore SRC`
 * (restore.c), which makes a new data folder from one, shares with it
 * (backup_internal.h).
 *
 * A backup is a folder (0700, every file in it 0600):
 *   MANIFEST          JSON, written last: the format and its version, when,
 *                     by which program (with the schema versions it knows),
 *                     from which data folder, and per file its path, size,
 *                     sha256, mode and (a store) schema version
 *   archive.journal   messages acknowledged but not yet committed
 *   push.db, archive.db, auth.db
 *   archiver.pw, vapid.pem
 *   tls/NAME          the files of DIR/tls this process could read
 *   config/NAME       each --config FILE (kept in the backup: a restore
 *                     writes only the data folder)
 * A file the data folder lacks (push.db, vapid.pem or the journal of an
 * older release's folder) is not in it; auth.db and archive.db must be.
 *
 * Why a backup is consistent, and why it never holds up the daemon:
 * - Each store is copied with SQLite's online backup API in one
 *   sqlite3_backup_step(-1): the copy is the snapshot of one read
 *   transaction. In WAL mode a reader blocks no writer: the daemon's
 *   commits go on appending to the WAL meanwhile (its checkpointer cannot
 *   copy the WAL back past our snapshot until we are done, so the WAL
 *   grows for that long).
 * - archive.journal is copied before archive.db. A message the archiver
 *   acknowledged is in the journal from before its PUBACK until the commit
 *   that stores it: ingest.c only appends to the journal, and empties it
 *   only after a commit. So one acknowledged before the backup began is in
 *   the journal's copy, or was committed before that copy ended and is in
 *   archive.db's snapshot, which is taken after. The archiver replays the
 *   journal at its start, and archive__store skips a message whose
 *   (sender, id) it holds already (archive.c, find_dup), so one in both is
 *   stored once. The copy may end in a record cut by an append or by the
 *   emptying during the read: replay stops at the first damaged record
 *   (each has a checksum), and only messages that came after the copy
 *   began can be at or after it.
 * - The sources are read as they are: no store is upgraded (a backup taken
 *   before an upgrade is the old folder; after a restore, the first program
 *   that opens an older store upgrades it), and a store newer than this
 *   program is refused.
 *
 * Nothing half-written: every file is written as NAME.part (O_EXCL, never
 * through a link), fsynced and renamed, and the folders fsynced; a
 * backup's MANIFEST comes last, so a folder without one is no backup. On a
 * failure what was written is removed (struct job). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "archive.h"
#include "backup_internal.h"
#include "cli.h"
#include "datadir.h"
#include "err.h"
#include "grow.h"
#include "sqlutil.h"
#include "timeutil.h"
#include "userdb.h"

/* The program's version, when the build gives one. */
#ifndef MQCHAT_VERSION
#define MQCHAT_VERSION "dev"
#endif
/* The longest name a backup holds under tls/ or config/. */
#define NAME_MAX_BACKUP 128

const struct store_info backup__store_info[] = {
	[STORE_AUTH] = {"user store", USERDB_SCHEMA_VERSION},
	[STORE_ARCHIVE] = {"archive", ARCHIVE_SCHEMA_VERSION},
	[STORE_PUSH] = {"push store", PUSH_SCHEMA_VERSION},
};

/* The files of a data folder a backup holds, in the order a backup copies
 * them, with their modes in a restored folder (docs/ARCHITECTURE.md, "Data
 * folder"). archive.journal before archive.db: see above. push.db before
 * archive.db too: its cursor (the last archive seq the push thread has
 * handled) must not be past the archive's snapshot, or the first messages
 * stored after a restore would get no notification (a few notifications
 * sent again is the price). auth.db after archive.db: every sender and
 * room of the archive's snapshot is in it, and the contacts ingest writes
 * there after its commits. */
const struct data_file backup__data_files[] = {
	{"archive.journal", NOT_A_STORE, 0600, false},
	{"push.db", STORE_PUSH, 0640, false},
	{"archive.db", STORE_ARCHIVE, 0640, true},
	{"auth.db", STORE_AUTH, 0640, true},
	{CLI_PWFILE, NOT_A_STORE, 0600, false},
	{"vapid.pem", NOT_A_STORE, 0600, false},
};
const size_t backup__n_data_files = sizeof(backup__data_files) / sizeof(backup__data_files[0]);

static const char *const subs[N_SUBS] = {"tls", "config"};

/* ---- paths, folders, cleanup ---- */

/* dir/rel into out; false if it does not fit. */
bool backup__join(char *out, size_t outlen, const char *dir, const char *rel)
{
	size_t dl = strlen(dir);
	const char *sep = (dl > 0 && dir[dl - 1] == '/') ? "" : "/";
	int n = snprintf(out, outlen, "%s%s%s", dir, sep, rel);

	return n > 0 && (size_t)n < outlen;
}

/* A name a backup may hold under tls/ or config/: one path component, not
 * hidden, printable ASCII, not ending in .part (the temporary names). */
bool backup__safe_name(const char *s)
{
	size_t i, n = strlen(s), np = strlen(PART);

	if(n == 0 || n > NAME_MAX_BACKUP || s[0] == '.') return false;
	for(i = 0; i < n; i++){
		if(s[i] <= ' ' || s[i] > '~' || s[i] == '/' || s[i] == '\\') return false;
	}
	return n <= np || strcmp(s + n - np, PART) != 0;
}

/* The folder path is in, into out ("." for a bare name). */
void backup__parent_of(const char *path, char *out, size_t outlen)
{
	size_t n;
	char *slash;

	snprintf(out, outlen, "%s", path);
	n = strlen(out);
	while(n > 1 && out[n - 1] == '/') out[--n] = '\0';
	slash = strrchr(out, '/');
	if(slash == NULL) snprintf(out, outlen, ".");
	else if(slash == out) out[1] = '\0';
	else *slash = '\0';
}

int backup__sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if(fd < 0 || fsync(fd) != 0){
		int e = errno;
		if(fd >= 0) close(fd);
		return cli__error(CLI_ERR_RUNTIME, "cannot sync %s: %s", dir, strerror(e));
	}
	close(fd);
	return CLI_OK;
}

/* Remember that path (a file just made, O_EXCL: ours) is j's to remove on
 * failure. Out of memory: it is removed at once. */
int backup__note_written(struct job *j, const char *path)
{
	char **w = grow__one(j->written, &j->cap, j->nwritten, sizeof(*w), 16);
	char *p = w ? strdup(path) : NULL;

	if(w) j->written = w;
	if(p == NULL){
		unlink(path);
		return cli__error(CLI_ERR_RUNTIME, "out of memory");
	}
	w[j->nwritten++] = p;
	return CLI_OK;
}

/* Create path (O_EXCL, never through a link) with mode, noted in j.
 * Returns the descriptor, or -1 with the error printed. */
static int create_file(struct job *j, const char *path, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if(fd < 0){
		cli__error(CLI_ERR_RUNTIME, "cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	if(backup__note_written(j, path) != CLI_OK){
		close(fd);
		return -1;
	}
	/* The mode exactly, whatever the umask. */
	if(fchmod(fd, mode) != 0){
		cli__error(CLI_ERR_RUNTIME, "cannot chmod %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Rename part to final, both under root; j then removes final on failure. */
int backup__publish(struct job *j, const char *part, const char *final)
{
	char *f = strdup(final);
	size_t i;

	if(f == NULL) return cli__error(CLI_ERR_RUNTIME, "out of memory");
	if(rename(part, final) != 0){
		free(f);
		return cli__error(CLI_ERR_RUNTIME, "cannot rename %s to %s: %s", part, final, strerror(errno));
	}
	for(i = j->nwritten; i-- > 0;){
		if(strcmp(j->written[i], part) == 0){
			free(j->written[i]);
			j->written[i] = f;
			return CLI_OK;
		}
	}
	free(f);
	return CLI_OK;
}

/* root must be a new or an empty folder; a new one is made with mode.
 * CLI_OK, CLI_ERR_EXISTS if it holds anything, or another exit status. */
int backup__empty_root(struct job *j, mode_t mode, const char *doing)
{
	char parent[PATH_MAX];
	struct dirent *e;
	bool empty = true;
	DIR *d;

	if(mkdir(j->root, mode) == 0){
		j->made_root = true;
		if(chmod(j->root, mode) != 0){
			return cli__error(CLI_ERR_RUNTIME, "cannot chmod %s: %s", j->root, strerror(errno));
		}
		backup__parent_of(j->root, parent, sizeof(parent));
		return backup__sync_dir(parent);
	}
	if(errno != EEXIST) return cli__error(CLI_ERR_RUNTIME, "cannot create %s: %s", j->root, strerror(errno));
	d = opendir(j->root);
	if(d == NULL){
		if(errno == ENOTDIR) return cli__error(CLI_ERR_EXISTS, "%s exists and is not a folder", j->root);
		return cli__error(CLI_ERR_RUNTIME, "cannot read %s: %s", j->root, strerror(errno));
	}
	while(empty && (e = readdir(d)) != NULL){
		if(strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) empty = false;
	}
	closedir(d);
	if(!empty){
		return cli__error(CLI_ERR_EXISTS, "%s is not empty: %s writes only into a new or an empty"
				" folder", j->root, doing);
	}
	return CLI_OK;
}

/* root/<subs[which]>, made with mode the first time it is needed. */
int backup__make_sub(struct job *j, int which, mode_t mode)
{
	char path[PATH_MAX];

	if(j->made_sub[which]) return CLI_OK;
	if(!backup__join(path, sizeof(path), j->root, subs[which])) return cli__error(CLI_ERR_USAGE, "path too long");
	if(mkdir(path, mode) != 0) return cli__error(CLI_ERR_RUNTIME, "cannot create %s: %s", path, strerror(errno));
	j->made_sub[which] = true;
	if(chmod(path, mode) != 0) return cli__error(CLI_ERR_RUNTIME, "cannot chmod %s: %s", path, strerror(errno));
	return CLI_OK;
}

/* fsync root's subfolders that j made, then root. */
int backup__sync_all(struct job *j)
{
	char path[PATH_MAX];
	int i, rc;

	for(i = 0; i < N_SUBS; i++){
		if(!j->made_sub[i]) continue;
		if(!backup__join(path, sizeof(path), j->root, subs[i])) return cli__error(CLI_ERR_USAGE, "path too long");
		if((rc = backup__sync_dir(path)) != CLI_OK) return rc;
	}
	return backup__sync_dir(j->root);
}

/* A failure: remove everything j wrote, and the folders it made. */
void backup__job_undo(struct job *j)
{
	char path[PATH_MAX];
	size_t i;
	int k;

	for(i = j->nwritten; i-- > 0;) unlink(j->written[i]);
	for(k = 0; k < N_SUBS; k++){
		if(j->made_sub[k] && backup__join(path, sizeof(path), j->root, subs[k])) rmdir(path);
	}
	if(j->made_root) rmdir(j->root);
}

void backup__job_free(struct job *j)
{
	size_t i;

	for(i = 0; i < j->nwritten; i++) free(j->written[i]);
	free(j->written);
	free(j->buf);
}

/* ---- copying and checksums ---- */

static int write_all(int fd, const void *data, size_t len)
{
	const unsigned char *p = data;
	ssize_t n;

	while(len > 0){
		n = write(fd, p, len);
		if(n < 0 && errno == EINTR) continue;
		if(n <= 0) return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int digest_hex(EVP_MD_CTX *md, char hex[SHA256_HEX])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned n = 0, i;

	if(EVP_DigestFinal_ex(md, d, &n) != 1 || n != 32) return -1;
	for(i = 0; i < n; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
	return 0;
}

/* Read the regular file open as in to its end; with out >= 0 write each
 * chunk there too. *size and hex get its size and sha256. 0, or -1 with
 * errno (*wrote: the write failed, not the read). */
int backup__pump(struct job *j, int in, int out, int64_t *size, char hex[SHA256_HEX], bool *wrote)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	ssize_t n;
	int rc = -1;

	*size = 0;
	*wrote = false;
	if(md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1){
		errno = ENOMEM;
		goto done;
	}
	for(;;){
		n = read(in, j->buf, COPY_CHUNK);
		if(n < 0 && errno == EINTR) continue;
		if(n < 0) goto done;
		if(n == 0) break;
		if(out >= 0 && write_all(out, j->buf, (size_t)n) != 0){
			*wrote = true;
			goto done;
		}
		if(EVP_DigestUpdate(md, j->buf, (size_t)n) != 1){
			errno = ENOMEM;
			goto done;
		}
		*size += n;
	}
	if(digest_hex(md, hex) != 0){
		errno = ENOMEM;
		goto done;
	}
	rc = 0;
done:
	EVP_MD_CTX_free(md);
	return rc;
}

/* Open path to read: a regular file, never through a link. The descriptor,
 * or -1 with errno (ELOOP: a link; EINVAL: not a regular file). */
int backup__open_regular(const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if(fd < 0) return -1;
	if(fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)){
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

/* Why open_regular failed on path, as a message part. */
const char *backup__open_why(int e)
{
	if(e == ELOOP) return "a symbolic link: refusing to follow it";
	if(e == EINVAL) return "not a regular file";
	return strerror(e);
}

/* Copy the regular file open as in (from: its path, for messages) to a new
 * file path with mode, fsynced; *size and hex get what was copied. */
int backup__copy_fd(struct job *j, int in, const char *from, const char *path, mode_t mode,
		int64_t *size, char hex[SHA256_HEX])
{
	bool wrote;
	int out = create_file(j, path, mode), e;

	if(out < 0) return CLI_ERR_RUNTIME;
	if(backup__pump(j, in, out, size, hex, &wrote) != 0){
		e = errno;
		close(out);
		return cli__error(CLI_ERR_RUNTIME, "cannot %s %s: %s", wrote ? "write" : "read",
				wrote ? path : from, strerror(e));
	}
	if(fsync(out) != 0 || close(out) != 0){
		e = errno;
		return cli__error(CLI_ERR_RUNTIME, "cannot write %s: %s", path, strerror(e));
	}
	return CLI_OK;
}

/* Size and sha256 of the file at path (a copy this process made), after
 * an fsync of it. */
static int seal_copy(struct job *j, const char *path, int64_t *size, char hex[SHA256_HEX])
{
	bool wrote;
	int fd = backup__open_regular(path), e;

	if(fd < 0 || backup__pump(j, fd, -1, size, hex, &wrote) != 0 || fsync(fd) != 0){
		e = errno;
		if(fd >= 0) close(fd);
		return cli__error(CLI_ERR_RUNTIME, "cannot read back %s: %s", path, strerror(e));
	}
	close(fd);
	return CLI_OK;
}

/* A MANIFEST entry (new reference, NULL when out of memory). version < 0:
 * not a store; from: where a config file was, or NULL. */
static json_t *entry_new(const char *path, int64_t size, const char *hex, mode_t mode, int version,
		const char *from)
{
	char m[8];
	json_t *e;

	snprintf(m, sizeof(m), "%04o", (unsigned)(mode & 07777));
	e = json_pack("{s:s, s:I, s:s, s:s}", "path", path, "size", (json_int_t)size, "sha256", hex,
			"mode", m);
	if(e && version >= 0 && json_object_set_new(e, "schema_version", json_integer(version)) != 0){
		json_decref(e);
		return NULL;
	}
	if(e && from && json_object_set_new(e, "from", json_string(from)) != 0){
		json_decref(e);
		return NULL;
	}
	return e;
}

static int add_entry(json_t *files, const char *path, int64_t size, const char *hex, mode_t mode,
		int version, const char *from)
{
	if(json_array_append_new(files, entry_new(path, size, hex, mode, version, from)) != 0){
		return cli__error(CLI_ERR_RUNTIME, "out of memory");
	}
	return CLI_OK;
}

/* ---- stores ---- */

/* The schema version of a store of kind, open as db: MQC_OK and *version,
 * MQC_ERR_SCHEMA when it is not one of ours (no meta row), or another
 * MQC_ERR_*. */
int backup__store_version(sqlite3 *db, enum store_kind kind, int *version)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *v;
	bool prepared;
	int rc;

	*version = -1;
	if(kind != STORE_PUSH){
		rc = sqlutil__schema_version(db, version, &prepared);
	}else{
		/* push.db keeps it under "schema" (push_store.c). */
		rc = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='schema'", -1, &st, NULL);
		prepared = rc == SQLITE_OK;
		if(prepared){
			rc = sqlite3_step(st);
			v = rc == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
			if(v && sscanf((const char *)v, "%d", version) != 1) *version = -1;
			if(rc == SQLITE_ROW || rc == SQLITE_DONE) rc = SQLITE_OK;
		}
		sqlite3_finalize(st);
	}
	if(!prepared && (rc & 0xff) != SQLITE_BUSY) return MQC_ERR_SCHEMA;
	if(rc != SQLITE_OK) return sqlutil__status(rc);
	return *version > 0 ? MQC_OK : MQC_ERR_SCHEMA;
}

/* Can this program take version of a store of kind (path: for messages)?
 * CLI_OK; a newer one is CLI_ERR_NODB, saying what to do. */
int backup__check_version(const char *path, enum store_kind kind, int version)
{
	const struct store_info *s = &backup__store_info[kind];
	char err[PATH_MAX + 256];

	if(version <= s->version) return CLI_OK;
	sqlutil__newer_error(err, sizeof(err), path, s->what, version, s->version);
	return cli__error(CLI_ERR_NODB, "%s", err);
}

/* The error of a failed store_version on path. */
int backup__version_failed(int rc, const char *path, enum store_kind kind, sqlite3 *db)
{
	if(rc == MQC_ERR_BUSY) return cli__error(CLI_ERR_RUNTIME, "%s: database is locked", path);
	if(rc == MQC_ERR_SCHEMA) return cli__error(CLI_ERR_NODB, "%s: not an mqchat %s", path, backup__store_info[kind].what);
	return cli__error(CLI_ERR_RUNTIME, "%s: %s", path, db ? sqlite3_errmsg(db) : mqc_strerror(rc));
}

/* Open the store at path as the other programs do (no link, no create),
 * and check its version: CLI_OK with *db and *version, or an exit status
 * (error printed; *db NULL). */
static int open_source(struct job *j, const char *datadir, const char *path, enum store_kind kind,
		sqlite3 **db, int *version)
{
	char err[1024];
	int rc = datadir__need_file(datadir, path, err, sizeof(err));

	*db = NULL;
	if(rc == MQC_OK) rc = datadir__sqlite_no_link(path, err, sizeof(err));
	if(rc != MQC_OK) return cli__error(rc == MQC_ERR_NOTFOUND ? CLI_ERR_NODB : CLI_ERR_RUNTIME, "%s", err);
	if(sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK){
		rc = cli__error(CLI_ERR_RUNTIME, "%s: %s", path, *db ? sqlite3_errmsg(*db) : "out of memory");
		sqlite3_close_v2(*db);
		*db = NULL;
		return rc;
	}
	sqlite3_busy_timeout(*db, j->cli->busy_ms);
	rc = backup__store_version(*db, kind, version);
	rc = rc == MQC_OK ? backup__check_version(path, kind, *version) : backup__version_failed(rc, path, kind, *db);
	if(rc != CLI_OK){
		sqlite3_close_v2(*db);
		*db = NULL;
	}
	return rc;
}

/* Copy the store f of datadir into the backup with SQLite's online backup
 * API (one step: one snapshot), and list it in files. A store an older
 * release's folder lacks (push.db) is left out. */
static int backup_store(struct job *j, const char *datadir, const struct data_file *f, json_t *files)
{
	char src[PATH_MAX], dst[PATH_MAX], part[PATH_MAX], hex[SHA256_HEX];
	sqlite3 *sdb = NULL, *ddb = NULL;
	sqlite3_backup *bk;
	int rc, step, fd, version, copied = -1;
	int64_t deadline, size;
	struct stat st;

	if(!backup__join(src, sizeof(src), datadir, f->name) || !backup__join(dst, sizeof(dst), j->root, f->name)
			|| (size_t)snprintf(part, sizeof(part), "%s%s", dst, PART) >= sizeof(part)){
		return cli__error(CLI_ERR_USAGE, "path too long");
	}
	if(!f->required && lstat(src, &st) != 0 && errno == ENOENT) return CLI_OK;
	if((rc = open_source(j, datadir, src, f->store, &sdb, &version)) != CLI_OK) return rc;
	if(fstatat(AT_FDCWD, src, &st, AT_SYMLINK_NOFOLLOW) != 0) st.st_mode = f->mode;

	/* A file of our own first (O_EXCL), which SQLite then fills. No
	 * journal and no syncs of SQLite's beside it: a failed copy is
	 * removed whole, a finished one is fsynced below. */
	fd = create_file(j, part, 0600);
	if(fd < 0){
		rc = CLI_ERR_RUNTIME;
		goto done;
	}
	close(fd);
	if(sqlite3_open_v2(part, &ddb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK
			|| sqlite3_exec(ddb, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF", NULL, NULL, NULL)
			!= SQLITE_OK){
		rc = cli__error(CLI_ERR_RUNTIME, "%s: %s", part, ddb ? sqlite3_errmsg(ddb) : "out of memory");
		goto done;
	}
	bk = sqlite3_backup_init(ddb, "main", sdb, "main");
	if(bk == NULL){
		rc = cli__error(CLI_ERR_RUNTIME, "%s: %s", part, sqlite3_errmsg(ddb));
		goto done;
	}
	/* -1: every page in one step, so in one read transaction of the
	 * source. Busy only while a checkpoint restarts the WAL. */
	deadline = time__mono_ms() + j->cli->busy_ms;
	do{
		step = sqlite3_backup_step(bk, -1);
		if(step != SQLITE_BUSY && step != SQLITE_LOCKED) break;
		usleep(10 * 1000);
	}while(time__mono_ms() < deadline);
	rc = sqlite3_backup_finish(bk);
	if(step != SQLITE_DONE){
		rc = step == SQLITE_BUSY || step == SQLITE_LOCKED
				? cli__error(CLI_ERR_RUNTIME, "%s: database is locked", src)
				: cli__error(CLI_ERR_RUNTIME, "copying %s: %s", src, sqlite3_errstr(step));
		goto done;
	}
	if(rc != SQLITE_OK){
		rc = cli__error(CLI_ERR_RUNTIME, "copying %s: %s", src, sqlite3_errmsg(ddb));
		goto done;
	}
	/* The snapshot's own version: the store may have been upgraded since
	 * the check. */
	rc = backup__store_version(ddb, f->store, &copied);
	rc = rc == MQC_OK ? backup__check_version(src, f->store, copied) : backup__version_failed(rc, src, f->store, ddb);
	if(rc != CLI_OK) goto done;
	if(sqlite3_close(ddb) != SQLITE_OK){
		rc = cli__error(CLI_ERR_RUNTIME, "%s: %s", part, sqlite3_errmsg(ddb));
		goto done;
	}
	ddb = NULL;
	rc = seal_copy(j, part, &size, hex);
	if(rc == CLI_OK) rc = backup__publish(j, part, dst);
	if(rc == CLI_OK) rc = add_entry(files, f->name, size, hex, st.st_mode, copied, NULL);
done:
	sqlite3_close_v2(ddb);
	sqlite3_close_v2(sdb);
	return rc;
}

/* ---- plain files ---- */

/* Copy the file open as in (from: its path) into the backup as rel. */
static int backup_fd(struct job *j, int in, const char *from, const char *rel, json_t *files,
		const char *origin)
{
	char dst[PATH_MAX], part[PATH_MAX], hex[SHA256_HEX];
	struct stat st;
	int64_t size;
	int rc;

	if(!backup__join(dst, sizeof(dst), j->root, rel)
			|| (size_t)snprintf(part, sizeof(part), "%s%s", dst, PART) >= sizeof(part)){
		return cli__error(CLI_ERR_USAGE, "path too long");
	}
	if(fstat(in, &st) != 0) return cli__error(CLI_ERR_RUNTIME, "%s: %s", from, strerror(errno));
	rc = backup__copy_fd(j, in, from, part, 0600, &size, hex);
	if(rc == CLI_OK) rc = backup__publish(j, part, dst);
	if(rc == CLI_OK) rc = add_entry(files, rel, size, hex, st.st_mode, -1, origin);
	return rc;
}

/* Copy the plain file f of datadir (never through a link), if it is
 * there or must be. */
static int backup_plain(struct job *j, const char *datadir, const struct data_file *f, json_t *files)
{
	char src[PATH_MAX], err[1024];
	int fd, rc;

	if(!backup__join(src, sizeof(src), datadir, f->name)) return cli__error(CLI_ERR_USAGE, "path too long");
	fd = backup__open_regular(src);
	if(fd < 0 && errno == ENOENT && !f->required) return CLI_OK;
	if(fd < 0 && (errno == EACCES || errno == ENOENT)){
		rc = datadir__need_file(datadir, src, err, sizeof(err));
		return cli__error(rc == MQC_ERR_NOTFOUND ? CLI_ERR_NODB : CLI_ERR_RUNTIME, "%s", err);
	}
	if(fd < 0) return cli__error(CLI_ERR_RUNTIME, "%s: %s", src, backup__open_why(errno));
	rc = backup_fd(j, fd, src, f->name, files, NULL);
	close(fd);
	return rc;
}

/* A file left out of the backup: a note on stderr, and in skipped. */
static int skip(json_t *skipped, const char *path, const char *rel, const char *why)
{
	fprintf(stderr, "note: %s: %s: not in the backup\n", path, why);
	if(json_array_append_new(skipped, json_pack("{s:s, s:s}", "path", rel, "why", why)) != 0){
		return cli__error(CLI_ERR_RUNTIME, "out of memory");
	}
	return CLI_OK;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The files of DIR/tls, in name order, as tls/NAME: each this process may
 * read; the rest (DIR/tls/ca.key is root's: a backup run as the folder's
 * owner has no CA key, which only signs new server certificates), links
 * and anything not a regular file are left out with a note. */
static int backup_tls(struct job *j, const char *datadir, json_t *files, json_t *skipped)
{
	char dir[PATH_MAX], path[PATH_MAX], rel[PATH_MAX];
	char **names = NULL;
	size_t n = 0, cap = 0, i;
	struct dirent *e;
	struct stat st;
	int dfd, fd, rc = CLI_OK;
	DIR *d;

	if(!backup__join(dir, sizeof(dir), datadir, "tls")) return cli__error(CLI_ERR_USAGE, "path too long");
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if(dfd < 0 && errno == ENOENT) return CLI_OK;
	if(dfd < 0) return skip(skipped, dir, "tls", errno == ELOOP || errno == ENOTDIR ? "not a folder" : strerror(errno));
	d = fdopendir(dfd);
	if(d == NULL){
		close(dfd);
		return cli__error(CLI_ERR_RUNTIME, "%s: %s", dir, strerror(errno));
	}
	while(rc == CLI_OK && (e = readdir(d)) != NULL){
		char **grown;

		if(strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
		grown = grow__one(names, &cap, n, sizeof(*names), 8);
		if(grown) names = grown;
		if(grown == NULL || (names[n] = strdup(e->d_name)) == NULL){
			rc = cli__error(CLI_ERR_RUNTIME, "out of memory");
			break;
		}
		n++;
	}
	if(n > 1) qsort(names, n, sizeof(*names), cmp_names);
	for(i = 0; rc == CLI_OK && i < n; i++){
		if(!backup__join(path, sizeof(path), dir, names[i]) || !backup__join(rel, sizeof(rel), "tls", names[i])){
			rc = cli__error(CLI_ERR_USAGE, "path too long");
			break;
		}
		if(!backup__safe_name(names[i])){
			rc = skip(skipped, path, rel, "not a name a backup holds");
			continue;
		}
		fd = openat(dirfd(d), names[i], O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if(fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))){
			close(fd);
			fd = -1;
			errno = EINVAL;
		}
		if(fd < 0){
			rc = skip(skipped, path, rel, backup__open_why(errno));
			continue;
		}
		rc = backup__make_sub(j, SUB_TLS, 0700);
		if(rc == CLI_OK) rc = backup_fd(j, fd, path, rel, files, NULL);
		close(fd);
	}
	for(i = 0; i < n; i++) free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

/* The name a --config file has in the backup (config/NAME). */
static const char *config_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* Each --config file must be a readable regular file, with a name of its
 * own: checked before anything is written. */
static int check_configs(const char *const *configs, size_t n)
{
	struct stat st;
	size_t i, k;

	for(i = 0; i < n; i++){
		if(stat(configs[i], &st) != 0 || access(configs[i], R_OK) != 0){
			return cli__error(CLI_ERR_RUNTIME, "--config %s: %s", configs[i], strerror(errno));
		}
		if(!S_ISREG(st.st_mode)) return cli__error(CLI_ERR_USAGE, "--config %s: not a regular file", configs[i]);
		if(!backup__safe_name(config_name(configs[i]))){
			return cli__error(CLI_ERR_USAGE, "--config %s: a file name a backup cannot hold", configs[i]);
		}
		for(k = 0; k < i; k++){
			if(strcmp(config_name(configs[k]), config_name(configs[i])) == 0){
				return cli__error(CLI_ERR_USAGE, "--config %s and %s have the same name", configs[k],
						configs[i]);
			}
		}
	}
	return CLI_OK;
}

/* Copy each --config file (the operator's path: a link is followed) as
 * config/NAME, with where it was. */
static int backup_configs(struct job *j, const char *const *configs, size_t n, json_t *files)
{
	char rel[PATH_MAX], *real;
	size_t i;
	int fd, rc = CLI_OK;

	for(i = 0; rc == CLI_OK && i < n; i++){
		snprintf(rel, sizeof(rel), "config/%s", config_name(configs[i]));
		fd = open(configs[i], O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if(fd < 0) return cli__error(CLI_ERR_RUNTIME, "--config %s: %s", configs[i], strerror(errno));
		real = realpath(configs[i], NULL);
		rc = backup__make_sub(j, SUB_CONFIG, 0700);
		if(rc == CLI_OK) rc = backup_fd(j, fd, configs[i], rel, files, real ? real : configs[i]);
		free(real);
		close(fd);
	}
	return rc;
}

/* ---- backup ---- */

/* The MANIFEST (stolen) as DEST/MANIFEST, last. */
static int write_manifest(struct job *j, json_t *manifest)
{
	char path[PATH_MAX], part[PATH_MAX];
	char *text = manifest ? json_dumps(manifest, JSON_INDENT(2)) : NULL;
	int fd, rc;

	json_decref(manifest);
	if(text == NULL) return cli__error(CLI_ERR_RUNTIME, "out of memory");
	if(!backup__join(path, sizeof(path), j->root, MANIFEST_NAME)
			|| (size_t)snprintf(part, sizeof(part), "%s%s", path, PART) >= sizeof(part)){
		free(text);
		return cli__error(CLI_ERR_USAGE, "path too long");
	}
	fd = create_file(j, part, 0600);
	if(fd < 0){
		free(text);
		return CLI_ERR_RUNTIME;
	}
	if(write_all(fd, text, strlen(text)) != 0 || write_all(fd, "\n", 1) != 0 || fsync(fd) != 0){
		rc = cli__error(CLI_ERR_RUNTIME, "cannot write %s: %s", part, strerror(errno));
		close(fd);
		free(text);
		return rc;
	}
	free(text);
	if(close(fd) != 0) return cli__error(CLI_ERR_RUNTIME, "cannot write %s: %s", part, strerror(errno));
	rc = backup__publish(j, part, path);
	return rc == CLI_OK ? backup__sync_dir(j->root) : rc;
}

/* The data folder must be there to be backed up. */
static int check_datadir(const char *dir)
{
	char err[1024];
	int rc = datadir__need_dir(dir, err, sizeof(err));

	if(rc == MQC_ERR_NOTFOUND) return cli__error(CLI_ERR_NODB, "%s: no such folder: nothing to back up", dir);
	if(rc != MQC_OK) return cli__error(CLI_ERR_RUNTIME, "%s", err);
	return CLI_OK;
}

/* New reference: the MANIFEST's head, then files and skipped (stolen). */
static json_t *manifest_new(const char *datadir, int64_t created, int64_t took_ms, json_t *files,
		json_t *skipped)
{
	char when[32], *real = realpath(datadir, NULL);
	json_t *m;

	m = json_pack("{s:s, s:i, s:s, s:I, s:{s:s, s:s, s:{s:i, s:i, s:i}}, s:s, s:I, s:o, s:o}",
			"format", BACKUP_FORMAT, "format_version", BACKUP_FORMAT_VERSION,
			"created", cli__fmt_time(created, when, sizeof(when)), "created_ms", (json_int_t)created,
			"program", "name", "mqchat-archiver", "version", MQCHAT_VERSION,
			"schemas", "auth.db", USERDB_SCHEMA_VERSION, "archive.db", ARCHIVE_SCHEMA_VERSION,
			"push.db", PUSH_SCHEMA_VERSION,
			"data", real ? real : datadir, "duration_ms", (json_int_t)took_ms,
			"files", files, "skipped", skipped);
	free(real);
	return m;
}

static int do_backup(struct cli *cli, const char *dest, const char *const *configs, size_t nconf,
		bool json_out)
{
	struct job j = {.cli = cli, .root = dest};
	json_t *files = json_array(), *skipped = json_array(), *manifest = NULL, *e;
	int64_t created = time__now_ms(), t0 = time__mono_ms(), bytes = 0;
	size_t i;
	int rc;

	/* Every input first: a bad one writes nothing. */
	rc = check_datadir(cli->datadir);
	if(rc == CLI_OK) rc = check_configs(configs, nconf);
	if(rc == CLI_OK && (files == NULL || skipped == NULL || (j.buf = malloc(COPY_CHUNK)) == NULL)){
		rc = cli__error(CLI_ERR_RUNTIME, "out of memory");
	}
	if(rc == CLI_OK) rc = backup__empty_root(&j, 0700, "backup");
	for(i = 0; rc == CLI_OK && i < backup__n_data_files; i++){
		rc = backup__data_files[i].store ? backup_store(&j, cli->datadir, &backup__data_files[i], files)
				: backup_plain(&j, cli->datadir, &backup__data_files[i], files);
	}
	if(rc == CLI_OK) rc = backup_tls(&j, cli->datadir, files, skipped);
	if(rc == CLI_OK) rc = backup_configs(&j, configs, nconf, files);
	if(rc == CLI_OK) rc = backup__sync_all(&j);
	if(rc == CLI_OK){
		manifest = manifest_new(cli->datadir, created, time__mono_ms() - t0, json_incref(files),
				json_incref(skipped));
		rc = write_manifest(&j, json_incref(manifest));
	}
	if(rc != CLI_OK){
		backup__job_undo(&j);
	}else if(json_out){
		rc = cli__print_json(json_incref(manifest));
	}else{
		json_array_foreach(files, i, e){
			bytes += json_integer_value(json_object_get(e, "size"));
			printf("%s %lld\n", json_string_value(json_object_get(e, "path")),
					(long long)json_integer_value(json_object_get(e, "size")));
		}
		printf("backup of %s in %s: %zu files, %lld bytes, %.1f s\n", cli->datadir, dest,
				json_array_size(files), (long long)bytes, (double)(time__mono_ms() - t0) / 1000.0);
	}
	json_decref(manifest);
	json_decref(files);
	json_decref(skipped);
	backup__job_free(&j);
	return rc;
}

static const struct cmdline_opt backup_opts[] = {
	{"config", 'c', CMDLINE_REQUIRED, 'c'},
	{"json", 0, CMDLINE_NO_ARG, 'j'},
	{0},
};

int cli_backup__backup(struct cli *cli)
{
	const char **configs = NULL, **grown;
	size_t n = 0, cap = 0;
	bool json_out = false;
	struct cmdline cl;
	int c, rc;

	cli__options(cli, &cl, backup_opts, cli->nargs, cli->args);
	while((c = cmdline__next(&cl)) > 0){
		if(c == 'j'){
			json_out = true;
		}else if(c == 'c'){
			grown = grow__one(configs, &cap, n, sizeof(*configs), 4);
			if(grown == NULL){
				free(configs);
				return cli__error(CLI_ERR_RUNTIME, "out of memory");
			}
			configs = grown;
			configs[n++] = cl.value;
		}
	}
	if(c < 0){
		rc = cli__options_end(cli, &cl, c);
	}else if(cl.nargs != 1){
		rc = cli__bad_args(cli, cl.nargs == 0 ? "missing the backup folder DEST" : "too many arguments");
	}else if(cli__says_postgresql(cli)){
		/* Copies of SQLite files: PostgreSQL has its own tools. */
		rc = cli__error(CLI_ERR_USAGE, "%s/store.conf puts the stores on PostgreSQL: backup copies SQLite"
				" files only; use pg_dump or pg_basebackup", cli->datadir);
	}else{
		rc = do_backup(cli, cl.args[0], configs, n, json_out);
	}
	free(configs);
	return rc;
}
