/* cmdline.c - the one command-line parser of mqchat's programs (see
 * cmdline.h for the convention). */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cmdline.h"
#include "log.h"

void cmdline__init(struct cmdline *cl, const char *prog, const char *cmd,
		const struct cmdline_opt *opts, const struct cmdline_opt *globals,
		int argc, char **argv, int first, unsigned flags)
{
	memset(cl, 0, sizeof(*cl));
	cl->argc = argc;
	cl->argv = argv;
	cl->opts = opts;
	cl->globals = globals;
	cl->prog = prog;
	cl->cmd = cmd;
	cl->flags = flags;
	cl->next = cl->out = cl->first = first < argc ? first : argc;
	cl->rest = argc;
}

static bool end_of_table(const struct cmdline_opt *o)
{
	return o->name == NULL && o->short_name == 0;
}

static const struct cmdline_opt *find_long(const struct cmdline_opt *t, const char *name, size_t len)
{
	for(; t && !end_of_table(t); t++){
		if(t->name && strlen(t->name) == len && !strncmp(t->name, name, len)) return t;
	}
	return NULL;
}

static const struct cmdline_opt *find_short(const struct cmdline_opt *t, char c)
{
	for(; t && !end_of_table(t); t++){
		if(t->short_name == c) return t;
	}
	return NULL;
}

/* Set cl->err to "<pre>'<word>'<post> (see `PROG [CMD] --help`)" (cmd NULL:
 * the program's help) and end with an error. The word is escaped: it comes
 * from the command line. */
static int fail_in(struct cmdline *cl, const char *pre, const char *word, size_t wlen,
		const char *post, const char *cmd)
{
	char q[80];

	log_escape(word, wlen, q, sizeof(q));
	snprintf(cl->err, sizeof(cl->err), "%s'%s'%s (see `%s%s%s --help`)", pre, q, post, cl->prog,
			cmd ? " " : "", cmd ? cmd : "");
	cl->ended = true;
	return cl->status = CMDLINE_ERROR;
}

static int fail(struct cmdline *cl, const char *pre, const char *word, size_t wlen,
		const char *post)
{
	return fail_in(cl, pre, word, wlen, post, cl->cmd);
}

static int help(struct cmdline *cl)
{
	cl->ended = true;
	return cl->status = CMDLINE_HELP;
}

/* No more options: the operands are argv[first..out) plus, from `--` or
 * the first operand with STOP_AT_OPERAND, the whole rest from index from. */
static int done(struct cmdline *cl, int from)
{
	int i;

	if(cl->flags & CMDLINE_STOP_AT_OPERAND){
		/* Nothing was gathered: options came first. */
		cl->rest = from;
		cl->args = cl->argv + from;
		cl->nargs = cl->argc - from;
	}else{
		for(i=from; i<cl->argc; i++) cl->argv[cl->out++] = cl->argv[i];
		cl->args = cl->argv + cl->first;
		cl->nargs = cl->out - cl->first;
		cl->rest = cl->first;
	}
	cl->ended = true;
	return cl->status = CMDLINE_DONE;
}

/* Unknown option word ("--x=1", "-x"): one line naming it without its
 * value (which may be a secret), better worded if it is the program's own
 * option. */
static int unknown(struct cmdline *cl, const char *word, const struct cmdline_opt *global)
{
	const char *eq = word[1] == '-' ? strchr(word, '=') : NULL;
	size_t len = eq ? (size_t)(eq - word) : strlen(word);

	if(global){
		/* The program's option: its help is the program's. */
		return fail_in(cl, "", word, len, " is a global option: put it before the command", NULL);
	}
	return fail(cl, "unknown option ", word, len, "");
}

/* The value of an option that takes one: inline (after '=' or in a short
 * group) or the next word. */
static int take_value(struct cmdline *cl, const struct cmdline_opt *o, const char *inl,
		const char *word, size_t wlen)
{
	if(inl){
		cl->value = inl;
		return o->id;
	}
	if(o->arg == CMDLINE_OPTIONAL){
		cl->value = NULL;
		return o->id;
	}
	if(cl->next >= cl->argc) return fail(cl, "option ", word, wlen, " needs an argument");
	cl->value = cl->argv[cl->next++];
	return o->id;
}

static int next_short(struct cmdline *cl)
{
	const struct cmdline_opt *o;
	bool first = cl->cluster == cl->word + 1;
	char c = *cl->cluster++, word[3] = {'-', c, '\0'};

	if(*cl->cluster == '\0') cl->cluster = NULL;
	if(c == 'h' && find_short(cl->opts, 'h') == NULL) return help(cl);
	o = find_short(cl->opts, c);
	/* "-json" is reported whole: it was meant as one word. */
	if(o == NULL) return unknown(cl, first ? cl->word : word, find_short(cl->globals, c));
	cl->opt = o;
	cl->value = NULL;
	if(o->arg == CMDLINE_NO_ARG) return o->id;
	/* -xVALUE or -x VALUE */
	{
		const char *inl = cl->cluster;
		cl->cluster = NULL;
		return take_value(cl, o, inl, word, 2);
	}
}

int cmdline__next(struct cmdline *cl)
{
	const struct cmdline_opt *o;
	const char *a, *eq;
	size_t len;

	if(cl->ended) return cl->status;
	if(cl->cluster) return next_short(cl);
	for(;;){
		if(cl->next >= cl->argc) return done(cl, cl->argc);
		a = cl->argv[cl->next];
		if(!strcmp(a, "--")) return done(cl, cl->next + 1);
		if(a[0] == '-' && a[1] != '\0') break;
		/* An operand (a lone "-" too, by custom stdin). */
		if(cl->flags & CMDLINE_STOP_AT_OPERAND) return done(cl, cl->next);
		cl->argv[cl->out++] = cl->argv[cl->next++];
	}
	cl->next++;
	if(a[1] != '-'){
		cl->word = a;
		cl->cluster = a + 1;
		return next_short(cl);
	}
	eq = strchr(a + 2, '=');
	len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
	o = find_long(cl->opts, a + 2, len);
	if(o == NULL && len == 4 && !strncmp(a + 2, "help", 4)){
		if(eq) return fail(cl, "option ", a, len + 2, " takes no argument");
		return help(cl);
	}
	if(o == NULL) return unknown(cl, a, find_long(cl->globals, a + 2, len));
	cl->opt = o;
	cl->value = NULL;
	if(o->arg == CMDLINE_NO_ARG){
		if(eq) return fail(cl, "option ", a, len + 2, " takes no argument");
		return o->id;
	}
	return take_value(cl, o, eq ? eq + 1 : NULL, a, len + 2);
}

int cmdline__fail(const struct cmdline *cl)
{
	fprintf(stderr, "Error: %s\n", cl->err);
	return 2;
}

/* ---- options declared as data ---- */

#define DECL_JSON_ID (CMDLINE_MAX_DECL + 1)

void cmdline__init_decl(struct cmdline *cl, struct cmdline_vals *v, const struct cmdline_decl *decl,
		bool json, const char *prog, const char *cmd, const struct cmdline_opt *globals,
		int argc, char **argv)
{
	int n;

	memset(v, 0, sizeof(*v));
	v->decl = decl;
	for(n = 0; n < CMDLINE_MAX_DECL && decl[n].name; n++){
		v->table[n] = (struct cmdline_opt){decl[n].name, 0, decl[n].arg, n + 1};
	}
	if(json) v->table[n] = (struct cmdline_opt){"json", 0, CMDLINE_NO_ARG, DECL_JSON_ID};
	cmdline__init(cl, prog, cmd, v->table, globals, argc, argv, 1, 0);
}

int cmdline__next_decl(struct cmdline *cl, struct cmdline_vals *v)
{
	int c;

	while((c = cmdline__next(cl)) == DECL_JSON_ID) v->json = true;
	if(c > 0){
		v->given[c - 1] = true;
		v->value[c - 1] = cl->value;
	}
	return c;
}

/* The index of the declared option name, or -1. */
static int decl_index(const struct cmdline_vals *v, const char *name)
{
	int i;

	for(i = 0; i < CMDLINE_MAX_DECL && v->decl[i].name; i++){
		if(!strcmp(v->decl[i].name, name)) return i;
	}
	return -1;
}

bool cmdline__given(const struct cmdline_vals *v, const char *name)
{
	int i = decl_index(v, name);

	return i >= 0 && v->given[i];
}

const char *cmdline__value(const struct cmdline_vals *v, const char *name)
{
	int i = decl_index(v, name);

	return i >= 0 && v->given[i] ? v->value[i] : NULL;
}

long long cmdline__num(const struct cmdline_vals *v, const char *name, long long dflt)
{
	int i = decl_index(v, name);

	return i >= 0 && v->given[i] ? v->num[i] : dflt;
}
