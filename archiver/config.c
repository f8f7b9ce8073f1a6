/* config.c - the archiver daemon's settings: defaults, config file, flags. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmdline.h"
#include "config.h"
#include "err.h"
#include "log.h"

/* The settings of the file and of `run`'s flags, one table per kind of
 * value, so that adding one is a row. Each string setting owns its copy:
 * config__cleanup frees those this table lists (and datadir, which is not
 * a setting). registration, the only enum, stays in apply(). */
static const struct str_setting {
	const char *key;
	size_t off;             /* of the char * in struct config */
} str_settings[] = {
	{"host", offsetof(struct config, host)},
	{"user", offsetof(struct config, user)},
	{"password_file", offsetof(struct config, password_file)},
	{"cafile", offsetof(struct config, cafile)},
	{"log", offsetof(struct config, log)},
	{"http_bind", offsetof(struct config, http_bind)},
	{"web_dir", offsetof(struct config, web_dir)},
	{"web_mqtt_url", offsetof(struct config, web_mqtt_url)},
	{"metrics_bind", offsetof(struct config, metrics_bind)},
	{"push_vapid_key", offsetof(struct config, push_vapid_key)},
	{"push_vapid_subject", offsetof(struct config, push_vapid_subject)},
	{"push_fcm_credentials", offsetof(struct config, push_fcm_credentials)},
	{"push_fcm_url", offsetof(struct config, push_fcm_url)},
	{"push_apns_key", offsetof(struct config, push_apns_key)},
	{"push_apns_key_id", offsetof(struct config, push_apns_key_id)},
	{"push_apns_team_id", offsetof(struct config, push_apns_team_id)},
	{"push_apns_topic", offsetof(struct config, push_apns_topic)},
	{"push_apns_url", offsetof(struct config, push_apns_url)},
};

static const struct int_setting {
	const char *key;
	size_t off;             /* of the int in struct config */
	long min, max;
} int_settings[] = {
	{"port", offsetof(struct config, port), 1, 65535},
	{"retention_days", offsetof(struct config, retention_days), 0, 36500},
	{"connections", offsetof(struct config, connections), 1, CONFIG_MAX_CONNECTIONS},
	{"expiry_interval", offsetof(struct config, expiry_interval), 1, 86400},
	{"keepalive", offsetof(struct config, keepalive), 5, 3600},
	{"registration_rate", offsetof(struct config, registration_rate), 1, 1000000},
	{"http_port", offsetof(struct config, http_port), 0, 65535},
	{"metrics_port", offsetof(struct config, metrics_port), 0, 65535},
	{"push_allow_http", offsetof(struct config, push_allow_http), 0, 1},
	{"push_collapse_ms", offsetof(struct config, push_collapse_ms), 0, 600000},
};

/* Settings that are on or off. */
static const struct onoff_setting {
	const char *key;
	size_t off;             /* of the int (0 or 1) in struct config */
} onoff_settings[] = {
	{"push", offsetof(struct config, push)},
	{"push_webhook", offsetof(struct config, push_webhook)},
};

#define NSETTINGS(t) (sizeof(t) / sizeof((t)[0]))
/* The field at byte offset off of cfg, as a type *. */
#define FIELD(cfg, type, off) ((type *)(void *)((char *)(cfg) + (off)))

/* Replace *field by a copy of value. */
static int set_str(char **field, const char *value)
{
	char *s = strdup(value);

	if(s == NULL) return MQC_ERR_NOMEM;
	free(*field);
	*field = s;
	return MQC_OK;
}

/* *out = a new string "datadir/name". */
static int data_file(const char *datadir, const char *name, char **out)
{
	size_t len = strlen(datadir) + strlen(name) + 2;

	*out = malloc(len);
	if(*out == NULL) return MQC_ERR_NOMEM;
	snprintf(*out, len, "%s%s%s", datadir,
			datadir[0] && datadir[strlen(datadir) - 1] == '/' ? "" : "/", name);
	return MQC_OK;
}

int config__defaults(struct config *cfg, const char *datadir)
{

	memset(cfg, 0, sizeof(*cfg));
	cfg->port = 1883;
	cfg->retention_days = 30;
	cfg->connections = 1;
	cfg->registration = REGISTRATION_OFF;
	cfg->registration_rate = 10;
	cfg->expiry_interval = 60;
	cfg->keepalive = 30;
	cfg->push = 1;
	cfg->push_collapse_ms = 2000;
	if(set_str(&cfg->datadir, datadir) || set_str(&cfg->host, "127.0.0.1")
			|| set_str(&cfg->user, "archiver") || set_str(&cfg->http_bind, "127.0.0.1")
			|| set_str(&cfg->metrics_bind, "127.0.0.1")
			|| set_str(&cfg->push_vapid_subject, "mailto:postmaster@localhost")
			|| set_str(&cfg->push_fcm_url, "https://fcm.googleapis.com")
			|| set_str(&cfg->push_apns_url, "https://api.push.apple.com")){
		return MQC_ERR_NOMEM;
	}
	if(data_file(datadir, "archiver.pw", &cfg->password_file)
			|| data_file(datadir, "vapid.pem", &cfg->push_vapid_key)){
		return MQC_ERR_NOMEM;
	}
	return MQC_OK;
}

void config__cleanup(struct config *cfg)
{
	size_t i;

	free(cfg->datadir);
	for(i = 0; i < NSETTINGS(str_settings); i++){
		free(*FIELD(cfg, char *, str_settings[i].off));
	}
	memset(cfg, 0, sizeof(*cfg));
}

/* A whole decimal integer in [min, max]. */
static bool parse_int(const char *s, long min, long max, int *out)
{
	char *end;
	long v;

	if(s == NULL || *s == '\0') return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if(errno || *end != '\0' || v < min || v > max) return false;
	*out = (int)v;
	return true;
}

/* Apply one setting (from the file or a flag). MQC_OK, MQC_ERR_NOMEM, or
 * MQC_ERR_INVAL with why filled. */
static int apply(struct config *cfg, const char *key, const char *value, char *why, size_t whylen)
{
	size_t i;

	for(i = 0; i < NSETTINGS(str_settings); i++){
		if(strcmp(key, str_settings[i].key) == 0){
			if(*value == '\0') goto bad;
			return set_str(FIELD(cfg, char *, str_settings[i].off), value);
		}
	}
	for(i = 0; i < NSETTINGS(int_settings); i++){
		if(strcmp(key, int_settings[i].key) == 0){
			if(!parse_int(value, int_settings[i].min, int_settings[i].max,
					FIELD(cfg, int, int_settings[i].off))){
				goto bad;
			}
			return MQC_OK;
		}
	}
	for(i = 0; i < NSETTINGS(onoff_settings); i++){
		if(strcmp(key, onoff_settings[i].key) == 0){
			if(strcmp(value, "on") == 0) *FIELD(cfg, int, onoff_settings[i].off) = 1;
			else if(strcmp(value, "off") == 0) *FIELD(cfg, int, onoff_settings[i].off) = 0;
			else goto bad;
			return MQC_OK;
		}
	}
	/* yes|no; on|off, the other switches' words, are taken too. */
	if(strcmp(key, "spool") == 0){
		if(strcmp(value, "yes") == 0 || strcmp(value, "on") == 0) cfg->spool = 1;
		else if(strcmp(value, "no") == 0 || strcmp(value, "off") == 0) cfg->spool = 0;
		else goto bad;
		return MQC_OK;
	}
	if(strcmp(key, "registration") == 0){
		if(!registration__parse(value, &cfg->registration)) goto bad;
		return MQC_OK;
	}
	mqc_seterr(why, whylen, "unknown setting \"%s\"", key);
	return MQC_ERR_INVAL;
bad:
	mqc_seterr(why, whylen, "invalid value \"%s\" for %s", value, key);
	return MQC_ERR_INVAL;
}

static char *trim(char *s)
{
	char *e;

	while(isspace((unsigned char)*s)) s++;
	e = s + strlen(s);
	while(e > s && isspace((unsigned char)e[-1])) e--;
	*e = '\0';
	return s;
}

int config__load_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
	FILE *fp;
	char line[4096], why[256];
	int lineno = 0, rc = MQC_OK;

	fp = fopen(path, "r");
	if(fp == NULL){
		mqc_seterr(err, errlen, "%s: %s", path, strerror(errno));
		return MQC_ERR_IO;
	}
	while(fgets(line, sizeof(line), fp)){
		char *key, *value, *eq;

		lineno++;
		if(strchr(line, '\n') == NULL && !feof(fp)){
			mqc_seterr(err, errlen, "%s:%d: line too long", path, lineno);
			rc = MQC_ERR_INVAL;
			break;
		}
		key = trim(line);
		if(*key == '\0' || *key == '#') continue;
		eq = strchr(key, '=');
		if(eq == NULL){
			mqc_seterr(err, errlen, "%s:%d: expected \"key = value\"", path, lineno);
			rc = MQC_ERR_INVAL;
			break;
		}
		*eq = '\0';
		value = trim(eq + 1);
		key = trim(key);
		rc = apply(cfg, key, value, why, sizeof(why));
		if(rc != MQC_OK){
			mqc_seterr(err, errlen, "%s:%d: %s", path, lineno, rc == MQC_ERR_NOMEM ? "out of memory" : why);
			break;
		}
	}
	if(rc == MQC_OK && ferror(fp)){
		mqc_seterr(err, errlen, "%s: %s", path, strerror(errno));
		rc = MQC_ERR_IO;
	}
	fclose(fp);
	return rc;
}

const struct cmdline_opt config__opts[] = {
	{"config", 'c', CMDLINE_REQUIRED, 'c'},
	{"host", 0, CMDLINE_REQUIRED, 'H'},
	{"port", 0, CMDLINE_REQUIRED, 'p'},
	{"user", 0, CMDLINE_REQUIRED, 'u'},
	{"password-file", 0, CMDLINE_REQUIRED, 'P'},
	{"retention", 0, CMDLINE_REQUIRED, 'r'},
	{"connections", 0, CMDLINE_REQUIRED, 'k'},
	{"registration", 0, CMDLINE_REQUIRED, 'R'},
	{"registration-rate", 0, CMDLINE_REQUIRED, 'G'},
	{"expiry-interval", 0, CMDLINE_REQUIRED, 'e'},
	{"log", 0, CMDLINE_REQUIRED, 'l'},
	{"http-port", 0, CMDLINE_REQUIRED, 'T'},
	{"http-bind", 0, CMDLINE_REQUIRED, 'B'},
	{"web-dir", 0, CMDLINE_REQUIRED, 'W'},
	{"web-mqtt-url", 0, CMDLINE_REQUIRED, 'M'},
	{"metrics-port", 0, CMDLINE_REQUIRED, 'X'},
	{"metrics-bind", 0, CMDLINE_REQUIRED, 'Y'},
	{"push", 0, CMDLINE_REQUIRED, 'N'},
	{"push-webhook", 0, CMDLINE_REQUIRED, 'K'},
	{"push-allow-http", 0, CMDLINE_REQUIRED, 'A'},
	{"push-collapse-ms", 0, CMDLINE_REQUIRED, 'C'},
	{"push-fcm-url", 0, CMDLINE_REQUIRED, 'F'},
	{"push-apns-url", 0, CMDLINE_REQUIRED, 'U'},
	{"spool", 0, CMDLINE_NO_ARG, 'S'},
	{"verbose", 'v', CMDLINE_NO_ARG, 'v'},
	{0},
};

static const char *opt_key(int c)
{
	switch(c){
		case 'H': return "host";
		case 'p': return "port";
		case 'u': return "user";
		case 'P': return "password_file";
		case 'r': return "retention_days";
		case 'k': return "connections";
		case 'R': return "registration";
		case 'G': return "registration_rate";
		case 'e': return "expiry_interval";
		case 'l': return "log";
		case 'T': return "http_port";
		case 'B': return "http_bind";
		case 'W': return "web_dir";
		case 'M': return "web_mqtt_url";
		case 'X': return "metrics_port";
		case 'Y': return "metrics_bind";
		case 'N': return "push";
		case 'K': return "push_webhook";
		case 'A': return "push_allow_http";
		case 'C': return "push_collapse_ms";
		case 'F': return "push_fcm_url";
		case 'U': return "push_apns_url";
		default: return NULL;
	}
}

int config__parse_args(struct config *cfg, int argc, char **argv, char *err, size_t errlen)
{
	struct cmdline cl;
	const char *file = NULL;
	char why[256];
	int c, rc, pass;

	/* Pass 0 finds and loads the file, pass 1 applies the flags over it.
	 * Pass 0 refuses operands, so it leaves argv as it was for pass 1. */
	for(pass = 0; pass < 2; pass++){
		cmdline__init(&cl, "mqchat-archiver", "run", config__opts, NULL, argc, argv, 1, 0);
		while((c = cmdline__next(&cl)) > 0){
			if(pass == 0){
				if(c == 'c') file = cl.value;
				continue;
			}
			if(c == 'c') continue;
			if(c == 'v'){
				cfg->verbose++;
				continue;
			}
			if(c == 'S'){
				cfg->spool = 1;
				continue;
			}
			rc = apply(cfg, opt_key(c), cl.value, why, sizeof(why));
			if(rc != MQC_OK){
				mqc_seterr(err, errlen, "%s", rc == MQC_ERR_NOMEM ? "out of memory" : why);
				return rc;
			}
		}
		if(c == CMDLINE_HELP){
			mqc_seterr(err, errlen, "help");
			return MQC_ERR_INVAL;
		}
		if(c == CMDLINE_ERROR){
			mqc_seterr(err, errlen, "%s", cl.err);
			return MQC_ERR_INVAL;
		}
		if(pass == 0 && cl.nargs > 0){
			mqc_seterr(err, errlen, "unexpected argument \"%s\"", cl.args[0]);
			return MQC_ERR_INVAL;
		}
		if(pass == 0 && file){
			rc = config__load_file(cfg, file, err, errlen);
			if(rc != MQC_OK) return rc;
		}
	}
	return MQC_OK;
}

int config__read_password(const struct config *cfg, char *buf, size_t buflen,
		char *err, size_t errlen)
{
	FILE *fp;
	struct stat st;
	size_t len;
	int fd;

	/* Never through a link: one planted in the data folder would send the
	 * first line of any file this process may read to the broker. */
	fd = open(cfg->password_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if(fd < 0 && errno == ELOOP){
		mqc_seterr(err, errlen, "%s is a symbolic link: refusing to follow it (the password file"
				" must be a regular file; remove the link and run init)", cfg->password_file);
		return MQC_ERR_PERM;
	}
	if(fd < 0){
		mqc_seterr(err, errlen, "%s: %s", cfg->password_file, strerror(errno));
		return MQC_ERR_IO;
	}
	if(fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)){
		close(fd);
		mqc_seterr(err, errlen, "%s: not a regular file", cfg->password_file);
		return MQC_ERR_PERM;
	}
	fp = fdopen(fd, "r");
	if(fp == NULL){
		close(fd);
		mqc_seterr(err, errlen, "%s: %s", cfg->password_file, strerror(errno));
		return MQC_ERR_IO;
	}
	if(st.st_mode & 077){
		log_warnx("%s is readable by others (mode %03o): chmod 600 it",
				cfg->password_file, (unsigned)(st.st_mode & 0777));
	}
	if(fgets(buf, (int)buflen, fp) == NULL){
		fclose(fp);
		mqc_seterr(err, errlen, "%s: empty", cfg->password_file);
		return MQC_ERR_INVAL;
	}
	fclose(fp);
	len = strlen(buf);
	if(len == buflen - 1 && buf[len - 1] != '\n'){
		mqc_seterr(err, errlen, "%s: password too long", cfg->password_file);
		return MQC_ERR_INVAL;
	}
	while(len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) buf[--len] = '\0';
	if(len == 0){
		mqc_seterr(err, errlen, "%s: empty", cfg->password_file);
		return MQC_ERR_INVAL;
	}
	return MQC_OK;
}
