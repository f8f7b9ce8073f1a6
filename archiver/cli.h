/* cli.h - the operators' command-line interface of mqchat-archiver.
 *
 * `mqchat-archiver [--data DIR] COMMAND ...`: main.c parses the global
 * options and dispatches through a table of {name, usage, help, handler}
 * whose entries also declare the command's options and operands, which
 * cli__dispatch parses before the handler runs; each command group (user,
 * room, invite, admin) lives in its own file with its own table. Handlers return a process exit status (enum cli_exit), never
 * an MQC_ERR_*: cli__exit_of maps those. Errors go to stderr as "Error: ...",
 * normal output to stdout. */
#ifndef MQCHAT_CLI_H
#define MQCHAT_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "cmdline.h"

struct userdb;
struct archive;

/* Exit statuses. Scripts depend on them: keep them stable (archiver/README.md). */
enum cli_exit {
	CLI_OK = 0,
	CLI_ERR_RUNTIME = 1,   /* database locked past the busy timeout, I/O, ... */
	CLI_ERR_USAGE = 2,     /* unknown command or option, missing argument */
	CLI_ERR_NOTFOUND = 3,  /* unknown user, room, member or invite */
	CLI_ERR_EXISTS = 4,    /* duplicate user, room or member */
	CLI_ERR_INVALID = 5,   /* invalid name, kind, nick or password */
	CLI_ERR_NODB = 6,      /* database missing or of the wrong schema */
};

#define CLI_DEFAULT_DATADIR "var/"
/* Overrides the busy timeout of the CLI's auth.db connection (tests). */
#define CLI_BUSY_ENV "MQCHAT_BUSY_TIMEOUT_MS"
#define CLI_SERVICE_USER "archiver"
#define CLI_PWFILE "archiver.pw"
#define CLI_DEFAULT_RETENTION_DAYS 30
/* The most days `purge --older-than` takes (100 years). */
#define CLI_MAX_PURGE_DAYS 36500L

/* What every handler gets: the global options and, for a command that
 * cli__dispatch parses, its options. */
struct cli_cmd;
struct cli {
	const char *progname;
	const char *datadir;   /* --data, default CLI_DEFAULT_DATADIR; borrowed from argv */
	int busy_ms;           /* busy timeout for auth.db */
	const char *group;     /* set by cli__dispatch: "user", ... or NULL at the top */
	const struct cli_cmd *cmd; /* set by cli__dispatch: the running command */
	char path[64];         /* set by cli__dispatch: "user add", for messages */
	/* set by cli__dispatch: what was given of cmd->opts and --json (ask
	 * with cmdline__given, cmdline__value, cmdline__num) */
	struct cmdline_vals opt;
	/* set by cli__dispatch: the operands (the options parsed), or for a raw
	 * command its own words (args[0] its name); borrowed from argv */
	char **args;
	int nargs;
};

/* A command's handler (cli->args what it runs on); returns an enum cli_exit. */
typedef int (*cli_handler)(struct cli *cli);

/* How many operands a command takes, and what a wrong count says (why;
 * NULL: "missing argument", "too many arguments"). */
struct cli_operands {
	int min, max;          /* max CLI_ANY: no upper bound */
	const char *why;
};
#define CLI_ANY (-1)

struct cli_cmd {
	const char *name;
	const char *usage;     /* the arguments after the name */
	const char *help;      /* one line */
	cli_handler handler;
	/* true: handler parses cli->args itself (a group, or options of its own
	 * kind); the fields below are not used. */
	bool raw;
	/* What cli__dispatch parses, in order, before calling handler: the
	 * options (the entries with a name), --json if json, then the count of
	 * operands (operands NULL: none; "unexpected argument" otherwise). A
	 * wrong one prints its error and the usage (CLI_ERR_USAGE). */
	struct cmdline_decl opts[CMDLINE_MAX_DECL];
	bool json;
	const struct cli_operands *operands;
};

/* ---- the command groups (one file each) ---- */
int cli_user__main(struct cli *cli);     /* cli_user.c */
int cli_room__main(struct cli *cli);     /* cli_room.c */
int cli_invite__main(struct cli *cli);   /* cli_invite.c */
int cli_settings__main(struct cli *cli); /* cli_settings.c */
int cli_admin__init(struct cli *cli);    /* cli_admin.c */
int cli_admin__purge(struct cli *cli);
int cli_admin__stats(struct cli *cli);
/* `import mosquitto-passwd|dynsec|csv FILE [--dry-run]` (cli_import.c). */
int cli_import__main(struct cli *cli);
/* `backup DEST [--config FILE]... [--json]` and `restore SRC` (backup.c):
 * a consistent copy of the data folder while the daemon runs, and a new
 * data folder made from one. */
int cli_backup__backup(struct cli *cli);
int cli_backup__restore(struct cli *cli);
/* `user nick NAME NICK` (cli_nick.c, in the user group's table). */
int cli_user__nick(struct cli *cli);
/* `user devices NAME [--json]` and `user revoke NAME DEVICE|--all`
 * (cli_device.c, in the user group's table). */
int cli_user__devices(struct cli *cli);
int cli_user__revoke(struct cli *cli);
/* After user's device (NULL: every device) lost its token, or with account
 * the whole account was deleted: remove from DIR/push.db what went with
 * it (push targets, queued notifications; with account also mutes and
 * settings). No push.db: nothing to do; a failure is a note on stderr
 * (the change itself is made). */
void cli__push_forget(struct cli *cli, const char *user, const char *device, bool account);

/* ---- nicks (cli_nick.c; the rule is common/nick.h) ---- */

/* Check nick's characters, printing why not ("invalid nick '...': U+202E
 * ... at character 4 ..."); returns CLI_OK or CLI_ERR_INVALID. */
int cli__check_nick(const char *nick);
/* May account name have nick, against the other accounts of udb
 * (new_account: name is being made, so it counts too)? Prints why not,
 * naming the account it looks like; returns CLI_OK, CLI_ERR_EXISTS,
 * CLI_ERR_INVALID or a runtime status. */
int cli__nick_free(struct userdb *udb, const char *name, const char *nick, bool new_account);

/* ---- helpers (cli_util.c) ---- */

/* The program's own options (--data DIR, -d DIR), before the command. */
extern const struct cmdline_opt cli__global_opts[];

/* Run the entry of table[0..n) named by the first operand of argv[0..argc)
 * (group is the command path for messages, e.g. "user"; NULL at the top,
 * where main.c has read the global options), after setting cli->group,
 * cli->cmd and cli->path. "--help"/"-h"/"help" print the group's usage to
 * stdout; an unknown or missing command or an option there is
 * CLI_ERR_USAGE with one line. The entry's options and operands are
 * parsed here (struct cli_cmd) unless it is raw: then the handler parses
 * them with cli__options and common/cmdline.h. */
int cli__dispatch(struct cli *cli, const char *group, const struct cli_cmd *table,
		size_t n, int argc, char **argv);
/* Start parsing the running command's options and operands (argv[0] is its
 * name) against opts, with the CLI's names in the messages. */
void cli__options(const struct cli *cli, struct cmdline *cl, const struct cmdline_opt *opts,
		int argc, char **argv);
/* After cmdline__next returned c < 0 but not CMDLINE_DONE: --help prints
 * the command's usage on stdout (CLI_OK); an error prints its one line
 * (CLI_ERR_USAGE). */
int cli__options_end(const struct cli *cli, const struct cmdline *cl, int c);
/* Print "usage: PROG [--data DIR] GROUP NAME USAGE" and the help line of the
 * running command. */
void cli__usage(const struct cli *cli, FILE *out);
/* The running command's usage on stdout (for --help); returns CLI_OK. */
int cli__help(const struct cli *cli);
/* Print the usage of every entry of table[0..n) (group NULL: the top level). */
void cli__group_usage(const struct cli *cli, const char *group, const struct cli_cmd *table,
		size_t n, FILE *out);

/* Print "Error: <formatted>" to stderr; returns code. */
int cli__error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The exit status for an MQC_ERR_* status. */
int cli__exit_of(int mqc_rc);
/* Report a failed store operation: "Error: <what>: <reason>" (for
 * MQC_ERR_BUSY exactly "Error: database is locked"); returns the exit status. */
int cli__fail(int mqc_rc, const char *what);
/* Wrong operands: prints why and the usage; returns CLI_ERR_USAGE. */
int cli__bad_args(const struct cli *cli, const char *why);

/* Copy a name from the command line into out for messages, with control
 * characters and non-ASCII escaped and cut to a sane length. Returns out. */
const char *cli__quote(const char *s, char *out, size_t outlen);
/* Validate a user/room name, printing the error; returns CLI_OK or CLI_ERR_INVALID. */
int cli__check_name(const char *what, const char *name);

/* Whether DIR/store.conf puts the stores on PostgreSQL (or cannot be
 * read: the open of a store then says how). */
bool cli__on_postgresql(const struct cli *cli);
/* Whether DIR/store.conf can be read and says `store postgresql`: for the
 * commands that refuse such a folder (backup, restore), so that a folder
 * they may not read gets the usual permission message instead. */
bool cli__says_postgresql(const struct cli *cli);

/* DIR/name into out; false if it does not fit. */
bool cli__path(const struct cli *cli, const char *name, char *out, size_t outlen);
/* Open DIR/auth.db (must exist, schema checked) with the CLI's busy timeout.
 * Returns CLI_OK and *out (close with userdb__close), or prints the error and
 * returns CLI_ERR_NODB / CLI_ERR_RUNTIME. */
int cli__open_auth(struct cli *cli, struct userdb **out);
/* Check name (what: "user" or "room") with cli__check_name, then
 * cli__open_auth: the start of every command on one named thing. */
int cli__open_auth_for(struct cli *cli, const char *what, const char *name, struct userdb **out);
/* Close what cli__open_auth opened. If this connection committed a change
 * and a broker reads the store, first wait (at most APPLIED_WAIT_MS) until
 * the broker has it in force, so that the command returns only then; if the
 * time runs out, say so on stderr (the change is saved all the same). */
void cli__close_auth(struct userdb *udb);
/* Open DIR/archive.db, which must exist (init creates it); same contract. */
int cli__open_archive(struct cli *cli, struct archive **out);
/* Why a store did not open: rc of userdb__open or archive__open and its
 * message err (empty: "<path>: <reason>" instead). "database is locked"
 * for MQC_ERR_BUSY; CLI_ERR_NODB for the wrong schema, else
 * CLI_ERR_RUNTIME. Returns the exit status. */
int cli__open_failed(int rc, const char *path, const char *err);

/* Commit a write begun with userdb__begin_write when rc (the status of what
 * it did) is MQC_OK, or roll it back; returns the status. */
int cli__end_write(struct userdb *udb, int rc);
/* The end of a change to the <what> called name, begun with
 * userdb__begin_write (rc the status of what it did): cli__end_write, then
 * cli__close_auth (the wait for the broker), then the outcome: "<what>
 * <name> <done>" on stdout (done NULL: nothing), or "no such <what>
 * '<name>'", "<what> '<name>' already exists", or cli__fail(rc, doing).
 * Returns the exit status. */
int cli__finish(struct userdb *udb, int rc, const char *what, const char *name,
		const char *done, const char *doing);
/* A list command: open auth.db, run each(udb, arg), close, and print *arr
 * as JSON (cli__print_json) if the command was given --json (cli->opt.json);
 * each then appends to *arr, a new array, or else (*arr left NULL) prints
 * text. On failure the error is cli__fail(rc, doing). Returns the exit
 * status. */
int cli__list(struct cli *cli, json_t **arr, int (*each)(struct userdb *udb, void *arg), void *arg,
		const char *doing);

/* Read a password: the first line of stdin (from_stdin) or prompted without
 * echo on /dev/tty, twice if confirm. Checks PWHASH_MIN_PASSWORD and
 * PWHASH_MAX_PASSWORD and refuses the form of a device token
 * (devtoken__is_token: the plugin would take it for one). On success
 * CLI_OK, the password NUL-terminated in buf and its length in *len; the
 * caller wipes buf. Otherwise prints the
 * error and returns CLI_ERR_INVALID (empty, short, long, token, mismatch) or
 * CLI_ERR_USAGE (no terminal) or CLI_ERR_RUNTIME. */
int cli__read_password(const char *user, bool from_stdin, bool confirm,
		char *buf, size_t buflen, size_t *len);
/* Hash a password with PWHASH_DEFAULT_ITERATIONS; prints the error. */
int cli__hash_password(const char *pw, size_t len, char *out, size_t outlen);
/* nbytes of random data, base64url without padding, into out; never
 * starting with '-', so the token can be typed as a command's argument
 * (`invite revoke CODE`) without being taken for an option. CLI_OK or an
 * exit status (error printed). */
int cli__random_token(size_t nbytes, char *out, size_t outlen);

/* Parse a whole decimal number in [min, max]. */
bool cli__parse_long(const char *s, long min, long max, long *out);
/* ms since the epoch as "YYYY-MM-DDTHH:MM:SSZ" (UTC) into out. Returns out. */
const char *cli__fmt_time(int64_t ms, char *out, size_t outlen);
/* Print root to stdout (indented, one document, newline) and release it
 * (root is stolen, NULL means out of memory). Returns an exit status. */
int cli__print_json(json_t *root);

#endif
