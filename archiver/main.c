/* main.c - mqchat-archiver: global options, then one command from the table.
 *
 *   mqchat-archiver [--data DIR] COMMAND [ARGS...]
 *
 * `run` is the archiver daemon (daemon.h); every other command is the
 * operators' CLI (cli.h). The exit statuses are listed in cli.h and
 * archiver/README.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "daemon.h"
#include "userdb.h"

static int run_cmd(struct cli *cli, int argc, char **argv)
{
	return daemon__main(cli->datadir, argc, argv);
}

static const struct cli_cmd commands[] = {
	{.name = "run", .usage = "[OPTIONS]",
	 .help = "run the archiver daemon (see `run --help`)", .handler = run_cmd},
	{.name = "init", .usage = "[--owner USER]",
	 .help = "create DIR, auth.db, archive.db and the service account (idempotent)",
	 .handler = cli_admin__init},
	{.name = "user", .usage = "add|passwd|disable|enable|del|export|list|show ...",
	 .help = "manage accounts (see `user --help`)", .handler = cli_user__main},
	{.name = "room", .usage = "create|add|remove|del|list ...",
	 .help = "manage rooms and members (see `room --help`)", .handler = cli_room__main},
	{.name = "invite", .usage = "create|list|revoke ...",
	 .help = "manage registration invites (see `invite --help`)", .handler = cli_invite__main},
	{.name = "purge", .usage = "[--older-than DAYS]",
	 .help = "delete archived messages older than DAYS (default 30)", .handler = cli_admin__purge},
	{.name = "stats", .usage = "[--json]",
	 .help = "counts of users, rooms and messages, database sizes", .handler = cli_admin__stats},
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
	char q[80];
	int rc, a = 1;

	rc = busy_timeout(&cli.busy_ms);
	if(rc) return rc;

	/* Global options come before the command; the command parses the rest. */
	while(a < argc && argv[a][0] == '-'){
		if(!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h")){
			usage(&cli, stdout);
			return CLI_OK;
		}else if(!strcmp(argv[a], "--data") || !strcmp(argv[a], "-d")){
			if(a + 1 >= argc) return cli__error(CLI_ERR_USAGE, "option '%s' needs an argument", argv[a]);
			cli.datadir = argv[a + 1];
			a += 2;
		}else if(!strncmp(argv[a], "--data=", 7)){
			cli.datadir = argv[a] + 7;
			a++;
		}else{
			cli__error(CLI_ERR_USAGE, "unknown option '%s'", cli__quote(argv[a], q, sizeof(q)));
			usage(&cli, stderr);
			return CLI_ERR_USAGE;
		}
	}
	if(cli.datadir[0] == '\0') return cli__error(CLI_ERR_USAGE, "empty --data folder");
	if(a >= argc){
		cli__error(CLI_ERR_USAGE, "missing command");
		usage(&cli, stderr);
		return CLI_ERR_USAGE;
	}
	if(!strcmp(argv[a], "help")){
		usage(&cli, stdout);
		return CLI_OK;
	}
	rc = cli__dispatch(&cli, NULL, commands, NCOMMANDS, argc - a, argv + a);
	/* Output lost (disk full, closed pipe) is a failure too. */
	if(fflush(stdout) != 0 && rc == CLI_OK){
		rc = cli__error(CLI_ERR_RUNTIME, "writing to stdout failed");
	}
	return rc;
}
