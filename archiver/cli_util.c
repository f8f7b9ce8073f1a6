/* cli_util.c - helpers shared by the CLI's command groups (see cli.h):
 * dispatch and usage, errors and exit statuses, opening the stores,
 * reading passwords, random tokens, number, time and JSON output. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "applied.h"
#include "archive.h"
#include "cli.h"
#include "datadir.h"
#include "err.h"
#include "log.h"
#include "names.h"
#include "pwhash.h"
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

int cli__dispatch(struct cli *cli, const char *group, const struct cli_cmd *table,
		size_t n, int argc, char **argv)
{
	const char *g = group ? group : "", *sp = group ? " " : "";
	char q[80];
	size_t i;

	if(argc < 1){
		cli__error(CLI_ERR_USAGE, "missing command%s%s", group ? " after " : "", g);
		cli__group_usage(cli, group, table, n, stderr);
		return CLI_ERR_USAGE;
	}
	if(!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h") || !strcmp(argv[0], "help")){
		cli__group_usage(cli, group, table, n, stdout);
		return CLI_OK;
	}
	for(i=0; i<n; i++){
		if(strcmp(argv[0], table[i].name)) continue;
		cli->group = group;
		cli->cmd = &table[i];
		optind = 0;
		opterr = 0;
		return table[i].handler(cli, argc, argv);
	}
	return cli__error(CLI_ERR_USAGE, "unknown command '%s%s%s' (see `%s %s%s--help`)",
			g, sp, cli__quote(argv[0], q, sizeof(q)), cli->progname, g, sp);
}

int cli__bad_option(const struct cli *cli, int c, char **argv)
{
	char q[80];

	/* getopt_long leaves the offending word just before optind. */
	if(c == ':'){
		cli__error(CLI_ERR_USAGE, "option '%s' needs an argument",
				cli__quote(argv[optind - 1], q, sizeof(q)));
	}else if(!strncmp(argv[optind - 1], "--data", 6) || !strcmp(argv[optind - 1], "-d")){
		cli__error(CLI_ERR_USAGE, "'%s' is a global option: put it before the command",
				cli__quote(argv[optind - 1], q, sizeof(q)));
	}else{
		cli__error(CLI_ERR_USAGE, "unknown option '%s'",
				cli__quote(argv[optind - 1], q, sizeof(q)));
	}
	cli__usage(cli, stderr);
	return CLI_ERR_USAGE;
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

int cli__open_auth(struct cli *cli, struct userdb **out)
{
	char path[PATH_MAX], err[512];
	int rc;

	*out = NULL;
	if(!cli__path(cli, "auth.db", path, sizeof(path))){
		return cli__error(CLI_ERR_USAGE, "data folder path too long");
	}
	rc = need_db(cli, path);
	if(rc != CLI_OK) return rc;
	rc = userdb__open(path, 0, out, err, sizeof(err));
	if(rc == MQC_ERR_NOTFOUND) return need_db(cli, path);
	if(rc == MQC_ERR_BUSY) return cli__error(CLI_ERR_RUNTIME, "database is locked");
	if(rc != MQC_OK){
		return cli__error(rc == MQC_ERR_SCHEMA ? CLI_ERR_NODB : CLI_ERR_RUNTIME, "%s", err);
	}
	sqlite3_busy_timeout((*out)->db, cli->busy_ms);
	return CLI_OK;
}

void cli__close_auth(struct userdb *udb)
{
	if(udb != NULL && udb->committed_ns != 0
			&& applied__wait(udb->path, udb->committed_ns, APPLIED_WAIT_MS) == APPLIED_NOT_YET){
		fprintf(stderr, "Warning: the change is saved, but the broker has not applied it after"
				" %d s; it will when its plugin reloads the user store\n", APPLIED_WAIT_MS / 1000);
	}
	userdb__close(udb);
}

int cli__open_archive(struct cli *cli, struct archive **out)
{
	char path[PATH_MAX], err[512];
	int rc;

	*out = NULL;
	if(!cli__path(cli, "archive.db", path, sizeof(path))){
		return cli__error(CLI_ERR_USAGE, "data folder path too long");
	}
	/* archive__open creates a missing file: only init may do that. */
	rc = need_db(cli, path);
	if(rc != CLI_OK) return rc;
	err[0] = '\0';
	rc = archive__open(path, out, err, sizeof(err));
	if(rc == MQC_ERR_BUSY) return cli__error(CLI_ERR_RUNTIME, "database is locked");
	if(rc != MQC_OK){
		/* archive__open's message names the file already. */
		if(err[0] == '\0'){
			return cli__error(rc == MQC_ERR_SCHEMA ? CLI_ERR_NODB : CLI_ERR_RUNTIME, "%s: %s", path,
					mqc_strerror(rc));
		}
		return cli__error(rc == MQC_ERR_SCHEMA ? CLI_ERR_NODB : CLI_ERR_RUNTIME, "%s", err);
	}
	return CLI_OK;
}

/* ---- passwords ---- */

static volatile sig_atomic_t tty_signal;

static void tty_signal_cb(int sig)
{
	tty_signal = sig;
}

/* Read one line from fd into buf without the newline. Returns the length,
 * or -1 on error/interrupt, or buflen if the line did not fit (the rest of
 * the line is consumed). */
static ssize_t read_line_fd(int fd, char *buf, size_t buflen)
{
	size_t n = 0;
	bool over = false;
	char c;

	for(;;){
		ssize_t r = read(fd, &c, 1);
		if(r < 0){
			if(errno == EINTR && !tty_signal) continue;
			return -1;
		}
		if(r == 0 || c == '\n') break;
		if(n + 1 < buflen) buf[n++] = c;
		else over = true;
	}
	if(n > 0 && buf[n - 1] == '\r') n--;
	buf[n] = '\0';
	return over ? (ssize_t)buflen : (ssize_t)n;
}

/* Prompt on the terminal with echo off; restores the terminal even when
 * interrupted, then re-raises the signal. */
static ssize_t prompt_tty(int fd, const char *prompt, char *buf, size_t buflen)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP};
	struct sigaction sa, old[sizeof(sigs) / sizeof(sigs[0])];
	struct termios saved, noecho;
	ssize_t n;
	size_t i;
	bool restore;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = tty_signal_cb;   /* no SA_RESTART: read() returns EINTR */
	sigemptyset(&sa.sa_mask);
	tty_signal = 0;
	for(i=0; i<sizeof(sigs) / sizeof(sigs[0]); i++) sigaction(sigs[i], &sa, &old[i]);

	restore = (tcgetattr(fd, &saved) == 0);
	if(restore){
		noecho = saved;
		noecho.c_lflag &= (tcflag_t)~(ECHO | ECHOE | ECHOK | ECHONL);
		tcsetattr(fd, TCSAFLUSH, &noecho);
	}
	if(write(fd, prompt, strlen(prompt)) < 0) n = -1;
	else n = read_line_fd(fd, buf, buflen);
	if(restore) tcsetattr(fd, TCSAFLUSH, &saved);
	if(write(fd, "\n", 1) < 0) n = -1;

	for(i=0; i<sizeof(sigs) / sizeof(sigs[0]); i++) sigaction(sigs[i], &old[i], NULL);
	if(tty_signal){
		OPENSSL_cleanse(buf, buflen);
		raise(tty_signal);
		return -1;
	}
	return n;
}

static int check_password(size_t len, size_t buflen)
{
	if(len == 0) return cli__error(CLI_ERR_INVALID, "empty password");
	if(len >= buflen || len > PWHASH_MAX_PASSWORD){
		return cli__error(CLI_ERR_INVALID, "password too long (at most %d bytes)", PWHASH_MAX_PASSWORD);
	}
	if(len < PWHASH_MIN_PASSWORD){
		return cli__error(CLI_ERR_INVALID, "password too short (at least %d bytes)", PWHASH_MIN_PASSWORD);
	}
	return CLI_OK;
}

int cli__read_password(const char *user, bool from_stdin, bool confirm,
		char *buf, size_t buflen, size_t *len)
{
	char prompt[128], again[PWHASH_MAX_PASSWORD + 2];
	ssize_t n, n2;
	int fd, rc;

	*len = 0;
	if(from_stdin){
		n = read_line_fd(STDIN_FILENO, buf, buflen);
		if(n < 0) return cli__error(CLI_ERR_RUNTIME, "reading the password from stdin: %s", strerror(errno));
		rc = check_password((size_t)n, buflen);
		if(rc) OPENSSL_cleanse(buf, buflen);
		else *len = (size_t)n;
		return rc;
	}
	fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if(fd < 0){
		return cli__error(CLI_ERR_USAGE, "no terminal to ask for the password (use --password-stdin)");
	}
	snprintf(prompt, sizeof(prompt), "Password for %s: ", user);
	n = prompt_tty(fd, prompt, buf, buflen);
	if(n >= 0 && (rc = check_password((size_t)n, buflen)) != CLI_OK) goto fail;
	if(n >= 0 && confirm){
		n2 = prompt_tty(fd, "Retype the password: ", again, sizeof(again));
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
	close(fd);
	*len = (size_t)n;
	return CLI_OK;
fail:
	OPENSSL_cleanse(buf, buflen);
	close(fd);
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
	 * 64), which getopt would read as an option. */
	do{
		if(RAND_bytes(raw, (int)nbytes) != 1){
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
