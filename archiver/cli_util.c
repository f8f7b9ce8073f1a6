/* cli_util.c - helpers shared by the CLI's command groups (see cli.h):
 * dispatch and usage, errors and exit statuses, opening the stores,
 * reading passwords, random tokens, number, time and JSON output. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "applied.h"
#include "archive.h"
#include "cli.h"
#include "datadir.h"
#include "devtoken.h"
#include "err.h"
#include "log.h"
#include "names.h"
#include "prompt.h"
#include "pwhash.h"
#include "rand.h"
#include "store_conf.h"
#include "userdb.h"

/* ---- dispatch and usage ---- */

void cli__usage(const struct cli *cli, FILE *out)
{
	const struct cli_cmd *cmd = cli->cmd;

	fprintf(out, "usage: %s [--data DIR] %s%s%s%s%s\n", cli->progname,
			cli->group ? cli->group : "", cli->group ? " " : "", cmd->name,
			cmd->usage[0] ? " " : "", cmd->usage);
	fprintf(out, "  %s\n", cmd->help);
}

int cli__help(const struct cli *cli)
{
	cli__usage(cli, stdout);
	return CLI_OK;
}

void cli__group_usage(const struct cli *cli, const char *group, const struct cli_cmd *table,
		size_t n, FILE *out)
{
	size_t i;

	fprintf(out, "usage: %s [--data DIR] %s%sCOMMAND ...\n\ncommands:\n", cli->progname,
			group ? group : "", group ? " " : "");
	for(i=0; i<n; i++){
		fprintf(out, "  %s%s%s%s%s\n      %s\n", group ? group : "", group ? " " : "",
				table[i].name, table[i].usage[0] ? " " : "", table[i].usage, table[i].help);
	}
}

const struct cmdline_opt cli__global_opts[] = {
	{"data", 'd', CMDLINE_REQUIRED, 'd'},
	{0},
};

/* Parse the options and operands that cmd declares (argv[0] is its name)
 * into cli->opt, in the order given; true to go on with the operands in
 * cl->args, false to stop and return *rc (--help printed: CLI_OK; an error
 * printed: its exit status). */
static bool parse_declared(struct cli *cli, const struct cli_cmd *cmd, struct cmdline *cl,
		int argc, char **argv, int *rc)
{
	const struct cli_operands *n_ops = cmd->operands;
	const struct cmdline_decl *d;
	long num;
	int c;

	cmdline__init_decl(cl, &cli->opt, cmd->opts, cmd->json, cli->progname, cli->path,
			cli__global_opts, argc, argv);
	while((c = cmdline__next_decl(cl, &cli->opt)) > 0){
		d = &cmd->opts[c - 1];
		if(d->max <= 0) continue;
		if(!cli__parse_long(cl->value, (long)d->min, (long)d->max, &num)){
			*rc = cli__bad_args(cli, d->bad);
			return false;
		}
		cli->opt.num[c - 1] = num;
	}
	*rc = CLI_OK;
	if(c < 0) *rc = cli__options_end(cli, cl, c);
	else if(n_ops == NULL && cl->nargs > 0) *rc = cli__bad_args(cli, "unexpected argument");
	else if(n_ops && cl->nargs < n_ops->min){
		*rc = cli__bad_args(cli, n_ops->why ? n_ops->why : "missing argument");
	}else if(n_ops && n_ops->max != CLI_ANY && cl->nargs > n_ops->max){
		*rc = cli__bad_args(cli, n_ops->why ? n_ops->why : "too many arguments");
	}
	return c == CMDLINE_DONE && *rc == CLI_OK;
}

int cli__dispatch(struct cli *cli, const char *group, const struct cli_cmd *table,
		size_t n, int argc, char **argv)
{
	static const struct cmdline_opt none[] = {{0}};
	const char *g = group ? group : "", *sp = group ? " " : "", *word;
	struct cmdline cl, args;
	char q[80];
	size_t i;
	int c, rc;

	/* A group takes no options of its own: only --help, and `--`. */
	cmdline__init(&cl, cli->progname, group, none, cli__global_opts, argc, argv, 0,
			CMDLINE_STOP_AT_OPERAND);
	c = cmdline__next(&cl);
	if(c == CMDLINE_ERROR) return cmdline__fail(&cl);
	if(c == CMDLINE_HELP || (cl.nargs > 0 && !strcmp(cl.args[0], "help"))){
		cli__group_usage(cli, group, table, n, stdout);
		return CLI_OK;
	}
	if(cl.nargs < 1){
		cli__error(CLI_ERR_USAGE, "missing command%s%s", group ? " after " : "", g);
		cli__group_usage(cli, group, table, n, stderr);
		return CLI_ERR_USAGE;
	}
	word = cl.args[0];
	for(i=0; i<n; i++){
		if(strcmp(word, table[i].name)) continue;
		cli->group = group;
		cli->cmd = &table[i];
		snprintf(cli->path, sizeof(cli->path), "%s%s%s", g, sp, table[i].name);
		cli->args = cl.args;
		cli->nargs = cl.nargs;
		if(!table[i].raw){
			if(!parse_declared(cli, &table[i], &args, cl.nargs, cl.args, &rc)) return rc;
			cli->args = args.args;
			cli->nargs = args.nargs;
		}
		return table[i].handler(cli);
	}
	return cli__error(CLI_ERR_USAGE, "unknown command '%s%s%s' (see `%s %s%s--help`)",
			g, sp, cli__quote(word, q, sizeof(q)), cli->progname, g, sp);
}

void cli__options(const struct cli *cli, struct cmdline *cl, const struct cmdline_opt *opts,
		int argc, char **argv)
{
	cmdline__init(cl, cli->progname, cli->path, opts, cli__global_opts, argc, argv, 1, 0);
}

int cli__options_end(const struct cli *cli, const struct cmdline *cl, int c)
{
	if(c == CMDLINE_HELP) return cli__help(cli);
	if(c == CMDLINE_ERROR) return cmdline__fail(cl);
	return CLI_OK;
}

int cli__bad_args(const struct cli *cli, const char *why)
{
	cli__error(CLI_ERR_USAGE, "%s", why);
	cli__usage(cli, stderr);
	return CLI_ERR_USAGE;
}

/* ---- errors ---- */

int cli__error(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mqc_verror(fmt, ap);
	va_end(ap);
	return code;
}

int cli__exit_of(int mqc_rc)
{
	switch(mqc_rc){
		case MQC_OK: return CLI_OK;
		case MQC_ERR_NOTFOUND: return CLI_ERR_NOTFOUND;
		case MQC_ERR_EXISTS: return CLI_ERR_EXISTS;
		case MQC_ERR_INVAL: return CLI_ERR_INVALID;
		case MQC_ERR_SCHEMA: return CLI_ERR_NODB;
		default: return CLI_ERR_RUNTIME;
	}
}

int cli__fail(int mqc_rc, const char *what)
{
	if(mqc_rc == MQC_ERR_BUSY) return cli__error(CLI_ERR_RUNTIME, "database is locked");
	return cli__error(cli__exit_of(mqc_rc), "%s: %s", what, mqc_strerror(mqc_rc));
}

const char *cli__quote(const char *s, char *out, size_t outlen)
{
	return log_escape(s, strlen(s), out, outlen);
}

int cli__check_name(const char *what, const char *name)
{
	char q[80];

	if(names__valid_str(name)) return CLI_OK;
	return cli__error(CLI_ERR_INVALID, "invalid %s name '%s': 1..%d of a-z 0-9 _ . -,"
			" starting with a letter or digit", what, cli__quote(name, q, sizeof(q)), NAME_MAX_LEN);
}

/* ---- stores ---- */

bool cli__path(const struct cli *cli, const char *name, char *out, size_t outlen)
{
	size_t dl = strlen(cli->datadir);
	const char *sep = (dl > 0 && cli->datadir[dl - 1] == '/') ? "" : "/";
	int n = snprintf(out, outlen, "%s%s%s", cli->datadir, sep, name);

	return n > 0 && (size_t)n < outlen;
}

/* Why path (a store in the data folder) cannot be opened, if it cannot:
 * missing (exit 6, run init) is told apart from no permission and other
 * errors (exit 1), which init would not cure. CLI_OK if it is there. */
static int need_db(const struct cli *cli, const char *path)
{
	char err[1024];
	int rc = datadir__need_file(cli->datadir, path, err, sizeof(err));

	/* The CLI often runs as root on a folder the broker's user may write. */
	if(rc == MQC_OK) rc = datadir__sqlite_no_link(path, err, sizeof(err));
	if(rc == MQC_OK) return CLI_OK;
	return cli__error(rc == MQC_ERR_NOTFOUND ? CLI_ERR_NODB : CLI_ERR_RUNTIME, "%s", err);
}

/* DIR/name into path (pathlen bytes), which must be there: CLI_OK or an
 * exit status (error printed). */
static int existing_store(const struct cli *cli, const char *name, char *path, size_t pathlen)
{
	if(!cli__path(cli, name, path, pathlen)) return cli__error(CLI_ERR_USAGE, "data folder path too long");
	return need_db(cli, path);
}

bool cli__on_postgresql(const struct cli *cli)
{
	return !store_conf__auth_is_file(cli->datadir);
}

bool cli__says_postgresql(const struct cli *cli)
{
	struct store_conf conf;
	char err[256];

	return store_conf__read(cli->datadir, &conf, err, sizeof(err)) == MQC_OK
		&& conf.kind == STORE_POSTGRESQL;
}

int cli__open_failed(int rc, const char *path, const char *err)
{
	int code = rc == MQC_ERR_SCHEMA ? CLI_ERR_NODB : CLI_ERR_RUNTIME;

	if(rc == MQC_ERR_BUSY) return cli__error(CLI_ERR_RUNTIME, "database is locked");
	if(err[0] == '\0') return cli__error(code, "%s: %s", path, mqc_strerror(rc));
	return cli__error(code, "%s", err);
}

int cli__open_auth(struct cli *cli, struct userdb **out)
{
	char path[PATH_MAX], err[512] = "";
	int rc;

	*out = NULL;
	if(!store_conf__auth_is_file(cli->datadir)){
		/* On PostgreSQL, or DIR/store.conf is wrong (the open says how):
		 * no file to look for first. */
		if(!cli__path(cli, "auth.db", path, sizeof(path))) return cli__error(CLI_ERR_USAGE, "data folder path too long");
		rc = userdb__open(path, 0, out, err, sizeof(err));
		if(rc != MQC_OK){
			return cli__error(rc == MQC_ERR_NOTFOUND || rc == MQC_ERR_SCHEMA ? CLI_ERR_NODB
					: CLI_ERR_RUNTIME, "%s", err);
		}
		userdb__set_busy_ms(*out, cli->busy_ms);
		return CLI_OK;
	}
	if((rc = existing_store(cli, "auth.db", path, sizeof(path))) != CLI_OK) return rc;
	rc = userdb__open(path, 0, out, err, sizeof(err));
	if(rc == MQC_ERR_NOTFOUND) return need_db(cli, path);
	if(rc != MQC_OK) return cli__open_failed(rc, path, err);
	userdb__set_busy_ms(*out, cli->busy_ms);
	return CLI_OK;
}

int cli__open_auth_for(struct cli *cli, const char *what, const char *name, struct userdb **out)
{
	int rc = cli__check_name(what, name);

	*out = NULL;
	return rc != CLI_OK ? rc : cli__open_auth(cli, out);
}

void cli__close_auth(struct userdb *udb)
{
	int rc;

	if(udb != NULL && userdb__committed_ns(udb) != 0
			&& applied__wait(userdb__path(udb), userdb__committed_ns(udb), APPLIED_WAIT_MS) == APPLIED_NOT_YET){
		fprintf(stderr, "Warning: the change is saved, but the broker has not applied it after"
				" %d s; it will when its plugin reloads the user store\n", APPLIED_WAIT_MS / 1000);
	}else if(udb != NULL && (rc = userdb__in_force_wait(udb, APPLIED_WAIT_MS)) != MQC_OK){
		/* A shared store: every node's broker, not only this folder's. */
		if(rc == MQC_ERR_TIMEOUT){
			fprintf(stderr, "Warning: the change is saved, but not every node's broker has applied"
					" it after %d s; they will when their plugins reload the user store\n",
					APPLIED_WAIT_MS / 1000);
		}else{
			fprintf(stderr, "Warning: the change is saved, but whether every node's broker has"
					" applied it cannot be read (%s)\n", userdb__errmsg(udb));
		}
	}
	userdb__close(udb);
}

int cli__open_archive(struct cli *cli, struct archive **out)
{
	char path[PATH_MAX], err[512] = "";
	int rc;

	*out = NULL;
	/* archive__open creates a missing file: only init may do that. On
	 * PostgreSQL (DIR/store.conf) there is no file; the open says what
	 * is wrong. */
	if(!store_conf__auth_is_file(cli->datadir)){
		if(!cli__path(cli, "archive.db", path, sizeof(path))) return cli__error(CLI_ERR_USAGE, "data folder path too long");
	}else if((rc = existing_store(cli, "archive.db", path, sizeof(path))) != CLI_OK){
		return rc;
	}
	rc = archive__open(path, out, err, sizeof(err));
	/* archive__open's message names the file already. */
	return rc == MQC_OK ? CLI_OK : cli__open_failed(rc, path, err);
}

/* ---- changes and lists ---- */

int cli__end_write(struct userdb *udb, int rc)
{
	if(rc == MQC_OK) rc = userdb__commit(udb);
	if(rc != MQC_OK) userdb__rollback(udb);
	return rc;
}

int cli__finish(struct userdb *udb, int rc, const char *what, const char *name,
		const char *done, const char *doing)
{
	rc = cli__end_write(udb, rc);
	cli__close_auth(udb);
	if(rc == MQC_ERR_NOTFOUND) return cli__error(CLI_ERR_NOTFOUND, "no such %s '%s'", what, name);
	if(rc == MQC_ERR_EXISTS) return cli__error(CLI_ERR_EXISTS, "%s '%s' already exists", what, name);
	if(rc != MQC_OK) return cli__fail(rc, doing);
	if(done) printf("%s %s %s\n", what, name, done);
	return CLI_OK;
}

int cli__list(struct cli *cli, json_t **arr, int (*each)(struct userdb *udb, void *arg), void *arg,
		const char *doing)
{
	struct userdb *udb;
	int rc;

	*arr = NULL;
	if((rc = cli__open_auth(cli, &udb)) != CLI_OK) return rc;
	if(cli->opt.json && (*arr = json_array()) == NULL){
		cli__close_auth(udb);
		return cli__error(CLI_ERR_RUNTIME, "out of memory");
	}
	rc = each(udb, arg);
	cli__close_auth(udb);
	if(rc != MQC_OK){
		json_decref(*arr);
		return cli__fail(rc, doing);
	}
	return cli->opt.json ? cli__print_json(*arr) : CLI_OK;
}

/* ---- passwords ---- */

/* Is the password pw (len bytes, read into a buffer of buflen) one to
 * keep? CLI_OK, or the error printed and CLI_ERR_INVALID. */
static int check_password(const char *pw, size_t len, size_t buflen)
{
	if(len == 0) return cli__error(CLI_ERR_INVALID, "empty password");
	if(len >= buflen || len > PWHASH_MAX_PASSWORD){
		return cli__error(CLI_ERR_INVALID, "password too long (at most %d bytes)", PWHASH_MAX_PASSWORD);
	}
	if(len < PWHASH_MIN_PASSWORD){
		return cli__error(CLI_ERR_INVALID, "password too short (at least %d bytes)", PWHASH_MIN_PASSWORD);
	}
	/* The plugin takes a password of this form for a token: it could
	 * never log in. */
	if(devtoken__is_token(pw, len)){
		return cli__error(CLI_ERR_INVALID, "a password may not have the form of a device token"
				" (%s and 43 characters of A-Z a-z 0-9 _ -)", DEVTOKEN_PREFIX);
	}
	return CLI_OK;
}

int cli__read_password(const char *user, bool from_stdin, bool confirm,
		char *buf, size_t buflen, size_t *len)
{
	char prompt[128], again[PWHASH_MAX_PASSWORD + 2];
	ssize_t n, n2;
	int rc;

	*len = 0;
	if(from_stdin){
		n = prompt__read_line(STDIN_FILENO, buf, buflen);
		if(n < 0) return cli__error(CLI_ERR_RUNTIME, "reading the password from stdin: %s", strerror(errno));
		rc = check_password(buf, (size_t)n, buflen);
		if(rc) OPENSSL_cleanse(buf, buflen);
		else *len = (size_t)n;
		return rc;
	}
	snprintf(prompt, sizeof(prompt), "Password for %s: ", user);
	n = prompt__secret(prompt, buf, buflen);
	if(n == PROMPT_NO_TTY){
		return cli__error(CLI_ERR_USAGE, "no terminal to ask for the password (use --password-stdin)");
	}
	if(n >= 0 && (rc = check_password(buf, (size_t)n, buflen)) != CLI_OK) goto fail;
	if(n >= 0 && confirm){
		n2 = prompt__secret("Retype the password: ", again, sizeof(again));
		if(n2 < 0) n = -1;
		else if(n2 != n || memcmp(buf, again, (size_t)n) != 0){
			OPENSSL_cleanse(again, sizeof(again));
			rc = cli__error(CLI_ERR_INVALID, "the passwords do not match");
			goto fail;
		}
		OPENSSL_cleanse(again, sizeof(again));
	}
	if(n < 0){
		rc = cli__error(CLI_ERR_RUNTIME, "reading the password from the terminal failed");
		goto fail;
	}
	*len = (size_t)n;
	return CLI_OK;
fail:
	OPENSSL_cleanse(buf, buflen);
	return rc;
}

int cli__hash_password(const char *pw, size_t len, char *out, size_t outlen)
{
	int rc = pwhash__make(pw, len, PWHASH_DEFAULT_ITERATIONS, out, outlen);

	if(rc != MQC_OK) return cli__fail(rc, "hashing the password");
	return CLI_OK;
}

/* ---- random tokens ---- */

int cli__random_token(size_t nbytes, char *out, size_t outlen)
{
	static const char b64url[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char raw[64];
	size_t i, n = 0;
	unsigned v = 0;
	int bits = 0;

	if(nbytes > sizeof(raw) || outlen < (nbytes * 4 + 2) / 3 + 1){
		return cli__error(CLI_ERR_RUNTIME, "token buffer too small");
	}
	/* The first 6 bits pick the first character: draw again for '-' (1 in
	 * 64), which the command line would read as an option. */
	do{
		if(rand__bytes(raw, nbytes) != MQC_OK){
			return cli__error(CLI_ERR_RUNTIME, "no random bytes from OpenSSL");
		}
	}while(nbytes > 0 && raw[0] >> 2 == 62);
	for(i=0; i<nbytes; i++){
		v = (v << 8) | raw[i];
		bits += 8;
		while(bits >= 6){
			bits -= 6;
			out[n++] = b64url[(v >> bits) & 0x3f];
		}
	}
	if(bits > 0) out[n++] = b64url[(v << (6 - bits)) & 0x3f];
	out[n] = '\0';
	OPENSSL_cleanse(raw, sizeof(raw));
	return CLI_OK;
}

/* ---- numbers, times, JSON ---- */

bool cli__parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if(s == NULL || *s == '\0' || *s == ' ' || *s == '+') return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if(errno || *end != '\0' || v < min || v > max) return false;
	*out = v;
	return true;
}

const char *cli__fmt_time(int64_t ms, char *out, size_t outlen)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if(gmtime_r(&t, &tm) == NULL || strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0){
		snprintf(out, outlen, "%lld", (long long)ms);
	}
	return out;
}

int cli__print_json(json_t *root)
{
	int rc;

	if(root == NULL) return cli__error(CLI_ERR_RUNTIME, "out of memory");
	rc = json_dumpf(root, stdout, JSON_INDENT(2));
	json_decref(root);
	if(rc != 0 || fputc('\n', stdout) == EOF){
		return cli__error(CLI_ERR_RUNTIME, "writing to stdout failed");
	}
	return CLI_OK;
}
