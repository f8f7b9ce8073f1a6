/* main.c - mqchat-bench: option parsing and the mode table.
 *
 *   mqchat-bench MODE [--option value ...]
 *
 * Modes: pairs, fanout, connect, flood, rpc, prefill, topics (see
 * bench/README.md). Each prints one JSON object on stdout; errors go to
 * stderr as "Error: ...". */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>

#include "bench.h"
#include "topic.h"

/* The topic table of common/topic.c for the Python benches, as templates:
 * {"inbox": "<...>/{a}/{b}", ...} (str.format fields a and b). */
static int print_topics(const struct bench_opts *o)
{
	char buf[TOPIC_MAX_LEN + 1];
	int k;

	(void)o;
	printf("{");
	for(k = TOPIC_NONE + 1; k < TOPIC_KIND_COUNT; k++){
		topic__build(buf, sizeof(buf), (enum topic_kind)k, "{a}", "{b}");
		printf("%s\"%s\": \"%s\"", k > TOPIC_NONE + 1 ? ", " : "",
				topic__kind_name((enum topic_kind)k), buf);
	}
	printf("}\n");
	return 0;
}

struct mode {
	const char *name;
	int (*run)(const struct bench_opts *o);
	const char *help;
};

static const struct mode modes[] = {
	{ "pairs", load__pairs, "s<i> sends to the inbox of r<i> for i < --pairs (r<i> on --sub-host/--sub-port if given)" },
	{ "fanout", load__fanout, "m0 sends to --room, its --members m<i> subscribed" },
	{ "connect", conn__rate, "cold then warm logins of --users users (s<i>, r<i>)" },
	{ "resume", conn__resume, "one login each of --prefix<i> for i < --users (--persistent, --token-seed)" },
	{ "flood", conn__flood, "warm logins while --flood connections send wrong passwords" },
	{ "rpc", rpc__latency, "--op history|sync|conversations|search|catchup round trips as --user" },
	{ "prefill", prefill__archive, "add --count messages to --archive-db with the archiver's code" },
	{ "topics", print_topics, "the topic table, as str.format templates" },
};

/* Every option, in the order of struct bench_opts: its name, the name of
 * its value in the usage, where it goes, its default and, for numbers, the
 * range. The one table drives the defaults, the parsing and the usage. */
enum opt_kind { OPT_INT, OPT_LONG, OPT_REAL, OPT_STR };

struct opt {
	const char *name;
	const char *arg;
	enum opt_kind kind;
	size_t off;             /* of the field in struct bench_opts */
	const char *def_str;    /* the default of OPT_STR (NULL: none) */
	double def, lo, hi;     /* the default and range of the numbers */
};

#define OFF(field) offsetof(struct bench_opts, field)

static const struct opt opts[] = {
	{ .name = "--host", .arg = "ADDR", .kind = OPT_STR, .off = OFF(host), .def_str = "127.0.0.1" },
	{ .name = "--port", .arg = "N", .kind = OPT_INT, .off = OFF(port), .def = 1883, .lo = 1, .hi = 65535 },
	{ .name = "--password", .arg = "PW", .kind = OPT_STR, .off = OFF(password), .def_str = "bench-password" },
	{ .name = "--qos", .arg = "0|1", .kind = OPT_INT, .off = OFF(qos), .lo = 0, .hi = 1 },
	{ .name = "--size", .arg = "B", .kind = OPT_INT, .off = OFF(size), .def = 200, .lo = 128, .hi = 65000 },
	{ .name = "--window", .arg = "W", .kind = OPT_INT, .off = OFF(window), .def = 8, .lo = 1, .hi = 10000 },
	{ .name = "--rate", .arg = "R", .kind = OPT_REAL, .off = OFF(rate), .lo = 0, .hi = 1e8 },
	{ .name = "--count", .arg = "N", .kind = OPT_LONG, .off = OFF(count), .def = 100000, .lo = 1, .hi = 100000000 },
	/* A thousandth of a second at least: less measures nothing. */
	{ .name = "--seconds", .arg = "S", .kind = OPT_REAL, .off = OFF(seconds), .def = 5, .lo = 1e-3, .hi = 3600 },
	{ .name = "--warmup-ms", .arg = "MS", .kind = OPT_INT, .off = OFF(warmup_ms), .def = 500, .lo = 0, .hi = 600000 },
	{ .name = "--settle-ms", .arg = "MS", .kind = OPT_INT, .off = OFF(settle_ms), .lo = 0, .hi = 600000 },
	{ .name = "--broker-pid", .arg = "PID", .kind = OPT_INT, .off = OFF(broker_pid), .lo = 0, .hi = 1L << 30 },
	{ .name = "--pairs", .arg = "P", .kind = OPT_INT, .off = OFF(pairs), .def = 10, .lo = 1, .hi = 10000 },
	{ .name = "--sub-host", .arg = "ADDR", .kind = OPT_STR, .off = OFF(sub_host) },
	{ .name = "--sub-port", .arg = "N", .kind = OPT_INT, .off = OFF(sub_port), .lo = 1, .hi = 65535 },
	{ .name = "--cpu-pids", .arg = "P,P..", .kind = OPT_STR, .off = OFF(cpu_pids) },
	{ .name = "--archive-db", .arg = "PATH", .kind = OPT_STR, .off = OFF(archive_db) },
	{ .name = "--archive-sql", .arg = "SQL", .kind = OPT_STR, .off = OFF(archive_sql), .def_str = "SELECT count(*) FROM messages" },
	{ .name = "--members", .arg = "M", .kind = OPT_INT, .off = OFF(members), .def = 100, .lo = 1, .hi = 10000 },
	{ .name = "--room", .arg = "R", .kind = OPT_STR, .off = OFF(room), .def_str = "bench" },
	{ .name = "--users", .arg = "N", .kind = OPT_INT, .off = OFF(users), .def = 200, .lo = 1, .hi = 1000000 },
	{ .name = "--concurrency", .arg = "C", .kind = OPT_INT, .off = OFF(concurrency), .def = 8, .lo = 1, .hi = 256 },
	{ .name = "--flood", .arg = "F", .kind = OPT_INT, .off = OFF(flood), .def = 8, .lo = 1, .hi = 256 },
	{ .name = "--bind-flood", .arg = "ADDR", .kind = OPT_STR, .off = OFF(bind_flood), .def_str = "127.0.0.2" },
	{ .name = "--op", .arg = "OP", .kind = OPT_STR, .off = OFF(op), .def_str = "history" },
	{ .name = "--user", .arg = "U", .kind = OPT_STR, .off = OFF(rpc_user), .def_str = "s0" },
	{ .name = "--with", .arg = "U", .kind = OPT_STR, .off = OFF(rpc_with), .def_str = "r0" },
	{ .name = "--limit", .arg = "N", .kind = OPT_INT, .off = OFF(rpc_limit), .def = 50, .lo = 1, .hi = 1000 },
	{ .name = "--max-seq", .arg = "N", .kind = OPT_LONG, .off = OFF(max_seq), .lo = 0, .hi = 1L << 50 },
	{ .name = "--text", .arg = "T", .kind = OPT_STR, .off = OFF(text) },
	{ .name = "--depth", .arg = "PAGE", .kind = OPT_INT, .off = OFF(depth), .lo = 0, .hi = 1000 },
	{ .name = "--after", .arg = "SEQ", .kind = OPT_LONG, .off = OFF(after), .lo = 0, .hi = 1L << 50 },
	{ .name = "--peers", .arg = "P", .kind = OPT_INT, .off = OFF(peers), .lo = 0, .hi = 100000 },
	{ .name = "--prefix", .arg = "P", .kind = OPT_STR, .off = OFF(prefix), .def_str = "p" },
	{ .name = "--persistent", .arg = "0|1", .kind = OPT_INT, .off = OFF(persistent), .lo = 0, .hi = 1 },
	{ .name = "--token-seed", .arg = "SEED", .kind = OPT_STR, .off = OFF(token_seed) },
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The values of --op (bench/rpc.c). */
static const char *const rpc_ops[] = { "history", "sync", "conversations", "search", "catchup" };

/* Set op's field of o to str (OPT_STR) or num (the others). */
static void set_field(struct bench_opts *o, const struct opt *op, const char *str, double num)
{
	char *field = (char *)o + op->off;

	switch(op->kind){
		case OPT_STR:
			*(const char **)(void *)field = str;
			break;
		case OPT_REAL:
			*(double *)(void *)field = num;
			break;
		case OPT_INT:
			*(int *)(void *)field = (int)num;
			break;
		case OPT_LONG:
			*(long *)(void *)field = (long)num;
			break;
	}
}

void bench__opts_defaults(struct bench_opts *o)
{
	size_t i;

	memset(o, 0, sizeof(*o));
	for(i = 0; i < NELEM(opts); i++){
		set_field(o, &opts[i], opts[i].def_str, opts[i].def);
	}
}

static void usage(void)
{
	size_t i;
	int col, w;

	col = fprintf(stderr, "usage: mqchat-bench MODE");
	for(i = 0; i < NELEM(opts); i++){
		w = snprintf(NULL, 0, "[%s %s]", opts[i].name, opts[i].arg);
		if(col + 1 + w > 78){
			fprintf(stderr, "\n\t");
			col = 8;
		}else{
			col += fprintf(stderr, " ");
		}
		col += fprintf(stderr, "[%s %s]", opts[i].name, opts[i].arg);
	}
	fprintf(stderr, "\nmodes:\n");
	for(i = 0; i < NELEM(modes); i++){
		fprintf(stderr, "  %-8s %s\n", modes[i].name, modes[i].help);
	}
}

/* Set the option named k from the text v. 0, or -1 when k names no option
 * or v is not a value of it. */
static int parse_opt(struct bench_opts *o, const char *k, const char *v)
{
	const struct opt *op = NULL;
	char *end = NULL;
	double d = 0;
	long n;
	size_t i;

	for(i = 0; i < NELEM(opts) && op == NULL; i++){
		if(strcmp(k, opts[i].name) == 0) op = &opts[i];
	}
	if(op == NULL) return -1;
	switch(op->kind){
		case OPT_STR:
			set_field(o, op, v, 0);
			return 0;
		case OPT_REAL:
			d = strtod(v, &end);
			break;
		case OPT_INT:
		case OPT_LONG:
			errno = 0;
			n = strtol(v, &end, 10);
			if(errno) return -1;
			d = (double)n;
			break;
	}
	if(*v == '\0' || *end != '\0' || !(d >= op->lo && d <= op->hi)) return -1;
	set_field(o, op, NULL, d);
	return 0;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	const struct mode *m = NULL;
	size_t i;
	int a, rc;

	if(argc < 2){
		usage();
		return 2;
	}
	for(i = 0; i < NELEM(modes); i++){
		if(strcmp(argv[1], modes[i].name) == 0){
			m = &modes[i];
		}
	}
	if(m == NULL){
		fprintf(stderr, "Error: unknown mode '%s'\n", argv[1]);
		usage();
		return 2;
	}
	bench__opts_defaults(&o);
	for(a = 2; a < argc; a += 2){
		if(a + 1 >= argc || parse_opt(&o, argv[a], argv[a + 1]) != 0){
			fprintf(stderr, "Error: bad option '%s'%s%s\n", argv[a],
					a + 1 < argc ? " value " : "", a + 1 < argc ? argv[a + 1] : "");
			usage();
			return 2;
		}
	}
	for(i = 0; i < NELEM(rpc_ops) && strcmp(o.op, rpc_ops[i]) != 0; i++){
	}
	if(i == NELEM(rpc_ops)){
		fprintf(stderr, "Error: --op must be history, sync, conversations, search or catchup\n");
		return 2;
	}
	mosquitto_lib_init();
	rc = m->run(&o);
	fflush(stdout);
	mosquitto_lib_cleanup();
	return rc;
}
