/* cli_device.c - `mqchat-archiver user devices NAME [--json]` and `user
 * revoke NAME DEVICE|--all`: the devices of a person that hold a device
 * token (docs/PROTOCOL.md, "Device tokens"), and taking tokens back (with
 * their push targets, push.db). The store keeps only each token's
 * SHA-256, which is never printed. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "err.h"
#include "names.h"
#include "push_store.h"
#include "userdb.h"

struct devices_ctx {
	const char *name;
	json_t *arr;            /* NULL: print text */
};

static int device_cb(const struct userdb_device *d, void *arg)
{
	struct devices_ctx *ctx = arg;
	char created[32], seen[32];

	if(ctx->arr){
		json_t *o = json_pack("{s:s, s:I, s:I}", "device", d->device, "created", (json_int_t)d->created,
				"last_seen", (json_int_t)d->last_seen);
		return o == NULL || json_array_append_new(ctx->arr, o) ? MQC_ERR_NOMEM : MQC_OK;
	}
	printf("%s %s %s\n", d->device, cli__fmt_time(d->created, created, sizeof(created)),
			d->last_seen > 0 ? cli__fmt_time(d->last_seen, seen, sizeof(seen)) : "never");
	return MQC_OK;
}

/* The user's devices, read in one transaction with the check that the
 * user exists (MQC_ERR_NOTFOUND if not). */
static int each_device(struct userdb *udb, struct devices_ctx *ctx)
{
	struct userdb_user u;
	int rc = userdb__begin_read(udb);

	if(rc != MQC_OK) return rc;
	rc = userdb__user_get(udb, ctx->name, &u);
	if(rc == MQC_OK) rc = userdb__device_each(udb, ctx->name, device_cb, ctx);
	userdb__rollback(udb);
	return rc;
}

int cli_user__devices(struct cli *cli)
{
	struct devices_ctx ctx = {cli->args[0], NULL};
	struct userdb *udb;
	int rc;

	if((rc = cli__open_auth_for(cli, "user", ctx.name, &udb)) != CLI_OK) return rc;
	/* Not cli__list: an unknown user is "no such user", not a failed read. */
	rc = cli->opt.json && (ctx.arr = json_array()) == NULL ? MQC_ERR_NOMEM : each_device(udb, &ctx);
	cli__close_auth(udb);
	if(rc != MQC_OK) json_decref(ctx.arr);
	if(rc == MQC_ERR_NOTFOUND) return cli__error(CLI_ERR_NOTFOUND, "no such user '%s'", ctx.name);
	if(rc != MQC_OK) return cli__fail(rc, "reading the devices");
	return cli->opt.json ? cli__print_json(ctx.arr) : CLI_OK;
}

void cli__push_forget(struct cli *cli, const char *user, const char *device, bool account)
{
	char path[4096], err[512] = "";
	struct push_store *db = NULL;
	int rc, removed = 0;

	snprintf(path, sizeof(path), "%s/push.db", cli->datadir);
	if(access(path, F_OK) != 0) return;
	rc = push_store__open(cli->datadir, &db, err, sizeof(err));
	if(rc == MQC_OK){
		(void)push_store__set_busy_ms(db, cli->busy_ms);
		rc = account ? push_store__user_forget(db, user) : push_store__target_remove(db, user, device, &removed);
		if(rc != MQC_OK) snprintf(err, sizeof(err), "%s", mqc_strerror(rc));
	}
	push_store__close(db);
	if(rc != MQC_OK) fprintf(stderr, "note: the push targets of %s stay in %s: %s\n", user, path, err);
}

int cli_user__revoke(struct cli *cli)
{
	bool all = cmdline__given(&cli->opt, "all"), known;
	struct userdb *udb;
	struct userdb_user u;
	const char *name, *device = NULL;
	char q[80];
	int rc, count = 0;

	if(cli->nargs != (all ? 1 : 2)){
		return cli__bad_args(cli, all ? "expected one user name with --all"
				: "expected a user name and a device (or --all)");
	}
	name = cli->args[0];
	if(!all){
		device = cli->args[1];
		if(!names__valid_device(device, strlen(device))){
			return cli__error(CLI_ERR_INVALID, "invalid device name '%s': 1..%d of A-Z a-z 0-9 _ . -",
					cli__quote(device, q, sizeof(q)), DEVICE_MAX_LEN);
		}
	}
	if((rc = cli__open_auth_for(cli, "user", name, &udb)) != CLI_OK) return rc;
	rc = userdb__begin_write(udb);
	if(rc == MQC_OK) rc = userdb__user_get(udb, name, &u);
	/* Unknown user and unknown device are both NOTFOUND. */
	known = rc == MQC_OK;
	if(known) rc = all ? userdb__device_del_others(udb, name, NULL, &count)
		: userdb__device_del(udb, name, device);
	rc = cli__end_write(udb, rc);
	/* Returns once the broker has closed the revoked devices. */
	cli__close_auth(udb);
	if(rc == MQC_ERR_NOTFOUND && !known) return cli__error(CLI_ERR_NOTFOUND, "no such user '%s'", name);
	if(rc == MQC_ERR_NOTFOUND){
		return cli__error(CLI_ERR_NOTFOUND, "user '%s' has no device '%s' with a token", name, device);
	}
	if(rc != MQC_OK) return cli__fail(rc, "revoking");
	cli__push_forget(cli, name, device, false);
	if(all) printf("%d device%s of %s revoked\n", count, count == 1 ? "" : "s", name);
	else printf("device %s of %s revoked\n", device, name);
	return CLI_OK;
}
