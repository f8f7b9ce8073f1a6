/* mqchat.h - the chat client's private header: exit codes, options, the
 * command table and the helpers shared by the command files. */
#ifndef MQCHAT_CLIENT_H
#define MQCHAT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "cmdline.h"
#include "names.h"
#include "topic.h"

/* Exit codes: a stable interface for scripts (client/README.md). */
enum mqchat_exit {
	EXIT_OK = 0,        /* done */
	EXIT_FAILED = 1,    /* publish refused, RPC error answer, operation failed */
	EXIT_USAGE = 2,     /* bad arguments or bad local input */
	EXIT_AUTH = 3,      /* wrong username or password at connect */
	EXIT_DENIED = 4,    /* subscription refused */
	EXIT_UNREACH = 5,   /* broker unreachable */
	EXIT_TIMEOUT = 6,   /* no answer in time */
};

/* Largest payload the broker takes by default (the plugin's max_payload,
 * plugin/plugin.h): the whole envelope as published, JSON escaping
 * included. A text fits in one message if its envelope does
 * (util__envelope_fits), so the longest text is a little shorter. */
#define PAYLOAD_MAX 65536
/* Length of the message ids the client makes. */
#define MSGID_LEN 26
/* Session expiry of the persistent session used by listen and chat. */
#define SESSION_EXPIRY_S (7 * 24 * 3600)

/* Where the broker's host or port came from (the order of precedence,
 * lowest first): said when the broker cannot be reached. */
enum options_from {
	FROM_DEFAULT = 0,   /* localhost, 1883 */
	FROM_CONFIG,        /* host = ..., port = ... in the config file */
	FROM_ENV,           /* MQCHAT_HOST, MQCHAT_PORT */
	FROM_FLAG,          /* --host, --port */
};

/* Global options: config file first, then the environment, then flags.
 * Every string is owned by the struct and freed by options__cleanup. */
struct options {
	char *host;
	int port;
	enum options_from host_from, port_from;
	char *user;
	char *device;
	char *cafile;
	char *password_file;
	int timeout_s;
	bool json;
	char *password;     /* resolved by options__password, then cached */
	bool prompted;      /* ... and it came from the prompt */
	bool want_token;    /* store a device token after a password login (login) */
};

/* ---- options.c ---- */

/* Fill defaults (localhost:1883, device from the host name, timeout 10 s). */
void options__init(struct options *opt);
/* Free every field; accepts a half-filled struct. */
void options__cleanup(struct options *opt);
/* The global options (before the command word), common/cmdline.h's form. */
extern const struct cmdline_opt options__global_opts[];
/* Read the config file, then MQCHAT_HOST and MQCHAT_PORT (an empty one is
 * unset; a bad port is an error even if --port follows), then the global
 * flags at argv[1..]: the later wins. On success returns EXIT_OK and *next
 * is the index of the command word (argc if none), or *help is set for
 * -h/--help; otherwise an exit code after printing "Error: ..." to stderr. */
int options__parse(struct options *opt, int argc, char **argv, int *next, bool *help);
/* Where the broker's address came from and how to set it, in words, into
 * buf (len bytes), which is returned: "the default host and port; set it
 * with --host and --port, MQCHAT_HOST and MQCHAT_PORT, or host and port in
 * the config file <path>" (or "host from MQCHAT_HOST, port by default;
 * ..."). For the errors that name the broker's host:port. */
const char *options__broker_hint(const struct options *opt, char *buf, size_t len);
/* Check the user is set and valid; EXIT_OK or EXIT_USAGE (message printed). */
int options__need_user(const struct options *opt);
/* Resolve the password: --password-file, MQCHAT_PASSWORD, then a prompt
 * without echo on /dev/tty (then opt->prompted). Returns EXIT_OK
 * (opt->password set) or EXIT_USAGE. */
int options__password(struct options *opt);
/* True if a password was given (--password-file, MQCHAT_PASSWORD, or set
 * by the command): it wins over a stored device token. */
bool options__explicit_password(const struct options *opt);
/* The client's folder: $XDG_CONFIG_HOME/mqchat or ~/.config/mqchat, into
 * dir (len bytes). 0, or -1 if neither variable is set. */
int options__config_dir(char *dir, size_t len);
/* The file of this user and device in the client's state folder
 * ($XDG_STATE_HOME/mqchat or ~/.local/state/mqchat, made private if create):
 * "<dir>/<user>@<device><suffix>" into path (len bytes). 0, or -1 (no
 * folder, or it cannot be made). */
int options__state_path(const struct options *opt, const char *suffix, char *path, size_t len,
		bool create);
/* EXIT_OK if only its owner may access the open file fp (what, path: how
 * to name it); else EXIT_USAGE, said, with the command that fixes it. The
 * caller closes fp either way. */
int options__check_private(FILE *fp, const char *what, const char *path);
/* Prompt on /dev/tty without echo (common/prompt.h) and read one line into
 * buf (at most len bytes with the NUL). Returns 0, -1 if there is no
 * terminal or the read failed, EXIT_USAGE (said) if the line is too long. */
int options__prompt(const char *prompt, char *buf, size_t len);

/* ---- util.c ---- */

/* A new message id: MSGID_LEN characters of [A-Za-z0-9], NUL-terminated
 * (out must hold MSGID_LEN + 1 bytes). */
void util__msgid(char *out);
/* Hex of n random bytes into out (2n + 1 bytes). */
void util__randhex(char *out, size_t n);
/* Parse a non-negative integer option value; -1 if not a number in [min,max]. */
long long util__number(const char *s, long long min, long long max);
/* Print text to fp with control characters made harmless for a terminal. */
void util__print_safe(FILE *fp, const char *s, size_t len);
/* Format a ms timestamp as local "HH:MM:SS" (or with the date if full). */
void util__fmt_time(int64_t ms, bool full, char *out, size_t len);
/* Read all of fp into a new NUL-terminated buffer (caller frees); *len is its
 * length. Returns NULL (errno set) on error or if over max bytes. */
char *util__read_all(FILE *fp, size_t max, size_t *len);
/* mkdir -p dir, every folder it makes private (0700); dir is restored
 * after. 0, or -1 with errno set. */
int util__mkdirs(char *dir);
/* Validate a text: non-empty, valid UTF-8, no NUL. Its size is its
 * envelope's to judge (util__envelope_fits). Returns EXIT_OK, or
 * EXIT_USAGE after printing "Error: ...". */
int util__check_text(const char *body, size_t len);
/* util__check_text, and at most PAYLOAD_MAX bytes: for a text whose
 * envelope someone else builds (edit: the archiver's), where only a
 * longer one is sure not to fit. EXIT_OK, EXIT_USAGE or EXIT_FAILED (too
 * large), said. */
int util__check_body(const char *body, size_t len);
/* Does a text fit in one message? env_len: the length of its envelope as
 * it will be published (JSON, escaped); body, len: the text (body may be
 * NULL if only its length is known: then it is counted unescaped). Builds
 * nothing: EXIT_OK if env_len <= PAYLOAD_MAX; else EXIT_USAGE with why
 * (why_len bytes) set to one line without "Error: ", e.g. "message too
 * large: 65,536 bytes of text; at most 65,458 fit in one message" (with
 * the escaped length too when escaping makes it longer). */
int util__envelope_fits(size_t env_len, const char *body, size_t len, char *why, size_t why_len);
/* The longest duration util__duration takes: a year. */
#define UTIL_DURATION_MAX (365LL * 24 * 3600)
/* A duration as people write it: "30m", "8h", "2d", "90s" or seconds,
 * more than 0 and at most UTIL_DURATION_MAX. Its seconds, or -1. */
long long util__duration(const char *v);
/* s seconds in words into buf: "8 hours", "30 minutes", "2 days". */
const char *util__say_duration(long long s, char *buf, size_t len);
/* "Error: " + message to stderr. */
void util__error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- login.c ---- */

/* NULL if s is a valid user or room name; else what is wrong with it, in
 * words, written to buf (len bytes), which is returned. */
const char *login__name_problem(const char *s, char *buf, size_t len);
/* Print "Error: invalid <what> name '<name>': <problem> (the rule)" and
 * return EXIT_USAGE. */
int login__bad_name(const char *what, const char *name);
/* A conversation operand: "bob" (a person) or "#lobby" (a room), as the
 * conversation list shows them. Sets *with or *room (borrowed from arg),
 * the other NULL. EXIT_OK, or EXIT_USAGE with the name's fault said. */
int login__conv_operand(const char *arg, const char **with, const char **room);
/* The same as login__name_problem for the device part of a client id. */
const char *login__device_problem(const char *s, char *buf, size_t len);
/* After a refused CONNECT of user: ask the plugin's login_status over a
 * _register connection (bounded, about 3 s) and print what to do ("too many
 * attempts: wait N s", "account disabled", "wrong user name or password",
 * or a line naming both causes if there is no answer). Returns EXIT_AUTH. */
int login__why_refused(struct options *opt, const char *user);
/* Ask login_status about user. Returns the answer (new reference) or NULL
 * if there is none: _register refused (5 a minute per address), no plugin
 * that knows the request, no answer in time. Prints nothing. */
json_t *login__status(struct options *opt, const char *user);
/* Print what the login_status answer resp (taken: freed here; NULL for
 * none) means for user, as login__why_refused does. Returns EXIT_AUTH. */
int login__say_status(const char *user, json_t *resp);

/* ---- the command table (main.c) ---- */

struct session;

/* Operands without an upper bound (cmd_entry.max_args). */
#define CMD_ANY (-1)

/* What main.c parsed for the running command: its operands (for a raw
 * command, its own words: args[0] the command) and what was given of its
 * declared options (ask with cmdline__given, cmdline__value, cmdline__num). */
struct cmd_args {
	char **args;
	int nargs;
	struct cmdline_vals vals;
};

/* An entry of the command table. Only the first entry of a name runs; the
 * others add usage lines (a command's subcommands). */
struct cmd_entry {
	const char *name;
	const char *usage;
	int (*handler)(struct options *opt, const struct cmd_args *a);
	/* true: the handler parses a->args itself (subcommands with options of
	 * their own); the fields below are not used. */
	bool raw;
	/* What main.c parses, in order, before calling handler: the options
	 * (the entries with a name), --json if json (it sets opt->json), then
	 * at most max_args operands (more: "unexpected argument '...'" and the
	 * usage, EXIT_USAGE; CMD_ANY: no limit). */
	struct cmdline_decl opts[CMDLINE_MAX_DECL];
	bool json;
	int max_args;
};

int cmd_register__run(struct options *opt, const struct cmd_args *a);
int cmd_send__run(struct options *opt, const struct cmd_args *a);
int cmd_listen__run(struct options *opt, const struct cmd_args *a);
int cmd_chat__run(struct options *opt, const struct cmd_args *a);
int cmd_history__run(struct options *opt, const struct cmd_args *a);
int cmd_sync__run(struct options *opt, const struct cmd_args *a);
int cmd_rooms__run(struct options *opt, const struct cmd_args *a);
int cmd_who__run(struct options *opt, const struct cmd_args *a);
int cmd_whois__run(struct options *opt, const struct cmd_args *a);
int cmd_profile__run(struct options *opt, const struct cmd_args *a);
int cmd_passwd__run(struct options *opt, const struct cmd_args *a);
int cmd_block__run(struct options *opt, const struct cmd_args *a);
int cmd_unblock__run(struct options *opt, const struct cmd_args *a);
int cmd_blocked__run(struct options *opt, const struct cmd_args *a);
int cmd_devices__run(struct options *opt, const struct cmd_args *a);
int cmd_login__run(struct options *opt, const struct cmd_args *a);
int cmd_logout__run(struct options *opt, const struct cmd_args *a);
int cmd_export__run(struct options *opt, const struct cmd_args *a);
int cmd_delete_account__run(struct options *opt, const struct cmd_args *a);
int cmd_room__run(struct options *opt, const struct cmd_args *a);
int cmd_privacy__run(struct options *opt, const struct cmd_args *a);
int cmd_contacts__run(struct options *opt, const struct cmd_args *a);
int cmd_conversations__run(struct options *opt, const struct cmd_args *a);
int cmd_read__run(struct options *opt, const struct cmd_args *a);
int cmd_edit__run(struct options *opt, const struct cmd_args *a);
int cmd_delete__run(struct options *opt, const struct cmd_args *a);
int cmd_search__run(struct options *opt, const struct cmd_args *a);
int cmd_react__run(struct options *opt, const struct cmd_args *a);
int cmd_push__run(struct options *opt, const struct cmd_args *a);
int cmd_mute__run(struct options *opt, const struct cmd_args *a);
int cmd_unmute__run(struct options *opt, const struct cmd_args *a);
int cmd_mutes__run(struct options *opt, const struct cmd_args *a);

/* Build the text envelope of body (util__check_text passed) as it will be
 * published, quoting (reply_from, reply_to) if both are not NULL (valid,
 * checked by the caller), with a new id in id (MSGID_LEN + 1 bytes), and
 * check that it fits (util__envelope_fits). EXIT_OK with *payload a new
 * NUL-terminated string (the caller frees it); else *payload NULL, why
 * (why_len bytes) says why and EXIT_USAGE (too large: nothing to send) or
 * EXIT_FAILED (out of memory, or an envelope the broker would refuse). */
int cmd_send__envelope(const char *body, size_t len, const char *reply_to,
		const char *reply_from, char *id, char **payload, char *why, size_t why_len);
/* cmd_send__envelope, then publish it at QoS 1 to topic, tracked; the new
 * id goes to id (MSGID_LEN + 1 bytes) and the message id to *mid. Returns
 * EXIT_OK, or EXIT_USAGE (too large) or EXIT_FAILED, said ("Error: ..."). */
int cmd_send__publish(struct session *s, const char *topic, const char *body, size_t len,
		const char *reply_to, const char *reply_from, char *id, int *mid);
/* Say why my message with id was refused (PUBACK reason >= 0x80) on
 * stderr: "not sent: <reason in words><what>" (what: e.g. " (line 3)", or
 * NULL), waiting for the notice as session__notice does. */
void cmd_send__refused(struct session *s, const char *id, int reason, const char *what);

/* What an op is about, for the words of its failure (cmd_rpc.c). Strings
 * are borrowed. */
struct rpc_say {
	const char *doing;      /* "add bob to hikers": said as "cannot add bob to hikers: ..." */
	const char *room;       /* the room and the user it names, or NULL */
	const char *user;
	const char *forbidden;  /* what `forbidden` means for this op, or NULL */
	const char *not_found;  /* what `not_found` means for this op, or NULL (then
	                         * said of room and user) */
};

/* Send req (borrowed; NULL: out of memory) on s and wait for the answer:
 * EXIT_OK with *resp a new reference. Else, with say, one line on stderr
 * that names the op and says why in words ("Error: cannot add bob to
 * hikers: bob is not a member of hikers"; an error answer's code from
 * docs/PROTOCOL.md mapped to words, a code without words by the archiver's
 * message), or without say, the session's words; and the exit code
 * (EXIT_FAILED, EXIT_TIMEOUT, EXIT_UNREACH). */
int cmd_rpc__op(struct session *s, json_t *req, json_t **resp, const struct rpc_say *say);
/* The words of a failed request on s (rc from session__rpc) that no op
 * has words of its own for: unknown_op, rate_limited, internal, the
 * archiver's message, no answer, the connection lost. Into w (len bytes). */
void cmd_rpc__words(const struct session *s, int rc, char *w, size_t len);
/* The same on a one-shot session of its own (opt->user needed). */
int cmd_rpc__op_once(struct options *opt, json_t *req, json_t **resp, const struct rpc_say *say);
/* Print an answer (borrowed; its "id" removed) as one JSON line. */
void cmd_rpc__print_answer(json_t *resp);

/* The rooms of an RPC "rooms" answer (borrowed) as a new array of
 * {"name": ..., "members": [...]}, with "title" if it has one and "role"
 * if mine is not "member" (NULL on bad input or no memory). */
json_t *cmd_rooms__list(json_t *resp);

/* May I write to peer, or to room (one of the two NULL), on the connected
 * session s? Asks the broker without sending a message: publishes
 * {"id":..,"typing":false} at QoS 1 to chat/typing/<peer>/<me> or
 * chat/roomtyping/<room>/<me> (a harmless "stopped typing") and waits for
 * its PUBACK and, if refused, the notice (bounded by --timeout). Returns
 * EXIT_OK (yes, or the broker did not say why it refused: rate limited,
 * a server without typing), EXIT_FAILED with why set (why_len bytes,
 * without "Error: "): "no account named 'nobody'", "bob blocks you", "you
 * are not a member of room lab, or there is no such room"; or
 * EXIT_TIMEOUT / EXIT_UNREACH with why set to what happened (the session
 * says it on stderr too, unless s->silent). */
int cmd_chat__probe(struct session *s, const char *peer, const char *room, char *why,
		size_t why_len);

/* Subscribe to chat/inbox/<me>/# and chat/inbox/+/<me> (my own messages
 * from my other devices) at QoS 1, restored on reconnect; prints and
 * returns EXIT_DENIED if the broker refuses the first (the second refused
 * is a warning: a server before that contract). */
int cmd_listen__inbox(struct session *s);
/* Subscribe at QoS 0 to chat/typing/<me>/<peer> (peer NULL: "+"),
 * restored on reconnect; a refusal is a warning if warn, else silent.
 * Returns EXIT_OK, EXIT_TIMEOUT or EXIT_UNREACH. */
int cmd_listen__typing(struct session *s, const char *peer, bool warn);

/* Show presence (retained chat/presence/<user>, or /+ if user is NULL,
 * limited to the names in members if not NULL) and return an exit code. */
int cmd_who__show(struct session *s, const char *user, json_t *members, bool json);

/* Print the usage line of a command to stderr and return EXIT_USAGE. name
 * is a command ("room": all its lines) or a command and its subcommand
 * ("room add"). */
int cmd__usage(const char *name);
/* The same on stdout (asked for: -h, --help), returning EXIT_OK. */
int cmd__help(const char *name);
/* Start parsing the options and operands of command name (argv[0]) by
 * common/cmdline.h's convention: any order, `--`, -h/--help. */
void cmd__options(struct cmdline *cl, const char *name, const struct cmdline_opt *opts,
		int argc, char **argv);
/* After cmdline__next returned c < 0 but not CMDLINE_DONE: -h/--help prints
 * the command's usage on stdout (EXIT_OK); an error its one line on stderr
 * (EXIT_USAGE). */
int cmd__options_end(const struct cmdline *cl, const char *name, int c);
/* More than max operands: print "Error: unexpected argument '<the first
 * extra one>'" (escaped) and the usage line, return EXIT_USAGE; else EXIT_OK. */
int cmd__extra_args(const struct cmdline *cl, const char *name, int max);
/* The same for the operand word: "Error: unexpected argument '<word>'" and
 * the usage line; returns EXIT_USAGE. */
int cmd__unexpected(const char *word, const char *name);

#endif
