/* cmd_send.c - "send": one message (or one per line) to a user or a room,
 * QoS 1, exit 0 only once the broker accepted every one. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "envelope.h"
#include "log.h"
#include "session.h"
#include "timeutil.h"

/* The most of stdin read: one message's text, or --lines' lines. */
#define STDIN_MAX (64 * 1024 * 1024)

struct outgoing {
	char *body;     /* owned */
	size_t len;
	char *payload;  /* its envelope, owned */
	char id[MSGID_LEN + 1];
	int mid;
	int reason;     /* its PUBACK's reason code */
};

/* Encode o (borrowed) and check it as the broker will: a new string, or
 * NULL with why set (the parser's reason, or "cannot encode"). */
static char *encode_checked(json_t *o, const char **why)
{
	struct envelope env;
	char *payload = o ? json_dumps(o, JSON_COMPACT) : NULL;

	*why = "cannot encode";
	if(payload && !envelope__parse(payload, strlen(payload), &env, why)){
		free(payload);
		payload = NULL;
	}
	return payload;
}

int cmd_send__envelope(const char *body, size_t len, const char *reply_to,
		const char *reply_from, char *id, char **payload, char *why, size_t why_len)
{
	json_t *o;
	const char *bad;
	int rc;

	util__msgid(id);
	o = json_pack("{s:s, s:s, s:s%, s:I}", "id", id, "type", "text", "body", body, len,
			"ts", (json_int_t)time__now_ms());
	if(o && reply_to && reply_from){
		json_object_set_new(o, "reply_to", json_string(reply_to));
		json_object_set_new(o, "reply_from", json_string(reply_from));
	}
	/* Our own output must pass the same check the broker applies. */
	*payload = encode_checked(o, &bad);
	json_decref(o);
	if(*payload == NULL){
		snprintf(why, why_len, "internal: invalid envelope (%s)", bad);
		return EXIT_FAILED;
	}
	/* Measured as it goes out: the broker counts the escaped JSON. */
	if((rc = util__envelope_fits(strlen(*payload), body, len, why, why_len))){
		free(*payload);
		*payload = NULL;
	}
	return rc;
}

int cmd_send__publish(struct session *s, const char *topic, const char *body, size_t len,
		const char *reply_to, const char *reply_from, char *id, int *mid)
{
	char *payload, why[300];
	int rc = cmd_send__envelope(body, len, reply_to, reply_from, id, &payload, why, sizeof(why));

	if(rc){
		util__error("%s", why);
		return rc;
	}
	rc = session__publish(s, topic, payload, strlen(payload), true, mid);
	free(payload);
	return rc;
}

/* Check the --reply-to REF --reply-from USER pair (both or neither):
 * EXIT_OK, or EXIT_USAGE said. */
static int check_reply(const char *reply_to, const char *reply_from, const char *cmd)
{
	char q[80];

	if((reply_to == NULL) != (reply_from == NULL)){
		util__error("--reply-to and --reply-from go together: the id of the message quoted "
				"and who sent it");
		return cmd__usage(cmd);
	}
	if(reply_to && !names__valid_msgid(reply_to, strlen(reply_to))){
		util__error("--reply-to: invalid message id '%s'",
				log_escape(reply_to, strlen(reply_to), q, sizeof(q)));
		return EXIT_USAGE;
	}
	if(reply_from && !names__valid_str(reply_from)) return login__bad_name("user", reply_from);
	return EXIT_OK;
}

void cmd_send__refused(struct session *s, const char *id, int reason, const char *what)
{
	struct notice n;
	char why[256];
	bool have = session__notice(s, id, &n);

	notice__explain(have ? &n : NULL, reason, why, sizeof(why));
	fprintf(stderr, "not sent: %s%s\n", why, what ? what : "");
}

/* One refused message of send: the reason on stderr (and a JSON line on
 * stdout with --json, code and retry_ms included, for scripts). line: its
 * line number when there are several, else 0. */
static void report_refused(struct session *s, const struct outgoing *o, const char *key,
		const char *to, int line)
{
	struct notice n;
	char why[256], where[32] = "";
	bool have = session__notice(s, o->id, &n);
	json_t *j;
	char *text;

	notice__explain(have ? &n : NULL, o->reason, why, sizeof(why));
	if(line > 0) snprintf(where, sizeof(where), " (line %d)", line);
	fprintf(stderr, "not sent: %s%s\n", why, where);
	if(!s->opt->json) return;
	j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", o->id, key, to, "status", "refused",
			"code", have ? n.code : "refused", "message", why);
	if(j && have && n.retry_ms > 0) json_object_set_new(j, "retry_ms", json_integer(n.retry_ms));
	text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	if(text) printf("%s\n", text);
	free(text);
	json_decref(j);
}

static int add_line(struct outgoing **v, int *n, const char *p, size_t len)
{
	struct outgoing *nv = realloc(*v, (size_t)(*n + 1) * sizeof(**v));

	if(nv == NULL) return EXIT_FAILED;
	*v = nv;
	memset(&nv[*n], 0, sizeof(nv[*n]));
	nv[*n].body = malloc(len + 1);
	if(nv[*n].body == NULL) return EXIT_FAILED;
	memcpy(nv[*n].body, p, len);
	nv[*n].body[len] = '\0';
	nv[*n].len = len;
	(*n)++;
	return EXIT_OK;
}

/* Collect the messages: TEXT words, all of stdin, or one per stdin line. */
static int collect(int argc, char **argv, int first, bool lines, struct outgoing **v, int *n)
{
	size_t len = 0, total = 0;
	char *all, *p, *end;
	int i, rc = EXIT_OK;

	if(first < argc){
		for(i=first; i<argc; i++) total += strlen(argv[i]) + 1;
		all = malloc(total + 1);
		if(all == NULL) return EXIT_FAILED;
		all[0] = '\0';
		for(i=first; i<argc; i++){
			if(i > first) all[len++] = ' ';
			memcpy(all + len, argv[i], strlen(argv[i]));
			len += strlen(argv[i]);
		}
		all[len] = '\0';
		rc = add_line(v, n, all, len);
		free(all);
		return rc;
	}
	/* All of it, however long: a text too large is said with its length. */
	all = util__read_all(stdin, STDIN_MAX, &len);
	if(all == NULL){
		if(errno == EFBIG){
			util__error("stdin too large: over %d MiB (one message holds at most %d bytes)",
					STDIN_MAX / (1024 * 1024), PAYLOAD_MAX);
			return EXIT_USAGE;
		}
		util__error("cannot read stdin: %s", strerror(errno));
		return EXIT_FAILED;
	}
	if(!lines){
		while(len > 0 && (all[len-1] == '\n' || all[len-1] == '\r')) len--;
		rc = add_line(v, n, all, len);
		free(all);
		return rc;
	}
	p = all;
	end = all + len;
	while(rc == EXIT_OK && p < end){
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if(l > 0 && p[l-1] == '\r') l--;
		if(l > 0) rc = add_line(v, n, p, l);
		p = nl ? nl + 1 : end;
	}
	free(all);
	if(rc == EXIT_OK && *n == 0){
		util__error("no message on stdin");
		rc = EXIT_USAGE;
	}
	return rc;
}

int cmd_send__run(struct options *opt, const struct cmd_args *a)
{
	struct session s;
	struct outgoing *v = NULL;
	/* Options anywhere (main.c): a text starting with '-' comes after `--`. */
	const char *room = cmdline__value(&a->vals, "room"), *to = NULL;
	const char *reply_to = cmdline__value(&a->vals, "reply-to");
	const char *reply_from = cmdline__value(&a->vals, "reply-from");
	char topic[TOPIC_MAX_LEN + 1];
	bool lines = cmdline__given(&a->vals, "lines");
	int i = 0, n = 0, rc, refused = 0;

	if((rc = check_reply(reply_to, reply_from, "send"))) return rc;
	if(room == NULL){
		if(i >= a->nargs) return cmd__usage("send");
		if((rc = login__conv_operand(a->args[i++], &to, &room))) return rc;
	}else if(!names__valid_str(room)){
		return login__bad_name("room", room);
	}
	if((rc = options__need_user(opt))) return rc;

	/* Every message is checked, its envelope built and measured, before
	 * anything is sent: a run sends all or nothing of what it was given. */
	rc = collect(a->nargs, a->args, i, lines, &v, &n);
	for(i=0; rc == EXIT_OK && i<n; i++){
		char why[300];
		if((rc = util__check_text(v[i].body, v[i].len))) break;
		rc = cmd_send__envelope(v[i].body, v[i].len, reply_to, reply_from, v[i].id,
				&v[i].payload, why, sizeof(why));
		if(rc && n > 1) util__error("%s (line %d)", why, i + 1);
		else if(rc) util__error("%s", why);
	}
	if(rc){
		if(n > 1) fprintf(stderr, "nothing was sent\n");
		goto out;
	}
	topic__build(topic, sizeof(topic), room ? TOPIC_ROOM : TOPIC_INBOX, room ? room : to,
			opt->user);

	if((rc = session__init(&s, opt, SESSION_ONESHOT)) == EXIT_OK
			&& (rc = session__connect(&s)) == EXIT_OK){
		for(i=0; rc == EXIT_OK && i<n; i++){
			rc = session__publish(&s, topic, v[i].payload, strlen(v[i].payload), true,
					&v[i].mid);
		}
		/* Every PUBACK first, then the reasons: one round trip after the
		 * last PUBACK then tells every missing notice from a late one. */
		for(i=0; rc == EXIT_OK && i<n; i++) rc = session__pub_wait(&s, v[i].mid, &v[i].reason);
		for(i=0; rc == EXIT_OK && i<n; i++){
			if(v[i].reason >= 0x80){
				report_refused(&s, &v[i], room ? "room" : "to", room ? room : to,
						n > 1 ? i + 1 : 0);
				refused++;
				continue;
			}
			if(opt->json){
				printf("{\"id\":\"%s\",\"%s\":\"%s\",\"status\":\"accepted\"}\n", v[i].id,
						room ? "room" : "to", room ? room : to);
			}else{
				printf("%s\n", v[i].id);
			}
		}
		if(rc == EXIT_OK && refused) rc = EXIT_FAILED;
	}
	session__cleanup(&s);
out:
	for(i=0; i<n; i++){
		free(v[i].body);
		free(v[i].payload);
	}
	free(v);
	return rc;
}

/* ---- react ---- */

int cmd_react__run(struct options *opt, const struct cmd_args *a)
{
	const char *target, *of, *ref, *emoji, *room = NULL, *to = NULL, *why;
	bool remove = cmdline__given(&a->vals, "remove");
	char topic[TOPIC_MAX_LEN + 1], id[MSGID_LEN + 1], q[80];
	struct session s;
	json_t *o;
	char *payload;
	int rc, mid = 0, reason = 0;

	if(a->nargs < 4) return cmd__usage("react");
	target = a->args[0];
	of = a->args[1];
	ref = a->args[2];
	emoji = a->args[3];
	if((rc = login__conv_operand(target, &to, &room))) return rc;
	if(!names__valid_str(of)) return login__bad_name("user", of);
	if(!names__valid_msgid(ref, strlen(ref))){
		util__error("invalid message id '%s'", log_escape(ref, strlen(ref), q, sizeof(q)));
		return EXIT_USAGE;
	}
	if(!utf8__valid(emoji, strlen(emoji))){
		util__error("invalid reaction: the emoji is not valid UTF-8");
		return EXIT_USAGE;
	}
	if((rc = options__need_user(opt))) return rc;
	util__msgid(id);
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "id", id, "type", "reaction", "ref", ref,
			"of", of, "emoji", emoji, "ts", (json_int_t)time__now_ms());
	if(o && remove) json_object_set_new(o, "remove", json_true());
	/* The one rule of emojis is the envelope's: what it refuses, we do. */
	payload = encode_checked(o, &why);
	json_decref(o);
	if(payload == NULL){
		util__error("invalid reaction: %s", why);
		return EXIT_USAGE;
	}
	topic__build(topic, sizeof(topic), room ? TOPIC_ROOM : TOPIC_INBOX, room ? room : to,
			opt->user);
	if((rc = session__init(&s, opt, SESSION_ONESHOT)) == EXIT_OK
			&& (rc = session__connect(&s)) == EXIT_OK
			&& (rc = session__publish(&s, topic, payload, strlen(payload), true, &mid)) == EXIT_OK
			&& (rc = session__pub_wait(&s, mid, &reason)) == EXIT_OK){
		if(reason >= 0x80){
			cmd_send__refused(&s, id, reason, NULL);
			rc = EXIT_FAILED;
		}else if(opt->json){
			printf("{\"id\":\"%s\",\"%s\":\"%s\",\"status\":\"accepted\"}\n", id,
					room ? "room" : "to", room ? room : to);
		}else{
			printf("%s\n", id);
		}
	}
	session__cleanup(&s);
	free(payload);
	return rc;
}
