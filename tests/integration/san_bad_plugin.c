/* san_bad_plugin.c - a broker plugin with planted memory errors.
 *
 * Built by test_san_harness.py with -fsanitize=address,undefined to show
 * that a sanitizer report from inside the broker fails the test. The option
 * plugin_opt_fault picks the error: "leak" (found when the broker exits),
 * "overflow" (heap overflow at load), "ubsan" (signed overflow at load) or
 * "none" (a clean plugin: no report). */
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

static char *kept;

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	(void)supported_version_count;
	(void)supported_versions;
	return 5;
}

static const char *fault_of(struct mosquitto_opt *opts, int count)
{
	int i;

	for(i=0; i<count; i++){
		if(!strcmp(opts[i].key, "fault")) return opts[i].value;
	}
	return "none";
}

static void planted_leak(void)
{
	kept = malloc(48);
	if(kept) strcpy(kept, "never freed");
	kept = NULL;
}

static int planted_overflow(const char *fault)
{
	char *p = malloc(8);
	int n;

	if(p == NULL) return 1;
	memcpy(p, fault, strlen(fault) + 1);   /* "overflow" + NUL: 9 bytes into 8 */
	n = p[0];
	free(p);
	return n == 0;
}

static int planted_signed_overflow(const char *fault)
{
	volatile int big = 0x7fffffff;

	return big + (int)strlen(fault) < 0;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
		struct mosquitto_opt *opts, int opt_count)
{
	const char *fault = fault_of(opts, opt_count);

	(void)identifier;
	*userdata = NULL;
	if(!strcmp(fault, "leak")) planted_leak();
	if(!strcmp(fault, "overflow")) return planted_overflow(fault);
	if(!strcmp(fault, "ubsan")) return planted_signed_overflow(fault);
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *opts, int opt_count)
{
	(void)userdata;
	(void)opts;
	(void)opt_count;
	return MOSQ_ERR_SUCCESS;
}
