/* cli_nick.c - nicks in the operators' CLI: the checks `user add` makes and
 * `mqchat-archiver user nick NAME NICK`. The rule is common/nick.h's. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "nick.h"
#include "userdb.h"

int cli__check_nick(const char *nick)
{
	char q[80], why[160];

	if(names__nick_valid(nick, strlen(nick), why, sizeof(why))) return CLI_OK;
	return cli__error(CLI_ERR_INVALID, "invalid nick '%s': %s", cli__quote(nick, q, sizeof(q)), why);
}

int cli__nick_free(struct userdb *udb, const char *name, const char *nick, bool new_account)
{
	char why[256];
	int rc = nick__check(udb, name, nick, strlen(nick), new_account, NULL, why, sizeof(why));

	if(rc == MQC_OK) return CLI_OK;
	if(rc == MQC_ERR_EXISTS) return cli__error(CLI_ERR_EXISTS, "%s", why);
	if(rc == MQC_ERR_INVAL) return cli__check_nick(nick);
	return cli__fail(rc, "reading the user store");
}

int cli_user__nick(struct cli *cli)
{
	struct userdb *udb = NULL;
	const char *name = cli->args[0], *nick = cli->args[1];
	char why[256];
	int rc;

	if((rc = cli__check_name("user", name)) != CLI_OK) return rc;
	if((rc = cli__check_nick(nick)) != CLI_OK) return rc;
	if((rc = cli__open_auth(cli, &udb)) != CLI_OK) return rc;
	rc = nick__set(udb, name, nick, strlen(nick), NULL, why, sizeof(why));
	if(rc == MQC_OK){
		printf("nick of %s changed\n", name);
		rc = CLI_OK;
	}else if(rc == MQC_ERR_NOTFOUND){
		rc = cli__error(CLI_ERR_NOTFOUND, "no such user '%s'", name);
	}else if(rc == MQC_ERR_EXISTS){
		rc = cli__error(CLI_ERR_EXISTS, "%s", why);
	}else{
		rc = cli__fail(rc, "setting the nick");
	}
	cli__close_auth(udb);
	return rc;
}
