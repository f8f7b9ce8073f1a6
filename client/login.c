/* login.c - why a login is refused: names checked before connecting, with
 * the exact fault, and after a refused CONNECT (which says only "not
 * authorized") the plugin's answer to login_status, asked over a
 * `_register` connection (docs/PROTOCOL.md, "Why a login was refused"). */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "session.h"
#include "timeutil.h"

/* How long to wait for the answer to login_status, connecting included:
 * the person is waiting, and the fallback line is nearly as useful. */
#define LOGIN_STATUS_MS 3000

/* The character c as a person reads it: 'B', or "byte 0x0a" for a
 * control or non-ASCII byte. */
static void show_char(unsigned char c, char *out, size_t len)
{
	if(c > 0x20 && c < 0x7f) snprintf(out, len, "'%c'", c);
	else if(c == ' ') snprintf(out, len, "a space");
	else snprintf(out, len, "byte 0x%02x", c);
}

static bool name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/* What a name of one kind may be, as the checks below tell it. */
struct name_rule {
	bool (*valid)(const char *s, size_t len);
	size_t max;
	bool upper;             /* A-Z allowed (else "names are lower-case") */
	const char *alphabet;   /* the allowed characters, in words */
	bool first_alnum;       /* the first one a letter or a digit */
};

static const struct name_rule user_rule = {
	names__valid, NAME_MAX_LEN, false, "a-z 0-9 _ . -", true };
static const struct name_rule device_rule = {
	names__valid_device, DEVICE_MAX_LEN, true, "A-Z a-z 0-9 _ . -", false };

/* NULL if s is valid by r, else the first fault found, written to buf. */
static const char *name_problem(const struct name_rule *r, const char *s, char *buf, size_t len)
{
	size_t n = strlen(s), i;
	char ch[16];

	if(r->valid(s, n)) return NULL;
	if(n == 0){
		snprintf(buf, len, "it is empty");
		return buf;
	}
	if(n > r->max){
		snprintf(buf, len, "%zu characters, at most %zu", n, r->max);
		return buf;
	}
	for(i=0; i<n; i++){
		unsigned char c = (unsigned char)s[i];
		bool upper = c >= 'A' && c <= 'Z';
		if(upper && !r->upper){
			snprintf(buf, len, "upper-case '%c': names are lower-case", c);
			return buf;
		}
		if(!upper && !name_char(c)){
			show_char(c, ch, sizeof(ch));
			snprintf(buf, len, "%s is not allowed (only %s)", ch, r->alphabet);
			return buf;
		}
	}
	/* Every character is allowed: only the first one's rule is left. */
	if(!r->first_alnum){
		snprintf(buf, len, "1..%zu of %s", r->max, r->alphabet);
		return buf;
	}
	show_char((unsigned char)s[0], ch, sizeof(ch));
	snprintf(buf, len, "it must start with a letter or a digit, not %s", ch);
	return buf;
}

const char *login__name_problem(const char *s, char *buf, size_t len)
{
	return name_problem(&user_rule, s, buf, len);
}

int login__bad_name(const char *what, const char *name)
{
	char why[96];

	util__error("invalid %s name '%s': %s (names are 1..%d of a-z 0-9 _ . -, starting "
			"with a letter or a digit)", what, name, login__name_problem(name, why, sizeof(why)),
			NAME_MAX_LEN);
	return EXIT_USAGE;
}

int login__conv_operand(const char *arg, const char **with, const char **room)
{
	*with = *room = NULL;
	if(arg[0] == '#'){
		*room = arg + 1;
		return names__valid_str(*room) ? EXIT_OK : login__bad_name("room", *room);
	}
	*with = arg;
	return names__valid_str(arg) ? EXIT_OK : login__bad_name("user", arg);
}

const char *login__device_problem(const char *s, char *buf, size_t len)
{
	return name_problem(&device_rule, s, buf, len);
}

static bool answered(struct session *s, void *arg)
{
	(void)arg;
	return s->rpc_resp != NULL;
}

json_t *login__status(struct options *opt, const char *user)
{
	struct session s;
	const char *topics[1];
	json_t *req = NULL, *resp = NULL;
	char *payload = NULL;

	if(session__init(&s, opt, SESSION_REGISTER) != EXIT_OK){
		session__cleanup(&s);
		return NULL;
	}
	s.silent = true;
	s.until = time__mono_ms() + LOGIN_STATUS_MS;
	topics[0] = s.rpc_topic;
	if(session__connect(&s) != EXIT_OK
			|| session__subscribe(&s, topics, 1, 1, false) != EXIT_OK
			|| s.ngranted < 1 || s.granted[0] >= 0x80){
		goto done;
	}
	util__randhex(s.rpc_id, 12);
	req = json_pack("{s:s, s:s, s:s}", "id", s.rpc_id, "op", "login_status", "user", user);
	payload = req ? json_dumps(req, JSON_COMPACT) : NULL;
	/* The plugin answers it itself, so its PUBACK says "not authorized"
	 * (it goes no further): untracked, only the answer counts. */
	if(payload == NULL
			|| session__publish(&s, s.rpc_req, payload, strlen(payload), false, NULL) != EXIT_OK){
		goto done;
	}
	if(session__wait(&s, answered, NULL, s.until, -1) == WAIT_DONE
			&& json_is_true(json_object_get(s.rpc_resp, "ok"))){
		resp = s.rpc_resp;
		s.rpc_resp = NULL;
	}
done:
	free(payload);
	json_decref(req);
	session__cleanup(&s);
	return resp;
}

int login__why_refused(struct options *opt, const char *user)
{
	return login__say_status(user, login__status(opt, user));
}

int login__say_status(const char *user, json_t *resp)
{
	const char *status = json_string_value(json_object_get(resp, "status"));
	json_int_t retry = json_integer_value(json_object_get(resp, "retry_ms"));

	if(status && !strcmp(status, "throttled")){
		/* Rounded up: trying again after N s is never too early. */
		long long secs = retry > 0 ? (long long)((retry + 999) / 1000) : 1;
		util__error("login as %s refused: too many attempts: wait %lld s", user, secs);
	}else if(status && !strcmp(status, "disabled")){
		util__error("login as %s refused: account disabled: ask the operator", user);
	}else if(status && !strcmp(status, "too_many_connections")){
		util__error("login as %s refused: %lld connections are open already: close one",
				user, (long long)json_integer_value(json_object_get(resp, "limit")));
	}else if(status && !strcmp(status, "too_many_sessions")){
		util__error("login as %s refused: %lld devices have sessions already: use one of their "
				"client ids", user, (long long)json_integer_value(json_object_get(resp, "limit")));
	}else if(status && !strcmp(status, "refused")){
		util__error("login as %s refused: wrong user name or password", user);
	}else{
		util__error("login as %s refused (wrong user name or password, or too many attempts)",
				user);
	}
	json_decref(resp);
	return EXIT_AUTH;
}
