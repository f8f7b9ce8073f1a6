/* plugin.c - mqchat_auth.so: version, init, cleanup and callback registration.
 *
 * Plugin API version 5 (Mosquitto 2.0). Options: plugin/README.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "plugin.h"
#include "timeutil.h"

/* One table drives registration and unregistration. */
static const struct {
	int event;
	MOSQ_FUNC_generic_callback cb;
} callbacks[] = {
	{MOSQ_EVT_BASIC_AUTH, auth__basic_auth_cb},
	{MOSQ_EVT_ACL_CHECK, acl__check_cb},
	{MOSQ_EVT_TICK, tick__tick_cb},
	{MOSQ_EVT_DISCONNECT, presence__disconnect_cb},
	{MOSQ_EVT_DISCONNECT, limits__disconnect_cb},
	{MOSQ_EVT_DISCONNECT, devices__disconnect_cb},
	/* In this order: the spool keeps what limits leaves of the properties. */
	{MOSQ_EVT_MESSAGE, limits__message_cb},
	{MOSQ_EVT_MESSAGE, plugin_spool__message_cb},
	{MOSQ_EVT_RELOAD, tick__reload_cb},
};
#define CALLBACK_COUNT (sizeof(callbacks) / sizeof(callbacks[0]))

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	int i;

	for(i=0; i<supported_version_count; i++){
		if(supported_versions[i] == 5) return 5;
	}
	return -1;
}

/* Free everything m holds; safe on a half-built struct. */
static void mqchat_free(struct mqchat *m)
{
	size_t i;

	if(m == NULL) return;
	if(m->pid){
		for(i=0; i<CALLBACK_COUNT; i++){
			mosquitto_callback_unregister(m->pid, callbacks[i].event, callbacks[i].cb, NULL);
		}
	}
	plugin_spool__cleanup(&m->spool);
	loader__cleanup(&m->loader);        /* m->snap lived in its memory */
	m->snap = NULL;
	presence__cleanup(&m->presence);
	limits__cleanup(&m->limits);
	devices__cleanup(m);
	auth__cleanup(m);
	plugin_config__cleanup(&m->cfg);
	free(m);
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
		struct mosquitto_opt *options, int option_count)
{
	struct mqchat *m;
	char err[512];
	int64_t t0;
	size_t i;
	int rc;

	m = calloc(1, sizeof(*m));
	if(m == NULL) return MOSQ_ERR_NOMEM;
	m->clock_ms = time__mono_ms;

	rc = plugin_config__parse(&m->cfg, options, option_count, err, sizeof(err));
	if(rc){
		mosquitto_log_printf(MOSQ_LOG_ERR, "mqchat: %s", err);
		goto fail;
	}
	m->log.rate = m->cfg.log_rate;

	rc = auth__init(m);
	if(rc){
		mosquitto_log_printf(MOSQ_LOG_ERR, "mqchat: cannot initialise: %s", mqc_strerror(rc));
		goto fail;
	}

	/* The broker is not serving yet: the first snapshot is built before
	 * init returns, so the first client already sees every account. */
	t0 = time__mono_ms();
	rc = loader__start(&m->loader, m->cfg.db, m->cfg.reload_ms, m->cfg.watch, m->cfg.snapshot_mb, &m->snap,
			err, sizeof(err));
	if(rc){
		mosquitto_log_printf(MOSQ_LOG_ERR, "%s", err);
		goto fail;
	}
	mosquitto_log_printf(MOSQ_LOG_INFO,
			"mqchat: loaded %zu users, %zu rooms, %zu memberships, %zu blocks from %s in %lld ms"
			" (registration %s, max payload %u)",
			m->snap->user_count, m->snap->room_count, m->snap->member_count,
			m->snap->block_count, m->cfg.db, (long long)(time__mono_ms() - t0),
			registration__name(m->cfg.registration), m->cfg.max_payload);

	/* After the loader's fork: its process does not hold the spool's
	 * writer lock. */
	rc = plugin_spool__init(m, err, sizeof(err));
	if(rc){
		mosquitto_log_printf(MOSQ_LOG_ERR, "%s", err);
		goto fail;
	}

	/* Retained "online" messages restored from the broker's persistence
	 * are stale: nobody is connected yet. TICK clears the presence of
	 * every account that is not connected by the time it gets there. */
	m->presence.sweep_active = true;

	m->pid = identifier;
	for(i=0; i<CALLBACK_COUNT; i++){
		rc = mosquitto_callback_register(identifier, callbacks[i].event, callbacks[i].cb, NULL, m);
		if(rc != MOSQ_ERR_SUCCESS){
			mosquitto_log_printf(MOSQ_LOG_ERR, "mqchat: cannot register callback for event %d",
					callbacks[i].event);
			goto fail;
		}
	}
	*userdata = m;
	return MOSQ_ERR_SUCCESS;

fail:
	mqchat_free(m);
	return MOSQ_ERR_INVAL;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	struct mqchat *m = userdata;
	int i;

	(void)options;
	(void)option_count;
	if(m == NULL) return MOSQ_ERR_SUCCESS;
	mosquitto_log_printf(MOSQ_LOG_INFO,
			"mqchat: logins ok %lu (cached %lu), refused %lu (throttled %lu)",
			m->auth_ok, m->auth_cached, m->auth_failed, m->auth_throttled);
	for(i=1; i<ACL_REASON_COUNT; i++){
		if(m->acl_denied[i]){
			mosquitto_log_printf(MOSQ_LOG_INFO, "mqchat: denied %lu (%s)", m->acl_denied[i],
					acl__reason_name((enum acl_reason)i));
		}
	}
	mqchat_free(m);
	return MOSQ_ERR_SUCCESS;
}
