/* options.c - the client's configuration: config file, MQCHAT_HOST and
 * MQCHAT_PORT, global flags (each over the one before) and the password
 * (file, environment or a prompt, never argv). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmdline.h"
#include "mqchat.h"
#include "prompt.h"

#define PASSWORD_MAX 1024

static int set_str(char **field, const char *val)
{
	char *s = strdup(val);

	if(s == NULL){
		util__error("out of memory");
		return EXIT_FAILED;
	}
	free(*field);
	*field = s;
	return EXIT_OK;
}

/* The host name reduced to the device grammar [A-Za-z0-9_.-]{1,64}. */
static void default_device(char *out, size_t len)
{
	char host[256];
	size_t i, n = 0;

	if(gethostname(host, sizeof(host)) != 0) host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	for(i=0; host[i] && n + 1 < len && n < DEVICE_MAX_LEN; i++){
		char c = host[i];
		if((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
				|| c == '_' || c == '.' || c == '-'){
			out[n++] = c;
		}
	}
	if(n == 0){
		snprintf(out, len, "cli");
		return;
	}
	out[n] = '\0';
}

void options__init(struct options *opt)
{
	char dev[DEVICE_MAX_LEN + 1];

	memset(opt, 0, sizeof(*opt));
	opt->port = 1883;
	opt->timeout_s = 10;
	default_device(dev, sizeof(dev));
	opt->host = strdup("localhost");
	opt->device = strdup(dev);
}

void options__cleanup(struct options *opt)
{
	free(opt->host);
	free(opt->user);
	free(opt->device);
	free(opt->cafile);
	free(opt->password_file);
	if(opt->password){
		explicit_bzero(opt->password, strlen(opt->password));
		free(opt->password);
	}
	memset(opt, 0, sizeof(*opt));
}

static int set_port(struct options *opt, const char *val, const char *where)
{
	long long p = util__number(val, 1, 65535);

	if(p < 0){
		util__error("%s: invalid port '%s'", where, val);
		return EXIT_USAGE;
	}
	opt->port = (int)p;
	return EXIT_OK;
}

/* The broker's host or port from a place of the precedence order. */
static int set_host_from(struct options *opt, const char *val, enum options_from from)
{
	int rc = set_str(&opt->host, val);

	if(rc == EXIT_OK) opt->host_from = from;
	return rc;
}

static int set_port_from(struct options *opt, const char *val, const char *where,
		enum options_from from)
{
	int rc = set_port(opt, val, where);

	if(rc == EXIT_OK) opt->port_from = from;
	return rc;
}

/* MQCHAT_HOST and MQCHAT_PORT, over the config file and under the flags
 * (a shell or a service unit sets the broker once for every command). An
 * empty one counts as unset, as for MQCHAT_PASSWORD. */
static int read_env(struct options *opt)
{
	const char *host = getenv("MQCHAT_HOST"), *port = getenv("MQCHAT_PORT");
	int rc = EXIT_OK;

	if(host && *host) rc = set_host_from(opt, host, FROM_ENV);
	if(rc == EXIT_OK && port && *port){
		rc = set_port_from(opt, port, "MQCHAT_PORT", FROM_ENV);
		if(rc) fprintf(stderr, "(MQCHAT_PORT is the broker's port, 1..65535: "
				"fix it or unset it)\n");
	}
	return rc;
}

static int set_key(struct options *opt, const char *key, const char *val, const char *where)
{
	if(!strcmp(key, "host")) return set_host_from(opt, val, FROM_CONFIG);
	if(!strcmp(key, "port")) return set_port_from(opt, val, where, FROM_CONFIG);
	if(!strcmp(key, "user")) return set_str(&opt->user, val);
	if(!strcmp(key, "device")) return set_str(&opt->device, val);
	if(!strcmp(key, "cafile")) return set_str(&opt->cafile, val);
	if(!strcmp(key, "password_file")) return set_str(&opt->password_file, val);
	util__error("%s: unknown key '%s'", where, key);
	return EXIT_USAGE;
}

static char *trim(char *s)
{
	char *e;

	while(*s == ' ' || *s == '\t') s++;
	e = s + strlen(s);
	while(e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) e--;
	*e = '\0';
	return s;
}

int options__check_private(FILE *fp, const char *what, const char *path)
{
	struct stat st;

	if(fstat(fileno(fp), &st) != 0 || (st.st_mode & (S_IRWXG | S_IRWXO))){
		util__error("%s %s is accessible by group or others; run: chmod 600 %s",
				what, path, path);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

int options__config_dir(char *dir, size_t len)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");

	if(xdg && *xdg) snprintf(dir, len, "%s/mqchat", xdg);
	else if(home && *home) snprintf(dir, len, "%s/.config/mqchat", home);
	else return -1;
	return 0;
}

int options__state_path(const struct options *opt, const char *suffix, char *path, size_t len,
		bool create)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	char dir[4096];

	if(xdg && *xdg) snprintf(dir, sizeof(dir), "%s/mqchat", xdg);
	else if(home && *home) snprintf(dir, sizeof(dir), "%s/.local/state/mqchat", home);
	else return -1;
	if(create && util__mkdirs(dir) != 0) return -1;
	snprintf(path, len, "%s/%s@%s%s", dir, opt->user, opt->device, suffix);
	return 0;
}

/* Read "key = value" lines; the file must not be readable by group/others
 * since it may name a password file. A missing file is no error. */
static int read_config(struct options *opt)
{
	char dir[4096], path[4200], line[4096], where[4300];
	FILE *fp;
	int lineno = 0, rc = EXIT_OK;

	if(options__config_dir(dir, sizeof(dir)) != 0) return EXIT_OK;
	snprintf(path, sizeof(path), "%s/config", dir);

	fp = fopen(path, "r");
	if(fp == NULL){
		if(errno == ENOENT) return EXIT_OK;
		util__error("cannot read %s: %s", path, strerror(errno));
		return EXIT_USAGE;
	}
	if((rc = options__check_private(fp, "config file", path))){
		fclose(fp);
		return rc;
	}
	while(rc == EXIT_OK && fgets(line, sizeof(line), fp)){
		char *s = trim(line), *eq;

		lineno++;
		if(*s == '\0' || *s == '#') continue;
		eq = strchr(s, '=');
		snprintf(where, sizeof(where), "%s:%d", path, lineno);
		if(eq == NULL){
			util__error("%s: expected 'key = value'", where);
			rc = EXIT_USAGE;
			break;
		}
		*eq = '\0';
		rc = set_key(opt, trim(s), trim(eq + 1), where);
	}
	fclose(fp);
	return rc;
}

/* The global options, before the command word. */
enum { OPT_HOST = 1, OPT_PORT, OPT_USER, OPT_DEVICE, OPT_CAFILE, OPT_PWFILE, OPT_TIMEOUT,
	OPT_JSON, OPT_PASSWORD };

const struct cmdline_opt options__global_opts[] = {
	{"host", 0, CMDLINE_REQUIRED, OPT_HOST},
	{"port", 0, CMDLINE_REQUIRED, OPT_PORT},
	{"user", 0, CMDLINE_REQUIRED, OPT_USER},
	{"device", 0, CMDLINE_REQUIRED, OPT_DEVICE},
	{"cafile", 0, CMDLINE_REQUIRED, OPT_CAFILE},
	{"password-file", 0, CMDLINE_REQUIRED, OPT_PWFILE},
	{"timeout", 0, CMDLINE_REQUIRED, OPT_TIMEOUT},
	{"json", 0, CMDLINE_NO_ARG, OPT_JSON},
	/* Known only to be refused, with or without a value. */
	{"password", 0, CMDLINE_OPTIONAL, OPT_PASSWORD},
	{0},
};

int options__parse(struct options *opt, int argc, char **argv, int *next, bool *help)
{
	struct cmdline cl;
	long long t;
	int c, rc;

	*help = false;
	if((rc = read_config(opt)) || (rc = read_env(opt))) return rc;

	cmdline__init(&cl, "mqchat", NULL, options__global_opts, NULL, argc, argv, 1,
			CMDLINE_STOP_AT_OPERAND);
	while((c = cmdline__next(&cl)) > 0){
		const char *v = cl.value;
		switch(c){
			case OPT_HOST: rc = set_host_from(opt, v, FROM_FLAG); break;
			case OPT_PORT: rc = set_port_from(opt, v, "--port", FROM_FLAG); break;
			case OPT_USER: rc = set_str(&opt->user, v); break;
			case OPT_DEVICE: rc = set_str(&opt->device, v); break;
			case OPT_CAFILE: rc = set_str(&opt->cafile, v); break;
			case OPT_PWFILE: rc = set_str(&opt->password_file, v); break;
			case OPT_JSON: opt->json = true; break;
			case OPT_TIMEOUT:
				t = util__number(v, 1, 3600);
				if(t < 0){
					util__error("--timeout: expected seconds (1..3600), got '%s'", v);
					return EXIT_USAGE;
				}
				opt->timeout_s = (int)t;
				break;
			case OPT_PASSWORD:
				util__error("passwords are never taken from the command line; use "
						"--password-file, MQCHAT_PASSWORD or the prompt");
				return EXIT_USAGE;
		}
		if(rc) return rc;
	}
	if(c == CMDLINE_ERROR) return cmdline__fail(&cl);
	if(c == CMDLINE_HELP){
		*help = true;
		return EXIT_OK;
	}
	if(opt->device == NULL || !names__valid_device(opt->device, strlen(opt->device))){
		char why[96];
		/* The device is the client id's part after '@': say what is wrong
		 * here, since the broker would only say "not authorized". */
		util__error("invalid device name '%s': %s (the device is 1..%d of A-Z a-z 0-9 _ . -)",
				opt->device ? opt->device : "",
				login__device_problem(opt->device ? opt->device : "", why, sizeof(why)),
				DEVICE_MAX_LEN);
		return EXIT_USAGE;
	}
	*next = cl.rest;
	return EXIT_OK;
}

/* Where one of host and port came from, in words. */
static const char *from_words(enum options_from from, bool host)
{
	switch(from){
		case FROM_FLAG: return host ? "from --host" : "from --port";
		case FROM_ENV: return host ? "from MQCHAT_HOST" : "from MQCHAT_PORT";
		case FROM_CONFIG: return "from the config file";
		case FROM_DEFAULT: break;
	}
	return "by default";
}

const char *options__broker_hint(const struct options *opt, char *buf, size_t len)
{
	char dir[4096], cfg[4200] = "";
	size_t n;

	if(options__config_dir(dir, sizeof(dir)) == 0) snprintf(cfg, sizeof(cfg), " %s/config", dir);
	/* A forgotten --port looks like any unreachable broker: say first that
	 * nothing set the address. */
	if(opt->host_from == FROM_DEFAULT && opt->port_from == FROM_DEFAULT){
		snprintf(buf, len, "the default host and port");
	}else if(opt->host_from == opt->port_from && opt->host_from != FROM_ENV
			&& opt->host_from != FROM_FLAG){
		snprintf(buf, len, "host and port %s", from_words(opt->host_from, true));
	}else{
		snprintf(buf, len, "host %s, port %s", from_words(opt->host_from, true),
				from_words(opt->port_from, false));
	}
	n = strlen(buf);
	snprintf(buf + n, len - n, "; set it with --host and --port, MQCHAT_HOST and MQCHAT_PORT, "
			"or host and port in the config file%s", cfg);
	return buf;
}

int options__need_user(const struct options *opt)
{
	if(opt->user == NULL){
		util__error("no user: give --user or 'user = ...' in the config file");
		return EXIT_USAGE;
	}
	if(!names__valid_str(opt->user)) return login__bad_name("user", opt->user);
	return EXIT_OK;
}

/* The first line of a private file. */
static int read_password_file(const char *path, char *buf, size_t len)
{
	FILE *fp = fopen(path, "r");
	size_t n;

	if(fp == NULL){
		util__error("cannot read password file %s: %s", path, strerror(errno));
		return EXIT_USAGE;
	}
	if(options__check_private(fp, "password file", path)){
		fclose(fp);
		return EXIT_USAGE;
	}
	if(fgets(buf, (int)len, fp) == NULL) buf[0] = '\0';
	fclose(fp);
	n = strlen(buf);
	while(n > 0 && (buf[n-1] == '\n' || buf[n-1] == '\r')) buf[--n] = '\0';
	if(n == 0){
		util__error("password file %s is empty", path);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

int options__password(struct options *opt)
{
	char buf[PASSWORD_MAX];
	const char *env = getenv("MQCHAT_PASSWORD");
	int rc = EXIT_OK;

	if(opt->password) return EXIT_OK;
	buf[0] = '\0';
	if(opt->password_file){
		rc = read_password_file(opt->password_file, buf, sizeof(buf));
	}else if(env && *env){
		snprintf(buf, sizeof(buf), "%s", env);
	}else{
		char prompt[128];
		snprintf(prompt, sizeof(prompt), "Password for %s: ", opt->user ? opt->user : "?");
		int p = options__prompt(prompt, buf, sizeof(buf));
		if(p != EXIT_OK || buf[0] == '\0'){
			/* Too long was said already. */
			if(p != EXIT_USAGE) util__error("no password: use --password-file, MQCHAT_PASSWORD or a terminal");
			rc = EXIT_USAGE;
		}
	}
	if(rc == EXIT_OK){
		opt->prompted = opt->password_file == NULL && !(env && *env);
		opt->password = strdup(buf);
		if(opt->password == NULL){
			util__error("out of memory");
			rc = EXIT_FAILED;
		}
	}
	explicit_bzero(buf, sizeof(buf));
	return rc;
}

bool options__explicit_password(const struct options *opt)
{
	const char *env = getenv("MQCHAT_PASSWORD");

	return opt->password != NULL || opt->password_file != NULL || (env && *env);
}

int options__prompt(const char *prompt, char *buf, size_t len)
{
	ssize_t n = prompt__secret(prompt, buf, len);

	if(n == PROMPT_NO_TTY || n < 0) return -1;
	if((size_t)n >= len){
		explicit_bzero(buf, len);
		util__error("password too long (at most %zu bytes)", len - 1);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}
