/* test_cmdline.c - the command-line parser both programs use
 * (common/cmdline.c): options in any order, `--`, values, clusters,
 * --help, and one line for each error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cmdline.h"

static const struct cmdline_opt opts[] = {
	{"room", 'r', CMDLINE_REQUIRED, 'r'},
	{"lines", 0, CMDLINE_NO_ARG, 'l'},
	{"verbose", 'v', CMDLINE_NO_ARG, 'v'},
	{"password", 0, CMDLINE_OPTIONAL, 'p'},
	{0},
};

static const struct cmdline_opt globals[] = {{"data", 'd', CMDLINE_REQUIRED, 'd'}, {0}};

/* Parse words (NULL-terminated) as the command "send"; the options seen
 * go to seen as "id[=value] ", the operands to ops as "a|b|". Returns the
 * last status. */
static int parse(char **words, unsigned flags, char *seen, char *ops, struct cmdline *cl)
{
	int argc = 0, c, i;

	while(words[argc]) argc++;
	seen[0] = ops[0] = '\0';
	cmdline__init(cl, "prog", "send", opts, globals, argc, words, 1, flags);
	while((c = cmdline__next(cl)) > 0){
		char one[64];
		snprintf(one, sizeof(one), "%c%s%s ", c, cl->value ? "=" : "", cl->value ? cl->value : "");
		strcat(seen, one);
	}
	if(c == CMDLINE_DONE){
		for(i=0; i<cl->nargs; i++){
			strcat(ops, cl->args[i]);
			strcat(ops, "|");
		}
	}
	/* It keeps saying the same. */
	assert_int_equal(cmdline__next(cl), c);
	return c;
}

static void test_any_order(void **state)
{
	char *w[] = {"send", "bob", "--lines", "hi", "--room=lab", "-r", "x", "there", NULL};
	char seen[256], ops[256];
	struct cmdline cl;

	(void)state;
	assert_int_equal(parse(w, 0, seen, ops, &cl), CMDLINE_DONE);
	assert_string_equal(seen, "l r=lab r=x ");
	assert_string_equal(ops, "bob|hi|there|");
}

static void test_double_dash_and_lone_dash(void **state)
{
	char *w[] = {"send", "-", "bob", "--", "--lines", "-v", NULL};
	char seen[256], ops[256];
	struct cmdline cl;

	(void)state;
	assert_int_equal(parse(w, 0, seen, ops, &cl), CMDLINE_DONE);
	assert_string_equal(seen, "");
	assert_string_equal(ops, "-|bob|--lines|-v|");
}

static void test_values_and_clusters(void **state)
{
	char *w[] = {"send", "-vvrlab", "--room", "-1", "-r", "--lines", "--password", NULL};
	char seen[256], ops[256];
	struct cmdline cl;

	(void)state;
	/* A required value is the next word whatever it looks like; an
	 * optional one only ever comes with '='. */
	assert_int_equal(parse(w, 0, seen, ops, &cl), CMDLINE_DONE);
	assert_string_equal(seen, "v v r=lab r=-1 r=--lines p ");
	assert_string_equal(ops, "");
}

static void test_stop_at_operand(void **state)
{
	char *w[] = {"prog", "-v", "send", "--lines", "bob", NULL};
	char seen[256], ops[256];
	struct cmdline cl;

	(void)state;
	assert_int_equal(parse(w, CMDLINE_STOP_AT_OPERAND, seen, ops, &cl), CMDLINE_DONE);
	assert_string_equal(seen, "v ");
	assert_string_equal(ops, "send|--lines|bob|");
	assert_int_equal(cl.rest, 2);
}

static void test_help(void **state)
{
	char *w1[] = {"send", "bob", "--help", "--bogus", NULL};
	char *w2[] = {"send", "-vh", NULL};
	char *w3[] = {"send", "--", "-h", NULL};
	char seen[256], ops[256];
	struct cmdline cl;

	(void)state;
	assert_int_equal(parse(w1, 0, seen, ops, &cl), CMDLINE_HELP);
	assert_int_equal(parse(w2, 0, seen, ops, &cl), CMDLINE_HELP);
	assert_int_equal(parse(w3, 0, seen, ops, &cl), CMDLINE_DONE);
	assert_string_equal(ops, "-h|");
}

static void expect_error(char **w, const char *err)
{
	char seen[256], ops[256];
	struct cmdline cl;

	assert_int_equal(parse(w, 0, seen, ops, &cl), CMDLINE_ERROR);
	assert_string_equal(cl.err, err);
	assert_null(strchr(cl.err, '\n'));
}

static void test_errors_are_one_line(void **state)
{
	char *unknown[] = {"send", "bob", "--bogus", NULL};
	char *abbrev[] = {"send", "--lin", NULL};
	char *shrt[] = {"send", "-x", NULL};
	char *word[] = {"send", "-json", NULL};
	char *missing[] = {"send", "bob", "--room", NULL};
	char *missing_short[] = {"send", "-r", NULL};
	char *flag_value[] = {"send", "--lines=yes", NULL};
	char *help_value[] = {"send", "--help=1", NULL};
	char *global[] = {"send", "--data=x", NULL};
	char *control[] = {"send", "--a\033[2J", NULL};
	char *secret[] = {"send", "--pasword=hunter2", NULL};

	(void)state;
	expect_error(unknown, "unknown option '--bogus' (see `prog send --help`)");
	expect_error(abbrev, "unknown option '--lin' (see `prog send --help`)");
	expect_error(shrt, "unknown option '-x' (see `prog send --help`)");
	expect_error(word, "unknown option '-json' (see `prog send --help`)");
	expect_error(missing, "option '--room' needs an argument (see `prog send --help`)");
	expect_error(missing_short, "option '-r' needs an argument (see `prog send --help`)");
	expect_error(flag_value, "option '--lines' takes no argument (see `prog send --help`)");
	expect_error(help_value, "option '--help' takes no argument (see `prog send --help`)");
	expect_error(global, "'--data' is a global option: put it before the command"
			" (see `prog --help`)");
	expect_error(control, "unknown option '--a\\x1b[2J' (see `prog send --help`)");
	expect_error(secret, "unknown option '--pasword' (see `prog send --help`)");
}

/* Options declared as data: --json apart, each other option recorded by
 * its place in the declaration and asked for by name, operands gathered. */
static void test_declared(void **state)
{
	static const struct cmdline_decl decl[CMDLINE_MAX_DECL] = {
		{.name = "room", .arg = CMDLINE_REQUIRED},
		{.name = "lines", .arg = CMDLINE_NO_ARG},
		{.name = "count", .arg = CMDLINE_REQUIRED, .min = 1, .max = 10, .bad = "--count: 1..10"},
	};
	char *w[] = {"send", "bob", "--json", "--lines", "--room=a", "hi", "--room", "b", "--count", "3",
		NULL};
	char *w2[] = {"send", "--json", NULL};
	struct cmdline_vals v;
	struct cmdline cl;
	int c, argc = 0, ids[8], n = 0;

	(void)state;
	while(w[argc]) argc++;
	cmdline__init_decl(&cl, &v, decl, true, "prog", "send", globals, argc, w);
	while((c = cmdline__next_decl(&cl, &v)) > 0 && n < 8) ids[n++] = c;
	assert_int_equal(c, CMDLINE_DONE);
	/* --json is not returned; lines, room, room, count by place + 1. */
	assert_int_equal(n, 4);
	assert_int_equal(ids[0], 2);
	assert_int_equal(ids[1], 1);
	assert_int_equal(ids[2], 1);
	assert_int_equal(ids[3], 3);
	assert_true(v.json);
	assert_true(cmdline__given(&v, "lines"));
	assert_string_equal(cmdline__value(&v, "room"), "b");   /* the last one given */
	assert_string_equal(cmdline__value(&v, "count"), "3");
	/* The number is the caller's to check and set: not given, the default. */
	assert_int_equal(cmdline__num(&v, "count", 7), 0);
	assert_false(cmdline__given(&v, "nope"));
	assert_null(cmdline__value(&v, "nope"));
	assert_int_equal(cmdline__num(&v, "nope", 7), 7);
	assert_int_equal(cl.nargs, 2);
	assert_string_equal(cl.args[0], "bob");
	assert_string_equal(cl.args[1], "hi");

	/* Without json declared, --json is an unknown option. */
	cmdline__init_decl(&cl, &v, decl, false, "prog", "send", globals, 2, w2);
	assert_int_equal(cmdline__next_decl(&cl, &v), CMDLINE_ERROR);
	assert_false(v.json);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_any_order),
		cmocka_unit_test(test_double_dash_and_lone_dash),
		cmocka_unit_test(test_values_and_clusters),
		cmocka_unit_test(test_stop_at_operand),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_errors_are_one_line),
		cmocka_unit_test(test_declared),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
