/* cli_user.c - `mqchat-archiver user ...`: add, passwd, disable, enable, del,
 * export, list and show accounts of the user store (auth.db); the table
 * also holds nick (cli_nick.c), devices and revoke (cli_device.c). */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "archive.h"
#include "cli.h"
#include "err.h"
#include "nick.h"
#include "userdb.h"

/* New reference: the public profile of u (never the password hash). */
static json_t *profile_json(const struct userdb_user *u)
{
	return json_pack("{s:s, s:s, s:s, s:b, s:I}", "name", u->name, "kind", user_kind__name(u->kind),
			"nick", u->nick, "enabled", u->enabled, "created", (json_int_t)u->created);
}

/* The outcome rc of reading user name, printed the CLI's way; the exit
 * status. */
static int read_status(int rc, const char *name)
{
	if(rc == MQC_ERR_NOTFOUND) return cli__error(CLI_ERR_NOTFOUND, "no such user '%s'", name);
	if(rc != MQC_OK) return cli__fail(rc, "reading the user store");
	return CLI_OK;
}

/* Look a user up, printing "not found" the CLI's way. */
static int get_user(struct userdb *udb, const char *name, struct userdb_user *u)
{
	return read_status(userdb__user_get(udb, name, u), name);
}

/* Ask name's new password (from stdin's first line or the terminal, twice)
 * and hash it into hash (PWHASH_STR_LEN bytes); the password itself is
 * wiped. CLI_OK or an exit status (error printed). */
static int new_hash(const char *name, bool from_stdin, char *hash, size_t hashlen)
{
	char pw[PWHASH_MAX_PASSWORD + 2];
	size_t pwlen;
	int rc = cli__read_password(name, from_stdin, true, pw, sizeof(pw), &pwlen);

	if(rc == CLI_OK) rc = cli__hash_password(pw, pwlen, hash, hashlen);
	OPENSSL_cleanse(pw, sizeof(pw));
	if(rc != CLI_OK) OPENSSL_cleanse(hash, hashlen);
	return rc;
}

/* Why name cannot be added (or, restore, restored) now, printed the CLI's
 * way; CLI_OK if it can. Asked before the password, which nobody would
 * use otherwise, and again if the write finds the store changed. */
static int check_addable(struct userdb *udb, const char *name, bool restore)
{
	struct userdb_user u;
	char when[32], until[32];
	int64_t created, deleted;
	int rc, retired;

	rc = userdb__user_get(udb, name, &u);
	if(rc == MQC_OK) return cli__error(CLI_ERR_EXISTS, "user '%s' already exists", name);
	if(rc != MQC_ERR_NOTFOUND) return cli__fail(rc, "reading the user store");
	retired = userdb__retired_get(udb, name, &created, &deleted);
	if(retired != MQC_OK && retired != MQC_ERR_NOTFOUND) return cli__fail(retired, "reading the user store");
	if(restore){
		if(retired == MQC_OK) return CLI_OK;
		return cli__error(CLI_ERR_NOTFOUND, "no deleted user '%s' to restore", name);
	}
	rc = userdb__name_free(udb, name);
	if(rc == MQC_OK) return CLI_OK;
	if(rc != MQC_ERR_EXISTS) return cli__fail(rc, "reading the user store");
	if(retired != MQC_OK) return cli__error(CLI_ERR_EXISTS, "user '%s' already exists", name);
	return cli__error(CLI_ERR_EXISTS, "user '%s' was deleted on %s; the name is free again on %s"
			" (the broker may still hold messages queued for the deleted account until then);"
			" to give it back to the same person: `user add %s --restore`", name,
			cli__fmt_time(deleted, when, sizeof(when)),
			cli__fmt_time(deleted + USERDB_RETIRE_MS, until, sizeof(until)), name);
}

static int user_add(struct cli *cli)
{
	static const struct cmdline_opt opts[] = {
		{"kind", 0, CMDLINE_REQUIRED, 'k'},
		{"nick", 0, CMDLINE_REQUIRED, 'n'},
		{"password-stdin", 0, CMDLINE_NO_ARG, 'p'},
		{"restore", 0, CMDLINE_NO_ARG, 'r'},
		{0}};
	struct cmdline cl;
	struct userdb *udb = NULL;
	enum user_kind kind = USER_KIND_USER;
	const char *name, *nick = NULL;
	char hash[PWHASH_STR_LEN], q[80];
	bool from_stdin = false, restore = false;
	int c, rc;

	cli__options(cli, &cl, opts, cli->nargs, cli->args);
	while((c = cmdline__next(&cl)) > 0){
		switch(c){
			case 'k':
				kind = user_kind__parse(cl.value);
				if(kind == 0){
					return cli__error(CLI_ERR_INVALID, "invalid kind '%s': user, device or service",
							cli__quote(cl.value, q, sizeof(q)));
				}
				break;
			case 'n': nick = cl.value; break;
			case 'p': from_stdin = true; break;
			case 'r': restore = true; break;
		}
	}
	if(c < 0) return cli__options_end(cli, &cl, c);
	if(cl.nargs != 1) return cli__bad_args(cli, "expected one user name");
	name = cl.args[0];
	if((rc = cli__check_name("user", name)) != CLI_OK) return rc;
	if(nick == NULL) nick = name;
	if((rc = cli__check_nick(nick)) != CLI_OK) return rc;
	if((rc = cli__open_auth(cli, &udb)) != CLI_OK) return rc;
	if((rc = check_addable(udb, name, restore)) != CLI_OK) goto done;
	if((rc = cli__nick_free(udb, name, nick, !restore)) != CLI_OK) goto done;
	if((rc = new_hash(name, from_stdin, hash, sizeof(hash))) != CLI_OK) goto done;

	rc = userdb__begin_write(udb);
	/* Again under the write lock: no look-alike came in meanwhile. */
	if(rc == MQC_OK) rc = nick__check(udb, name, nick, strlen(nick), !restore, NULL, NULL, 0);
	if(rc == MQC_OK){
		rc = restore ? userdb__user_restore(udb, name, kind, nick, hash)
			: userdb__user_add(udb, name, kind, nick, hash);
	}
	rc = cli__end_write(udb, rc);
	if(rc == MQC_ERR_EXISTS || rc == MQC_ERR_NOTFOUND){
		/* Changed since the check (another command ran): say how. */
		rc = check_addable(udb, name, restore);
		if(rc == CLI_OK) rc = cli__error(CLI_ERR_RUNTIME, "adding the user: the store changed; try again");
	}else if(rc != MQC_OK){
		rc = cli__fail(rc, restore ? "restoring the user" : "adding the user");
	}else{
		printf("user %s %s\n", name, restore ? "restored" : "added");
	}
done:
	OPENSSL_cleanse(hash, sizeof(hash));
	cli__close_auth(udb);
	return rc;
}

/* The daemon logs in with DIR/archiver.pw: say so when its password changes
 * behind the file's back. */
static void service_pw_note(const struct cli *cli)
{
	char path[4096];
	struct stat st;

	if(cli__path(cli, CLI_PWFILE, path, sizeof(path)) && stat(path, &st) == 0){
		fprintf(stderr, "note: %s still holds the old password: put the new one there"
				" before the archiver reconnects\n", path);
	}
}

static int user_passwd(struct cli *cli)
{
	bool from_stdin = cmdline__given(&cli->opt, "password-stdin");
	struct userdb *udb;
	struct userdb_user u;
	const char *name = cli->args[0];
	char hash[PWHASH_STR_LEN];
	int rc;

	if((rc = cli__open_auth_for(cli, "user", name, &udb)) != CLI_OK) return rc;
	rc = get_user(udb, name, &u);
	if(rc == CLI_OK) rc = new_hash(name, from_stdin, hash, sizeof(hash));
	if(rc != CLI_OK){
		cli__close_auth(udb);
		return rc;
	}
	rc = userdb__begin_write(udb);
	if(rc == MQC_OK) rc = userdb__user_set_pwhash(udb, name, hash);
	OPENSSL_cleanse(hash, sizeof(hash));
	rc = cli__finish(udb, rc, "user", name, NULL, "changing the password");
	if(rc == CLI_OK){
		printf("password of %s changed\n", name);
		if(!strcmp(name, CLI_SERVICE_USER)) service_pw_note(cli);
	}
	return rc;
}

static int set_enabled(struct cli *cli, bool enabled)
{
	struct userdb *udb;
	const char *name = cli->args[0];
	int rc;

	if((rc = cli__open_auth_for(cli, "user", name, &udb)) != CLI_OK) return rc;
	rc = userdb__begin_write(udb);
	if(rc == MQC_OK) rc = userdb__user_set_enabled(udb, name, enabled);
	return cli__finish(udb, rc, "user", name, enabled ? "enabled" : "disabled",
			enabled ? "enabling the user" : "disabling the user");
}

static int user_disable(struct cli *cli)
{
	return set_enabled(cli, false);
}

static int user_enable(struct cli *cli)
{
	return set_enabled(cli, true);
}

/* Erase the archived messages of user name (made at created). */
static int erase_messages(struct cli *cli, const char *name, int64_t created)
{
	struct archive *ar;
	int64_t erased = 0;
	int rc;

	if((rc = cli__open_archive(cli, &ar)) != CLI_OK) return rc;
	rc = archive__erase_user(ar, name, created, &erased);
	archive__close(ar);
	if(rc != MQC_OK) return cli__fail(rc, "erasing the messages");
	printf("%lld messages of %s erased\n", (long long)erased, name);
	return CLI_OK;
}

static int user_del(struct cli *cli)
{
	bool erase = cmdline__given(&cli->opt, "erase");
	struct userdb *udb;
	struct userdb_user u;
	const char *name = cli->args[0];
	int rc;

	if((rc = cli__open_auth_for(cli, "user", name, &udb)) != CLI_OK) return rc;
	rc = get_user(udb, name, &u);
	/* Messages first: if erasing fails the account is still there and the
	 * command can simply be run again. */
	if(rc == CLI_OK && erase) rc = erase_messages(cli, name, u.created);
	if(rc != CLI_OK){
		cli__close_auth(udb);
		return rc;
	}
	rc = userdb__begin_write(udb);
	if(rc == MQC_OK) rc = userdb__user_del(udb, name);
	rc = cli__finish(udb, rc, "user", name, "deleted", "deleting the user");
	if(rc == CLI_OK) cli__push_forget(cli, name, NULL, true);
	return rc;
}

static int append_second_cb(const char *a, const char *b, void *arg)
{
	(void)a;
	return json_array_append_new(arg, json_string(b)) ? MQC_ERR_NOMEM : MQC_OK;
}

static int append_first_cb(const char *a, const char *b, void *arg)
{
	(void)b;
	return json_array_append_new(arg, json_string(a)) ? MQC_ERR_NOMEM : MQC_OK;
}

/* New reference: {"profile":..., "rooms":[...], "blocks":[...]} of an
 * existing user u, read inside the caller's transaction; NULL on error
 * (*rc set). */
static json_t *user_json(struct userdb *udb, const struct userdb_user *u, int *rc)
{
	json_t *rooms = json_array(), *blocks = json_array(), *obj;

	*rc = MQC_ERR_NOMEM;
	if(rooms == NULL || blocks == NULL) goto fail;
	*rc = userdb__member_each(udb, NULL, u->name, append_first_cb, rooms);
	if(*rc == MQC_OK) *rc = userdb__block_each(udb, u->name, append_second_cb, blocks);
	if(*rc != MQC_OK) goto fail;
	obj = json_pack("{s:o, s:o, s:o}", "profile", profile_json(u), "rooms", rooms, "blocks", blocks);
	if(obj == NULL) *rc = MQC_ERR_NOMEM;
	return obj;
fail:
	json_decref(rooms);
	json_decref(blocks);
	return NULL;
}

/* User name (into u) and its user_json (into *obj, a new reference), read
 * in one transaction. CLI_OK or an exit status (error printed). */
static int read_user(struct userdb *udb, const char *name, struct userdb_user *u, json_t **obj)
{
	int rc = userdb__begin_read(udb);

	*obj = NULL;
	if(rc == MQC_OK){
		rc = userdb__user_get(udb, name, u);
		if(rc == MQC_OK) *obj = user_json(udb, u, &rc);
		userdb__rollback(udb);
	}
	return read_status(rc, name);
}

static int user_export(struct cli *cli)
{
	struct userdb *udb;
	struct archive *ar = NULL;
	struct userdb_user u;
	json_t *obj = NULL, *msgs;
	const char *name = cli->args[0];
	int rc;

	if((rc = cli__open_auth_for(cli, "user", name, &udb)) != CLI_OK) return rc;
	if((rc = cli__open_archive(cli, &ar)) != CLI_OK) goto done;
	if((rc = read_user(udb, name, &u, &obj)) != CLI_OK) goto done;
	msgs = archive__export_user(ar, name, u.created);
	if(msgs == NULL){
		rc = cli__error(CLI_ERR_RUNTIME, "reading the archive: %s", archive__errmsg(ar));
		goto done;
	}
	if(json_object_set_new(obj, "messages", msgs) != 0){
		rc = cli__error(CLI_ERR_RUNTIME, "out of memory");
		goto done;
	}
	rc = cli__print_json(obj);
	obj = NULL;
done:
	json_decref(obj);
	archive__close(ar);
	cli__close_auth(udb);
	return rc;
}

static int list_cb(const struct userdb_user *u, void *arg)
{
	json_t *arr = arg;   /* NULL: print text */

	if(arr) return json_array_append_new(arr, profile_json(u)) ? MQC_ERR_NOMEM : MQC_OK;
	printf("%s %s %s %s\n", u->name, user_kind__name(u->kind), u->enabled ? "enabled" : "disabled",
			u->nick);
	return MQC_OK;
}

/* cli__list's each for user_list: arr is user_list's array pointer, which
 * cli__list has set (or left NULL for text). */
static int each_user(struct userdb *udb, void *arr)
{
	return userdb__user_each(udb, list_cb, *(json_t **)arr);
}

static int user_list(struct cli *cli)
{
	json_t *arr = NULL;

	return cli__list(cli, &arr, each_user, &arr, "reading the user store");
}

static void print_list(const char *key, json_t *arr)
{
	size_t i;
	json_t *v;

	fputs(key, stdout);
	json_array_foreach(arr, i, v) printf(" %s", json_string_value(v));
	fputc('\n', stdout);
}

static int user_show(struct cli *cli)
{
	struct userdb *udb;
	struct userdb_user u;
	json_t *obj;
	const char *name = cli->args[0];
	char when[32];
	int rc;

	if((rc = cli__open_auth_for(cli, "user", name, &udb)) != CLI_OK) return rc;
	rc = read_user(udb, name, &u, &obj);
	cli__close_auth(udb);
	if(rc != CLI_OK) return rc;
	if(cli->opt.json) return cli__print_json(obj);

	printf("name %s\nkind %s\nenabled %s\ncreated %s\nnick %s\n", u.name, user_kind__name(u.kind),
			u.enabled ? "yes" : "no", cli__fmt_time(u.created, when, sizeof(when)), u.nick);
	print_list("rooms", json_object_get(obj, "rooms"));
	print_list("blocks", json_object_get(obj, "blocks"));
	json_decref(obj);
	return CLI_OK;
}

static const struct cli_operands one_user = {1, 1, "expected one user name"};
static const struct cli_operands user_and_nick = {2, 2, "expected a user name and a nick"};
/* revoke checks its count itself: it depends on --all. */
static const struct cli_operands any = {0, CLI_ANY, NULL};

static const struct cli_cmd user_cmds[] = {
	{.name = "add", .usage = "NAME [--kind user|device|service] [--nick NICK] [--password-stdin] [--restore]",
	 .help = "add an account; the password is asked on the terminal or read from stdin's first line;"
		 " --restore gives a deleted account's name back to the same person, with its messages",
	 .handler = user_add, .raw = true},
	{.name = "passwd", .usage = "NAME [--password-stdin]",
	 .help = "set a new password", .handler = user_passwd, .operands = &one_user, .opts = {{"password-stdin"}}},
	{.name = "disable", .usage = "NAME",
	 .help = "refuse logins and close live connections (within 1 s)", .handler = user_disable,
	 .operands = &one_user},
	{.name = "enable", .usage = "NAME", .help = "allow logins again", .handler = user_enable,
	 .operands = &one_user},
	{.name = "del", .usage = "NAME [--erase]",
	 .help = "delete the account, its memberships and blocks; --erase also deletes its messages;"
		 " nobody else may take the name for 30 days",
	 .handler = user_del, .operands = &one_user, .opts = {{"erase"}}},
	{.name = "nick", .usage = "NAME NICK",
	 .help = "set the nick others see (not one that looks like another account's name or nick)",
	 .handler = cli_user__nick, .operands = &user_and_nick},
	{.name = "export", .usage = "NAME",
	 .help = "print profile, rooms, blocks and messages as one JSON object", .handler = user_export,
	 .operands = &one_user},
	{.name = "list", .usage = "[--json]",
	 .help = "one account per line: NAME KIND enabled|disabled NICK", .handler = user_list, .json = true},
	{.name = "show", .usage = "NAME [--json]",
	 .help = "one account with its rooms and blocks", .handler = user_show, .operands = &one_user, .json = true},
	{.name = "devices", .usage = "NAME [--json]",
	 .help = "the devices that hold a device token, one per line: DEVICE CREATED LAST_SEEN|never",
	 .handler = cli_user__devices, .operands = &one_user, .json = true},
	{.name = "revoke", .usage = "NAME DEVICE|--all",
	 .help = "take back a device's token (--all: every device's) and close its connections",
	 .handler = cli_user__revoke, .opts = {{"all"}}, .operands = &any},
};

int cli_user__main(struct cli *cli)
{
	return cli__dispatch(cli, "user", user_cmds, sizeof(user_cmds) / sizeof(user_cmds[0]),
			cli->nargs - 1, cli->args + 1);
}
