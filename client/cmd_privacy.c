/* cmd_privacy.c - who sees my presence and who may add me to a room
 * (docs/PROTOCOL.md, "Privacy: presence, contacts and room adds"):
 * privacy, contacts, contacts add, contacts remove. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "session.h"
#include "userdb.h"

/* A --presence or --room-adds value: EXIT_OK, or EXIT_USAGE said. */
static int check_level(const char *flag, const char *v)
{
	enum privacy_level level;
	char q[80];

	if(privacy__parse(v, &level)) return EXIT_OK;
	util__error("%s: expected everyone, contacts or nobody, not '%s'", flag,
			log_escape(v, strlen(v), q, sizeof(q)));
	return cmd__usage("privacy");
}

int cmd_privacy__run(struct options *opt, const struct cmd_args *a)
{
	struct rpc_say say = { .doing = "show the privacy settings" };
	const char *presence = cmdline__value(&a->vals, "presence");
	const char *room_adds = cmdline__value(&a->vals, "room-adds");
	json_t *req, *resp = NULL;
	int rc;

	if((presence && (rc = check_level("--presence", presence)))
			|| (room_adds && (rc = check_level("--room-adds", room_adds)))){
		return rc;
	}
	if(presence || room_adds) say.doing = "change the privacy settings";
	req = json_pack("{s:s}", "op", "privacy");
	if(req && presence) json_object_set_new(req, "presence", json_string(presence));
	if(req && room_adds) json_object_set_new(req, "room_adds", json_string(room_adds));
	rc = cmd_rpc__op_once(opt, req, &resp, &say);
	json_decref(req);
	if(rc) return rc;
	if(opt->json){
		cmd_rpc__print_answer(resp);
	}else{
		/* The archiver's words are the flags' words: no escaping needed
		 * once they parse. */
		enum privacy_level p, r;
		const char *pv = json_string_value(json_object_get(resp, "presence"));
		const char *rv = json_string_value(json_object_get(resp, "room_adds"));
		printf("presence: %s\nroom adds: %s\n", pv && privacy__parse(pv, &p) ? pv : "?",
				rv && privacy__parse(rv, &r) ? rv : "?");
	}
	json_decref(resp);
	return EXIT_OK;
}

/* contacts add USER, contacts remove USER (argv[0] the subcommand word). */
static int contact_change(struct options *opt, bool add, int argc, char **argv)
{
	static const struct cmdline_opt none[] = {{0}};
	const char *path = add ? "contacts add" : "contacts remove", *user;
	char doing[80];
	struct rpc_say say = { .doing = doing };
	struct cmdline cl;
	json_t *req, *resp = NULL;
	int c, rc;

	cmd__options(&cl, path, none, argc, argv);
	c = cmdline__next(&cl);
	if(c < 0) return cmd__options_end(&cl, path, c);
	if(cl.nargs < 1) return cmd__usage(path);
	if((rc = cmd__extra_args(&cl, path, 1))) return rc;
	user = cl.args[0];
	if(!names__valid_str(user)) return login__bad_name("user", user);
	say.user = user;
	snprintf(doing, sizeof(doing), "%s %s %s your contacts", add ? "add" : "remove", user,
			add ? "to" : "from");
	req = json_pack("{s:s, s:s}", "op", add ? "contact_add" : "contact_remove", "user", user);
	rc = cmd_rpc__op_once(opt, req, &resp, &say);
	json_decref(req);
	if(rc) return rc;
	printf("%s %s your contacts\n", user, add ? "added to" : "removed from");
	json_decref(resp);
	return EXIT_OK;
}

int cmd_contacts__run(struct options *opt, const struct cmd_args *a)
{
	static const struct cmdline_opt opts[] = {{"json", 0, CMDLINE_NO_ARG, 'j'}, {0}};
	const struct rpc_say say = { .doing = "list your contacts" };
	struct cmdline cl;
	json_t *req, *resp = NULL, *e;
	const char *user;
	char when[32], *line;
	size_t i;
	int c, rc;

	if(a->nargs > 1 && (!strcmp(a->args[1], "add") || !strcmp(a->args[1], "remove"))){
		return contact_change(opt, !strcmp(a->args[1], "add"), a->nargs - 1, a->args + 1);
	}
	cmd__options(&cl, "contacts", opts, a->nargs, a->args);
	while((c = cmdline__next(&cl)) > 0) opt->json = true;
	if(c < 0) return cmd__options_end(&cl, "contacts", c);
	if((rc = cmd__extra_args(&cl, "contacts", 0))) return rc;
	req = json_pack("{s:s}", "op", "contacts");
	rc = cmd_rpc__op_once(opt, req, &resp, &say);
	json_decref(req);
	if(rc) return rc;
	/* One line each: "bob (since 2026-12-04 23:01:10)", or its object. */
	json_array_foreach(json_object_get(resp, "contacts"), i, e){
		user = json_string_value(json_object_get(e, "user"));
		if(user == NULL || !names__valid_str(user)) continue;
		if(opt->json){
			line = json_dumps(e, JSON_COMPACT | JSON_ENSURE_ASCII);
			if(line) printf("%s\n", line);
			free(line);
			continue;
		}
		util__fmt_time(json_integer_value(json_object_get(e, "since")), true, when,
				sizeof(when));
		printf("%s (since %s)\n", user, when);
	}
	json_decref(resp);
	return EXIT_OK;
}
