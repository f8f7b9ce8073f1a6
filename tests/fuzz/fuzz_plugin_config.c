/* fuzz_plugin_config.c - libFuzzer harness for the plugin's options (plugin/config.c).
 *
 * The input is the broker's plugin_opt_ lines, one "key value" per line
 * (key up to the first space; a line without one has a NULL value, a line
 * "\x01" a NULL key). Invariants:
 *   - the result is MQC_OK or MQC_ERR_INVAL, the same on a second parse;
 *   - a refusal says why (non-empty, NUL-terminated, even in a 1- or 16-byte
 *     buffer, never past it);
 *   - an accepted set has a non-empty db and every value within its range;
 *   - plugin_config__cleanup frees everything (LeakSanitizer). */
#include <stdbool.h>
#include <string.h>

#include "err.h"
#include "plugin.h"
#include "fuzz.h"

#define PCFG_MAX_OPTS 64

static int pcfg_parse(const struct mosquitto_opt *opts, int n, char *err, size_t errlen,
		struct mqchat_config *out)
{
	struct mqchat_config cfg;
	int rc;

	memset(&cfg, 0, sizeof(cfg));
	rc = plugin_config__parse(&cfg, opts, n, err, errlen);
	if(out){
		*out = cfg;
		if(cfg.db){
			out->db = strdup(cfg.db);
			FUZZ_ASSERT(out->db != NULL);
		}
	}
	plugin_config__cleanup(&cfg);
	return rc;
}

FUZZ_TARGET(plugin_config)
{
	struct mosquitto_opt opts[PCFG_MAX_OPTS];
	char *text = malloc(size + 1), *line, *save = NULL;
	char err[256], small[16], tiny[1];
	struct mqchat_config cfg;
	int n = 0, rc, rc2;

	FUZZ_ASSERT(text != NULL);
	memcpy(text, data, size);
	text[size] = '\0';
	for(line = strtok_r(text, "\n", &save); line && n < PCFG_MAX_OPTS; line = strtok_r(NULL, "\n", &save)){
		char *sp = strchr(line, ' ');
		if(!strcmp(line, "\x01")){
			opts[n].key = NULL;
			opts[n].value = NULL;
		}else{
			if(sp) *sp = '\0';
			opts[n].key = line;
			opts[n].value = sp ? sp + 1 : NULL;
		}
		n++;
	}

	memset(err, 'x', sizeof(err));
	rc = pcfg_parse(opts, n, err, sizeof(err), &cfg);
	FUZZ_ASSERT(rc == MQC_OK || rc == MQC_ERR_INVAL);
	if(rc == MQC_OK){
		FUZZ_ASSERT(cfg.db != NULL && cfg.db[0] != '\0');
		FUZZ_ASSERT(cfg.registration == REGISTRATION_OFF || cfg.registration == REGISTRATION_INVITE
				|| cfg.registration == REGISTRATION_OPEN);
		FUZZ_ASSERT(cfg.max_payload >= CONFIG_MIN_MAX_PAYLOAD && cfg.max_payload <= CONFIG_MAX_MAX_PAYLOAD);
		FUZZ_ASSERT(cfg.reload_ms >= 10 && cfg.reload_ms <= 60000);
		FUZZ_ASSERT(cfg.register_timeout_s >= 1 && cfg.register_timeout_s <= 3600);
		FUZZ_ASSERT(cfg.log_rate >= 1 && cfg.log_rate <= 100000);
	}else{
		FUZZ_ASSERT(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
	}
	free(cfg.db);

	/* Same answer again, and into buffers too small for the message. */
	rc2 = pcfg_parse(opts, n, small, sizeof(small), NULL);
	FUZZ_ASSERT(rc2 == rc);
	if(rc != MQC_OK) FUZZ_ASSERT(memchr(small, '\0', sizeof(small)) != NULL);
	rc2 = pcfg_parse(opts, n, tiny, sizeof(tiny), NULL);
	FUZZ_ASSERT(rc2 == rc);
	if(rc != MQC_OK) FUZZ_ASSERT(tiny[0] == '\0');
	free(text);
	return 0;
}
