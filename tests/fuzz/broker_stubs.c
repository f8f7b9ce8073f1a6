/* broker_stubs.c - the broker's exports the plugin calls, for the fuzz harnesses.
 *
 * The harnesses call the plugin's pure decision code; these stand in for the
 * broker (which normally resolves them) so the plugin's objects link. None
 * of them is reached from the functions fuzzed; the loggers discard. */
#include <stdarg.h>
#include <stddef.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

void mosquitto_log_printf(int level, const char *fmt, ...)
{
	(void)level;
	(void)fmt;
}

const char *mosquitto_client_address(const struct mosquitto *client)
{
	(void)client;
	return "127.0.0.1";
}

const char *mosquitto_client_id(const struct mosquitto *client)
{
	(void)client;
	return NULL;
}

const char *mosquitto_client_username(const struct mosquitto *client)
{
	(void)client;
	return NULL;
}

int mosquitto_callback_register(mosquitto_plugin_id_t *identifier, int event,
		MOSQ_FUNC_generic_callback cb_func, const void *event_data, void *userdata)
{
	(void)identifier; (void)event; (void)cb_func; (void)event_data; (void)userdata;
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_callback_unregister(mosquitto_plugin_id_t *identifier, int event,
		MOSQ_FUNC_generic_callback cb_func, const void *event_data)
{
	(void)identifier; (void)event; (void)cb_func; (void)event_data;
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_broker_publish_copy(const char *clientid, const char *topic, int payloadlen,
		const void *payload, int qos, bool retain, mosquitto_property *properties)
{
	(void)clientid; (void)topic; (void)payloadlen; (void)payload; (void)qos; (void)retain;
	(void)properties;
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_kick_client_by_clientid(const char *clientid, bool with_will)
{
	(void)clientid; (void)with_will;
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_kick_client_by_username(const char *username, bool with_will)
{
	(void)username; (void)with_will;
	return MOSQ_ERR_SUCCESS;
}
