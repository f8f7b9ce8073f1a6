/* cli_admin.c - `mqchat-archiver init`, `purge` and `stats`: set up a data
 * folder, delete old messages by hand, and report counts and sizes. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "archive.h"
#include "cli.h"
#include "datadir.h"
#include "err.h"
#include "push.h"
#include "store_conf.h"
#include "timeutil.h"
#include "userdb.h"

/* Random bytes of the service account's password (32 base64url characters). */
#define SERVICE_PW_BYTES 24
#define DAY_MS (86400LL * 1000)

/* ---- init ---- */

struct init_ctx {
	struct cli *cli;
	char dir[PATH_MAX];      /* DIR as given, for messages */
	char auth[PATH_MAX];
	char archive[PATH_MAX];
	char pwfile[PATH_MAX];
	char pwtmp[PATH_MAX];
	char vapid[PATH_MAX];
	int changes;             /* things created or changed */
};

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static int make_dir(struct init_ctx *ctx)
{
	struct stat st;

	if(mkdir(ctx->dir, 0750) == 0){
		printf("created %s\n", ctx->dir);
		ctx->changes++;
		return CLI_OK;
	}
	if(errno == EEXIST && stat(ctx->dir, &st) == 0 && S_ISDIR(st.st_mode)) return CLI_OK;
	if(errno == EEXIST) return cli__error(CLI_ERR_RUNTIME, "%s: not a directory", ctx->dir);
	return cli__error(CLI_ERR_RUNTIME, "cannot create %s: %s", ctx->dir, strerror(errno));
}

/* Take an exclusive flock on DIR itself (no lock file left behind), so
 * inits run one at a time: one that found auth.db half made by another
 * would take it for a foreign file. Waits up to the busy timeout.
 * Returns CLI_OK and *fd (close it to unlock) or an exit status. */
static int lock_dir(struct init_ctx *ctx, int *fd)
{
	int64_t deadline = time__mono_ms() + ctx->cli->busy_ms;

	*fd = open(ctx->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if(*fd < 0) return cli__error(CLI_ERR_RUNTIME, "cannot open %s: %s", ctx->dir, strerror(errno));
	while(flock(*fd, LOCK_EX | LOCK_NB) != 0){
		if((errno != EWOULDBLOCK && errno != EINTR) || time__mono_ms() >= deadline){
			int e = errno;
			close(*fd);
			*fd = -1;
			if(e == EWOULDBLOCK) return cli__error(CLI_ERR_RUNTIME, "%s is locked by another init", ctx->dir);
			return cli__error(CLI_ERR_RUNTIME, "cannot lock %s: %s", ctx->dir, strerror(e));
		}
		usleep(10 * 1000);
	}
	return CLI_OK;
}

/* chmod a file init made, never through a link. */
static void chmod_own(const char *path, mode_t mode)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

	if(fd < 0) return;
	(void)fchmod(fd, mode);
	close(fd);
}

/* Open auth.db, creating it (0640: it holds password hashes) if missing. */
static int open_auth(struct init_ctx *ctx, struct userdb **udb)
{
	char err[512] = "";
	bool created = !exists(ctx->auth);
	int rc;

	if(!store_conf__auth_is_file(ctx->dir)){
		/* On PostgreSQL (or DIR/store.conf is wrong: the open says how):
		 * the schema is made, or upgraded, by the open, under its lock,
		 * whoever comes first. */
		rc = userdb__open(ctx->auth, USERDB_CREATE, udb, err, sizeof(err));
		if(rc != MQC_OK) return cli__error(rc == MQC_ERR_SCHEMA || rc == MQC_ERR_NOTFOUND
				? CLI_ERR_NODB : CLI_ERR_RUNTIME, "%s", err);
		userdb__set_busy_ms(*udb, ctx->cli->busy_ms);
		printf("user store: schema auth on PostgreSQL (%s)\n", userdb__path(*udb));
		return CLI_OK;
	}
	if(!created) return cli__open_auth(ctx->cli, udb);
	if(datadir__sqlite_no_link(ctx->auth, err, sizeof(err)) != MQC_OK){
		return cli__error(CLI_ERR_RUNTIME, "%s", err);
	}
	rc = userdb__open(ctx->auth, USERDB_CREATE, udb, err, sizeof(err));
	if(rc != MQC_OK) return cli__open_failed(rc, ctx->auth, err);
	userdb__set_busy_ms(*udb, ctx->cli->busy_ms);
	chmod_own(ctx->auth, 0640);
	printf("created %s\n", ctx->auth);
	ctx->changes++;
	return CLI_OK;
}

static int make_archive(struct init_ctx *ctx)
{
	struct archive *ar = NULL;
	char err[512] = "";
	int rc;

	if(!store_conf__auth_is_file(ctx->dir)){
		/* On PostgreSQL (DIR/store.conf): schema archive, made by the
		 * open under its lock, whoever comes first. */
		rc = archive__open(ctx->archive, &ar, err, sizeof(err));
		archive__close(ar);
		if(rc != MQC_OK) return cli__open_failed(rc, ctx->archive, err);
		printf("archive: schema archive on PostgreSQL\n");
		return CLI_OK;
	}
	if(exists(ctx->archive)){
		rc = cli__open_archive(ctx->cli, &ar);   /* checks the schema */
		archive__close(ar);
		return rc;
	}
	if(datadir__sqlite_no_link(ctx->archive, err, sizeof(err)) != MQC_OK){
		return cli__error(CLI_ERR_RUNTIME, "%s", err);
	}
	rc = archive__open(ctx->archive, &ar, err, sizeof(err));
	archive__close(ar);
	if(rc != MQC_OK) return cli__open_failed(rc, ctx->archive, err);
	chmod_own(ctx->archive, 0640);
	printf("created %s\n", ctx->archive);
	ctx->changes++;
	return CLI_OK;
}

/* Write the password to a fresh DIR/archiver.pw.XXXXXX (0600, a unique
 * name so two inits at once cannot swap files); publish_pwfile renames it
 * once the database agrees. */
static int write_pwtmp(struct init_ctx *ctx, const char *pw)
{
	size_t len = strlen(pw);
	int fd;

	fd = mkostemp(ctx->pwtmp, O_CLOEXEC);   /* mode 0600 */
	if(fd < 0) return cli__error(CLI_ERR_RUNTIME, "cannot create %s: %s", ctx->pwtmp, strerror(errno));
	if(write(fd, pw, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd) != 0){
		int e = errno;
		close(fd);
		unlink(ctx->pwtmp);
		return cli__error(CLI_ERR_RUNTIME, "cannot write %s: %s", ctx->pwtmp, strerror(e));
	}
	if(close(fd) != 0){
		unlink(ctx->pwtmp);
		return cli__error(CLI_ERR_RUNTIME, "cannot write %s: %s", ctx->pwtmp, strerror(errno));
	}
	return CLI_OK;
}

static int publish_pwfile(struct init_ctx *ctx)
{
	if(rename(ctx->pwtmp, ctx->pwfile) != 0){
		int e = errno;
		unlink(ctx->pwtmp);
		return cli__error(CLI_ERR_RUNTIME, "cannot rename %s: %s", ctx->pwtmp, strerror(e));
	}
	return CLI_OK;
}

/* Does the service account exist? An account of that name that is not a
 * service is a conflict init must not paper over. */
static int check_service(struct userdb *udb, bool *have_user)
{
	struct userdb_user u;
	int rc = userdb__user_get(udb, CLI_SERVICE_USER, &u);

	if(rc != MQC_OK && rc != MQC_ERR_NOTFOUND) return cli__fail(rc, "reading the user store");
	*have_user = (rc == MQC_OK);
	if(*have_user && u.kind != USER_KIND_SERVICE){
		return cli__error(CLI_ERR_EXISTS, "user '%s' exists but is not a service account", CLI_SERVICE_USER);
	}
	return CLI_OK;
}

/* Create the service account, or give it a new password when its password
 * file is gone (the old password cannot be recovered from the hash). */
static int make_service(struct init_ctx *ctx, struct userdb *udb)
{
	char pw[SERVICE_PW_BYTES * 2], hash[PWHASH_STR_LEN];
	bool have_user, have_file = exists(ctx->pwfile);
	int rc;

	if((rc = check_service(udb, &have_user)) != CLI_OK) return rc;
	if(have_user && have_file) return CLI_OK;

	rc = cli__random_token(SERVICE_PW_BYTES, pw, sizeof(pw));
	/* A random secret: its fast form (pwhash.h), which the plugin never
	 * throttles, so nobody can keep the archiver out. */
	if(rc == CLI_OK && pwhash__make_secret(pw, strlen(pw), hash, sizeof(hash)) != MQC_OK){
		rc = cli__error(CLI_ERR_RUNTIME, "cannot hash the service password");
	}
	if(rc == CLI_OK) rc = write_pwtmp(ctx, pw);
	OPENSSL_cleanse(pw, sizeof(pw));
	if(rc != CLI_OK) return rc;

	rc = userdb__begin_write(udb);
	if(rc == MQC_OK){
		int64_t created, deleted;

		if(have_user){
			rc = userdb__user_set_pwhash(udb, CLI_SERVICE_USER, hash);
		}else if(userdb__retired_get(udb, CLI_SERVICE_USER, &created, &deleted) == MQC_OK){
			/* Deleted by hand: the service is the same, its broker
			 * sessions and queues are its own, so it gets its name back. */
			rc = userdb__user_restore(udb, CLI_SERVICE_USER, USER_KIND_SERVICE, CLI_SERVICE_USER, hash);
		}else{
			rc = userdb__user_add(udb, CLI_SERVICE_USER, USER_KIND_SERVICE, CLI_SERVICE_USER, hash);
		}
	}
	if(rc == MQC_OK) rc = userdb__commit(udb);
	if(rc != MQC_OK){
		userdb__rollback(udb);
		unlink(ctx->pwtmp);
		/* Another init made it between our check and our insert. */
		if(rc == MQC_ERR_EXISTS && !have_user) return CLI_OK;
		return cli__fail(rc, "creating the service account");
	}
	if((rc = publish_pwfile(ctx)) != CLI_OK) return rc;
	if(have_user){
		printf("new password for service account %s in %s (the file was missing)\n",
				CLI_SERVICE_USER, ctx->pwfile);
	}else{
		printf("created service account %s (password in %s)\n", CLI_SERVICE_USER, ctx->pwfile);
	}
	ctx->changes++;
	return CLI_OK;
}

/* The Web Push (VAPID) key pair, DIR/vapid.pem (0600), if missing: the
 * archiver signs with it, and apps subscribe with its public half. */
static int make_vapid(struct init_ctx *ctx)
{
	char err[512] = "";
	bool made = false;

	if(push__vapid_ensure(ctx->vapid, &made, err, sizeof(err)) != MQC_OK){
		return cli__error(CLI_ERR_RUNTIME, "%s", err);
	}
	if(made){
		printf("created %s (the Web Push key)\n", ctx->vapid);
		ctx->changes++;
	}
	return CLI_OK;
}

/* chown path to uid:gid if it exists and is owned by someone else. A link
 * is refused, never followed: the folder's owner could have put one there
 * pointing at a file of root's. */
static int give(struct init_ctx *ctx, const char *path, uid_t uid, gid_t gid, const char *owner)
{
	struct stat st;

	/* The folder itself is the operator's path (it may be a link they made). */
	if(path == ctx->dir){
		if(stat(path, &st) != 0) return CLI_OK;
		if(st.st_uid == uid && st.st_gid == gid) return CLI_OK;
		if(chown(path, uid, gid) != 0){
			return cli__error(CLI_ERR_RUNTIME, "cannot chown %s to %s: %s", path, owner, strerror(errno));
		}
		printf("owner of %s set to %s\n", path, owner);
		ctx->changes++;
		return CLI_OK;
	}
	if(lstat(path, &st) != 0) return CLI_OK;
	if(S_ISLNK(st.st_mode)){
		return cli__error(CLI_ERR_RUNTIME, "%s is a symbolic link, not a file mqchat made: refusing to"
				" follow it (remove it)", path);
	}
	if(st.st_uid == uid && st.st_gid == gid) return CLI_OK;
	if(fchownat(AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW) != 0){
		return cli__error(CLI_ERR_RUNTIME, "cannot chown %s to %s: %s", path, owner, strerror(errno));
	}
	printf("owner of %s set to %s\n", path, owner);
	ctx->changes++;
	return CLI_OK;
}

/* --owner USER: give the folder and the files of the broker and the
 * archiver to USER, who runs both (`make run` as root: the broker's user,
 * or root itself when the broker stays root). SQLite creates -wal/-shm
 * next to each database, so the folder too. Only root can do it;
 * otherwise, or if USER does not exist, it is skipped. */
static int set_owner(struct init_ctx *ctx, const char *owner)
{
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	static const char *const others[] = {CLI_PWFILE, "archive.journal", "archiver.lock", "vapid.pem",
		"push.db", "push.db-wal", "push.db-shm"};
	char path[PATH_MAX + 8];
	struct passwd *pw;
	size_t i;
	int rc;

	if(geteuid() != 0){
		fprintf(stderr, "note: not running as root, --owner %s ignored\n", owner);
		return CLI_OK;
	}
	pw = getpwnam(owner);
	if(pw == NULL){
		fprintf(stderr, "note: no system user '%s', --owner ignored\n", owner);
		return CLI_OK;
	}
	if((rc = give(ctx, ctx->dir, pw->pw_uid, pw->pw_gid, owner)) != CLI_OK) return rc;
	for(i=0; i<sizeof(suffixes) / sizeof(suffixes[0]); i++){
		snprintf(path, sizeof(path), "%s%s", ctx->auth, suffixes[i]);
		if((rc = give(ctx, path, pw->pw_uid, pw->pw_gid, owner)) != CLI_OK) return rc;
		snprintf(path, sizeof(path), "%s%s", ctx->archive, suffixes[i]);
		if((rc = give(ctx, path, pw->pw_uid, pw->pw_gid, owner)) != CLI_OK) return rc;
	}
	for(i = 0; i < sizeof(others) / sizeof(others[0]); i++){
		if(!cli__path(ctx->cli, others[i], path, sizeof(path))) continue;
		if((rc = give(ctx, path, pw->pw_uid, pw->pw_gid, owner)) != CLI_OK) return rc;
	}
	return CLI_OK;
}

int cli_admin__init(struct cli *cli)
{
	const char *owner = cmdline__value(&cli->opt, "owner");
	struct init_ctx ctx;
	struct userdb *udb = NULL;
	bool have_user;
	int rc, lockfd = -1;

	memset(&ctx, 0, sizeof(ctx));
	ctx.cli = cli;
	if(strlen(cli->datadir) >= sizeof(ctx.dir) || !cli__path(cli, "auth.db", ctx.auth, sizeof(ctx.auth))
			|| !cli__path(cli, "archive.db", ctx.archive, sizeof(ctx.archive))
			|| !cli__path(cli, CLI_PWFILE, ctx.pwfile, sizeof(ctx.pwfile))
			|| !cli__path(cli, CLI_PWFILE ".XXXXXX", ctx.pwtmp, sizeof(ctx.pwtmp))
			|| !cli__path(cli, "vapid.pem", ctx.vapid, sizeof(ctx.vapid))){
		return cli__error(CLI_ERR_USAGE, "data folder path too long");
	}
	snprintf(ctx.dir, sizeof(ctx.dir), "%s", cli->datadir);

	rc = make_dir(&ctx);
	if(rc == CLI_OK) rc = lock_dir(&ctx, &lockfd);
	if(rc == CLI_OK) rc = open_auth(&ctx, &udb);
	if(rc == CLI_OK) rc = check_service(udb, &have_user);   /* refuse before creating more */
	if(rc == CLI_OK) rc = make_archive(&ctx);
	if(rc == CLI_OK) rc = make_service(&ctx, udb);
	cli__close_auth(udb);
	if(rc == CLI_OK) rc = make_vapid(&ctx);
	if(rc == CLI_OK && owner) rc = set_owner(&ctx, owner);
	if(rc == CLI_OK && ctx.changes == 0) printf("%s is already initialised: nothing changed\n", ctx.dir);
	if(lockfd >= 0) close(lockfd);
	return rc;
}

/* ---- purge ---- */

int cli_admin__purge(struct cli *cli)
{
	long days = cmdline__num(&cli->opt, "older-than", CLI_DEFAULT_RETENTION_DAYS);
	struct archive *ar;
	int64_t deleted = 0;
	int rc;

	if((rc = cli__open_archive(cli, &ar)) != CLI_OK) return rc;
	rc = archive__purge(ar, time__now_ms() - (int64_t)days * DAY_MS, &deleted);
	archive__close(ar);
	/* Batches already committed stay deleted: say how many. */
	if(rc != MQC_OK){
		if(deleted > 0) printf("%lld messages purged\n", (long long)deleted);
		return cli__fail(rc, "purging the archive");
	}
	printf("%lld messages purged\n", (long long)deleted);
	return CLI_OK;
}

/* ---- stats ---- */

struct count_ctx {
	json_int_t users, disabled, by_kind[4];
	json_int_t rooms, members, invites;
};

static int count_user_cb(const struct userdb_user *u, void *arg)
{
	struct count_ctx *n = arg;

	n->users++;
	if(!u->enabled) n->disabled++;
	if(u->kind >= USER_KIND_USER && u->kind <= USER_KIND_SERVICE) n->by_kind[u->kind]++;
	return MQC_OK;
}

static int count_room_cb(const char *room, int retention_days, int64_t created, void *arg)
{
	(void)room; (void)retention_days; (void)created;
	((struct count_ctx *)arg)->rooms++;
	return MQC_OK;
}

static int count_member_cb(const char *room, const char *user, void *arg)
{
	(void)room; (void)user;
	((struct count_ctx *)arg)->members++;
	return MQC_OK;
}

static int count_invite_cb(const char *code, int uses_left, int64_t expires, int64_t created, void *arg)
{
	(void)code; (void)uses_left; (void)expires; (void)created;
	((struct count_ctx *)arg)->invites++;
	return MQC_OK;
}

/* Bytes of a database with its WAL. */
static json_int_t db_bytes(const struct cli *cli, const char *name)
{
	char path[PATH_MAX], wal[PATH_MAX + 8];
	struct stat st;
	json_int_t n = 0;

	if(!cli__path(cli, name, path, sizeof(path))) return 0;
	if(stat(path, &st) == 0) n += st.st_size;
	snprintf(wal, sizeof(wal), "%s-wal", path);
	if(stat(wal, &st) == 0) n += st.st_size;
	return n;
}

/* "key value" lines; nested objects as "key.sub value". */
static void print_flat(const char *prefix, json_t *obj)
{
	const char *key;
	json_t *v;
	char name[256];

	json_object_foreach(obj, key, v){
		snprintf(name, sizeof(name), "%s%s%s", prefix, prefix[0] ? "." : "", key);
		if(json_is_object(v)) print_flat(name, v);
		else if(json_is_integer(v)) printf("%s %lld\n", name, (long long)json_integer_value(v));
		else if(json_is_real(v)) printf("%s %.3f\n", name, json_real_value(v));
		else if(json_is_string(v)) printf("%s %s\n", name, json_string_value(v));
		else if(json_is_boolean(v)) printf("%s %s\n", name, json_is_true(v) ? "true" : "false");
		else printf("%s -\n", name);
	}
}

int cli_admin__stats(struct cli *cli)
{
	struct count_ctx n;
	struct userdb *udb = NULL;
	struct archive *ar = NULL;
	json_t *out = NULL, *ast = NULL;
	int rc;

	if((rc = cli__open_auth(cli, &udb)) != CLI_OK) return rc;
	if((rc = cli__open_archive(cli, &ar)) != CLI_OK) goto done;

	memset(&n, 0, sizeof(n));
	rc = userdb__begin_read(udb);
	if(rc == MQC_OK) rc = userdb__user_each(udb, count_user_cb, &n);
	if(rc == MQC_OK) rc = userdb__room_each(udb, count_room_cb, &n);
	if(rc == MQC_OK) rc = userdb__member_each(udb, NULL, NULL, count_member_cb, &n);
	if(rc == MQC_OK) rc = userdb__invite_each(udb, count_invite_cb, &n);
	userdb__rollback(udb);
	if(rc != MQC_OK){
		rc = cli__fail(rc, "reading the user store");
		goto done;
	}
	ast = archive__stats(ar);
	if(ast == NULL){
		rc = cli__error(CLI_ERR_RUNTIME, "reading the archive: %s", archive__errmsg(ar));
		goto done;
	}
	out = json_pack("{s:I, s:{s:I, s:I, s:I}, s:I, s:I, s:I, s:I}",
			"users", n.users,
			"users_by_kind", "user", n.by_kind[USER_KIND_USER], "device", n.by_kind[USER_KIND_DEVICE],
			"service", n.by_kind[USER_KIND_SERVICE],
			"users_disabled", n.disabled, "rooms", n.rooms, "members", n.members, "invites", n.invites);
	/* The archive's own figures, then file sizes including the WAL (in place
	 * of the archive's db_bytes, which leaves the WAL out). */
	if(out == NULL || json_object_update(out, ast) != 0
			|| (json_object_get(out, "db_bytes") && json_object_del(out, "db_bytes") != 0)
			|| json_object_set_new(out, "auth_db_bytes", json_integer(db_bytes(cli, "auth.db"))) != 0
			|| json_object_set_new(out, "archive_db_bytes", json_integer(db_bytes(cli, "archive.db"))) != 0){
		rc = cli__error(CLI_ERR_RUNTIME, "out of memory");
		goto done;
	}
	if(cli->opt.json){
		rc = cli__print_json(out);
		out = NULL;
	}else{
		print_flat("", out);
		rc = CLI_OK;
	}
done:
	json_decref(out);
	json_decref(ast);
	archive__close(ar);
	cli__close_auth(udb);
	return rc;
}
