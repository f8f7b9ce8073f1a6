/* cmd_push.c - push notifications and muted conversations (docs/PROTOCOL.md,
 * "Push notifications"; docs/PUSH.md): push webhook, push list, push
 * remove, push previews, mute, unmute, mutes.
 *
 * This client stays connected only while it runs, so the push target it
 * registers is a webhook: a URL the archiver POSTs each notification to,
 * signed with a secret shown once. Phones and browsers register FCM, APNs
 * and Web Push targets themselves. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "session.h"

/* The archiver refuses longer URLs (bad_request). */
#define PUSH_URL_MAX 2048

/* ---- an op, and its failure in words ---- */

/* What a push op is about, for the words of its failure. */
struct push_say {
	const char *doing;      /* "register the webhook": "cannot register the webhook: ..." */
	const char *provider;   /* for not_configured: "webhook" */
	const char *not_found;  /* what not_found means here, or NULL */
	const char *hint;       /* added to a bad_request, or NULL */
};

/* Say why the request on s failed with rc: the codes of push ops in
 * words here, the others in cmd_rpc.c's (cmd_rpc__words). */
static void say_failure(const struct session *s, int rc, const struct push_say *say)
{
	const char *code = s->rpc_code;
	char w[400];

	if(!strcmp(code, "not_configured")){
		snprintf(w, sizeof(w), "the server has no %s push set up (its operator turns it on: "
				"docs/PUSH.md)", say->provider ? say->provider : "such");
	}else if(!strcmp(code, "too_many_devices")){
		snprintf(w, sizeof(w), "you have as many push targets as the server allows: remove one "
				"with `mqchat push remove DEVICE` (see `mqchat push list`)");
	}else if(!strcmp(code, "not_found") && say->not_found){
		snprintf(w, sizeof(w), "%s", say->not_found);
	}else if(!strcmp(code, "bad_request")){
		snprintf(w, sizeof(w), "%s%s", s->rpc_error, say->hint ? say->hint : "");
	}else{
		cmd_rpc__words(s, rc, w, sizeof(w));
	}
	util__error("cannot %s: %s", say->doing, w);
}

/* Send req (borrowed; NULL: out of memory) on the connected session s and
 * wait for the answer: EXIT_OK with *resp a new reference, else the exit
 * code after one line on stderr (say). */
static int op_on(struct session *s, json_t *req, json_t **resp, const struct push_say *say)
{
	int rc;

	*resp = NULL;
	if(req == NULL){
		util__error("out of memory");
		return EXIT_FAILED;
	}
	s->silent = s->quiet = true;
	rc = session__rpc(s, req, resp);
	s->silent = s->quiet = false;
	if(rc) say_failure(s, rc, say);
	return rc;
}

/* Connect a one-shot session s (cleaned up by the caller either way;
 * opt->user checked). */
static int connect_once(struct options *opt, struct session *s)
{
	int rc;

	if((rc = session__init(s, opt, SESSION_ONESHOT))) return rc;
	return session__connect(s);
}

/* op_on on a one-shot session of its own. */
static int push_op(struct options *opt, json_t *req, json_t **resp, const struct push_say *say)
{
	struct session s;
	int rc;

	*resp = NULL;
	if((rc = options__need_user(opt))) return rc;
	if((rc = connect_once(opt, &s)) == EXIT_OK) rc = op_on(&s, req, resp, say);
	session__cleanup(&s);
	return rc;
}

/* Print each object of the array arr (borrowed) as one JSON line. */
static void print_lines(json_t *arr)
{
	json_t *e;
	size_t i;
	char *line;

	json_array_foreach(arr, i, e){
		line = json_dumps(e, JSON_COMPACT | JSON_ENSURE_ASCII);
		if(line) printf("%s\n", line);
		free(line);
	}
}

/* Parse a subcommand's options (only --json) and at most max operands
 * into cl. -1 to go on, else the exit code (help, error). */
static int sub_options(struct options *opt, struct cmdline *cl, const char *path, int argc,
		char **argv, int min, int max)
{
	static const struct cmdline_opt opts[] = {{"json", 0, CMDLINE_NO_ARG, 'j'}, {0}};
	int c, rc;

	cmd__options(cl, path, opts, argc, argv);
	while((c = cmdline__next(cl)) > 0) opt->json = true;
	if(c < 0) return cmd__options_end(cl, path, c);
	if((rc = cmd__extra_args(cl, path, max))) return rc;
	if(cl->nargs < min) return cmd__usage(path);
	return -1;
}

/* ---- push webhook URL ---- */

/* NULL if url may be a webhook (http:// or https://, a host, no spaces or
 * control characters, at most PUSH_URL_MAX bytes); else what is wrong.
 * Whether http:// is allowed is the server's to say. */
static const char *url_problem(const char *url)
{
	const char *host;
	const unsigned char *p;

	if(strlen(url) > PUSH_URL_MAX) return "longer than 2,048 bytes";
	if(!strncmp(url, "https://", 8)) host = url + 8;
	else if(!strncmp(url, "http://", 7)) host = url + 7;
	else return "expected an https:// URL";
	if(*host == '\0' || *host == '/' || *host == ':' || *host == '?' || *host == '#'){
		return "no host after the scheme";
	}
	for(p = (const unsigned char *)url; *p; p++){
		if(*p <= 0x20 || *p == 0x7f) return "a space or control character in it";
	}
	return NULL;
}

static int webhook(struct options *opt, int argc, char **argv)
{
	struct push_say say = { .doing = "register the webhook", .provider = "webhook" };
	struct cmdline cl;
	json_t *req, *resp = NULL;
	const char *url, *why, *secret;
	char q[120];
	int rc;

	if((rc = sub_options(opt, &cl, "push webhook", argc, argv, 1, 1)) >= 0) return rc;
	url = cl.args[0];
	if((why = url_problem(url)) != NULL){
		util__error("invalid webhook URL '%s': %s", log_escape(url, strlen(url), q, sizeof(q)), why);
		return EXIT_USAGE;
	}
	if(!strncmp(url, "http://", 7)){
		say.hint = " (this server takes https:// URLs only)";
	}
	req = json_pack("{s:s, s:s, s:s, s:s}", "op", "push_register", "device", opt->device,
			"provider", "webhook", "url", url);
	rc = push_op(opt, req, &resp, &say);
	json_decref(req);
	if(rc) return rc;
	secret = json_string_value(json_object_get(resp, "secret"));
	if(opt->json){
		cmd_rpc__print_answer(resp);
	}else{
		printf("webhook of device %s registered: %s\n", opt->device, url);
		printf("secret: %s\n", secret ? secret : "(none: the server sent no secret)");
		printf("Keep the secret: it is shown only now. Each notification is a POST of JSON with the\n"
				"headers X-Mqchat-Timestamp and X-Mqchat-Signature: sha256=<hex>, where <hex> is the\n"
				"HMAC-SHA256, with the secret as the key, of \"<X-Mqchat-Timestamp>.<body>\"\n"
				"(docs/PUSH.md).\n");
	}
	json_decref(resp);
	return EXIT_OK;
}

/* ---- push list ---- */

static int list(struct options *opt, int argc, char **argv)
{
	const struct push_say say = { .doing = "list your push targets" };
	struct cmdline cl;
	json_t *req, *resp = NULL, *targets, *t;
	char since[32], ok[32];
	size_t i;
	int rc;

	if((rc = sub_options(opt, &cl, "push list", argc, argv, 0, 0)) >= 0) return rc;
	req = json_pack("{s:s}", "op", "push_targets");
	rc = push_op(opt, req, &resp, &say);
	json_decref(req);
	if(rc) return rc;
	targets = json_object_get(resp, "targets");
	if(opt->json){
		print_lines(targets);
		json_decref(resp);
		return EXIT_OK;
	}
	if(json_array_size(targets) == 0) printf("no push targets\n");
	/* "phone: webpush, since 2026-12-05 08:01:10, last delivered ..., 2 failures" */
	json_array_foreach(targets, i, t){
		const char *dev = json_string_value(json_object_get(t, "device"));
		const char *prov = json_string_value(json_object_get(t, "provider"));
		int64_t created = json_integer_value(json_object_get(t, "created"));
		int64_t last_ok = json_integer_value(json_object_get(t, "last_ok"));
		json_int_t failures = json_integer_value(json_object_get(t, "failures"));

		if(dev == NULL || !names__valid_device(dev, strlen(dev))) continue;
		util__fmt_time(created, true, since, sizeof(since));
		if(last_ok > 0) util__fmt_time(last_ok, true, ok, sizeof(ok));
		printf("%s: %s, since %s, %s%s", dev, prov && names__valid_str(prov) ? prov : "?", since,
				last_ok > 0 ? "last delivered " : "nothing delivered yet", last_ok > 0 ? ok : "");
		if(failures > 0) printf(", %lld failure%s", (long long)failures, failures == 1 ? "" : "s");
		printf("%s\n", !strcmp(dev, opt->device) ? " (this device)" : "");
	}
	json_decref(resp);
	return EXIT_OK;
}

/* ---- push remove [DEVICE] ---- */

static int remove_target(struct options *opt, int argc, char **argv)
{
	char doing[120], nf[160], why[96];
	struct push_say say = { .doing = doing, .not_found = nf };
	struct cmdline cl;
	json_t *req, *resp = NULL;
	const char *device;
	json_int_t removed;
	int rc;

	if((rc = sub_options(opt, &cl, "push remove", argc, argv, 0, 1)) >= 0) return rc;
	device = cl.nargs ? cl.args[0] : opt->device;
	if(!names__valid_device(device, strlen(device))){
		util__error("invalid device name '%s': %s", device,
				login__device_problem(device, why, sizeof(why)));
		return EXIT_USAGE;
	}
	snprintf(doing, sizeof(doing), "remove the push target of %s", device);
	snprintf(nf, sizeof(nf), "device %s has no push target (see `mqchat push list`)", device);
	req = json_pack("{s:s, s:s}", "op", "push_unregister", "device", device);
	rc = push_op(opt, req, &resp, &say);
	json_decref(req);
	if(rc) return rc;
	removed = json_integer_value(json_object_get(resp, "removed"));
	if(opt->json){
		cmd_rpc__print_answer(resp);
	}else if(removed > 0){
		printf("push target of %s removed: it gets no more notifications\n", device);
	}
	json_decref(resp);
	if(removed > 0) return EXIT_OK;
	if(!opt->json) util__error("cannot %s: %s", doing, nf);
	return EXIT_FAILED;
}

/* ---- push previews [on|off] ---- */

static int previews(struct options *opt, int argc, char **argv)
{
	struct push_say say = { .doing = "show the preview setting" };
	struct cmdline cl;
	json_t *req, *resp = NULL, *v;
	const char *want = NULL;
	char q[80];
	int rc;

	if((rc = sub_options(opt, &cl, "push previews", argc, argv, 0, 1)) >= 0) return rc;
	if(cl.nargs){
		want = cl.args[0];
		if(strcmp(want, "on") != 0 && strcmp(want, "off") != 0){
			util__error("push previews: expected on or off, not '%s'",
					log_escape(want, strlen(want), q, sizeof(q)));
			return cmd__usage("push previews");
		}
		say.doing = "change the preview setting";
	}
	req = json_pack("{s:s}", "op", "push_settings");
	if(req && want) json_object_set_new(req, "previews", json_boolean(!strcmp(want, "on")));
	rc = push_op(opt, req, &resp, &say);
	json_decref(req);
	if(rc) return rc;
	v = json_object_get(resp, "previews");
	if(opt->json){
		cmd_rpc__print_answer(resp);
	}else if(json_is_true(v)){
		printf("previews: on (notifications carry the first 200 characters of a text)\n");
	}else{
		printf("previews: off (notifications say who wrote, never what)\n");
	}
	json_decref(resp);
	return EXIT_OK;
}

/* The subcommands of push. */
static const struct {
	const char *name;
	int (*run)(struct options *opt, int argc, char **argv);
} push_cmds[] = {
	{"webhook", webhook},
	{"list", list},
	{"remove", remove_target},
	{"previews", previews},
};

int cmd_push__run(struct options *opt, const struct cmd_args *a)
{
	const char *word = a->nargs > 1 ? a->args[1] : "";
	char q[80];
	size_t i;

	if(!strcmp(word, "--help") || !strcmp(word, "-h") || !strcmp(word, "help")){
		return cmd__help("push");
	}
	if(a->nargs < 2){
		util__error("missing command after push");
		return cmd__usage("push");
	}
	for(i=0; i<sizeof(push_cmds) / sizeof(push_cmds[0]); i++){
		if(!strcmp(word, push_cmds[i].name)) return push_cmds[i].run(opt, a->nargs - 1, a->args + 1);
	}
	util__error("unknown %s '%s%s' (see `mqchat push --help`)",
			word[0] == '-' ? "option" : "command", word[0] == '-' ? "" : "push ",
			log_escape(word, strlen(word), q, sizeof(q)));
	return EXIT_USAGE;
}

/* ---- mute, unmute, mutes ---- */

/* The conversation operand of mute and unmute, with what not_found means
 * for it. EXIT_OK, or EXIT_USAGE said. */
static int conv_operand(const char *arg, const char **with, const char **room, char *nf,
		size_t nflen)
{
	int rc;

	if((rc = login__conv_operand(arg, with, room))) return rc;
	if(*room) snprintf(nf, nflen, "you are in no room %s", *room);
	else snprintf(nf, nflen, "no such user %s", *with);
	return EXIT_OK;
}

/* Am I in room? Asks `rooms` on s: 1 yes, 0 no (said as say's not_found),
 * or an exit code (said). The archiver mutes any name it is given: a room
 * I am not in would be a mute of nothing, and most likely a typo. */
static int check_room(struct session *s, const char *room, const struct push_say *say)
{
	json_t *req = json_pack("{s:s}", "op", "rooms"), *resp = NULL, *list, *e;
	size_t i;
	int rc, in = 0;

	rc = op_on(s, req, &resp, say);
	json_decref(req);
	if(rc) return rc;
	list = cmd_rooms__list(resp);
	json_decref(resp);
	json_array_foreach(list, i, e){
		const char *name = json_string_value(json_object_get(e, "name"));
		if(name && !strcmp(name, room)) in = 1;
	}
	json_decref(list);
	if(!in) util__error("cannot %s: %s", say->doing, say->not_found);
	return in ? EXIT_OK : EXIT_FAILED;
}

int cmd_mute__run(struct options *opt, const struct cmd_args *a)
{
	const char *v = cmdline__value(&a->vals, "for"), *with, *room;
	char doing[120], nf[120], dur[40], until_s[32], q[80];
	struct push_say say = { .doing = doing, .not_found = nf };
	struct session s;
	json_t *req, *resp = NULL;
	long long for_s = 0;
	int64_t until;
	int rc;

	if(a->nargs != 1) return cmd__usage("mute");
	if(v && (for_s = util__duration(v)) < 0){
		util__error("--for: expected a duration like 30m, 8h, 2d or seconds (at most 365 days), "
				"not '%s'", log_escape(v, strlen(v), q, sizeof(q)));
		return cmd__usage("mute");
	}
	if((rc = conv_operand(a->args[0], &with, &room, nf, sizeof(nf)))) return rc;
	snprintf(doing, sizeof(doing), "mute %s%s", room ? "#" : "", room ? room : with);
	req = json_pack("{s:s, s:s}", "op", "mute", room ? "room" : "with", room ? room : with);
	if(req && for_s > 0) json_object_set_new(req, "for_s", json_integer(for_s));
	if((rc = options__need_user(opt))){
		json_decref(req);
		return rc;
	}
	if((rc = connect_once(opt, &s)) == EXIT_OK
			&& (room == NULL || (rc = check_room(&s, room, &say)) == EXIT_OK)){
		rc = op_on(&s, req, &resp, &say);
	}
	session__cleanup(&s);
	json_decref(req);
	if(rc) return rc;
	until = json_integer_value(json_object_get(resp, "until"));
	if(opt->json){
		cmd_rpc__print_answer(resp);
	}else if(until > 0){
		util__fmt_time(until, true, until_s, sizeof(until_s));
		printf("muted %s for %s (until %s): no notifications from it\n", doing + 5,
				util__say_duration(for_s, dur, sizeof(dur)), until_s);
	}else{
		printf("muted %s until you unmute it: no notifications from it\n", doing + 5);
	}
	json_decref(resp);
	return EXIT_OK;
}

int cmd_unmute__run(struct options *opt, const struct cmd_args *a)
{
	const char *with, *room;
	char doing[120], nf[120];
	struct push_say say = { .doing = doing, .not_found = nf };
	json_t *req, *resp = NULL;
	int rc;

	if(a->nargs != 1) return cmd__usage("unmute");
	if((rc = conv_operand(a->args[0], &with, &room, nf, sizeof(nf)))) return rc;
	snprintf(doing, sizeof(doing), "unmute %s%s", room ? "#" : "", room ? room : with);
	req = json_pack("{s:s, s:s}", "op", "unmute", room ? "room" : "with", room ? room : with);
	rc = push_op(opt, req, &resp, &say);
	json_decref(req);
	if(rc) return rc;
	if(opt->json) cmd_rpc__print_answer(resp);
	else printf("unmuted %s\n", doing + 7);
	json_decref(resp);
	return EXIT_OK;
}

int cmd_mutes__run(struct options *opt, const struct cmd_args *a)
{
	const struct push_say say = { .doing = "list your muted conversations" };
	json_t *req, *resp = NULL, *mutes, *m;
	char when[32];
	size_t i;
	int rc;

	(void)a;   /* --json only (main.c parsed it) */
	req = json_pack("{s:s}", "op", "mutes");
	rc = push_op(opt, req, &resp, &say);
	json_decref(req);
	if(rc) return rc;
	mutes = json_object_get(resp, "mutes");
	if(opt->json){
		print_lines(mutes);
		json_decref(resp);
		return EXIT_OK;
	}
	if(json_array_size(mutes) == 0) printf("no muted conversations\n");
	/* "bob (until 2026-12-05 17:00:00)", "#lobby (until you unmute it)" */
	json_array_foreach(mutes, i, m){
		const char *with = json_string_value(json_object_get(m, "with"));
		const char *room = json_string_value(json_object_get(m, "room"));
		int64_t until = json_integer_value(json_object_get(m, "until"));
		const char *name = room ? room : with;

		if(name == NULL || !names__valid_str(name)) continue;
		if(until > 0) util__fmt_time(until, true, when, sizeof(when));
		printf("%s%s (%s%s)\n", room ? "#" : "", name, until > 0 ? "until " : "until you unmute it",
				until > 0 ? when : "");
	}
	json_decref(resp);
	return EXIT_OK;
}
