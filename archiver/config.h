/* config.h - the archiver daemon's settings: defaults, config file, flags.
 *
 * `run [-c FILE] [--host H] [--port P] [--user U] [--password-file F]
 *      [--retention DAYS] [--connections K] [--registration MODE]
 *      [--http-port N] [--http-bind ADDR] [--web-dir DIR] [--web-mqtt-url URL]
 *      [--metrics-port N] [--metrics-bind ADDR]
 *      [--push on|off] [--push-webhook on|off] [--push-allow-http 0|1]
 *      [--push-collapse-ms MS] [--push-fcm-url URL] [--push-apns-url URL]
 *      [--spool] [--log FILE] [-v]`
 * The file holds `key = value` lines (keys as the fields below) and '#'
 * comments; flags win over the file, the file over the defaults. */
#ifndef MQCHAT_ARCHIVER_CONFIG_H
#define MQCHAT_ARCHIVER_CONFIG_H

#include <stddef.h>

#include "cmdline.h"
#include "settings.h"

#define CONFIG_MAX_CONNECTIONS 16

struct config {
	char *datadir;          /* the data folder (auth.db, archive.db, archiver.pw) */
	char *host;             /* broker address, default 127.0.0.1 */
	int port;               /* default 1883 */
	char *user;             /* service account, default "archiver" */
	char *password_file;    /* default DATADIR/archiver.pw */
	char *cafile;           /* TLS to the broker when set */
	char *log;              /* log file; NULL for stderr */
	int retention_days;     /* global retention, 0 = keep forever; default 30 */
	int connections;        /* K, 1..CONFIG_MAX_CONNECTIONS; default 1 */
	enum registration_mode registration; /* default off (answers "closed"); the store's
	                                      * registration setting wins (common/settings.h) */
	int registration_rate;  /* new accounts a minute over the whole server (bursts of twice it); default 10 */
	int expiry_interval;    /* seconds between expiry passes, default 60 */
	int keepalive;          /* seconds, default 30 */
	/* The web app (http.h): served when http_port is not 0 (the default). */
	int http_port;
	char *http_bind;        /* default 127.0.0.1 */
	char *web_dir;          /* the folder served (make web's BUILD/web); needed with http_port */
	char *web_mqtt_url;     /* config.json's mqtt_url; NULL: HTTP_DEFAULT_MQTT_URL */
	/* /metrics and /health (metrics_http.h): served when metrics_port is
	 * not 0 (the default). */
	int metrics_port;
	char *metrics_bind;     /* default 127.0.0.1 */
	/* Push notifications (push.h; archiver/README.md "Push notifications").
	 * A provider is on when its settings are: Web Push when the VAPID key
	 * file exists (`init`, or `run` at start, makes the default one), FCM
	 * with push_fcm_credentials, APNs with all four push_apns_*, webhooks
	 * with push_webhook. push__check_config (push.h) validates them at start. */
	int push;               /* 0: no push thread at all; default 1 */
	char *push_vapid_key;   /* PEM (P-256); default DATADIR/vapid.pem */
	char *push_vapid_subject; /* VAPID "sub"; default mailto:postmaster@localhost */
	char *push_fcm_credentials; /* service account JSON; NULL: no FCM */
	char *push_fcm_url;     /* default https://fcm.googleapis.com */
	char *push_apns_key;    /* .p8 file; with the three below, APNs is on */
	char *push_apns_key_id;
	char *push_apns_team_id;
	char *push_apns_topic;  /* the app's bundle id */
	char *push_apns_url;    /* default https://api.push.apple.com */
	int push_webhook;       /* 1: people may register webhooks; default 0 */
	int push_allow_http;    /* 1: http:// endpoints and URLs too (tests); default 0 */
	int push_collapse_ms;   /* a new job waits this long for more; default 2000 */
	/* 1: take messages and requests from the node's spool, DATA/spool
	 * (spool_in.c), not from subscriptions; the broker's plugin must
	 * write it (plugin_opt_spool_mb). `spool yes|no`, --spool; default 0. */
	int spool;
	int verbose;            /* -v count */
};

/* Fill cfg with the defaults for data folder datadir. MQC_OK or MQC_ERR_NOMEM.
 * Free with config__cleanup, even after a failure. */
int config__defaults(struct config *cfg, const char *datadir);
/* Free every field; cfg may be half-built. */
void config__cleanup(struct config *cfg);
/* Apply the config file at path. MQC_OK, or MQC_ERR_IO / MQC_ERR_INVAL with
 * "FILE:LINE: why" in err. */
int config__load_file(struct config *cfg, const char *path, char *err, size_t errlen);
/* The `run` options, in common/cmdline.h's form (main.c checks them with
 * the CLI's conventions before the daemon starts). */
extern const struct cmdline_opt config__opts[];
/* Parse `run` options (argv[0] is "run"; common/cmdline.h's convention):
 * first -c FILE is loaded, then the other flags applied over it. MQC_OK,
 * or MQC_ERR_INVAL with the reason in err ("help" for -h/--help; the
 * caller prints the usage). */
int config__parse_args(struct config *cfg, int argc, char **argv, char *err, size_t errlen);
/* Read the first line of the password file into buf. MQC_OK, MQC_ERR_IO
 * (errno set) or MQC_ERR_INVAL (empty or too long) with err filled. */
int config__read_password(const struct config *cfg, char *buf, size_t buflen,
		char *err, size_t errlen);

#define CONFIG_USAGE \
	"run [-c FILE] [--host H] [--port P] [--user U] [--password-file F]\n" \
	"    [--retention DAYS] [--connections K] [--registration off|invite|open]\n" \
	"    [--registration-rate PER_MINUTE]\n" \
	"    [--http-port N] [--http-bind ADDR] [--web-dir DIR] [--web-mqtt-url URL]\n" \
	"    [--metrics-port N] [--metrics-bind ADDR]\n" \
	"    [--push on|off] [--push-webhook on|off] [--push-allow-http 0|1]\n" \
	"    [--push-collapse-ms MS] [--push-fcm-url URL] [--push-apns-url URL]\n" \
	"    [--spool] [--log FILE] [-v]"

#endif
