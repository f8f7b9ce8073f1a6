/* broker_stubs.c - link-time stand-ins for the broker's exports (see broker_stubs.h).
 *
 * Every call is recorded in `stub` so tests can check what the plugin did:
 * what it published, whom it kicked, what it logged. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "broker_stubs.h"

struct stub_state stub;

/* Every log line, so stub_log_contains can search all of them. */
static char log_all[1 << 16];
static size_t log_all_len;

void stub_reset(void)
{
	memset(&stub, 0, sizeof(stub));
	log_all_len = 0;
	log_all[0] = '\0';
}

int stub_log_contains(const char *text)
{
	int n = 0;
	const char *p = log_all;

	while((p = strstr(p, text)) != NULL){
		n++;
		p += strlen(text);
	}
	return n;
}

void mosquitto_log_printf(int level, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	(void)level;
	va_start(ap, fmt);
	vsnprintf(stub.last_log, sizeof(stub.last_log), fmt, ap);
	va_end(ap);
	stub.log_count++;
	if(getenv("STUB_LOG")) fprintf(stderr, "log: %s\n", stub.last_log);
	n = strlen(stub.last_log);
	if(log_all_len + n + 2 < sizeof(log_all)){
		memcpy(log_all + log_all_len, stub.last_log, n);
		log_all_len += n;
		log_all[log_all_len++] = '\n';
		log_all[log_all_len] = '\0';
	}
}

const char *mosquitto_client_address(const struct mosquitto *client)
{
	return client ? client->address : NULL;
}

const char *mosquitto_client_id(const struct mosquitto *client)
{
	return client ? client->id : NULL;
}

const char *mosquitto_client_username(const struct mosquitto *client)
{
	return client ? client->username : NULL;
}

bool mosquitto_client_clean_session(const struct mosquitto *client)
{
	(void)client;
	return stub.clean_session;
}

int mosquitto_client_sub_count(const struct mosquitto *client)
{
	(void)client;
	return stub.sub_count;
}

/* The plugin only ever drops a whole list it was handed. */
void mosquitto_property_free_all(mosquitto_property **properties)
{
	*properties = NULL;
}

/* The tests hand the plugin no MQTT 5 properties to read. */
const mosquitto_property *mosquitto_property_read_binary(const mosquitto_property *proplist,
		int identifier, void **value, uint16_t *len, bool skip_first)
{
	(void)proplist;
	(void)identifier;
	(void)skip_first;
	*value = NULL;
	*len = 0;
	return NULL;
}

const mosquitto_property *mosquitto_property_read_string(const mosquitto_property *proplist,
		int identifier, char **value, bool skip_first)
{
	(void)proplist;
	(void)identifier;
	(void)skip_first;
	*value = NULL;
	return NULL;
}

int mosquitto_kick_client_by_username(const char *username, bool with_will)
{
	(void)with_will;
	if(stub.kicked_user_count < STUB_MAX_RECORDS){
		snprintf(stub.kicked_users[stub.kicked_user_count++], STUB_TEXT_LEN, "%s",
				username ? username : "(null)");
	}
	if(stub.on_kick_user) stub.on_kick_user(username);
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_kick_client_by_clientid(const char *clientid, bool with_will)
{
	(void)with_will;
	if(stub.kicked_id_count < STUB_MAX_RECORDS){
		snprintf(stub.kicked_ids[stub.kicked_id_count++], STUB_TEXT_LEN, "%s",
				clientid ? clientid : "(null)");
	}
	if(stub.on_kick_id) stub.on_kick_id(clientid);
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_broker_publish_copy(const char *clientid, const char *topic, int payloadlen,
		const void *payload, int qos, bool retain, mosquitto_property *properties)
{
	struct stub_publish *p;

	(void)clientid;
	(void)properties;
	if(topic == NULL || payloadlen < 0 || (payloadlen > 0 && payload == NULL)) return MOSQ_ERR_INVAL;
	if(stub.publish_count >= STUB_MAX_RECORDS) return MOSQ_ERR_SUCCESS;
	p = &stub.publishes[stub.publish_count++];
	snprintf(p->topic, sizeof(p->topic), "%s", topic);
	snprintf(p->payload, sizeof(p->payload), "%.*s", payloadlen, (const char *)payload);
	p->qos = qos;
	p->retain = retain;
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_broker_publish(const char *clientid, const char *topic, int payloadlen,
		void *payload, int qos, bool retain, mosquitto_property *properties)
{
	int rc = mosquitto_broker_publish_copy(clientid, topic, payloadlen, payload, qos, retain,
			properties);
	/* The broker takes ownership of payload on success. */
	if(rc == MOSQ_ERR_SUCCESS) free(payload);
	return rc;
}

int mosquitto_callback_register(mosquitto_plugin_id_t *identifier, int event,
		MOSQ_FUNC_generic_callback cb_func, const void *event_data, void *userdata)
{
	(void)identifier;
	(void)event;
	(void)event_data;
	(void)userdata;
	if(cb_func == NULL) return MOSQ_ERR_INVAL;
	stub.registered++;
	if(stub.register_fail_at && stub.registered == stub.register_fail_at) return MOSQ_ERR_NOMEM;
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_callback_unregister(mosquitto_plugin_id_t *identifier, int event,
		MOSQ_FUNC_generic_callback cb_func, const void *event_data)
{
	(void)identifier;
	(void)event;
	(void)cb_func;
	(void)event_data;
	stub.unregistered++;
	return MOSQ_ERR_SUCCESS;
}

void *mosquitto_malloc(size_t size)
{
	return malloc(size);
}

void *mosquitto_calloc(size_t nmemb, size_t size)
{
	return calloc(nmemb, size);
}

void mosquitto_free(void *mem)
{
	free(mem);
}

char *mosquitto_strdup(const char *s)
{
	return strdup(s);
}
