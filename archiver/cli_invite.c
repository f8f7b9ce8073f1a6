/* cli_invite.c - `mqchat-archiver invite ...`: create, list and revoke the
 * invite codes that registration in `invite` mode asks for. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "timeutil.h"
#include "userdb.h"

/* Random bytes in a code: 16 bytes give 22 base64url characters. */
#define INVITE_CODE_BYTES 16
#define INVITE_DEFAULT_HOURS 168
#define INVITE_MAX_HOURS (24L * 36500)
#define INVITE_MAX_USES 1000000L

static int invite_create(struct cli *cli)
{
	long uses = cmdline__num(&cli->opt, "uses", 1);
	long hours = cmdline__num(&cli->opt, "expires", INVITE_DEFAULT_HOURS);
	struct userdb *udb;
	char code[INVITE_CODE_BYTES * 2];
	int64_t expires;
	int rc;

	if((rc = cli__random_token(INVITE_CODE_BYTES, code, sizeof(code))) != CLI_OK) return rc;
	if(!names__valid_msgid(code, strlen(code))){
		return cli__error(CLI_ERR_RUNTIME, "made an invalid invite code");  /* cannot happen */
	}
	expires = hours > 0 ? time__now_ms() + (int64_t)hours * 3600 * 1000 : 0;
	if((rc = cli__open_auth(cli, &udb)) != CLI_OK) return rc;
	rc = userdb__begin_write(udb);
	if(rc == MQC_OK) rc = userdb__invite_create(udb, code, (int)uses, expires);
	rc = cli__end_write(udb, rc);
	cli__close_auth(udb);
	if(rc != MQC_OK) return cli__fail(rc, "creating the invite");
	printf("%s\n", code);
	return CLI_OK;
}

struct list_ctx {
	json_t *arr;   /* NULL: print text */
	int64_t now;
};

static const char *state_of(int uses_left, int64_t expires, int64_t now)
{
	if(uses_left <= 0) return "used";
	if(expires > 0 && expires <= now) return "expired";
	return "valid";
}

static int invite_cb(const char *code, int uses_left, int64_t expires, int64_t created, void *arg)
{
	struct list_ctx *ctx = arg;
	const char *state = state_of(uses_left, expires, ctx->now);
	char when[32];

	if(ctx->arr){
		json_t *o = json_pack("{s:s, s:i, s:I, s:I, s:s}", "code", code, "uses_left", uses_left,
				"expires", (json_int_t)expires, "created", (json_int_t)created, "state", state);
		return json_array_append_new(ctx->arr, o) ? MQC_ERR_NOMEM : MQC_OK;
	}
	printf("%s %d %s %s\n", code, uses_left,
			expires > 0 ? cli__fmt_time(expires, when, sizeof(when)) : "never", state);
	return MQC_OK;
}

static int each_invite(struct userdb *udb, void *ctx)
{
	return userdb__invite_each(udb, invite_cb, ctx);
}

static int invite_list(struct cli *cli)
{
	struct list_ctx ctx = {NULL, time__now_ms()};

	return cli__list(cli, &ctx.arr, each_invite, &ctx, "reading the invites");
}

static int invite_revoke(struct cli *cli)
{
	struct userdb *udb;
	const char *code = cli->args[0];
	char q[80];
	int rc;

	if(!names__valid_msgid(code, strlen(code))){
		return cli__error(CLI_ERR_INVALID, "invalid invite code '%s'", cli__quote(code, q, sizeof(q)));
	}
	if((rc = cli__open_auth(cli, &udb)) != CLI_OK) return rc;
	rc = userdb__begin_write(udb);
	if(rc == MQC_OK) rc = userdb__invite_revoke(udb, code);
	return cli__finish(udb, rc, "invite", code, "revoked", "revoking the invite");
}

static const struct cli_operands one_code = {1, 1, "expected one invite code"};

static const struct cli_cmd invite_cmds[] = {
	{.name = "create", .usage = "[--uses N] [--expires HOURS]",
	 .help = "print a new code good for N registrations (default 1) for HOURS (default 168, 0 never)",
	 .handler = invite_create,
	 .opts = {{"uses", CMDLINE_REQUIRED, 1, INVITE_MAX_USES, "--uses needs a number (1..1000000)"},
		  {"expires", CMDLINE_REQUIRED, 0, INVITE_MAX_HOURS,
		   "--expires needs a number of hours (0 for never, up to 876000)"}}},
	{.name = "list", .usage = "[--json]",
	 .help = "one code per line: CODE USES_LEFT EXPIRES|never valid|used|expired",
	 .handler = invite_list, .json = true},
	{.name = "revoke", .usage = "CODE", .help = "delete a code", .handler = invite_revoke,
	 .operands = &one_code},
};

int cli_invite__main(struct cli *cli)
{
	return cli__dispatch(cli, "invite", invite_cmds, sizeof(invite_cmds) / sizeof(invite_cmds[0]),
			cli->nargs - 1, cli->args + 1);
}
