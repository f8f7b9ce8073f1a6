/* cmd_devices.c - the devices that hold a token (docs/PROTOCOL.md, "Device
 * tokens"; token.h): devices, devices revoke, login, logout. */
#include <stdlib.h>
#include <string.h>

#include "session.h"
#include "token.h"

/* This installation's two devices: [0] listen and chat, [1] one-shot. */
static void my_devices(const struct options *opt, char dev[2][DEVICE_MAX_LEN + 1])
{
	snprintf(dev[0], DEVICE_MAX_LEN + 1, "%s", opt->device);
	token__oneshot_device(opt->device, dev[1]);
}

/* Connect a one-shot session s (cleaned up by the caller either way). */
static int connect_once(struct options *opt, struct session *s)
{
	int rc;

	if((rc = session__init(s, opt, SESSION_ONESHOT))) return rc;
	return session__connect(s);
}

/* Say why a silent session__rpc failed with rc, and return rc. */
static int rpc_failed(struct session *s, int rc)
{
	if(s->rpc_error[0]) util__error("%s", s->rpc_error);
	else if(rc == EXIT_TIMEOUT) util__error("no answer from the archiver within %d s (is it "
			"running?)", s->opt->timeout_s);
	else util__error("connection to the broker lost before the archiver answered");
	return rc;
}

/* device_revoke of one device (value), or of all (value NULL). *count is
 * how many tokens went: 0 for a device without one (not_found), -1 if
 * unknown. self: the revocation takes this connection's own token, so the
 * broker closes it before the answer can come, and that means done. */
static int revoke_one(struct session *s, const char *value, bool self, int *count)
{
	json_t *req, *resp = NULL;
	int rc;

	*count = 0;
	req = value ? json_pack("{s:s, s:s}", "op", "device_revoke", "device", value)
		: json_pack("{s:s, s:b}", "op", "device_revoke", "all", 1);
	if(req == NULL){
		util__error("out of memory");
		return EXIT_FAILED;
	}
	s->silent = s->quiet = true;
	rc = session__rpc(s, req, &resp);
	s->silent = s->quiet = false;
	json_decref(req);
	if(rc == EXIT_OK){
		*count = (int)json_integer_value(json_object_get(resp, "revoked"));
	}else if(rc == EXIT_UNREACH && self){
		*count = -1;
		rc = EXIT_OK;
	}else if(!strcmp(s->rpc_code, "not_found")){
		rc = EXIT_OK;
	}else{
		rpc_failed(s, rc);
	}
	json_decref(resp);
	return rc;
}

/* The answer's devices (new reference), or NULL after saying why. */
static json_t *list(struct session *s)
{
	json_t *req = json_pack("{s:s}", "op", "devices"), *resp = NULL, *devs;

	if(req == NULL || session__rpc(s, req, &resp) != EXIT_OK){
		json_decref(req);
		return NULL;
	}
	json_decref(req);
	devs = json_incref(json_object_get(resp, "devices"));
	json_decref(resp);
	if(!json_is_array(devs)){
		json_decref(devs);
		util__error("the archiver's answer lists no devices");
		return NULL;
	}
	return devs;
}

static void print_devices(const struct options *opt, json_t *devs)
{
	char mine[2][DEVICE_MAX_LEN + 1], since[32], seen[32];
	json_t *d;
	size_t i;

	my_devices(opt, mine);
	json_array_foreach(devs, i, d){
		const char *name = json_string_value(json_object_get(d, "device"));
		int64_t created = json_integer_value(json_object_get(d, "created"));
		int64_t last = json_integer_value(json_object_get(d, "last_seen"));
		const char *this = "";

		if(name == NULL) continue;
		if(!strcmp(name, mine[0])) this = " (this device)";
		else if(!strcmp(name, mine[1])) this = " (this device's one-shot commands)";
		if(opt->json){
			char *line;
			if(*this) json_object_set_new(d, "this_device", json_true());
			line = json_dumps(d, JSON_COMPACT | JSON_ENSURE_ASCII);
			if(line) printf("%s\n", line);
			free(line);
			continue;
		}
		util__fmt_time(created, true, since, sizeof(since));
		if(last > 0) util__fmt_time(last, true, seen, sizeof(seen));
		printf("%s: token since %s, %s%s%s\n", name, since, last > 0 ? "last seen " : "not seen since",
				last > 0 ? seen : "", this);
	}
}

/* Forget this installation's stored tokens; true if there was one. */
static bool forget_mine(const struct options *opt)
{
	char mine[2][DEVICE_MAX_LEN + 1];
	bool a, b;

	my_devices(opt, mine);
	a = token__forget(opt, mine[0]);
	b = token__forget(opt, mine[1]);
	return a || b;
}

static void print_count(const struct options *opt, const char *what, int count)
{
	if(opt->json) printf("{\"revoked\":%d}\n", count);
	else printf("revoked %d device token%s%s\n", count, count == 1 ? "" : "s", what);
}

/* devices revoke DEVICE: the device and its one-shot twin (a lost laptop
 * goes whole). */
static int revoke_device(struct options *opt, struct session *s, const char *device)
{
	char twin[DEVICE_MAX_LEN + 1], mine[2][DEVICE_MAX_LEN + 1];
	int rc, n1 = 0, n2 = 0;
	bool self;

	my_devices(opt, mine);
	token__oneshot_device(device, twin);
	self = s->use_token && !strcmp(twin, s->token_dev);
	if((rc = revoke_one(s, device, s->use_token && !strcmp(device, s->token_dev), &n1))) return rc;
	if(strcmp(twin, device) != 0 && (rc = revoke_one(s, twin, self, &n2))) return rc;
	if(n1 == 0 && n2 == 0){
		util__error("device %s holds no token (see `mqchat devices`)", device);
		return EXIT_FAILED;
	}
	if(!strcmp(device, mine[0]) || !strcmp(device, mine[1])) forget_mine(opt);
	print_count(opt, "", (n1 < 0 ? 1 : n1) + (n2 < 0 ? 1 : n2));
	return EXIT_OK;
}

/* devices revoke --others: every device but this installation's two. */
static int revoke_others(struct options *opt, struct session *s)
{
	char mine[2][DEVICE_MAX_LEN + 1];
	json_t *devs = list(s), *d;
	int rc = EXIT_OK, n, total = 0;
	size_t i;

	if(devs == NULL) return EXIT_FAILED;
	my_devices(opt, mine);
	json_array_foreach(devs, i, d){
		const char *name = json_string_value(json_object_get(d, "device"));
		if(name == NULL || !strcmp(name, mine[0]) || !strcmp(name, mine[1])) continue;
		if((rc = revoke_one(s, name, false, &n))) break;
		total += n;
	}
	json_decref(devs);
	if(rc == EXIT_OK) print_count(opt, " (other devices)", total);
	return rc;
}

static int revoke_all(struct options *opt, struct session *s)
{
	int rc, n;

	if((rc = revoke_one(s, NULL, s->use_token, &n))) return rc;
	forget_mine(opt);
	if(n >= 0) print_count(opt, " (every device, this one too)", n);
	else if(opt->json) printf("{\"revoked\":null}\n");
	else printf("revoked every device token, this device's too\n");
	return EXIT_OK;
}

int cmd_devices__run(struct options *opt, const struct cmd_args *a)
{
	struct session s;
	bool others = cmdline__given(&a->vals, "others"), all = cmdline__given(&a->vals, "all");
	bool rev = a->nargs > 0 && !strcmp(a->args[0], "revoke");
	const char *device = NULL;
	json_t *devs;
	char why[96];
	int rc;

	if(a->nargs > 0 && !rev) return cmd__unexpected(a->args[0], "devices");
	if(rev && a->nargs == 2) device = a->args[1];
	/* revoke takes exactly one of DEVICE, --others, --all; a list none. */
	if(rev ? (device != NULL) + others + all != 1 : others || all) return cmd__usage("devices");
	if(device && !names__valid_device(device, strlen(device))){
		util__error("invalid device name '%s': %s", device,
				login__device_problem(device, why, sizeof(why)));
		return EXIT_USAGE;
	}
	if((rc = options__need_user(opt))) return rc;
	if((rc = connect_once(opt, &s)) == EXIT_OK){
		if(device) rc = revoke_device(opt, &s, device);
		else if(others) rc = revoke_others(opt, &s);
		else if(all) rc = revoke_all(opt, &s);
		else if((devs = list(&s)) == NULL) rc = EXIT_FAILED;
		else{
			print_devices(opt, devs);
			json_decref(devs);
		}
	}
	session__cleanup(&s);
	return rc;
}

/* True if both tokens of this installation are stored and readable;
 * *rc EXIT_USAGE (said) if one is unreadable. */
static bool have_tokens(const struct options *opt, int *rc)
{
	char mine[2][DEVICE_MAX_LEN + 1], tok[DEVTOKEN_LEN + 1];
	bool have = true;
	int i;

	*rc = EXIT_OK;
	my_devices(opt, mine);
	for(i=0; i<2 && *rc == EXIT_OK; i++){
		*rc = token__load(opt, mine[i], tok);
		have = have && tok[0] != '\0';
	}
	memset(tok, 0, sizeof(tok));
	return have && *rc == EXIT_OK;
}

int cmd_login__run(struct options *opt, const struct cmd_args *a)
{
	struct session s;
	int rc;

	(void)a;   /* no options, no operands (main.c checked) */
	if((rc = options__need_user(opt))) return rc;
	if(have_tokens(opt, &rc)){
		printf("already logged in as %s@%s (`mqchat logout` forgets the device token)\n",
				opt->user, opt->device);
		return EXIT_OK;
	}
	if(rc) return rc;
	/* The password from its usual sources, then the tokens (session.c). */
	opt->want_token = true;
	rc = connect_once(opt, &s);
	session__cleanup(&s);
	if(rc) return rc;
	if(!have_tokens(opt, &rc)) return rc ? rc : EXIT_FAILED; /* the warning was said */
	printf("logged in as %s@%s: device token stored, no password needed from now on\n",
			opt->user, opt->device);
	return EXIT_OK;
}

int cmd_logout__run(struct options *opt, const struct cmd_args *a)
{
	char mine[2][DEVICE_MAX_LEN + 1];
	struct session s;
	int rc, n = 0;

	(void)a;   /* no options, no operands (main.c checked) */
	if((rc = options__need_user(opt))) return rc;
	my_devices(opt, mine);
	if(!token__exists(opt, mine[0]) && !token__exists(opt, mine[1])){
		printf("no device token stored for %s@%s\n", opt->user, opt->device);
		return EXIT_OK;
	}
	/* The server first (with the one-shot token, or a password given),
	 * never a prompt; the files go whatever it says. */
	rc = session__init(&s, opt, SESSION_ONESHOT);
	s.no_fallback = true;
	if(rc == EXIT_OK && !s.use_token && !options__explicit_password(opt)) rc = -1;
	if(rc == EXIT_OK) rc = session__connect(&s);
	if(rc == EXIT_OK) rc = revoke_one(&s, mine[0], false, &n);
	if(rc == EXIT_OK) rc = revoke_one(&s, mine[1], s.use_token, &n);
	if(rc == EXIT_AUTH && s.token_refused) rc = EXIT_OK; /* revoked already */
	session__cleanup(&s);
	forget_mine(opt);
	if(rc == EXIT_OK){
		printf("logged out %s@%s: device token revoked and forgotten\n", opt->user, opt->device);
		return EXIT_OK;
	}
	fprintf(stderr, "forgot the device token of %s@%s, but the server was not told: revoke it "
			"with `mqchat devices revoke %s` from another device\n", opt->user, opt->device,
			opt->device);
	return rc < 0 ? EXIT_FAILED : rc;
}
