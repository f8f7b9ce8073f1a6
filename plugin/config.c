/* config.c - the plugin's plugin_opt_* options (see plugin/README.md). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "plugin.h"
#include "spool.h"

void plugin_config__defaults(struct mqchat_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->registration = REGISTRATION_OFF;
	cfg->max_payload = (uint32_t)CONFIG_DEFAULT_MAX_PAYLOAD;
	cfg->reload_ms = (int)CONFIG_DEFAULT_RELOAD_MS;
	cfg->send_rate = (int)CONFIG_DEFAULT_SEND_RATE;
	cfg->send_burst = (int)CONFIG_DEFAULT_SEND_BURST;
	cfg->max_connections = (int)CONFIG_DEFAULT_MAX_CONNECTIONS;
	cfg->max_sessions = (int)CONFIG_DEFAULT_MAX_SESSIONS;
	cfg->max_subscriptions = (int)CONFIG_DEFAULT_MAX_SUBSCRIPTIONS;
	cfg->register_timeout_s = (int)CONFIG_DEFAULT_REGISTER_TIMEOUT;
	cfg->log_rate = (int)CONFIG_DEFAULT_LOG_RATE;
	cfg->snapshot_mb = (int)CONFIG_DEFAULT_SNAPSHOT_MB;
	cfg->seen_report_s = (int)CONFIG_DEFAULT_SEEN_REPORT_S;
	cfg->stats_interval_s = (int)CONFIG_DEFAULT_STATS_INTERVAL;
	cfg->spool_mb = (int)CONFIG_DEFAULT_SPOOL_MB;
	cfg->watch = true;
}

enum registration_mode plugin_config__registration(const struct mqchat_config *cfg,
		const struct snapshot *s)
{
	return s != NULL && s->has_registration ? s->registration : cfg->registration;
}

void plugin_config__cleanup(struct mqchat_config *cfg)
{
	free(cfg->db);
	cfg->db = NULL;
}

/* A whole decimal integer in [min, max]: no sign games, no trailing text. */
static bool parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if(s == NULL || *s < '0' || *s > '9') return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if(errno != 0 || *end != '\0' || v < min || v > max) return false;
	*out = v;
	return true;
}

struct int_opt {
	const char *key;
	long min, max;
	size_t offset;
	bool is_u32;
};

static const struct int_opt int_opts[] = {
	{"max_payload", CONFIG_MIN_MAX_PAYLOAD, CONFIG_MAX_MAX_PAYLOAD,
		offsetof(struct mqchat_config, max_payload), true},
	{"reload_ms", 10, 60000, offsetof(struct mqchat_config, reload_ms), false},
	{"register_timeout", 1, 3600, offsetof(struct mqchat_config, register_timeout_s), false},
	{"log_rate", 1, 100000, offsetof(struct mqchat_config, log_rate), false},
	{"snapshot_mb", 1, 65536, offsetof(struct mqchat_config, snapshot_mb), false},
	{"send_rate", 0, 1000000, offsetof(struct mqchat_config, send_rate), false},
	{"send_burst", 1, 1000000, offsetof(struct mqchat_config, send_burst), false},
	{"max_connections", 0, 1000000, offsetof(struct mqchat_config, max_connections), false},
	{"max_sessions", 0, 1000000, offsetof(struct mqchat_config, max_sessions), false},
	{"max_subscriptions", 0, 1000000, offsetof(struct mqchat_config, max_subscriptions), false},
	{"seen_report_s", 1, 3600, offsetof(struct mqchat_config, seen_report_s), false},
	{"stats_interval", 0, 3600, offsetof(struct mqchat_config, stats_interval_s), false},
	{"spool_mb", 0, SPOOL_MB_MAX, offsetof(struct mqchat_config, spool_mb), false},
};

int plugin_config__parse(struct mqchat_config *cfg, const struct mosquitto_opt *opts, int count,
		char *err, size_t errlen)
{
	int i;
	size_t j;

	plugin_config__defaults(cfg);
	for(i=0; i<count; i++){
		const char *key = opts[i].key, *value = opts[i].value;
		bool known = false;

		if(key == NULL) continue;
		if(value == NULL) value = "";
		/* "db" is what the contract names it, but mosquitto 2.0.11 refuses
		 * plugin_opt_ keys under 3 characters: "dbpath" is the usable name. */
		if(!strcmp(key, "dbpath") || !strcmp(key, "db")){
			if(value[0] == '\0'){
				snprintf(err, errlen, "plugin_opt_dbpath is empty");
				return MQC_ERR_INVAL;
			}
			free(cfg->db);
			cfg->db = strdup(value);
			if(cfg->db == NULL){
				snprintf(err, errlen, "out of memory");
				return MQC_ERR_NOMEM;
			}
			continue;
		}
		if(!strcmp(key, "registration")){
			if(!registration__parse(value, &cfg->registration)){
				snprintf(err, errlen, "plugin_opt_registration must be off, invite or open, not \"%.64s\"",
						value);
				return MQC_ERR_INVAL;
			}
			continue;
		}
		if(!strcmp(key, "front_addresses")){
			int rc = front__add(cfg, value, err, errlen);

			if(rc != MQC_OK) return rc;
			continue;
		}
		if(!strcmp(key, "watch")){
			if(!strcmp(value, "on")) cfg->watch = true;
			else if(!strcmp(value, "off")) cfg->watch = false;
			else{
				snprintf(err, errlen, "plugin_opt_watch must be on or off, not \"%.64s\"", value);
				return MQC_ERR_INVAL;
			}
			continue;
		}
		for(j=0; j<sizeof(int_opts)/sizeof(int_opts[0]); j++){
			const struct int_opt *o = &int_opts[j];
			long v;

			if(strcmp(key, o->key)) continue;
			known = true;
			if(!parse_long(value, o->min, o->max, &v)){
				snprintf(err, errlen, "plugin_opt_%s must be an integer in %ld..%ld, not \"%.64s\"",
						o->key, o->min, o->max, value);
				return MQC_ERR_INVAL;
			}
			if(o->is_u32){
				*(uint32_t *)(void *)((char *)cfg + o->offset) = (uint32_t)v;
			}else{
				*(int *)(void *)((char *)cfg + o->offset) = (int)v;
			}
		}
		if(!known){
			mosquitto_log_printf(MOSQ_LOG_WARNING, "mqchat: unknown option plugin_opt_%.64s ignored", key);
		}
	}
	if(cfg->db == NULL){
		snprintf(err, errlen, "plugin_opt_dbpath (the user store, auth.db) is required");
		return MQC_ERR_INVAL;
	}
	return MQC_OK;
}
