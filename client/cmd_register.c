/* cmd_register.c - "register": self-registration through the archiver as the
 * pseudo-user _register (only when the server has registration open). */
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "session.h"

struct reg_error {
	const char *code;
	int exit;
	const char *text;
};

static const struct reg_error reg_errors[] = {
	{ "taken", EXIT_FAILED, "the name is already taken" },
	{ "invalid_name", EXIT_USAGE, "the name is not allowed (lowercase a-z 0-9 _ . -, 1..32)" },
	{ "weak_password", EXIT_USAGE, "the password is too weak" },
	{ "invalid_nick", EXIT_USAGE, "the nickname is not allowed" },
	{ "nick_taken", EXIT_FAILED, "the nickname looks like another account's name or nick" },
	{ "invite_required", EXIT_FAILED, "registration needs an invite code (--invite CODE)" },
	{ "invite_invalid", EXIT_FAILED, "the invite code is invalid, used or expired" },
	{ "closed", EXIT_FAILED, "registration is closed on this server" },
	{ "rate_limited", EXIT_FAILED, "too many registrations; try again later" },
};

static int new_password(struct options *opt, const char *user)
{
	char a[1024], b[1024], prompt[96];
	int rc = EXIT_OK, p;

	if(opt->password_file || (getenv("MQCHAT_PASSWORD") && *getenv("MQCHAT_PASSWORD"))){
		return options__password(opt);
	}
	snprintf(prompt, sizeof(prompt), "New password for %s: ", user);
	p = options__prompt(prompt, a, sizeof(a));
	if(p == EXIT_OK) p = options__prompt("Again: ", b, sizeof(b));
	if(p != EXIT_OK){
		/* Too long was said already. */
		if(p != EXIT_USAGE) util__error("no password: use --password-file, MQCHAT_PASSWORD or a terminal");
		rc = EXIT_USAGE;
	}else if(strcmp(a, b) != 0){
		util__error("the passwords differ");
		rc = EXIT_USAGE;
	}else if(a[0] == '\0'){
		util__error("empty password");
		rc = EXIT_USAGE;
	}else if((opt->password = strdup(a)) == NULL){
		rc = EXIT_FAILED;
	}
	explicit_bzero(a, sizeof(a));
	explicit_bzero(b, sizeof(b));
	return rc;
}

int cmd_register__run(struct options *opt, const struct cmd_args *a)
{
	struct session s;
	const char *nick = cmdline__value(&a->vals, "nick"), *invite = cmdline__value(&a->vals, "invite");
	const char *user, *code, *msg;
	char why[160];
	json_t *req = NULL, *resp = NULL;
	size_t k;
	int rc;

	if(a->nargs == 0) return cmd__usage("register");
	user = a->args[0];
	if(!names__valid_str(user)) return login__bad_name("user", user);
	if(nick && !names__nick_valid(nick, strlen(nick), why, sizeof(why))){
		util__error("not a nickname: %s", why);
		return EXIT_USAGE;
	}
	if((rc = new_password(opt, user))) return rc;

	req = json_pack("{s:s, s:s}", "user", user, "password", opt->password);
	if(req == NULL) return EXIT_FAILED;
	if(nick) json_object_set_new(req, "nick", json_string(nick));
	if(invite) json_object_set_new(req, "invite", json_string(invite));

	if((rc = session__init(&s, opt, SESSION_REGISTER)) == EXIT_OK
			&& (rc = session__connect(&s)) == EXIT_OK){
		rc = session__rpc(&s, req, &resp);
	}
	session__cleanup(&s);
	json_object_del(req, "password");
	json_decref(req);
	if(rc) return rc;

	if(json_is_true(json_object_get(resp, "ok"))){
		printf("registered %s\n", user);
		json_decref(resp);
		return EXIT_OK;
	}
	code = json_string_value(json_object_get(resp, "error"));
	msg = json_string_value(json_object_get(resp, "message"));
	rc = EXIT_FAILED;
	for(k=0; k<sizeof(reg_errors)/sizeof(reg_errors[0]); k++){
		if(code && !strcmp(code, reg_errors[k].code)){
			util__error("%s%s%s", reg_errors[k].text, msg ? ": " : "", msg ? msg : "");
			rc = reg_errors[k].exit;
			break;
		}
	}
	if(k == sizeof(reg_errors)/sizeof(reg_errors[0])){
		util__error("registration failed: %s (%s)", msg ? msg : "no reason given",
				code ? code : "no code");
	}
	json_decref(resp);
	return rc;
}
