/* cmd_conv.c - the commands about conversations, answered by the archiver
 * (docs/PROTOCOL.md, issue 17 contract): conversations (the list, with
 * unread counts and the last message), read (move my read marker), edit
 * and delete (my own texts; a room's owner or admin deletes any), search.
 * Every op goes through cmd_rpc__op, which says a failure in words. */
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "feed.h"
#include "log.h"
#include "session.h"

/* Conversations asked for per page when looking one up (read). */
#define CONV_PAGE 100
/* Pages of the conversation list read looks through at most. */
#define CONV_PAGES_MAX 1000

/* "with bob" or "in #lobby", for the lines about a conversation. */
static void conv_words(const char *with, const char *room, char *out, size_t len)
{
	if(room) snprintf(out, len, "in #%s", room);
	else snprintf(out, len, "with %s", with);
}

/* A message id operand: EXIT_OK, or EXIT_USAGE said. */
static int check_ref(const char *ref)
{
	char q[80];

	if(names__valid_msgid(ref, strlen(ref))) return EXIT_OK;
	util__error("invalid message id '%s' (an id as send prints it: 1..%d of A-Z a-z 0-9 _ -)",
			log_escape(ref, strlen(ref), q, sizeof(q)), MSGID_MAX_LEN);
	return EXIT_USAGE;
}

/* The operands args[first..n) joined by single spaces: a new string, or NULL
 * (out of memory, said). */
static char *join_words(char **args, int first, int n)
{
	size_t total = 1, len = 0;
	char *out;
	int i;

	for(i=first; i<n; i++) total += strlen(args[i]) + 1;
	out = malloc(total);
	if(out == NULL){
		util__error("out of memory");
		return NULL;
	}
	for(i=first; i<n; i++){
		if(i > first) out[len++] = ' ';
		memcpy(out + len, args[i], strlen(args[i]));
		len += strlen(args[i]);
	}
	out[len] = '\0';
	return out;
}

/* ---- conversations ---- */

/* One line of the list: "bob (2 unread): [2026-12-05 01:00:00] bob: see
 * you" or "#lobby "Lobby": [..] me: hi all". */
static void print_conv(json_t *c, const char *me)
{
	const char *with = json_string_value(json_object_get(c, "with"));
	const char *room = json_string_value(json_object_get(c, "room"));
	const char *title = json_string_value(json_object_get(c, "title"));
	json_int_t unread = json_integer_value(json_object_get(c, "unread"));

	if(room && names__valid_str(room)){
		printf("#%s", room);
		if(title && *title){
			printf(" \"");
			util__print_safe(stdout, title, strlen(title));
			printf("\"");
		}
	}else if(with && names__valid_str(with)){
		printf("%s", with);
	}else{
		return;
	}
	if(unread > 0) printf(" (%lld unread)", (long long)unread);
	printf(": ");
	feed__print_preview(json_object_get(c, "last"), me);
}

int cmd_conversations__run(struct options *opt, const struct cmd_args *a)
{
	const struct rpc_say say = { .doing = "list your conversations" };
	long long limit = cmdline__num(&a->vals, "limit", 50);
	long long before = cmdline__num(&a->vals, "before", -1);
	json_t *req, *resp = NULL, *convs, *c;
	long long oldest = -1;
	size_t i;
	int rc;

	req = json_pack("{s:s, s:I}", "op", "conversations", "limit", (json_int_t)limit);
	if(req && before >= 0) json_object_set_new(req, "before", json_integer(before));
	rc = cmd_rpc__op_once(opt, req, &resp, &say);
	json_decref(req);
	if(rc) return rc;
	convs = json_object_get(resp, "conversations");
	json_array_foreach(convs, i, c){
		long long last = (long long)json_integer_value(json_object_get(c, "last_seq"));
		if(oldest < 0 || last < oldest) oldest = last;
		if(opt->json) feed__print_json(c);
		else print_conv(c, opt->user);
	}
	if(json_is_true(json_object_get(resp, "more")) && oldest >= 0 && !opt->json){
		fprintf(stderr, "(more conversations: --before %lld)\n", oldest);
	}
	json_decref(resp);
	return EXIT_OK;
}

/* ---- read ---- */

/* The last_seq of my conversation with with (or in room), from the
 * conversation list, page after page: EXIT_OK with *seq set, *seq -1 if the
 * list has no such conversation, else the op's exit code (said). */
static int last_seq_of(struct session *s, const char *with, const char *room,
		const struct rpc_say *say, long long *seq)
{
	long long before = -1;
	int pages, rc = EXIT_OK;

	*seq = -1;
	for(pages=0; pages<CONV_PAGES_MAX && *seq < 0; pages++){
		json_t *req, *resp = NULL, *c;
		long long oldest = -1;
		bool more;
		size_t i;

		req = json_pack("{s:s, s:i}", "op", "conversations", "limit", CONV_PAGE);
		if(req && before >= 0) json_object_set_new(req, "before", json_integer(before));
		rc = cmd_rpc__op(s, req, &resp, say);
		json_decref(req);
		if(rc) return rc;
		json_array_foreach(json_object_get(resp, "conversations"), i, c){
			const char *w = json_string_value(json_object_get(c, "with"));
			const char *r = json_string_value(json_object_get(c, "room"));
			long long last = (long long)json_integer_value(json_object_get(c, "last_seq"));
			if(oldest < 0 || last < oldest) oldest = last;
			if((with && w && !strcmp(w, with)) || (room && r && !strcmp(r, room))) *seq = last;
		}
		more = json_is_true(json_object_get(resp, "more"));
		json_decref(resp);
		/* An archiver that says "more" without moving on ends it too. */
		if(!more || oldest < 0 || (before >= 0 && oldest >= before)) break;
		before = oldest;
	}
	return rc;
}

int cmd_read__run(struct options *opt, const struct cmd_args *a)
{
	const char *with, *room;
	char where[NAME_MAX_LEN + 16], doing[NAME_MAX_LEN + 64], nf[NAME_MAX_LEN + 128];
	char forbidden[NAME_MAX_LEN + 32];
	struct rpc_say say = { .doing = doing };
	long long seq = cmdline__num(&a->vals, "seq", -1);
	json_t *req, *resp = NULL;
	struct session s;
	int rc;

	if(a->nargs < 1) return cmd__usage("read");
	if((rc = login__conv_operand(a->args[0], &with, &room))) return rc;
	if((rc = options__need_user(opt))) return rc;
	conv_words(with, room, where, sizeof(where));
	snprintf(doing, sizeof(doing), "mark the conversation %s read", where);
	say.room = room;
	say.user = with;
	snprintf(forbidden, sizeof(forbidden), "you are in no room %s", room ? room : "");
	say.forbidden = room ? forbidden : NULL;
	if((rc = session__init(&s, opt, SESSION_ONESHOT)) || (rc = session__connect(&s))) goto done;
	if(seq < 0){
		if((rc = last_seq_of(&s, with, room, &say, &seq))) goto done;
		if(seq < 0){
			util__error("cannot %s: no messages %s", doing, where);
			rc = EXIT_FAILED;
			goto done;
		}
	}else{
		/* A seq that names no message there (or a person who is none). */
		snprintf(nf, sizeof(nf), "no message with seq %lld %s%s", seq, where,
				room ? " (or you are in no such room)" : " (or no such user)");
		say.not_found = nf;
	}
	req = json_pack("{s:s, s:s, s:I}", "op", "read", room ? "room" : "with", room ? room : with,
			"seq", (json_int_t)seq);
	rc = cmd_rpc__op(&s, req, &resp, &say);
	json_decref(req);
	if(rc) goto done;
	if(opt->json){
		cmd_rpc__print_answer(resp);
	}else{
		printf("read up to seq %lld %s (%lld unread)\n",
				(long long)json_integer_value(json_object_get(resp, "read_seq")), where,
				(long long)json_integer_value(json_object_get(resp, "unread")));
	}
done:
	json_decref(resp);
	session__cleanup(&s);
	return rc;
}

/* ---- edit, delete ---- */

int cmd_edit__run(struct options *opt, const struct cmd_args *a)
{
	char doing[MSGID_MAX_LEN + 16], nf[MSGID_MAX_LEN + 64];
	const struct rpc_say say = { .doing = doing, .not_found = nf };
	json_t *req, *resp = NULL;
	const char *ref;
	char *body;
	int rc;

	if(a->nargs < 2) return cmd__usage("edit");
	ref = a->args[0];
	if((rc = check_ref(ref))) return rc;
	if((body = join_words(a->args, 1, a->nargs)) == NULL) return EXIT_FAILED;
	if((rc = util__check_body(body, strlen(body)))){
		free(body);
		return rc;
	}
	snprintf(doing, sizeof(doing), "edit %s", ref);
	snprintf(nf, sizeof(nf), "you sent no message %s (or it was deleted)", ref);
	req = json_pack("{s:s, s:s, s:s}", "op", "edit", "ref", ref, "body", body);
	free(body);
	rc = cmd_rpc__op_once(opt, req, &resp, &say);
	json_decref(req);
	if(rc) return rc;
	if(opt->json) cmd_rpc__print_answer(resp);
	else printf("edited %s\n", ref);
	json_decref(resp);
	return EXIT_OK;
}

int cmd_delete__run(struct options *opt, const struct cmd_args *a)
{
	const char *room = cmdline__value(&a->vals, "room"), *of = cmdline__value(&a->vals, "of");
	char doing[MSGID_MAX_LEN + 2 * NAME_MAX_LEN + 32], nf[MSGID_MAX_LEN + 2 * NAME_MAX_LEN + 96];
	char forbidden[NAME_MAX_LEN + 64];
	const struct rpc_say say = { .doing = doing, .not_found = nf, .forbidden = forbidden };
	json_t *req, *resp = NULL;
	const char *ref;
	int rc;

	if(a->nargs < 1) return cmd__usage("delete");
	if((room == NULL) != (of == NULL)){
		util__error("--room and --of go together: delete --room ROOM --of USER REF deletes "
				"another member's message as the room's owner or an admin");
		return cmd__usage("delete");
	}
	ref = a->args[0];
	if((rc = check_ref(ref))) return rc;
	if(room && !names__valid_str(room)) return login__bad_name("room", room);
	if(of && !names__valid_str(of)) return login__bad_name("user", of);
	if(room){
		snprintf(doing, sizeof(doing), "delete %s's %s in #%s", of, ref, room);
		snprintf(nf, sizeof(nf), "%s sent no message %s in #%s (or it was deleted, or you "
				"are in no room %s)", of, ref, room, room);
		snprintf(forbidden, sizeof(forbidden), "you are not the owner or an admin of %s", room);
	}else{
		snprintf(doing, sizeof(doing), "delete %s", ref);
		snprintf(nf, sizeof(nf), "you sent no message %s (or it was deleted)", ref);
		snprintf(forbidden, sizeof(forbidden), "not yours to delete");
	}
	req = json_pack("{s:s, s:s}", "op", "delete", "ref", ref);
	if(req && room){
		json_object_set_new(req, "room", json_string(room));
		json_object_set_new(req, "of", json_string(of));
	}
	rc = cmd_rpc__op_once(opt, req, &resp, &say);
	json_decref(req);
	if(rc) return rc;
	if(opt->json) cmd_rpc__print_answer(resp);
	else if(room) printf("deleted %s's %s in #%s\n", of, ref, room);
	else printf("deleted %s\n", ref);
	json_decref(resp);
	return EXIT_OK;
}

/* ---- search ---- */

int cmd_search__run(struct options *opt, const struct cmd_args *a)
{
	const char *with = cmdline__value(&a->vals, "with"), *room = cmdline__value(&a->vals, "room");
	long long limit = cmdline__num(&a->vals, "limit", 20);
	long long before = cmdline__num(&a->vals, "before", -1);
	char forbidden[NAME_MAX_LEN + 32];
	const struct rpc_say say = { .doing = "search", .user = with, .room = room,
		.forbidden = forbidden };
	json_t *req, *resp = NULL, *msgs, *next;
	char *text;
	size_t i;
	int rc;

	if(a->nargs < 1) return cmd__usage("search");
	if(with && room){
		util__error("give --with or --room, not both");
		return cmd__usage("search");
	}
	if(with && !names__valid_str(with)) return login__bad_name("user", with);
	if(room && !names__valid_str(room)) return login__bad_name("room", room);
	snprintf(forbidden, sizeof(forbidden), "you are in no room %s", room ? room : "");
	if((text = join_words(a->args, 0, a->nargs)) == NULL) return EXIT_FAILED;
	if(!utf8__valid(text, strlen(text))){
		free(text);
		util__error("the search text is not valid UTF-8");
		return EXIT_USAGE;
	}
	req = json_pack("{s:s, s:s, s:I}", "op", "search", "text", text, "limit", (json_int_t)limit);
	free(text);
	if(req && before >= 0) json_object_set_new(req, "before", json_integer(before));
	if(req && with) json_object_set_new(req, "with", json_string(with));
	if(req && room) json_object_set_new(req, "room", json_string(room));
	rc = cmd_rpc__op_once(opt, req, &resp, &say);
	json_decref(req);
	if(rc) return rc;
	msgs = json_object_get(resp, "messages");
	/* Newest first, as found: a list of hits, not a conversation. */
	for(i=0; i<json_array_size(msgs); i++){
		feed__print_archived(json_array_get(msgs, i), opt->json, true, opt->user, NULL);
	}
	next = json_object_get(resp, "next");
	if(json_is_true(json_object_get(resp, "more")) && json_is_integer(next) && !opt->json){
		fprintf(stderr, "(more results: --before %lld)\n", (long long)json_integer_value(next));
	}
	json_decref(resp);
	return EXIT_OK;
}
