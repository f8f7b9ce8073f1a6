/* cli_settings.c - `mqchat-archiver settings list|set|unset`: the
 * settings the broker's plugin and the archiver both obey, in the user
 * store (common/settings.h). A change is in force in both within a second
 * (the command returns once the broker has it; the archiver reads it for
 * each request it answers). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "settings.h"
#include "userdb.h"

struct list_ctx {
	json_t *arr;            /* NULL: print text */
	json_t *stored;         /* key -> value, as the store holds them */
};

static int stored_cb(const char *key, const char *value, void *arg)
{
	return json_object_set_new(arg, key, json_string(value)) ? MQC_ERR_NOMEM : MQC_OK;
}

/* Every setting settings.h knows, with the store's value or "(not set:
 * each program's own configuration)". */
static int each_setting(struct userdb *udb, void *arg)
{
	struct list_ctx *ctx = arg;
	const struct setting_def *defs;
	size_t n, i;
	int rc;

	ctx->stored = json_object();
	if(ctx->stored == NULL) return MQC_ERR_NOMEM;
	rc = userdb__setting_each(udb, stored_cb, ctx->stored);
	defs = settings__all(&n);
	for(i = 0; rc == MQC_OK && i < n; i++){
		const char *v = json_string_value(json_object_get(ctx->stored, defs[i].key));

		if(ctx->arr){
			json_t *o = json_pack("{s:s, s:o, s:s}", "key", defs[i].key,
					"value", v ? json_string(v) : json_null(), "help", defs[i].help);
			if(o == NULL || json_array_append_new(ctx->arr, o)) rc = MQC_ERR_NOMEM;
		}else{
			printf("%s %s\t%s\n", defs[i].key, v ? v : "-", defs[i].help);
		}
	}
	json_decref(ctx->stored);
	return rc;
}

static int settings_list(struct cli *cli)
{
	struct list_ctx ctx = {NULL, NULL};

	return cli__list(cli, &ctx.arr, each_setting, &ctx, "reading the settings");
}

/* The setting named key, or NULL after printing why not. */
static const struct setting_def *known(const char *key, int *rc)
{
	const struct setting_def *d = settings__find(key);
	char q[80];

	if(d == NULL){
		*rc = cli__error(CLI_ERR_INVALID, "no setting '%s' (see `settings list`)",
				cli__quote(key, q, sizeof(q)));
	}
	return d;
}

static int settings_set(struct cli *cli)
{
	const struct setting_def *d;
	struct userdb *udb;
	const char *why, *value = cli->args[1];
	char q[80];
	int rc;

	if((d = known(cli->args[0], &rc)) == NULL) return rc;
	if((why = settings__check(d, value)) != NULL){
		return cli__error(CLI_ERR_INVALID, "invalid value '%s' for %s: %s (%s)",
				cli__quote(value, q, sizeof(q)), d->key, why, d->help);
	}
	if((rc = cli__open_auth(cli, &udb)) != CLI_OK) return rc;
	rc = userdb__begin_write(udb);
	if(rc == MQC_OK) rc = userdb__setting_set(udb, d->key, value);
	return cli__finish(udb, rc, "setting", d->key, value, "changing the setting");
}

static int settings_unset(struct cli *cli)
{
	const struct setting_def *d;
	struct userdb *udb;
	int rc;

	if((d = known(cli->args[0], &rc)) == NULL) return rc;
	if((rc = cli__open_auth(cli, &udb)) != CLI_OK) return rc;
	rc = userdb__begin_write(udb);
	if(rc == MQC_OK) rc = userdb__setting_unset(udb, d->key);
	/* Not set: already what was asked. */
	if(rc == MQC_ERR_NOTFOUND) rc = MQC_OK;
	return cli__finish(udb, rc, "setting", d->key, "unset", "changing the setting");
}

static const struct cli_operands key_value = {2, 2, "expected a setting and its value"};
static const struct cli_operands key = {1, 1, "expected a setting"};

static const struct cli_cmd settings_cmds[] = {
	{.name = "list", .usage = "[--json]",
	 .help = "one setting per line: KEY VALUE (- when not set: each program's own configuration)",
	 .handler = settings_list, .json = true},
	{.name = "set", .usage = "KEY VALUE",
	 .help = "set KEY for the broker's plugin and the archiver at once", .handler = settings_set,
	 .operands = &key_value},
	{.name = "unset", .usage = "KEY",
	 .help = "forget KEY: each program's own configuration applies again", .handler = settings_unset,
	 .operands = &key},
};

int cli_settings__main(struct cli *cli)
{
	return cli__dispatch(cli, "settings", settings_cmds,
			sizeof(settings_cmds) / sizeof(settings_cmds[0]), cli->nargs - 1, cli->args + 1);
}
