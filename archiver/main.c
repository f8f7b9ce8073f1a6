/* main.c - mqchat-archiver: global options, then one command from the table.
 *
 *   mqchat-archiver [--data DIR] COMMAND [ARGS...]
 *
 * Options and arguments follow common/cmdline.h (any order after the
 * command, `--`, --help everywhere, one line for a bad option).
 * `run` is the archiver daemon (daemon.h); every other command is the
 * operators' CLI (cli.h). The exit statuses are listed in cli.h and
 * archiver/README.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "bus_daemon.h"
#include "cmdline.h"
#include "config.h"
#include "daemon.h"
#include "userdb.h"

/* `run`: --help and option errors the CLI's way (help on stdout, one line
 * for a bad option) before the daemon starts; it checks the values. */
static int run_cmd(struct cli *cli)
{
	struct cmdline cl;
	int c;

	cli__options(cli, &cl, config__opts, cli->nargs, cli->args);
	while((c = cmdline__next(&cl)) > 0) ;
	if(c == CMDLINE_HELP){
		printf("usage: %s [--data DIR] %s\n", cli->progname, CONFIG_USAGE);
		return CLI_OK;
	}
	if(c == CMDLINE_ERROR) return cmdline__fail(&cl);
	return daemon__main(cli->datadir, cli->nargs, cli->args);
}

/* `bus`: as `run`, for the bus process (bus_daemon.h). */
static int bus_cmd(struct cli *cli)
{
	struct cmdline cl;
	int c;

	cli__options(cli, &cl, config__opts, cli->nargs, cli->args);
	while((c = cmdline__next(&cl)) > 0) ;
	if(c == CMDLINE_HELP){
		printf("usage: %s [--data DIR] %s\n", cli->progname, BUS_USAGE);
		return CLI_OK;
	}
	if(c == CMDLINE_ERROR) return cmdline__fail(&cl);
	return bus__main(cli->datadir, cli->nargs, cli->args);
}

static const struct cli_cmd commands[] = {
	{.name = "run", .usage = "[OPTIONS]",
	 .help = "run the archiver daemon (see `run --help`)", .handler = run_cmd, .raw = true},
	{.name = "bus", .usage = "--node NAME --nats URL [OPTIONS]",
	 .help = "carry messages between nodes over NATS (see `bus --help`)", .handler = bus_cmd,
	 .raw = true},
	{.name = "init", .usage = "[--owner USER]",
	 .help = "create DIR, auth.db, archive.db and the service account (idempotent)",
	 .handler = cli_admin__init, .opts = {{"owner", CMDLINE_REQUIRED}}},
	{.name = "user", .usage = "add|passwd|disable|enable|del|nick|export|list|show|devices|revoke ...",
	 .help = "manage accounts (see `user --help`)", .handler = cli_user__main, .raw = true},
	{.name = "room", .usage = "create|add|remove|del|list ...",
	 .help = "manage rooms and members (see `room --help`)", .handler = cli_room__main, .raw = true},
	{.name = "invite", .usage = "create|list|revoke ...",
	 .help = "manage registration invites (see `invite --help`)", .handler = cli_invite__main,
	 .raw = true},
	{.name = "settings", .usage = "list|set|unset ...",
	 .help = "settings the broker and the archiver both obey (see `settings --help`)",
	 .handler = cli_settings__main, .raw = true},
	{.name = "purge", .usage = "[--older-than DAYS]",
	 .help = "delete archived messages older than DAYS (default 30)", .handler = cli_admin__purge,
	 .opts = {{"older-than", CMDLINE_REQUIRED, 0, CLI_MAX_PURGE_DAYS,
		   "--older-than needs a number of days (0..36500)"}}},
	{.name = "stats", .usage = "[--json]",
	 .help = "counts of users, rooms and messages, database sizes", .handler = cli_admin__stats,
	 .json = true},
	{.name = "import", .usage = "mosquitto-passwd|dynsec|csv FILE [--dry-run]",
	 .help = "add accounts from Mosquitto or a CSV file (see `import --help`)",
	 .handler = cli_import__main, .raw = true},
	{.name = "backup", .usage = "DEST [--config FILE]... [--json]",
	 .help = "copy the stores and settings into DEST (new or empty), also while the daemon runs",
	 .handler = cli_backup__backup, .raw = true},
	{.name = "restore", .usage = "SRC",
	 .help = "make DIR (new or empty) from the backup SRC, checked first", .handler = cli_backup__restore,
	 .raw = true},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(const struct cli *cli, FILE *out)
{
	cli__group_usage(cli, NULL, commands, NCOMMANDS, out);
	fprintf(out, "\nglobal options:\n"
			"  --data DIR   the data folder (default %s)\n"
			"  --help       this text; `COMMAND --help` for one command\n"
			"\nexit status: 0 ok, 1 runtime error, 2 usage error, 3 not found,\n"
			"4 already exists, 5 invalid name/kind/nick/password, 6 database missing\n",
			CLI_DEFAULT_DATADIR);
}

/* The busy timeout of the CLI's connections: USERDB_BUSY_TIMEOUT_MS unless
 * the environment says otherwise. */
static int busy_timeout(int *ms)
{
	const char *s = getenv(CLI_BUSY_ENV);
	long v;

	*ms = USERDB_BUSY_TIMEOUT_MS;
	if(s == NULL || *s == '\0') return CLI_OK;
	if(!cli__parse_long(s, 0, 3600 * 1000L, &v)){
		return cli__error(CLI_ERR_USAGE, "%s must be a number of milliseconds", CLI_BUSY_ENV);
	}
	*ms = (int)v;
	return CLI_OK;
}

int main(int argc, char **argv)
{
	struct cli cli = {.progname = "mqchat-archiver", .datadir = CLI_DEFAULT_DATADIR};
	struct cmdline cl;
	int rc, c;

	rc = busy_timeout(&cli.busy_ms);
	if(rc) return rc;

	/* Global options come before the command; the command parses the rest. */
	cmdline__init(&cl, cli.progname, NULL, cli__global_opts, NULL, argc, argv, 1,
			CMDLINE_STOP_AT_OPERAND);
	while((c = cmdline__next(&cl)) > 0){
		if(c == 'd') cli.datadir = cl.value;
	}
	if(c == CMDLINE_HELP){
		usage(&cli, stdout);
		return CLI_OK;
	}
	if(c == CMDLINE_ERROR) return cmdline__fail(&cl);
	if(cli.datadir[0] == '\0') return cli__error(CLI_ERR_USAGE, "empty --data folder");
	if(cl.nargs == 0){
		cli__error(CLI_ERR_USAGE, "missing command");
		usage(&cli, stderr);
		return CLI_ERR_USAGE;
	}
	if(!strcmp(cl.args[0], "help")){
		usage(&cli, stdout);
		return CLI_OK;
	}
	rc = cli__dispatch(&cli, NULL, commands, NCOMMANDS, cl.nargs, cl.args);
	/* Output lost (disk full, closed pipe) is a failure too. */
	if(fflush(stdout) != 0 && rc == CLI_OK){
		rc = cli__error(CLI_ERR_RUNTIME, "writing to stdout failed");
	}
	return rc;
}
