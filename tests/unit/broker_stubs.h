/* broker_stubs.h - test-controllable stand-ins for the broker's mosquitto_*
 * exports (tests/unit/broker_stubs.c), so unit tests link the plugin's
 * objects exactly as they ship. */
#ifndef MQCHAT_BROKER_STUBS_H
#define MQCHAT_BROKER_STUBS_H

#include <stdbool.h>

/* A client context as the stubs see it: tests fill in what the plugin asks. */
struct mosquitto {
	const char *id;
	const char *username;
	const char *address;
};

#define STUB_MAX_RECORDS 256
#define STUB_TEXT_LEN 256

struct stub_publish {
	char topic[STUB_TEXT_LEN];
	char payload[STUB_TEXT_LEN];
	int qos;
	bool retain;
};

struct stub_state {
	/* mosquitto_broker_publish / _copy */
	struct stub_publish publishes[STUB_MAX_RECORDS];
	int publish_count;
	/* mosquitto_kick_client_by_username / _by_clientid */
	char kicked_users[STUB_MAX_RECORDS][STUB_TEXT_LEN];
	int kicked_user_count;
	char kicked_ids[STUB_MAX_RECORDS][STUB_TEXT_LEN];
	int kicked_id_count;
	/* Called by the kick stubs (e.g. to fire the plugin's DISCONNECT as the
	 * broker does); NULL for none. */
	void (*on_kick_user)(const char *username);
	void (*on_kick_id)(const char *clientid);
	/* mosquitto_log_printf */
	char last_log[1024];
	int log_count;
	/* mosquitto_callback_register / unregister */
	int registered;
	int unregistered;
	int register_fail_at;           /* 1-based call that fails; 0 never */
	/* What every client says it is: mosquitto_client_clean_session,
	 * mosquitto_client_sub_count. */
	bool clean_session;
	int sub_count;
};

extern struct stub_state stub;

/* Forget every record (hooks too). */
void stub_reset(void);
/* Count log lines containing text. */
int stub_log_contains(const char *text);

#endif
