/* fuzz_archiver_config.c - libFuzzer harness for the archiver's settings
 * (archiver/config.c: the config file and the `run` flags).
 *
 * Byte 0 even: the rest is a config file, loaded with config__load_file
 * from a temp file (under $MQCHAT_FUZZ_TMP, default /dev/shm or /tmp).
 * Byte 0 odd: the rest is NUL-separated `run` arguments for
 * config__parse_args; an argument that would name a config file (-c,
 * --config and their abbreviations) is dropped, so no other file is read.
 * Invariants: a known status; a refusal says why ("FILE:LINE: ..." for a
 * file, with LINE within it); an accepted configuration has every value in
 * its range and non-empty host and user; config__cleanup frees everything
 * (LeakSanitizer). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../../archiver/config.h"
#include "err.h"
#include "fuzz.h"

#define ACFG_MAX_ARGS 64

static char acfg_path[512];

static void acfg_cleanup(void)
{
	char dir[512];
	char *slash;

	if(acfg_path[0] == '\0') return;
	unlink(acfg_path);
	snprintf(dir, sizeof(dir), "%s", acfg_path);
	slash = strrchr(dir, '/');
	if(slash){
		*slash = '\0';
		rmdir(dir);
	}
}

static const char *acfg_file(void)
{
	const char *tmp = getenv("MQCHAT_FUZZ_TMP");
	char dir[400];

	if(acfg_path[0]) return acfg_path;
	if(tmp == NULL || *tmp == '\0') tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(dir, sizeof(dir), "%s/mqchat-fuzz-acfg-XXXXXX", tmp);
	FUZZ_ASSERT(mkdtemp(dir) != NULL);
	snprintf(acfg_path, sizeof(acfg_path), "%s/archiver.conf", dir);
	atexit(acfg_cleanup);
	return acfg_path;
}

static void acfg_check_ok(const struct config *cfg)
{
	FUZZ_ASSERT(cfg->port >= 1 && cfg->port <= 65535);
	FUZZ_ASSERT(cfg->retention_days >= 0 && cfg->retention_days <= 36500);
	FUZZ_ASSERT(cfg->connections >= 1 && cfg->connections <= CONFIG_MAX_CONNECTIONS);
	FUZZ_ASSERT(cfg->expiry_interval >= 1 && cfg->expiry_interval <= 86400);
	FUZZ_ASSERT(cfg->keepalive >= 5 && cfg->keepalive <= 3600);
	FUZZ_ASSERT(cfg->registration == REGISTRATION_OFF || cfg->registration == REGISTRATION_INVITE
			|| cfg->registration == REGISTRATION_OPEN);
	FUZZ_ASSERT(cfg->host && cfg->host[0] && cfg->user && cfg->user[0]);
	FUZZ_ASSERT(cfg->password_file && cfg->password_file[0]);
	FUZZ_ASSERT(cfg->log == NULL || cfg->log[0]);
	FUZZ_ASSERT(cfg->cafile == NULL || cfg->cafile[0]);
	FUZZ_ASSERT((cfg->push == 0 || cfg->push == 1) && (cfg->push_webhook == 0 || cfg->push_webhook == 1));
	FUZZ_ASSERT(cfg->push_allow_http == 0 || cfg->push_allow_http == 1);
	FUZZ_ASSERT(cfg->push_collapse_ms >= 0 && cfg->push_collapse_ms <= 600000);
	FUZZ_ASSERT(cfg->push_vapid_key && cfg->push_vapid_key[0] && cfg->push_vapid_subject
			&& cfg->push_vapid_subject[0]);
	FUZZ_ASSERT(cfg->push_fcm_url && cfg->push_fcm_url[0] && cfg->push_apns_url && cfg->push_apns_url[0]);
	FUZZ_ASSERT(cfg->push_fcm_credentials == NULL || cfg->push_fcm_credentials[0]);
}

/* True if arg would name a config file: a short cluster holding 'c', or a
 * long option that abbreviates --config unambiguously. */
static bool acfg_names_file(const char *arg)
{
	size_t n;

	if(arg[0] != '-' || arg[1] == '\0') return false;
	if(arg[1] != '-') return strchr(arg + 1, 'c') != NULL;
	n = strcspn(arg + 2, "=");
	return n >= 4 && n <= 6 && strncmp("config", arg + 2, n) == 0;
}

static void acfg_from_file(const uint8_t *data, size_t size)
{
	const char *path = acfg_file();
	struct config cfg;
	char err[512];
	FILE *fp = fopen(path, "wb");
	int rc, line, lines = 1;
	size_t i, plen = strlen(path);

	FUZZ_ASSERT(fp != NULL);
	FUZZ_ASSERT(fwrite(data, 1, size, fp) == size);
	FUZZ_ASSERT(fclose(fp) == 0);
	for(i=0; i<size; i++){
		if(data[i] == '\n') lines++;
	}
	FUZZ_ASSERT(config__defaults(&cfg, "/nonexistent/data") == MQC_OK);
	err[0] = '\0';
	rc = config__load_file(&cfg, path, err, sizeof(err));
	FUZZ_ASSERT(rc == MQC_OK || rc == MQC_ERR_INVAL);
	if(rc == MQC_OK){
		acfg_check_ok(&cfg);
	}else{
		FUZZ_ASSERT(strncmp(err, path, plen) == 0 && err[plen] == ':');
		FUZZ_ASSERT(sscanf(err + plen + 1, "%d:", &line) == 1 && line >= 1 && line <= lines);
	}
	config__cleanup(&cfg);
}

static void acfg_from_args(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1), *argv[ACFG_MAX_ARGS + 2];
	struct config cfg;
	char err[512];
	int argc = 0, rc;
	size_t i = 0;

	FUZZ_ASSERT(copy != NULL);
	memcpy(copy, data, size);
	copy[size] = '\0';
	argv[argc++] = (char *)"run";
	while(i <= size && argc < ACFG_MAX_ARGS){
		char *arg = copy + i;
		i += strlen(arg) + 1;
		if(!acfg_names_file(arg)) argv[argc++] = arg;
	}
	argv[argc] = NULL;

	FUZZ_ASSERT(config__defaults(&cfg, "/nonexistent/data") == MQC_OK);
	err[0] = '\0';
	rc = config__parse_args(&cfg, argc, argv, err, sizeof(err));
	FUZZ_ASSERT(rc == MQC_OK || rc == MQC_ERR_INVAL);
	if(rc == MQC_OK) acfg_check_ok(&cfg);
	else FUZZ_ASSERT(err[0] != '\0');
	config__cleanup(&cfg);
	free(copy);
}

FUZZ_TARGET(archiver_config)
{
	if(size < 1) return 0;
	if(data[0] & 1) acfg_from_args(data + 1, size - 1);
	else acfg_from_file(data + 1, size - 1);
	return 0;
}
