/* cmd_room.c - rooms run by their members (docs/PROTOCOL.md, "Rooms run by
 * their members"): room create, add, remove, promote, demote, set, leave,
 * delete, info. One table says what each one asks and prints; every op
 * goes through cmd_rpc__op, which says a failure in words. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "session.h"

/* How many USER operands follow ROOM. */
enum room_users { USERS_NONE, USERS_ONE, USERS_MANY };

/* What a room subcommand asks, and the words of its outcome: on success
 * "[USER]<done_mid>ROOM<done_end>", on failure "cannot <verb>
 * [USER<prep>]ROOM: ...". */
struct room_cmd {
	const char *name;
	const char *op;
	enum room_users users;
	bool texts;             /* --title, --description */
	const char *verb, *prep;
	const char *done_mid, *done_end;
	const char *forbidden;  /* what the answer `forbidden` means */
};

#define NOT_ADMIN "you are not the room's owner or an admin"

static const struct room_cmd room_cmds[] = {
	{ .name = "create", .op = "room_create", .texts = true, .verb = "create room",
		.done_mid = "room ", .done_end = " created",
		.forbidden = "the operator does not let people create rooms" },
	{ .name = "add", .op = "room_add", .users = USERS_MANY, .verb = "add", .prep = " to ",
		.done_mid = " added to ",
		.forbidden = NOT_ADMIN ", or they do not let you add them (they may add you as a "
			"contact, or set room adds to everyone)" },
	{ .name = "remove", .op = "room_remove", .users = USERS_MANY, .verb = "remove",
		.prep = " from ", .done_mid = " removed from ",
		.forbidden = NOT_ADMIN ", or they own it (an owner cannot be removed)" },
	{ .name = "promote", .op = "room_promote", .users = USERS_ONE, .verb = "promote",
		.prep = " in ", .done_mid = " is now an admin of ", .forbidden = NOT_ADMIN },
	{ .name = "demote", .op = "room_demote", .users = USERS_ONE, .verb = "demote",
		.prep = " in ", .done_mid = " is now a member of ",
		.forbidden = NOT_ADMIN ", or they own it (an owner cannot be demoted)" },
	{ .name = "set", .op = "room_set", .texts = true, .verb = "change room",
		.done_mid = "room ", .done_end = " changed", .forbidden = NOT_ADMIN },
	{ .name = "leave", .op = "room_leave", .verb = "leave", .done_mid = "you left " },
	{ .name = "delete", .op = "room_delete", .verb = "delete room", .done_mid = "room ",
		.done_end = " deleted", .forbidden = NOT_ADMIN },
	{ .name = "info", .op = "room_info", .verb = "show room" },
};

#define NROOM_CMDS (sizeof(room_cmds) / sizeof(room_cmds[0]))

/* The answer of room_info about room, as lines of "key: value". */
static void print_info(const char *room, json_t *resp)
{
	const char *keys[] = {"title", "description", "owner"};
	json_t *e;
	const char *v, *role;
	char when[32];
	size_t i;

	printf("room: %s\n", room);
	for(i=0; i<sizeof(keys) / sizeof(keys[0]); i++){
		v = json_string_value(json_object_get(resp, keys[i]));
		if(v == NULL || *v == '\0') continue;
		printf("%s: ", keys[i]);
		util__print_safe(stdout, v, strlen(v));
		printf("\n");
	}
	if(json_integer_value(json_object_get(resp, "created")) > 0){
		util__fmt_time(json_integer_value(json_object_get(resp, "created")), true, when,
				sizeof(when));
		printf("created: %s\n", when);
	}
	printf("members:");
	json_array_foreach(json_object_get(resp, "members"), i, e){
		v = json_string_value(json_object_get(e, "user"));
		role = json_string_value(json_object_get(e, "role"));
		if(v == NULL || !names__valid_str(v)) continue;
		printf("%s %s", i ? "," : "", v);
		if(role && (!strcmp(role, "owner") || !strcmp(role, "admin"))) printf(" (%s)", role);
	}
	printf("\n");
}

/* One op of c about room (and user, or NULL) on s; title and description
 * go with it if not NULL. Prints the outcome; returns the exit code. */
static int room_op(struct session *s, const struct room_cmd *c, const char *room,
		const char *user, const char *title, const char *description)
{
	char doing[200];
	struct rpc_say say = { .doing = doing, .room = room, .user = user,
		.forbidden = c->forbidden };
	json_t *req, *resp = NULL;
	int rc;

	snprintf(doing, sizeof(doing), "%s %s%s%s", c->verb, user ? user : "", user ? c->prep : "",
			room);
	req = json_pack("{s:s, s:s}", "op", c->op, "room", room);
	if(req && user) json_object_set_new(req, "user", json_string(user));
	if(req && title) json_object_set_new(req, "title", json_string(title));
	if(req && description) json_object_set_new(req, "description", json_string(description));
	rc = cmd_rpc__op(s, req, &resp, &say);
	json_decref(req);
	if(rc == EXIT_OK && strcmp(c->name, "info") == 0){
		if(s->opt->json) cmd_rpc__print_answer(resp);
		else print_info(room, resp);
	}else if(rc == EXIT_OK){
		printf("%s%s%s%s\n", user ? user : "", c->done_mid, room, c->done_end ? c->done_end : "");
	}
	json_decref(resp);
	return rc;
}

/* room <c->name> ...: argv[0] is the subcommand word, path "room <name>". */
static int room_run(struct options *opt, const struct room_cmd *c, const char *path,
		int argc, char **argv)
{
	static const struct cmdline_opt texts[] = {
		{"title", 0, CMDLINE_REQUIRED, 't'},
		{"description", 0, CMDLINE_REQUIRED, 'd'},
		{0}};
	static const struct cmdline_opt json[] = {{"json", 0, CMDLINE_NO_ARG, 'j'}, {0}};
	static const struct cmdline_opt none[] = {{0}};
	const char *title = NULL, *description = NULL, *room;
	struct cmdline cl;
	struct session s;
	int k, o, rc, min = c->users == USERS_NONE ? 1 : 2;

	cmd__options(&cl, path, c->texts ? texts : strcmp(c->name, "info") ? none : json, argc,
			argv);
	while((o = cmdline__next(&cl)) > 0){
		if(o == 't') title = cl.value;
		else if(o == 'd') description = cl.value;
		else if(o == 'j') opt->json = true;
	}
	if(o < 0) return cmd__options_end(&cl, path, o);
	if(cl.nargs < min) return cmd__usage(path);
	if((rc = cmd__extra_args(&cl, path, c->users == USERS_MANY ? INT_MAX : min))) return rc;
	if(!strcmp(c->name, "set") && title == NULL && description == NULL){
		util__error("nothing to change: give --title, --description or both");
		return cmd__usage(path);
	}
	room = cl.args[0];
	if(!names__valid_str(room)) return login__bad_name("room", room);
	for(k=1; k<cl.nargs; k++){
		if(!names__valid_str(cl.args[k])) return login__bad_name("user", cl.args[k]);
	}
	if((rc = options__need_user(opt))) return rc;
	if((rc = session__init(&s, opt, SESSION_ONESHOT)) || (rc = session__connect(&s))) goto done;
	if(c->users == USERS_NONE){
		rc = room_op(&s, c, room, NULL, title, description);
		goto done;
	}
	/* One op per person; a refusal of one does not stop the others, a
	 * lost connection or a silent archiver does. */
	for(k=1; k<cl.nargs; k++){
		int r = room_op(&s, c, room, cl.args[k], NULL, NULL);
		if(r) rc = r;
		if(r == EXIT_TIMEOUT || r == EXIT_UNREACH) break;
	}
done:
	session__cleanup(&s);
	return rc;
}

int cmd_room__run(struct options *opt, const struct cmd_args *a)
{
	char path[64], q[80];
	const char *word = a->nargs > 1 ? a->args[1] : "";
	size_t i;

	if(!strcmp(word, "--help") || !strcmp(word, "-h") || !strcmp(word, "help")){
		return cmd__help("room");
	}
	if(a->nargs < 2){
		util__error("missing command after room");
		return cmd__usage("room");
	}
	for(i=0; i<NROOM_CMDS; i++){
		if(strcmp(word, room_cmds[i].name)) continue;
		snprintf(path, sizeof(path), "room %s", room_cmds[i].name);
		return room_run(opt, &room_cmds[i], path, a->nargs - 1, a->args + 1);
	}
	util__error("unknown %s '%s%s' (see `mqchat room --help`)",
			word[0] == '-' ? "option" : "command", word[0] == '-' ? "" : "room ",
			log_escape(word, strlen(word), q, sizeof(q)));
	return EXIT_USAGE;
}
