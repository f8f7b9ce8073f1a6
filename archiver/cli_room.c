/* cli_room.c - `mqchat-archiver room ...`: create, add, remove, del and list
 * rooms and their members in the user store (auth.db). */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "archive.h"
#include "cli.h"
#include "envelope.h"
#include "err.h"
#include "timeutil.h"
#include "userdb.h"

/* Longest retention a room can have (100 years). */
#define ROOM_MAX_RETENTION_DAYS 36500

/* The membership events of an operator's change of room (docs/PROTOCOL.md,
 * "Rooms run by their members": no "by"): event ev about each of users[0..n)
 * (n 0: one event about nobody). The CLI does not talk to the broker, so
 * they are not sent live: they go straight into archive.db, from the
 * service account, where history and sync return them like the daemon's.
 * A data folder without an archive (never run) keeps none; a failure is a
 * note on stderr, the change itself is made. */
static void archive_events(struct cli *cli, const char *room, enum envelope_event ev,
		char **users, int n)
{
	char path[PATH_MAX], err[512] = "", id[48], body[128];
	struct archive *ar = NULL;
	struct archive_msg m;
	struct stat st;
	int64_t now = time__now_ms();
	int i, rc;

	snprintf(path, sizeof(path), "%s/archive.db", cli->datadir);
	if(stat(path, &st) != 0) return;
	rc = archive__open(path, &ar, err, sizeof(err));
	for(i = 0; rc == MQC_OK && i < (n > 0 ? n : 1); i++){
		memset(&m, 0, sizeof(m));
		snprintf(id, sizeof(id), "cli-%llx-%d", (unsigned long long)now, i);
		if(n > 0) snprintf(body, sizeof(body), "{\"event\":\"%s\",\"user\":\"%s\"}",
				envelope__event_name(ev), users[i]);
		else snprintf(body, sizeof(body), "{\"event\":\"%s\"}", envelope__event_name(ev));
		m.sender = CLI_SERVICE_USER;
		m.room = room;
		m.id = id;
		m.type = ARCHIVE_TYPE_EVENT;
		m.body = body;
		m.ts = now;
		m.server_ts = now;
		rc = archive__store(ar, &m, NULL, NULL, NULL);
		if(rc != MQC_OK) snprintf(err, sizeof(err), "%s", mqc_strerror(rc));
	}
	if(rc != MQC_OK){
		fprintf(stderr, "Note: done, but the room's membership event is not archived: %s\n", err);
	}
	archive__close(ar);
}

static int room_create(struct cli *cli)
{
	long days = cmdline__num(&cli->opt, "retention", 0);
	struct userdb *udb;
	const char *room = cli->args[0];
	int rc;

	if((rc = cli__open_auth_for(cli, "room", room, &udb)) != CLI_OK) return rc;
	rc = userdb__begin_write(udb);
	if(rc == MQC_OK && (rc = userdb__room_name_free(udb, room)) == MQC_ERR_EXISTS
			&& userdb__room_get(udb, room, NULL, NULL) == MQC_ERR_NOTFOUND){
		/* Not a room: a retired name (userdb.h), as for accounts. */
		userdb__rollback(udb);
		cli__close_auth(udb);
		return cli__error(CLI_ERR_EXISTS, "room '%s' was deleted less than %d days ago: its name is"
				" retired until then", room, USERDB_RETIRE_DAYS);
	}
	if(rc == MQC_OK) rc = userdb__room_create(udb, room, (int)days);
	rc = cli__finish(udb, rc, "room", room, "created", "creating the room");
	if(rc == CLI_OK) archive_events(cli, room, ENVELOPE_EVENT_CREATED, NULL, 0);
	return rc;
}

/* room add / room remove: every user or none, in one transaction. */
static int change_members(struct cli *cli, bool add)
{
	struct userdb *udb;
	const char *room = cli->args[0], *user = NULL;
	int i, rc;

	if((rc = cli__check_name("room", room)) != CLI_OK) return rc;
	for(i=1; i<cli->nargs; i++){
		if((rc = cli__check_name("user", cli->args[i])) != CLI_OK) return rc;
	}
	if((rc = cli__open_auth(cli, &udb)) != CLI_OK) return rc;

	rc = userdb__begin_write(udb);
	if(rc == MQC_OK) rc = userdb__room_get(udb, room, NULL, NULL);
	if(rc == MQC_ERR_NOTFOUND){
		userdb__rollback(udb);
		cli__close_auth(udb);
		return cli__error(CLI_ERR_NOTFOUND, "no such room '%s'", room);
	}
	for(i=1; rc == MQC_OK && i<cli->nargs; i++){
		user = cli->args[i];
		rc = add ? userdb__member_add(udb, room, user) : userdb__member_remove(udb, room, user);
	}
	rc = cli__end_write(udb, rc);
	cli__close_auth(udb);
	if(rc == MQC_ERR_NOTFOUND && add) return cli__error(CLI_ERR_NOTFOUND, "no such user '%s'", user);
	if(rc == MQC_ERR_NOTFOUND){
		return cli__error(CLI_ERR_NOTFOUND, "'%s' is not a member of '%s'", user, room);
	}
	if(rc == MQC_ERR_EXISTS){
		return cli__error(CLI_ERR_EXISTS, "'%s' is already a member of '%s'", user, room);
	}
	if(rc != MQC_OK) return cli__fail(rc, add ? "adding members" : "removing members");
	for(i=1; i<cli->nargs; i++){
		printf("%s %s %s\n", cli->args[i], add ? "added to" : "removed from", room);
	}
	archive_events(cli, room, add ? ENVELOPE_EVENT_JOINED : ENVELOPE_EVENT_REMOVED, cli->args + 1,
			cli->nargs - 1);
	return CLI_OK;
}

static int room_add(struct cli *cli)
{
	return change_members(cli, true);
}

static int room_remove(struct cli *cli)
{
	return change_members(cli, false);
}

static int room_del(struct cli *cli)
{
	struct userdb *udb;
	const char *room = cli->args[0];
	int rc;

	if((rc = cli__open_auth_for(cli, "room", room, &udb)) != CLI_OK) return rc;
	rc = userdb__begin_write(udb);
	if(rc == MQC_OK) rc = userdb__room_del(udb, room);
	rc = cli__finish(udb, rc, "room", room, "deleted", "deleting the room");
	if(rc == CLI_OK) archive_events(cli, room, ENVELOPE_EVENT_DELETED, NULL, 0);
	return rc;
}

struct list_ctx {
	json_t *rooms;   /* array of room objects, in name order */
	json_t *byname;  /* name -> that room's members array (borrowed) */
};

static int room_cb(const char *room, int retention_days, int64_t created, void *arg)
{
	struct list_ctx *ctx = arg;
	json_t *members = json_array(), *obj;

	if(members == NULL) return MQC_ERR_NOMEM;
	if(json_object_set(ctx->byname, room, members) != 0){
		json_decref(members);
		return MQC_ERR_NOMEM;
	}
	obj = json_pack("{s:s, s:i, s:I, s:o}", "name", room, "retention_days", retention_days,
			"created", (json_int_t)created, "members", members);
	return json_array_append_new(ctx->rooms, obj) ? MQC_ERR_NOMEM : MQC_OK;
}

static int member_cb(const char *room, const char *user, void *arg)
{
	struct list_ctx *ctx = arg;
	json_t *members = json_object_get(ctx->byname, room);

	if(members == NULL) return MQC_OK;   /* cannot happen inside one read transaction */
	return json_array_append_new(members, json_string(user)) ? MQC_ERR_NOMEM : MQC_OK;
}

static int room_list(struct cli *cli)
{
	struct list_ctx ctx = {json_array(), json_object()};
	struct userdb *udb = NULL;
	json_t *room, *m;
	size_t i, j;
	int rc;

	if(ctx.rooms == NULL || ctx.byname == NULL){
		rc = cli__error(CLI_ERR_RUNTIME, "out of memory");
		goto done;
	}
	if((rc = cli__open_auth(cli, &udb)) != CLI_OK) goto done;
	rc = userdb__begin_read(udb);
	if(rc == MQC_OK) rc = userdb__room_each(udb, room_cb, &ctx);
	if(rc == MQC_OK) rc = userdb__member_each(udb, NULL, NULL, member_cb, &ctx);
	userdb__rollback(udb);
	if(rc != MQC_OK){
		rc = cli__fail(rc, "reading the user store");
		goto done;
	}
	if(cli->opt.json){
		rc = cli__print_json(ctx.rooms);
		ctx.rooms = NULL;
		goto done;
	}
	/* NAME RETENTION MEMBER...: RETENTION in days, "-" for the global one. */
	json_array_foreach(ctx.rooms, i, room){
		json_int_t days = json_integer_value(json_object_get(room, "retention_days"));
		printf("%s ", json_string_value(json_object_get(room, "name")));
		if(days > 0) printf("%lld", (long long)days);
		else fputc('-', stdout);
		json_array_foreach(json_object_get(room, "members"), j, m) printf(" %s", json_string_value(m));
		fputc('\n', stdout);
	}
	rc = CLI_OK;
done:
	cli__close_auth(udb);
	json_decref(ctx.rooms);
	json_decref(ctx.byname);
	return rc;
}

static const struct cli_operands one_room = {1, 1, "expected one room name"};
/* del says "missing argument" or "too many arguments", as add and remove do. */
static const struct cli_operands room_only = {1, 1, NULL};
static const struct cli_operands room_users = {2, CLI_ANY, NULL};

static const struct cli_cmd room_cmds[] = {
	{.name = "create", .usage = "ROOM [--retention DAYS]",
	 .help = "create a room; its messages are kept DAYS (default: the global retention)",
	 .handler = room_create, .operands = &one_room,
	 .opts = {{"retention", CMDLINE_REQUIRED, 1, ROOM_MAX_RETENTION_DAYS,
		   "--retention needs a number of days (1..36500)"}}},
	{.name = "add", .usage = "ROOM USER...",
	 .help = "add members (all or none)", .handler = room_add, .operands = &room_users},
	{.name = "remove", .usage = "ROOM USER...",
	 .help = "remove members (all or none); the plugin stops their access within 1 s",
	 .handler = room_remove, .operands = &room_users},
	{.name = "del", .usage = "ROOM", .help = "delete a room and its memberships", .handler = room_del,
	 .operands = &room_only},
	{.name = "list", .usage = "[--json]",
	 .help = "one room per line: NAME RETENTION(days or -) MEMBER...", .handler = room_list,
	 .json = true},
};

int cli_room__main(struct cli *cli)
{
	return cli__dispatch(cli, "room", room_cmds, sizeof(room_cmds) / sizeof(room_cmds[0]),
			cli->nargs - 1, cli->args + 1);
}
