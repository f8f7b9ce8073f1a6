/* cmdline.h - the one command-line convention of mqchat's programs (the
 * client, build/mqchat, and mqchat-archiver with its operators' CLI).
 *
 * GNU style, table-driven:
 *   - options and operands in any order (`send bob --lines`), unless the
 *     parser stops at the first operand (CMDLINE_STOP_AT_OPERAND: the
 *     global options before a command word);
 *   - `--` ends the options: what follows is an operand even if it starts
 *     with '-' (`send bob -- --lines` sends the text "--lines"); a lone `-`
 *     is an operand;
 *   - `--name VALUE` or `--name=VALUE`; `-x VALUE`, `-xVALUE`, `-vv`; a
 *     required value is the next word whatever it looks like
 *     (`--after -1` is refused by the option's own check, not taken for an
 *     option); long names match exactly, never as abbreviations;
 *   - `-h` and `--help` on every command: cmdline__next says CMDLINE_HELP
 *     and the caller prints its help to stdout and exits 0;
 *   - an unknown option, a missing value or a value given to a flag is
 *     CMDLINE_ERROR with one line in cl->err, naming the option and
 *     pointing at `PROG COMMAND --help`; cmdline__fail prints it as
 *     "Error: ..." and the program exits 2.
 *
 * No global state (unlike getopt): parsers may nest and tests may run
 * them repeatedly. */
#ifndef MQCHAT_CMDLINE_H
#define MQCHAT_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>

/* Does the option take a value? */
enum cmdline_arg {
	CMDLINE_NO_ARG = 0,   /* a flag; `--flag=x` is an error */
	CMDLINE_REQUIRED,     /* `--name VALUE` or `--name=VALUE` */
	CMDLINE_OPTIONAL,     /* only as `--name=VALUE`; never takes the next word */
};

/* One entry of an option table; the table ends with an entry whose name
 * and short_name are both empty ({0}). */
struct cmdline_opt {
	const char *name;       /* long name without "--", or NULL */
	char short_name;        /* one letter after '-', or 0 */
	enum cmdline_arg arg;
	int id;                 /* what cmdline__next returns for it; > 0 */
};

/* What cmdline__next returns besides an option's id. */
enum cmdline_status {
	CMDLINE_DONE = 0,       /* no more options: the operands are in args/nargs */
	CMDLINE_HELP = -1,      /* -h or --help */
	CMDLINE_ERROR = -2,     /* cl->err says what; exit 2 */
};

/* Flags of cmdline__init. */
#define CMDLINE_STOP_AT_OPERAND 0x1   /* the first operand ends the options */

struct cmdline {
	/* set by cmdline__init */
	int argc;
	char **argv;
	const struct cmdline_opt *opts;
	const struct cmdline_opt *globals;  /* options of the program itself, for a clearer error */
	const char *prog;       /* "mqchat" */
	const char *cmd;        /* "send", "user add" or NULL at the program's level */
	unsigned flags;
	/* the parser's position */
	int next;               /* next word of argv to read */
	int out;                /* operands are gathered at argv[first..out) */
	int first;
	const char *word;       /* the group of short options being read */
	const char *cluster;    /* its rest (-vv) */
	bool ended;             /* DONE, HELP or ERROR returned: status repeats it */
	int status;
	/* results */
	const char *value;      /* the value of the option just returned, or NULL */
	const struct cmdline_opt *opt; /* the option just returned */
	char **args;            /* after CMDLINE_DONE: the operands, in order */
	int nargs;
	int rest;               /* after CMDLINE_DONE with STOP_AT_OPERAND: index of the
	                         * first operand in argv (the command word); argc if none */
	char err[256];          /* after CMDLINE_ERROR: one line, no "Error: " */
};

/* Start parsing argv[first..argc) (argv[0] is the program or the command
 * word) against opts (borrowed, as are prog, cmd and argv, until parsing
 * ends). globals (may be NULL) are the program's own options: one of them
 * seen here gets "is a global option: put it before the command". The
 * parser reorders argv's pointers (operands gathered at the front). */
void cmdline__init(struct cmdline *cl, const char *prog, const char *cmd,
		const struct cmdline_opt *opts, const struct cmdline_opt *globals,
		int argc, char **argv, int first, unsigned flags);
/* The next option: its id (cl->value its value, or NULL), or CMDLINE_DONE
 * (cl->args/nargs, cl->rest set), CMDLINE_HELP or CMDLINE_ERROR (cl->err
 * set). After DONE, HELP or ERROR it keeps returning the same. */
int cmdline__next(struct cmdline *cl);
/* Print "Error: <cl->err>" on stderr (one line); returns 2, the usage exit
 * status of both programs. */
int cmdline__fail(const struct cmdline *cl);

/* ---- options declared as data ----
 *
 * A command can declare its options in its entry of a command table
 * instead of parsing them in its handler: the program's dispatcher parses
 * them once (cmdline__init_decl, cmdline__next_decl) and the handler asks
 * for each value by name (cmdline__given, cmdline__value, cmdline__num). */

/* One declared option. */
struct cmdline_decl {
	const char *name;       /* the long name, without "--" */
	enum cmdline_arg arg;   /* CMDLINE_NO_ARG (a flag) or CMDLINE_REQUIRED */
	long long min, max;     /* max > 0: the value must be a whole number in [min, max]; */
	const char *bad;        /* ... else the dispatcher stops with this usage error */
};
/* Options a command may declare (besides --json). */
#define CMDLINE_MAX_DECL 4

/* What the command line gave for a command's declared options. */
struct cmdline_vals {
	const struct cmdline_decl *decl;  /* CMDLINE_MAX_DECL entries; unused ones have no name */
	bool json;                        /* --json given (declared apart: most commands have it) */
	bool given[CMDLINE_MAX_DECL];
	const char *value[CMDLINE_MAX_DECL];  /* the last value given (borrowed from argv) */
	long long num[CMDLINE_MAX_DECL];      /* the dispatcher's number for a numeric one */
	struct cmdline_opt table[CMDLINE_MAX_DECL + 2];  /* the parser's table */
};

/* cmdline__init (first 1: argv[0] is the command word, no flags) against
 * the options of decl, and --json if json; v records what is given. */
void cmdline__init_decl(struct cmdline *cl, struct cmdline_vals *v, const struct cmdline_decl *decl,
		bool json, const char *prog, const char *cmd, const struct cmdline_opt *globals,
		int argc, char **argv);
/* cmdline__next for it: --json sets v->json and is not returned; another
 * option is recorded in v and its index in decl + 1 returned (cl->value
 * its value); else CMDLINE_DONE, CMDLINE_HELP or CMDLINE_ERROR. */
int cmdline__next_decl(struct cmdline *cl, struct cmdline_vals *v);
/* The declared option name (a name not declared is a bug: not given): was
 * it given; its value (NULL if not given); its number (dflt if not given). */
bool cmdline__given(const struct cmdline_vals *v, const char *name);
const char *cmdline__value(const struct cmdline_vals *v, const char *name);
long long cmdline__num(const struct cmdline_vals *v, const char *name, long long dflt);

#endif
