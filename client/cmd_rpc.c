/* cmd_rpc.c - the commands answered by the archiver over RPC: history,
 * sync, rooms, whois, profile, passwd (--logout-others), block, unblock,
 * blocked. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "envelope.h"
#include "feed.h"
#include "prompt.h"
#include "session.h"
#include "token.h"

/* ---- an op, and its failure in words ---- */

/* Say why the request on s failed with rc: an error answer by its code,
 * in words about what say names; anything else as the session put it. */
static void say_failure(const struct session *s, int rc, const struct rpc_say *say)
{
	const char *code = s->rpc_code, *room = say->room, *user = say->user;
	char w[400];

	if(!strcmp(code, "not_found") && say->not_found){
		snprintf(w, sizeof(w), "%s", say->not_found);
	}else if(!strcmp(code, "not_found") && room && user){
		snprintf(w, sizeof(w), "no such user %s, or you are in no room %s", user, room);
	}else if(!strcmp(code, "not_found") && room){
		snprintf(w, sizeof(w), "you are in no room %s", room);
	}else if(!strcmp(code, "not_found") && user){
		snprintf(w, sizeof(w), "no such user %s", user);
	}else if(!strcmp(code, "forbidden") && say->forbidden){
		snprintf(w, sizeof(w), "%s", say->forbidden);
	}else if(!strcmp(code, "too_late")){
		snprintf(w, sizeof(w), "it was sent longer ago than the server lets messages be "
				"changed (its edit window)");
	}else if(!strcmp(code, "exists")){
		snprintf(w, sizeof(w), "room %s exists already (or was deleted less than 30 days ago)",
				room ? room : "");
	}else if(!strcmp(code, "not_member")){
		snprintf(w, sizeof(w), "%s is not a member of %s", user ? user : "", room ? room : "");
	}else if(!strcmp(code, "too_many_rooms")){
		snprintf(w, sizeof(w), "you own as many rooms as the server allows");
	}else if(!strcmp(code, "room_full")){
		snprintf(w, sizeof(w), "%s has as many members as the server allows", room ? room : "");
	}else{
		cmd_rpc__words(s, rc, w, sizeof(w));
	}
	util__error("cannot %s: %s", say->doing, w);
}

void cmd_rpc__words(const struct session *s, int rc, char *w, size_t len)
{
	const char *code = s->rpc_code;

	if(!strcmp(code, "unknown_op")){
		snprintf(w, len, "the archiver does not offer it (a server older than this client)");
	}else if(!strcmp(code, "rate_limited")){
		long long tenths = ((long long)s->rpc_retry_ms + 99) / 100;
		snprintf(w, len, "the archiver is busy: retry in %lld.%lld s", tenths / 10, tenths % 10);
	}else if(!strcmp(code, "internal")){
		snprintf(w, len, "the archiver cannot do it now: retry later");
	}else if(s->rpc_error[0]){
		snprintf(w, len, "%s", s->rpc_error);
	}else if(rc == EXIT_TIMEOUT){
		snprintf(w, len, "no answer from the archiver within %d s (is it running?)",
				s->opt->timeout_s);
	}else{
		snprintf(w, len, "connection to the broker lost before the archiver answered");
	}
}

int cmd_rpc__op(struct session *s, json_t *req, json_t **resp, const struct rpc_say *say)
{
	int rc;

	*resp = NULL;
	if(req == NULL){
		util__error("out of memory");
		return EXIT_FAILED;
	}
	/* With say, the failure is said here, in words about the op. */
	s->silent = s->quiet = say != NULL;
	rc = session__rpc(s, req, resp);
	s->silent = s->quiet = false;
	if(rc && say) say_failure(s, rc, say);
	return rc;
}

/* Connect a one-shot session, send req (borrowed), return the answer;
 * failures said by the session. */
static int rpc_once(struct options *opt, json_t *req, json_t **resp)
{
	return cmd_rpc__op_once(opt, req, resp, NULL);
}

int cmd_rpc__op_once(struct options *opt, json_t *req, json_t **resp, const struct rpc_say *say)
{
	struct session s;
	int rc;

	*resp = NULL;
	if((rc = options__need_user(opt))) return rc;
	if((rc = session__init(&s, opt, SESSION_ONESHOT)) == EXIT_OK
			&& (rc = session__connect(&s)) == EXIT_OK){
		rc = cmd_rpc__op(&s, req, resp, say);
	}
	session__cleanup(&s);
	return rc;
}

/* Print an answer as one JSON line without the correlation fields. */
void cmd_rpc__print_answer(json_t *resp)
{
	char *line;

	json_object_del(resp, "id");
	line = json_dumps(resp, JSON_COMPACT | JSON_ENSURE_ASCII);
	if(line) printf("%s\n", line);
	free(line);
}

/* The flag every RPC command has: --json. */
#define OPT_JSON {"json", 0, CMDLINE_NO_ARG, 'j'}

/* Parse a command whose only option is --json, with at most max operands
 * (then in cl). Returns -1 to go on, else the exit code (help, error). */
static int json_only(struct options *opt, struct cmdline *cl, const char *name, int argc,
		char **argv, int max)
{
	static const struct cmdline_opt opts[] = {OPT_JSON, {0}};
	int c;

	cmd__options(cl, name, opts, argc, argv);
	while((c = cmdline__next(cl)) > 0) opt->json = true;
	if(c < 0) return cmd__options_end(cl, name, c);
	if(cl->nargs > max) return cmd__usage(name);
	return -1;
}

/* A command with only --json and no operand that asks {"op": name}: parse,
 * ask, and return -1 with the answer in *resp (new reference) to go on, else
 * the exit code (help, error; *resp NULL). */
static int ask_op(struct options *opt, const char *name, int argc, char **argv, json_t **resp)
{
	struct cmdline cl;
	json_t *req;
	int rc;

	*resp = NULL;
	if((rc = json_only(opt, &cl, name, argc, argv, 0)) >= 0) return rc;
	req = json_pack("{s:s}", "op", name);
	rc = rpc_once(opt, req, resp);
	json_decref(req);
	return rc ? rc : -1;
}

/* ---- history ---- */

int cmd_history__run(struct options *opt, const struct cmd_args *a)
{
	const char *with = NULL, *room = NULL, *v;
	long long limit = 20, before = -1;
	json_t *req, *resp = NULL, *msgs, *more;
	static const struct cmdline_opt opts[] = {
		{"room", 0, CMDLINE_REQUIRED, 'r'},
		{"limit", 0, CMDLINE_REQUIRED, 'l'},
		{"before", 0, CMDLINE_REQUIRED, 'b'},
		OPT_JSON,
		{0}};
	struct cmdline cl;
	size_t n, k;
	int c, rc;

	cmd__options(&cl, "history", opts, a->nargs, a->args);
	while((c = cmdline__next(&cl)) > 0){
		v = cl.value;
		if(c == 'j') opt->json = true;
		else if(c == 'r') room = v;
		else if(c == 'l' && (limit = util__number(v, 1, 100)) < 0){
			util__error("--limit: expected 1..100");
			return cmd__usage("history");
		}else if(c == 'b' && (before = util__number(v, 0, 9007199254740991LL)) < 0){
			util__error("--before: expected a sequence number");
			return cmd__usage("history");
		}
	}
	if(c < 0) return cmd__options_end(&cl, "history", c);
	if((rc = cmd__extra_args(&cl, "history", 1))) return rc;
	if(cl.nargs == 1 && room != NULL) return cmd__usage("history");
	if(cl.nargs == 1 && (rc = login__conv_operand(cl.args[0], &with, &room))) return rc;
	if(with == NULL && room == NULL) return cmd__usage("history");
	if(!names__valid_str(with ? with : room)){
		return login__bad_name(with ? "user" : "room", with ? with : room);
	}
	req = json_pack("{s:s, s:s, s:I}", "op", "history", with ? "with" : "room",
			with ? with : room, "limit", (json_int_t)limit);
	if(req && before >= 0) json_object_set_new(req, "before", json_integer(before));
	rc = rpc_once(opt, req, &resp);
	json_decref(req);
	if(rc) return rc;

	msgs = json_object_get(resp, "messages");
	more = json_object_get(resp, "more");
	n = json_array_size(msgs);
	/* Answers come newest first; a conversation reads oldest first. */
	for(k=n; k>0; k--){
		feed__print_archived(json_array_get(msgs, k - 1), opt->json, false, opt->user, msgs);
	}
	if(json_is_true(more) && n > 0 && !opt->json){
		json_int_t oldest = json_integer_value(json_object_get(json_array_get(msgs, n - 1), "seq"));
		fprintf(stderr, "(older messages: --before %lld)\n", (long long)oldest);
	}
	json_decref(resp);
	return EXIT_OK;
}

/* ---- sync ---- */

#define SYNC_PAGE 100

static long long load_seq(const struct options *opt)
{
	char path[4200], buf[32];
	FILE *fp;
	long long v = 0;

	if(options__state_path(opt, ".seq", path, sizeof(path), false) != 0) return 0;
	fp = fopen(path, "r");
	if(fp == NULL) return 0;
	if(fgets(buf, sizeof(buf), fp)){
		buf[strcspn(buf, "\r\n")] = '\0';
		v = util__number(buf, 0, 9007199254740991LL);
		if(v < 0) v = 0;
	}
	fclose(fp);
	return v;
}

/* Replace the state file atomically (write .new, rename). */
static int save_seq(const struct options *opt, long long seq)
{
	char path[4200], tmp[4300];
	FILE *fp;

	if(options__state_path(opt, ".seq", path, sizeof(path), true) != 0) goto fail;
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	fp = fopen(tmp, "w");
	if(fp == NULL) goto fail;
	fprintf(fp, "%lld\n", seq);
	if(fclose(fp) != 0 || rename(tmp, path) != 0) goto fail;
	return 0;
fail:
	fprintf(stderr, "warning: cannot save the sync position: %s\n", strerror(errno));
	return -1;
}

int cmd_sync__run(struct options *opt, const struct cmd_args *a)
{
	struct session s;
	long long after = -1, seq;
	const char *v;
	json_t *req, *resp, *msgs;
	static const struct cmdline_opt opts[] = {
		{"after", 0, CMDLINE_REQUIRED, 'a'},
		OPT_JSON,
		{0}};
	struct cmdline cl;
	size_t k;
	int c, rc, pages = 0;

	cmd__options(&cl, "sync", opts, a->nargs, a->args);
	while((c = cmdline__next(&cl)) > 0){
		v = cl.value;
		if(c == 'j') opt->json = true;
		else if(c == 'a' && (after = util__number(v, 0, 9007199254740991LL)) < 0){
			util__error("--after: expected a sequence number");
			return cmd__usage("sync");
		}
	}
	if(c < 0) return cmd__options_end(&cl, "sync", c);
	if((rc = cmd__extra_args(&cl, "sync", 0))) return rc;
	if((rc = options__need_user(opt))) return rc;
	seq = after >= 0 ? after : load_seq(opt);

	if((rc = session__init(&s, opt, SESSION_ONESHOT)) || (rc = session__connect(&s))) goto done;
	for(;;){
		long long last = seq;
		bool more;

		/* Pages of 100, not the contract's 500: an answer must fit the
		 * broker's payload limit (64 KiB by default) or it is dropped. */
		/* With the change rows: the edits, deletes and reactions are
		 * shown as lines of their own. */
		req = json_pack("{s:s, s:I, s:i, s:b}", "op", "sync", "after", (json_int_t)seq,
				"limit", SYNC_PAGE, "changes", 1);
		if(req == NULL){
			rc = EXIT_FAILED;
			break;
		}
		resp = NULL;
		rc = session__rpc(&s, req, &resp);
		json_decref(req);
		if(rc) break;
		msgs = json_object_get(resp, "messages");
		for(k=0; k<json_array_size(msgs); k++){
			json_t *msg = json_array_get(msgs, k);
			long long q = (long long)json_integer_value(json_object_get(msg, "seq"));
			feed__print_archived(msg, opt->json, true, opt->user, msgs);
			if(q > last) last = q;
		}
		more = json_is_true(json_object_get(resp, "more"));
		json_decref(resp);
		/* --after is a one-off look back: the remembered position is
		 * only moved by a plain sync. */
		if(last > seq && after < 0) save_seq(opt, last);
		/* Guard against an archiver that says "more" without progress. */
		if(!more || last <= seq || ++pages > 100000) break;
		seq = last;
	}
done:
	session__cleanup(&s);
	return rc;
}

/* ---- rooms ---- */

static json_t *name_list(json_t *arr)
{
	json_t *out = json_array(), *e;
	size_t i;

	json_array_foreach(arr, i, e){
		const char *n = json_string_value(e);
		if(n == NULL) n = json_string_value(json_object_get(e, "name"));
		if(n == NULL) n = json_string_value(json_object_get(e, "user"));
		if(n) json_array_append_new(out, json_string(n));
	}
	return out;
}

json_t *cmd_rooms__list(json_t *resp)
{
	json_t *out, *arr, *e, *r;
	const char *title, *role;
	size_t i;

	arr = json_object_get(resp, "rooms");
	out = json_array();
	if(out == NULL) return NULL;
	json_array_foreach(arr, i, e){
		const char *n = json_string_value(e);
		json_t *members = NULL;
		if(n == NULL){
			n = json_string_value(json_object_get(e, "name"));
			if(n == NULL) n = json_string_value(json_object_get(e, "room"));
			members = json_object_get(e, "members");
		}
		if(n == NULL || !names__valid_str(n)) continue;
		r = json_pack("{s:s, s:o}", "name", n, "members", name_list(members));
		/* Left out when they say nothing: no title, an ordinary member. */
		title = json_string_value(json_object_get(e, "title"));
		role = json_string_value(json_object_get(e, "role"));
		if(r && title && *title) json_object_set_new(r, "title", json_string(title));
		if(r && role && (!strcmp(role, "owner") || !strcmp(role, "admin"))) json_object_set_new(r, "role", json_string(role));
		json_array_append_new(out, r);
	}
	return out;
}

int cmd_rooms__run(struct options *opt, const struct cmd_args *a)
{
	json_t *resp = NULL, *rooms, *r, *mem;
	const char *title, *role;
	size_t i, k;
	int rc;

	if((rc = ask_op(opt, "rooms", a->nargs, a->args, &resp)) >= 0) return rc;
	rooms = cmd_rooms__list(resp);
	json_array_foreach(rooms, i, r){
		if(opt->json){
			char *line = json_dumps(r, JSON_COMPACT);
			if(line) printf("%s\n", line);
			free(line);
			continue;
		}
		title = json_string_value(json_object_get(r, "title"));
		role = json_string_value(json_object_get(r, "role"));
		printf("%s", json_string_value(json_object_get(r, "name")));
		if(title){
			printf(" \"");
			util__print_safe(stdout, title, strlen(title));
			printf("\"");
		}
		if(role) printf(" (%s)", role);
		printf(":");
		json_array_foreach(json_object_get(r, "members"), k, mem){
			printf(" %s", json_string_value(mem));
		}
		printf("\n");
	}
	json_decref(rooms);
	json_decref(resp);
	return EXIT_OK;
}

/* ---- whois, profile ---- */

/* A field of the answer, at the top level or inside "profile"/"user". */
static const char *field(json_t *resp, const char *key)
{
	const char *v = json_string_value(json_object_get(resp, key));

	if(v == NULL) v = json_string_value(json_object_get(json_object_get(resp, "profile"), key));
	if(v == NULL) v = json_string_value(json_object_get(json_object_get(resp, "user"), key));
	return v;
}

static void print_profile(json_t *resp, const char *name)
{
	const char *nick = field(resp, "nick"), *kind = field(resp, "kind");

	printf("%s:", name);
	if(nick){
		printf(" nick ");
		util__print_safe(stdout, nick, strlen(nick));
	}
	if(kind) printf("%s kind %s", nick ? "," : "", kind);
	printf("\n");
}

int cmd_whois__run(struct options *opt, const struct cmd_args *a)
{
	struct cmdline cl;
	const char *user = NULL;
	json_t *req, *resp = NULL;
	int rc;

	if((rc = json_only(opt, &cl, "whois", a->nargs, a->args, 1)) >= 0) return rc;
	if(cl.nargs == 0) return cmd__usage("whois");
	user = cl.args[0];
	if(!names__valid_str(user)) return login__bad_name("user", user);
	req = json_pack("{s:s, s:s}", "op", "whois", "user", user);
	rc = rpc_once(opt, req, &resp);
	json_decref(req);
	if(rc) return rc;
	if(opt->json) cmd_rpc__print_answer(resp);
	else print_profile(resp, user);
	json_decref(resp);
	return EXIT_OK;
}

int cmd_profile__run(struct options *opt, const struct cmd_args *a)
{
	const char *nick = NULL;
	char why[160];
	static const struct cmdline_opt opts[] = {
		{"nick", 0, CMDLINE_REQUIRED, 'n'},
		OPT_JSON,
		{0}};
	struct cmdline cl;
	json_t *req, *resp = NULL;
	int c, rc;

	cmd__options(&cl, "profile", opts, a->nargs, a->args);
	while((c = cmdline__next(&cl)) > 0){
		if(c == 'j') opt->json = true;
		else if(c == 'n') nick = cl.value;
	}
	if(c < 0) return cmd__options_end(&cl, "profile", c);
	if(cl.nargs > 0) return cmd__usage("profile");
	if(nick && !names__nick_valid(nick, strlen(nick), why, sizeof(why))){
		util__error("not a nickname: %s", why);
		return EXIT_USAGE;
	}
	req = json_pack("{s:s}", "op", "profile");
	if(req && nick) json_object_set_new(req, "nick", json_string(nick));
	rc = rpc_once(opt, req, &resp);
	json_decref(req);
	if(rc) return rc;
	if(opt->json) cmd_rpc__print_answer(resp);
	else print_profile(resp, opt->user);
	json_decref(resp);
	return EXIT_OK;
}

/* ---- passwd ---- */

/* One non-empty line of stdin that fits in buf: 0, else -1. */
static int read_stdin_line(char *buf, size_t len)
{
	ssize_t n = prompt__read_line(STDIN_FILENO, buf, len);

	return n > 0 && (size_t)n < len ? 0 : -1;
}

/* Send the passwd request req over a one-shot session. With --logout-others
 * (renew: the new password) the server kept only this device's persistent
 * token, so the one-shot commands' token, if this installation had one,
 * is asked for again with the new password (a failure only warns). */
static int passwd_once(struct options *opt, json_t *req, json_t **resp, const char *renew)
{
	char dev[DEVICE_MAX_LEN + 1], why[300];
	struct session s;
	int rc;

	*resp = NULL;
	if(req == NULL){
		util__error("out of memory");
		return EXIT_FAILED;
	}
	if((rc = session__init(&s, opt, SESSION_ONESHOT)) == EXIT_OK
			&& (rc = session__connect(&s)) == EXIT_OK){
		rc = session__rpc(&s, req, resp);
	}
	token__oneshot_device(opt->device, dev);
	if(rc == EXIT_OK && renew && token__forget(opt, dev)
			&& token__request(&s, dev, renew, why, sizeof(why)) != EXIT_OK){
		fprintf(stderr, "warning: no new device token for %s@%s: %s; the password will be "
				"needed next time\n", opt->user, dev, why);
	}
	session__cleanup(&s);
	return rc;
}

int cmd_passwd__run(struct options *opt, const struct cmd_args *a)
{
	char old[1024], new1[1024], new2[1024];
	bool from_stdin = false, others = false;
	static const struct cmdline_opt opts[] = {
		{"password-stdin", 0, CMDLINE_NO_ARG, 'p'},
		{"logout-others", 0, CMDLINE_NO_ARG, 'o'},
		OPT_JSON,
		{0}};
	struct cmdline cl;
	json_t *req = NULL, *resp = NULL;
	int c, rc = EXIT_USAGE;

	cmd__options(&cl, "passwd", opts, a->nargs, a->args);
	while((c = cmdline__next(&cl)) > 0){
		if(c == 'j') opt->json = true;
		else if(c == 'p') from_stdin = true;
		else if(c == 'o') others = true;
	}
	if(c < 0) return cmd__options_end(&cl, "passwd", c);
	if(cl.nargs > 0) return cmd__usage("passwd");
	if((rc = options__need_user(opt))) return rc;
	rc = EXIT_USAGE;
	if(from_stdin){
		if(read_stdin_line(old, sizeof(old)) || read_stdin_line(new1, sizeof(new1))){
			util__error("expected two lines on stdin: the old and the new password");
			goto out;
		}
	}else{
		int p = options__prompt("Old password: ", old, sizeof(old));
		if(p == EXIT_OK) p = options__prompt("New password: ", new1, sizeof(new1));
		if(p == EXIT_OK) p = options__prompt("New password again: ", new2, sizeof(new2));
		if(p != EXIT_OK){
			/* Too long was said already. */
			if(p != EXIT_USAGE) util__error("no terminal for the password prompts (use --password-stdin)");
			goto out;
		}
		if(strcmp(new1, new2) != 0){
			util__error("the new passwords differ");
			goto out;
		}
	}
	if(old[0] == '\0' || new1[0] == '\0'){
		util__error("empty password");
		goto out;
	}
	/* Connect with the old password unless another source was given. */
	if(opt->password_file == NULL && !(getenv("MQCHAT_PASSWORD") && *getenv("MQCHAT_PASSWORD"))){
		opt->password = strdup(old);
		if(opt->password == NULL){
			rc = EXIT_FAILED;
			goto out;
		}
	}
	req = json_pack("{s:s, s:s, s:s}", "op", "passwd", "old", old, "new", new1);
	if(req && others){
		json_object_set_new(req, "revoke_devices", json_string("others"));
		json_object_set_new(req, "device", json_string(opt->device));
	}
	rc = passwd_once(opt, req, &resp, others ? new1 : NULL);
	if(rc == EXIT_OK && others){
		printf("password changed; %lld device token%s revoked (this device's one-shot commands "
				"get a new one)\n", (long long)json_integer_value(json_object_get(resp, "revoked")),
				json_integer_value(json_object_get(resp, "revoked")) == 1 ? "" : "s");
	}else if(rc == EXIT_OK){
		printf("password changed\n");
	}
out:
	explicit_bzero(old, sizeof(old));
	explicit_bzero(new1, sizeof(new1));
	explicit_bzero(new2, sizeof(new2));
	if(req){
		json_object_del(req, "old");
		json_object_del(req, "new");
	}
	json_decref(req);
	json_decref(resp);
	return rc;
}

/* ---- block, unblock, blocked ---- */

static int block_op(struct options *opt, int argc, char **argv, const char *op)
{
	static const struct cmdline_opt opts[] = {{0}};
	struct cmdline cl;
	json_t *req, *resp = NULL;
	const char *user;
	int c, rc;

	cmd__options(&cl, op, opts, argc, argv);
	c = cmdline__next(&cl);
	if(c < 0) return cmd__options_end(&cl, op, c);
	if(cl.nargs != 1) return cmd__usage(op);
	user = cl.args[0];
	if(!names__valid_str(user)) return login__bad_name("user", user);
	req = json_pack("{s:s, s:s}", "op", op, "user", user);
	rc = rpc_once(opt, req, &resp);
	json_decref(req);
	if(rc) return rc;
	printf("%sed %s\n", op, user);
	json_decref(resp);
	return EXIT_OK;
}

int cmd_block__run(struct options *opt, const struct cmd_args *a)
{
	return block_op(opt, a->nargs, a->args, "block");
}

int cmd_unblock__run(struct options *opt, const struct cmd_args *a)
{
	return block_op(opt, a->nargs, a->args, "unblock");
}

int cmd_blocked__run(struct options *opt, const struct cmd_args *a)
{
	json_t *resp = NULL, *list, *e;
	size_t i;
	int rc;

	if((rc = ask_op(opt, "blocked", a->nargs, a->args, &resp)) >= 0) return rc;
	if(opt->json){
		cmd_rpc__print_answer(resp);
	}else{
		e = json_object_get(resp, "blocked");
		list = name_list(e ? e : json_object_get(resp, "users"));
		json_array_foreach(list, i, e) printf("%s\n", json_string_value(e));
		json_decref(list);
	}
	json_decref(resp);
	return EXIT_OK;
}
