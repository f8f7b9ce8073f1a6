/* main.c - mqchat-bench: option parsing and the mode table.
 *
 *   mqchat-bench MODE [--option value ...]
 *
 * Modes: pairs, fanout, connect, flood, rpc, prefill, topics (see
 * bench/README.md). Each prints one JSON object on stdout; errors go to
 * stderr as "Error: ...". */
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
	{ "pairs", load__pairs, "s<i> sends to the inbox of r<i> for i < --pairs" },
	{ "fanout", load__fanout, "m0 sends to --room, its --members m<i> subscribed" },
	{ "connect", conn__rate, "cold then warm logins of --users users (s<i>, r<i>)" },
	{ "flood", conn__flood, "warm logins while --flood connections send wrong passwords" },
	{ "rpc", rpc__latency, "--op history|sync round trips as --user" },
	{ "prefill", prefill__archive, "add --count messages to --archive-db (archiver schema)" },
	{ "topics", print_topics, "the topic table, as str.format templates" },
};

void bench__opts_defaults(struct bench_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->host = "127.0.0.1";
	o->port = 1883;
	o->password = "bench-password";
	o->qos = 0;
	o->size = 200;
	o->window = 8;
	o->count = 100000;
	o->seconds = 5.0;
	o->warmup_ms = 500;
	o->pairs = 10;
	o->archive_sql = "SELECT count(*) FROM messages";
	o->members = 100;
	o->room = "bench";
	o->users = 200;
	o->concurrency = 8;
	o->flood = 8;
	o->bind_flood = "127.0.0.2";
	o->op = "history";
	o->rpc_user = "s0";
	o->rpc_with = "r0";
	o->rpc_limit = 50;
}

static void usage(void)
{
	size_t i;

	fprintf(stderr, "usage: mqchat-bench MODE [--port N] [--password PW] [--qos 0|1]"
			" [--size B] [--window W] [--rate R]\n"
			"\t[--count N] [--seconds S] [--warmup-ms MS] [--broker-pid PID]"
			" [--pairs P] [--archive-db PATH]\n"
			"\t[--archive-sql SQL] [--members M] [--room R] [--users N]"
			" [--concurrency C] [--flood F]\n"
			"\t[--bind-flood ADDR] [--op history|sync] [--user U] [--with U]"
			" [--limit N] [--max-seq N]\nmodes:\n");
	for(i = 0; i < sizeof(modes) / sizeof(modes[0]); i++){
		fprintf(stderr, "  %-8s %s\n", modes[i].name, modes[i].help);
	}
}

static int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	v = strtol(s, &end, 10);
	if(*s == '\0' || *end != '\0' || v < min || v > max){
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_opt(struct bench_opts *o, const char *k, const char *v)
{
	long n;

#define NUM(name, field, lo, hi) \
	if(strcmp(k, name) == 0){ \
		if(parse_long(v, lo, hi, &n)) return -1; \
		o->field = (typeof(o->field))n; return 0; \
	}
#define STR(name, field) \
	if(strcmp(k, name) == 0){ o->field = v; return 0; }
	NUM("--port", port, 1, 65535)
	NUM("--qos", qos, 0, 1)
	NUM("--size", size, 128, 65000)
	NUM("--window", window, 1, 10000)
	NUM("--count", count, 1, 100000000)
	NUM("--warmup-ms", warmup_ms, 0, 600000)
	NUM("--broker-pid", broker_pid, 0, 1L << 30)
	NUM("--pairs", pairs, 1, 10000)
	NUM("--members", members, 1, 10000)
	NUM("--users", users, 1, 1000000)
	NUM("--concurrency", concurrency, 1, 256)
	NUM("--flood", flood, 1, 256)
	NUM("--limit", rpc_limit, 1, 1000)
	NUM("--max-seq", max_seq, 0, 1L << 50)
	STR("--host", host)
	STR("--password", password)
	STR("--archive-db", archive_db)
	STR("--archive-sql", archive_sql)
	STR("--room", room)
	STR("--bind-flood", bind_flood)
	STR("--op", op)
	STR("--user", rpc_user)
	STR("--with", rpc_with)
#undef NUM
#undef STR
	if(strcmp(k, "--rate") == 0){
		char *end;
		o->rate = strtod(v, &end);
		return (*end || o->rate < 0 || o->rate > 1e8) ? -1 : 0;
	}
	if(strcmp(k, "--seconds") == 0){
		char *end;
		o->seconds = strtod(v, &end);
		return (*end || o->seconds <= 0 || o->seconds > 3600) ? -1 : 0;
	}
	return -1;
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
	for(i = 0; i < sizeof(modes) / sizeof(modes[0]); i++){
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
	if(strcmp(o.op, "history") != 0 && strcmp(o.op, "sync") != 0){
		fprintf(stderr, "Error: --op must be history or sync\n");
		return 2;
	}
	mosquitto_lib_init();
	rc = m->run(&o);
	fflush(stdout);
	mosquitto_lib_cleanup();
	return rc;
}
