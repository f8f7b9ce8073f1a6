/* main.c - mqchat, the command-line chat client: global options, then one
 * command from the table below. Options and operands follow
 * common/cmdline.h: any order after the command, `--`, -h/--help on every
 * command, one line for a bad option. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mosquitto.h>

#include "log.h"
#include "mqchat.h"
#include "session.h"
#include "tui.h"

/* Largest seq the archive gives (2^53 - 1, exact in every JSON reader). */
#define SEQ_MAX 9007199254740991LL

static const struct cmd_entry cmd_table[] = {
	{ .name = "register", .usage = "register USER [--nick N] [--invite CODE] [--json]",
		.handler = cmd_register__run, .json = true, .max_args = 1,
		.opts = {{"nick", CMDLINE_REQUIRED}, {"invite", CMDLINE_REQUIRED}} },
	{ .name = "send", .usage = "send USER|#ROOM|--room ROOM [--reply-to REF --reply-from USER] [--lines] "
		"[--json] [--] [TEXT...]",
		.handler = cmd_send__run, .json = true, .max_args = CMD_ANY,
		.opts = {{"room", CMDLINE_REQUIRED}, {"lines"}, {"reply-to", CMDLINE_REQUIRED},
			{"reply-from", CMDLINE_REQUIRED}} },
	{ .name = "listen", .usage = "listen [--json] [--typing] [--count N] [--for SECONDS]",
		.handler = cmd_listen__run, .json = true,
		.opts = {{"count", CMDLINE_REQUIRED, 1, 1000000000, "--count: expected a positive number"},
			{"for", CMDLINE_REQUIRED, 1, 100000000, "--for: expected seconds"}, {"typing"}} },
	{ .name = "chat", .usage = "chat USER|#ROOM|--room ROOM [--json]",
		.handler = cmd_chat__run, .raw = true },
	{ .name = "history", .usage = "history USER|#ROOM|--room ROOM [--limit N] [--before SEQ] [--json]",
		.handler = cmd_history__run, .raw = true },
	{ .name = "sync", .usage = "sync [--after SEQ] [--json]",
		.handler = cmd_sync__run, .raw = true },
	{ .name = "conversations", .usage = "conversations [--limit N] [--before SEQ] [--json]",
		.handler = cmd_conversations__run, .json = true,
		.opts = {{"limit", CMDLINE_REQUIRED, 1, 100, "--limit: expected 1..100"},
			{"before", CMDLINE_REQUIRED, 1, SEQ_MAX, "--before: expected a sequence number"}} },
	{ .name = "read", .usage = "read USER|#ROOM [--seq N] [--json]",
		.handler = cmd_read__run, .json = true, .max_args = 1,
		.opts = {{"seq", CMDLINE_REQUIRED, 1, SEQ_MAX, "--seq: expected a sequence number"}} },
	{ .name = "edit", .usage = "edit REF [--json] [--] TEXT...",
		.handler = cmd_edit__run, .json = true, .max_args = CMD_ANY },
	{ .name = "delete", .usage = "delete REF [--json]",
		.handler = cmd_delete__run, .json = true, .max_args = 1,
		.opts = {{"room", CMDLINE_REQUIRED}, {"of", CMDLINE_REQUIRED}} },
	{ .name = "delete", .usage = "delete --room ROOM --of USER REF [--json]",
		.handler = cmd_delete__run },
	{ .name = "react", .usage = "react USER|#ROOM OF REF EMOJI [--remove] [--json]",
		.handler = cmd_react__run, .json = true, .max_args = 4, .opts = {{"remove"}} },
	{ .name = "search", .usage = "search TEXT... [--with USER|--room ROOM] [--limit N] "
		"[--before SEQ] [--json]",
		.handler = cmd_search__run, .json = true, .max_args = CMD_ANY,
		.opts = {{"with", CMDLINE_REQUIRED}, {"room", CMDLINE_REQUIRED},
			{"limit", CMDLINE_REQUIRED, 1, 100, "--limit: expected 1..100"},
			{"before", CMDLINE_REQUIRED, 1, SEQ_MAX, "--before: expected a sequence number"}} },
	{ .name = "rooms", .usage = "rooms [--json]",
		.handler = cmd_rooms__run, .raw = true },
	{ .name = "who", .usage = "who [USER] [--json]",
		.handler = cmd_who__run, .raw = true },
	{ .name = "whois", .usage = "whois USER [--json]",
		.handler = cmd_whois__run, .raw = true },
	{ .name = "profile", .usage = "profile [--nick N] [--json]",
		.handler = cmd_profile__run, .raw = true },
	{ .name = "passwd", .usage = "passwd [--password-stdin] [--logout-others] [--json]",
		.handler = cmd_passwd__run, .raw = true },
	{ .name = "block", .usage = "block USER",
		.handler = cmd_block__run, .raw = true },
	{ .name = "unblock", .usage = "unblock USER",
		.handler = cmd_unblock__run, .raw = true },
	{ .name = "blocked", .usage = "blocked [--json]",
		.handler = cmd_blocked__run, .raw = true },
	{ .name = "devices", .usage = "devices [--json]",
		.handler = cmd_devices__run, .json = true, .max_args = 2,
		.opts = {{"others"}, {"all"}} },
	{ .name = "devices", .usage = "devices revoke DEVICE|--others|--all [--json]",
		.handler = cmd_devices__run, .raw = true },
	{ .name = "login", .usage = "login",
		.handler = cmd_login__run },
	{ .name = "logout", .usage = "logout",
		.handler = cmd_logout__run },
	{ .name = "export", .usage = "export [--output FILE]",
		.handler = cmd_export__run, .opts = {{"output", CMDLINE_REQUIRED}} },
	{ .name = "delete-account", .usage = "delete-account [--erase] [--yes] [--json]",
		.handler = cmd_delete_account__run, .opts = {{"erase"}, {"yes"}} },
	{ .name = "room", .usage = "room create ROOM [--title T] [--description D]",
		.handler = cmd_room__run, .raw = true },
	{ .name = "room", .usage = "room add ROOM USER...",
		.handler = cmd_room__run, .raw = true },
	{ .name = "room", .usage = "room remove ROOM USER...",
		.handler = cmd_room__run, .raw = true },
	{ .name = "room", .usage = "room promote ROOM USER",
		.handler = cmd_room__run, .raw = true },
	{ .name = "room", .usage = "room demote ROOM USER",
		.handler = cmd_room__run, .raw = true },
	{ .name = "room", .usage = "room set ROOM [--title T] [--description D]",
		.handler = cmd_room__run, .raw = true },
	{ .name = "room", .usage = "room leave ROOM",
		.handler = cmd_room__run, .raw = true },
	{ .name = "room", .usage = "room delete ROOM",
		.handler = cmd_room__run, .raw = true },
	{ .name = "room", .usage = "room info ROOM [--json]",
		.handler = cmd_room__run, .raw = true },
	{ .name = "privacy", .usage = "privacy [--presence everyone|contacts|nobody] "
		"[--room-adds everyone|contacts|nobody] [--json]",
		.handler = cmd_privacy__run, .json = true,
		.opts = {{"presence", CMDLINE_REQUIRED}, {"room-adds", CMDLINE_REQUIRED}} },
	{ .name = "contacts", .usage = "contacts [--json]",
		.handler = cmd_contacts__run, .raw = true },
	{ .name = "contacts", .usage = "contacts add USER",
		.handler = cmd_contacts__run, .raw = true },
	{ .name = "contacts", .usage = "contacts remove USER",
		.handler = cmd_contacts__run, .raw = true },
	{ .name = "push", .usage = "push webhook URL [--json]",
		.handler = cmd_push__run, .raw = true },
	{ .name = "push", .usage = "push list [--json]",
		.handler = cmd_push__run, .raw = true },
	{ .name = "push", .usage = "push remove [DEVICE] [--json]",
		.handler = cmd_push__run, .raw = true },
	{ .name = "push", .usage = "push previews [on|off] [--json]",
		.handler = cmd_push__run, .raw = true },
	{ .name = "mute", .usage = "mute USER|#ROOM [--for 30m|8h|2d|SECONDS] [--json]",
		.handler = cmd_mute__run, .json = true, .max_args = 1, .opts = {{"for", CMDLINE_REQUIRED}} },
	{ .name = "unmute", .usage = "unmute USER|#ROOM [--json]",
		.handler = cmd_unmute__run, .json = true, .max_args = 1 },
	{ .name = "mutes", .usage = "mutes [--json]",
		.handler = cmd_mutes__run, .json = true },
};

#define NCMDS (sizeof(cmd_table) / sizeof(cmd_table[0]))

static void usage(FILE *fp)
{
	size_t i;

	fprintf(fp, "usage: mqchat [--host H] [--port P] [--user U] [--device D] [--cafile F]\n"
			"              [--password-file F] [--timeout SEC] [--json] COMMAND ...\n"
			"commands:\n");
	for(i=0; i<NCMDS; i++) fprintf(fp, "  %s\n", cmd_table[i].usage);
	fprintf(fp, "Options and arguments in any order after the command; `--` ends the options\n"
			"(a TEXT starting with '-'); `mqchat COMMAND --help` for one command.\n"
			"The password comes from --password-file, MQCHAT_PASSWORD or a prompt;\n"
			"without one, from the device token stored by a login (`mqchat login`).\n");
}

/* The usage lines of name: a command ("room": all of its lines) or a
 * command and its subcommand ("room add"). */
static void cmd_usage(const char *name, FILE *fp)
{
	size_t i, n = strlen(name);

	for(i=0; i<NCMDS; i++){
		const char *u = cmd_table[i].usage;
		if(!strncmp(u, name, n) && (u[n] == ' ' || u[n] == '\0')) fprintf(fp, "usage: mqchat %s\n", u);
	}
}

int cmd__help(const char *name)
{
	cmd_usage(name, stdout);
	return EXIT_OK;
}

int cmd__usage(const char *name)
{
	cmd_usage(name, stderr);
	return EXIT_USAGE;
}

void cmd__options(struct cmdline *cl, const char *name, const struct cmdline_opt *opts,
		int argc, char **argv)
{
	cmdline__init(cl, "mqchat", name, opts, options__global_opts, argc, argv, 1, 0);
}

int cmd__options_end(const struct cmdline *cl, const char *name, int c)
{
	if(c == CMDLINE_HELP) return cmd__help(name);
	if(c == CMDLINE_ERROR) return cmdline__fail(cl);
	return EXIT_OK;
}

int cmd__unexpected(const char *word, const char *name)
{
	char q[80];

	util__error("unexpected argument '%s'", log_escape(word, strlen(word), q, sizeof(q)));
	return cmd__usage(name);
}

int cmd__extra_args(const struct cmdline *cl, const char *name, int max)
{
	return cl->nargs <= max ? EXIT_OK : cmd__unexpected(cl->args[max], name);
}

/* Parse the options and operands that cmd declares (argv[0] is its name)
 * into a; --json sets opt->json. -1 to run the handler, else the exit
 * code (help, error). */
static int parse_declared(struct options *opt, const struct cmd_entry *cmd, int argc, char **argv,
		struct cmd_args *a)
{
	const struct cmdline_decl *d;
	struct cmdline cl;
	int c, rc;

	cmdline__init_decl(&cl, &a->vals, cmd->opts, cmd->json, "mqchat", cmd->name,
			options__global_opts, argc, argv);
	while((c = cmdline__next_decl(&cl, &a->vals)) > 0){
		d = &cmd->opts[c - 1];
		if(d->max > 0 && (a->vals.num[c - 1] = util__number(cl.value, d->min, d->max)) < 0){
			util__error("%s", d->bad);
			return cmd__usage(cmd->name);
		}
	}
	if(a->vals.json) opt->json = true;
	if(c < 0) return cmd__options_end(&cl, cmd->name, c);
	if(cmd->max_args != CMD_ANY && (rc = cmd__extra_args(&cl, cmd->name, cmd->max_args))) return rc;
	a->args = cl.args;
	a->nargs = cl.nargs;
	return -1;
}

/* `chat` on a terminal is the app, opened at its conversation (conv: the
 * operand, "#room" for --room ROOM, or NULL); with --json, -h or lines on
 * stdin it is the line mode (cmd_chat.c). A bad operand is the app's to
 * say. */
static bool app_wanted(int argc, char **argv, const char **conv)
{
	static char room[NAME_MAX_LEN + 2];
	int i;

	*conv = NULL;
	if(!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) return false;
	for(i=1; i<argc; i++){
		if(!strcmp(argv[i], "--room") && i + 1 < argc && strlen(argv[i + 1]) <= NAME_MAX_LEN){
			snprintf(room, sizeof(room), "#%s", argv[++i]);
			*conv = room;
		}else if(argv[i][0] == '-'){
			return false;   /* --json, --help, or what the line mode explains */
		}else if(*conv == NULL){
			*conv = argv[i];
		}else{
			return false;
		}
	}
	return true;
}

int main(int argc, char **argv)
{
	struct options opt;
	const struct cmd_entry *cmd = NULL;
	struct cmd_args args;
	const char *conv = NULL;
	int next = 0, rc;
	bool help;
	size_t i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	options__init(&opt);
	if(opt.host == NULL || opt.device == NULL){
		util__error("out of memory");
		return EXIT_FAILED;
	}
	rc = options__parse(&opt, argc, argv, &next, &help);
	if(rc) goto done;
	if(help){
		usage(stdout);
		goto done;
	}
	if(next >= argc){
		/* On a terminal, `mqchat` alone is the chat app. */
		if(isatty(STDIN_FILENO) && isatty(STDOUT_FILENO) && opt.user){
			session__signals();
			mosquitto_lib_init();
			rc = tui__run(&opt, NULL);
			mosquitto_lib_cleanup();
			goto done;
		}
		usage(stderr);
		rc = EXIT_USAGE;
		goto done;
	}
	if(!strcmp(argv[next], "help")){
		usage(stdout);
		rc = EXIT_OK;
		goto done;
	}
	for(i=0; i<NCMDS && cmd == NULL; i++){
		if(!strcmp(cmd_table[i].name, argv[next])) cmd = &cmd_table[i];
	}
	if(cmd == NULL){
		char q[80];
		util__error("unknown command '%s' (see `mqchat --help`)",
				log_escape(argv[next], strlen(argv[next]), q, sizeof(q)));
		rc = EXIT_USAGE;
		goto done;
	}
	session__signals();
	mosquitto_lib_init();
	/* A raw handler sees args[0] = the command word. */
	args = (struct cmd_args){.args = argv + next, .nargs = argc - next};
	if(!strcmp(cmd->name, "chat") && app_wanted(argc - next, argv + next, &conv)){
		rc = tui__run(&opt, conv);
	}else if(cmd->raw || (rc = parse_declared(&opt, cmd, argc - next, argv + next, &args)) < 0){
		rc = cmd->handler(&opt, &args);
	}
	mosquitto_lib_cleanup();
done:
	options__cleanup(&opt);
	return rc;
}
