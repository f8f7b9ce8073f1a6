/* restore.c - `mqchat-archiver --data DIR restore SRC` (cli.h): a new data
 * folder made from a backup (backup.c, which says what a backup holds).
 *
 * Nothing half-written: the MANIFEST, every file's size and checksum and
 * the stores' schema versions are checked before anything is written;
 * then every file is written as NAME.part, checked again, fsynced, and
 * all are renamed at the end; on a failure what was written is removed
 * (and the data folder, if the restore made it). */
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

#include "backup_internal.h"
#include "cli.h"
#include "err.h"

/* A MANIFEST larger than this is not one of ours. */
#define MANIFEST_MAX (16 * 1024 * 1024)

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
	return CLI_OK;
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
 * and one this program can take. Read without writing a byte (immutable:
 * a backup's stores are whole files, no WAL beside them). */
static int verify_store(const struct restore *r, const struct rfile *f)
{
	char path[PATH_MAX], uri[PATH_MAX * 3 + 32], *u;
	const char *s;
	sqlite3 *db = NULL;
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
	if(rc == CLI_OK) rc = backup__empty_root(&j, 0750, "restore");
	for(i = 0; rc == CLI_OK && i < r.n; i++){
		if(!r.files[i].config) rc = restore_copy(&j, &r, &r.files[i]);
	}
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
		if(f->df && f->df->store && f->version < backup__store_info[f->df->store].version){
			printf("%s has schema version %d: it is upgraded to %d when it is first opened\n", f->path,
					f->version, backup__store_info[f->df->store].version);
		}
	}
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
	return do_restore(cli, cl.args[0]);
}
