/* push_send.c - the four providers' requests on one libcurl multi handle
 * (push_send.h). Runs on the push thread only, except push_send__wakeup. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "err.h"
#include "log.h"
#include "push.h"
#include "push_crypto.h"
#include "push_send.h"
#include "timeutil.h"

#define RESP_MAX 4096              /* bytes of an answer kept (error reasons) */
#define VAPID_REUSE_MS (12LL * 3600 * 1000)
#define VAPID_EXP_S (20 * 3600)    /* a JWT used up to 12 h still has 8 h */
#define APNS_REUSE_MS (50LL * 60 * 1000)
#define FCM_EARLY_MS (60 * 1000)   /* a token is renewed this long before it expires */
#define FCM_TOKEN_RETRY_MS 10000   /* after a failed token request */
#define FCM_SCOPE "https://www.googleapis.com/auth/firebase.messaging"
#define HEADER_MAX 2048
#define VAPID_ORIGINS_MAX 256      /* origins whose JWT is kept */

struct request {
	struct push_sender *s;
	CURL *easy;
	struct curl_slist *headers;
	char *body;                    /* what is posted (owned) */
	char resp[RESP_MAX + 1];
	size_t resp_len;
	char retry_after[64];
	enum push_provider provider;
	bool token_request;            /* FCM's OAuth token, not a job */
	char fcm_token[HEADER_MAX];    /* the token this request used (401 tells) */
	bool refused_addr;             /* a person's URL led to an address not public */
	void *arg;
	struct request *prev, *next;
};

struct vapid_jwt {
	char origin[256];
	char header[HEADER_MAX];       /* "vapid t=..., k=..." */
	int64_t made;                  /* mono ms */
};

struct push_sender {
	const struct config *cfg;
	CURLM *multi;
	struct request *reqs;          /* in flight */
	int inflight;
	/* Web Push */
	EVP_PKEY *vapid;
	struct vapid_jwt *vapid_jwts;
	size_t nvapid;
	/* FCM */
	EVP_PKEY *fcm_key;
	char *fcm_email, *fcm_project, *fcm_token_uri;
	char fcm_token[HEADER_MAX];    /* "" until fetched */
	int64_t fcm_expires;           /* mono ms when to fetch again */
	int64_t fcm_token_at;          /* mono ms it was fetched */
	int64_t fcm_failed_until;      /* mono ms: the token endpoint failed */
	bool fcm_fetching;
	bool fcm_after_401;            /* the token was fetched because FCM refused the last */
	/* APNs */
	EVP_PKEY *apns_key;
	char apns_jwt[HEADER_MAX];
	int64_t apns_at;               /* mono ms it was made; 0: none */
};

/* ---- pure parts ---- */

json_t *push_send__notification(const struct push_job *job)
{
	bool room = strncmp(job->conv, "r:", 2) == 0;
	json_t *n = json_pack("{s:s, s:s, s:s, s:s, s:I, s:i}", "type", "message",
			room ? "room" : "with", job->conv + 2, "from", job->sender, "id", job->msg_id,
			"seq", (json_int_t)job->last_seq, "count", job->count);

	if(n && job->preview && json_object_set_new(n, "body", json_string(job->preview)) != 0){
		json_decref(n);
		return NULL;
	}
	return n;
}

enum push_outcome push_send__classify(enum push_provider p, int status, const char *body)
{
	if(status >= 200 && status < 300) return PUSH_SENT;
	if(status == 0 || status == 429 || status >= 500) return PUSH_RETRY;
	switch(p){
	case PUSH_FCM:
		if(status == 404 || (body && (strstr(body, "UNREGISTERED") || strstr(body, "NOT_FOUND")))){
			return PUSH_GONE;
		}
		break;
	case PUSH_APNS:
		if(status == 410) return PUSH_GONE;
		if(status == 400 && body && (strstr(body, "\"BadDeviceToken\"") || strstr(body, "\"Unregistered\""))){
			return PUSH_GONE;
		}
		return PUSH_FAILED;
	default:
		break;
	}
	if(status == 404 || status == 410) return PUSH_GONE;
	return PUSH_FAILED;
}

void push_send__topic(const char *conv, char out[33])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char b64[48];

	EVP_Digest(conv, strlen(conv), md, &mdlen, EVP_sha256(), NULL);
	push_crypto__b64url(md, 24, b64);
	memcpy(out, b64, 32);
	out[32] = '\0';
}

bool push_send__origin(const char *url, char *out, size_t outlen)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL;
	bool ok = false;
	int n;

	if(u == NULL) return false;
	if(curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK
			&& curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK
			&& curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK){
		/* The port only when the URL says one (the default is implied). */
		if(curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK) port = NULL;
		n = snprintf(out, outlen, "%s://%s%s%s", scheme, host, port ? ":" : "", port ? port : "");
		ok = n > 0 && (size_t)n < outlen;
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return ok;
}

bool push_send__public_addr(const struct sockaddr *sa)
{
	const unsigned char *b;

	if(sa->sa_family == AF_INET6){
		const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

		b = a->s6_addr;
		if(IN6_IS_ADDR_V4MAPPED(a) || IN6_IS_ADDR_V4COMPAT(a)){
			b += 12;           /* judged as the IPv4 address it carries */
			goto v4;
		}
		if(IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_LINKLOCAL(a)
				|| IN6_IS_ADDR_SITELOCAL(a) || IN6_IS_ADDR_MULTICAST(a)){
			return false;
		}
		if((b[0] & 0xfe) == 0xfc) return false;                  /* fc00::/7, unique local */
		if(b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return false;   /* documentation */
		if(b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b) return false;   /* NAT64 */
		return true;
	}
	if(sa->sa_family != AF_INET) return false;
	b = (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
v4:
	return !(b[0] == 0 || b[0] == 10 || b[0] == 127 || b[0] >= 224           /* this, private, loopback, multicast and reserved */
		|| (b[0] == 100 && (b[1] & 0xc0) == 64)                             /* 100.64/10, shared */
		|| (b[0] == 169 && b[1] == 254)                                     /* link local */
		|| (b[0] == 172 && (b[1] & 0xf0) == 16)                             /* 172.16/12 */
		|| (b[0] == 192 && b[1] == 168)                                     /* 192.168/16 */
		|| (b[0] == 192 && b[1] == 0 && (b[2] == 0 || b[2] == 2))           /* protocol assignments, documentation */
		|| (b[0] == 198 && (b[1] & 0xfe) == 18)                             /* 198.18/15, benchmarking */
		|| (b[0] == 198 && b[1] == 51 && b[2] == 100)
		|| (b[0] == 203 && b[1] == 0 && b[2] == 113));
}

/* The connection of a request to a person's URL (Web Push endpoint,
 * webhook): only to a public address, checked on the address connected
 * to, so a name that resolves (or is re-resolved) to an inside address
 * is refused too. */
static curl_socket_t open_public_cb(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
	struct request *q = arg;

	if(purpose == CURLSOCKTYPE_IPCXN && !push_send__public_addr(&addr->addr)){
		q->refused_addr = true;
		return CURL_SOCKET_BAD;
	}
	return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

/* ---- setup ---- */

/* The service account file: its members, and its key. */
static int load_fcm(struct push_sender *s, const char *path, char *err, size_t errlen)
{
	json_error_t je;
	json_t *sa = json_load_file(path, 0, &je);
	const char *project, *email, *key, *uri;
	int rc = MQC_ERR_INVAL;

	if(sa == NULL){
		mqc_seterr(err, errlen, "push_fcm_credentials %s: %s", path, je.text);
		return MQC_ERR_INVAL;
	}
	if(json_unpack(sa, "{s:s, s:s, s:s, s:s}", "project_id", &project, "client_email", &email,
			"private_key", &key, "token_uri", &uri) != 0){
		mqc_seterr(err, errlen, "push_fcm_credentials %s: not a service account (project_id,"
				" client_email, private_key, token_uri)", path);
	}else if(!push__url_ok(uri, s->cfg->push_allow_http)){
		mqc_seterr(err, errlen, "push_fcm_credentials %s: token_uri %s is not an https URL", path, uri);
	}else if(push_crypto__load_key_pem(key, strlen(key), &s->fcm_key, err, errlen) != 0){
		rc = MQC_ERR_INVAL;
	}else if((s->fcm_email = strdup(email)) == NULL || (s->fcm_project = strdup(project)) == NULL
			|| (s->fcm_token_uri = strdup(uri)) == NULL){
		rc = MQC_ERR_NOMEM;
	}else{
		rc = MQC_OK;
	}
	json_decref(sa);
	return rc;
}

int push_send__new(const struct config *cfg, struct push_sender **out, char *err, size_t errlen)
{
	struct push_sender *s = calloc(1, sizeof(*s));
	int rc = MQC_ERR_NOMEM;

	*out = NULL;
	if(s == NULL) return MQC_ERR_NOMEM;
	s->cfg = cfg;
	s->multi = curl_multi_init();
	if(s->multi == NULL) goto fail;
	curl_multi_setopt(s->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 8L);
	if(access(cfg->push_vapid_key, F_OK) == 0
			&& push_crypto__load_key(cfg->push_vapid_key, &s->vapid, err, errlen) != 0){
		rc = MQC_ERR_INVAL;
		goto fail;
	}
	if(cfg->push_fcm_credentials && (rc = load_fcm(s, cfg->push_fcm_credentials, err, errlen)) != MQC_OK){
		goto fail;
	}
	if(cfg->push_apns_key && push_crypto__load_key(cfg->push_apns_key, &s->apns_key, err, errlen) != 0){
		rc = MQC_ERR_INVAL;
		goto fail;
	}
	*out = s;
	return MQC_OK;
fail:
	push_send__free(s);
	return rc;
}

static void request_free(struct request *q)
{
	struct push_sender *s = q->s;

	if(q->prev) q->prev->next = q->next;
	else if(s->reqs == q) s->reqs = q->next;
	if(q->next) q->next->prev = q->prev;
	if(q->easy){
		curl_multi_remove_handle(s->multi, q->easy);
		curl_easy_cleanup(q->easy);
		s->inflight--;
	}
	curl_slist_free_all(q->headers);
	free(q->body);
	free(q);
}

void push_send__free(struct push_sender *s)
{
	if(s == NULL) return;
	while(s->reqs) request_free(s->reqs);
	if(s->multi) curl_multi_cleanup(s->multi);
	EVP_PKEY_free(s->vapid);
	EVP_PKEY_free(s->fcm_key);
	EVP_PKEY_free(s->apns_key);
	free(s->vapid_jwts);
	free(s->fcm_email);
	free(s->fcm_project);
	free(s->fcm_token_uri);
	free(s);
}

bool push_send__has(const struct push_sender *s, enum push_provider p)
{
	switch(p){
	case PUSH_WEBPUSH: return s->vapid != NULL;
	case PUSH_FCM: return s->fcm_key != NULL;
	case PUSH_APNS: return s->apns_key != NULL;
	case PUSH_WEBHOOK: return s->cfg->push_webhook != 0;
	}
	return false;
}

int push_send__inflight(const struct push_sender *s)
{
	return s->inflight;
}

void push_send__wakeup(struct push_sender *s)
{
	curl_multi_wakeup(s->multi);
}

/* ---- requests ---- */

static size_t write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct request *q = arg;
	size_t n = size * nmemb, room = RESP_MAX - q->resp_len;

	memcpy(q->resp + q->resp_len, data, n < room ? n : room);
	q->resp_len += n < room ? n : room;
	q->resp[q->resp_len] = '\0';
	return n;
}

static size_t header_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct request *q = arg;
	size_t n = size * nmemb, len;
	const char *v;

	if(n > 12 && strncasecmp(data, "retry-after:", 12) == 0){
		v = data + 12;
		len = n - 12;
		while(len && (*v == ' ' || *v == '\t')){
			v++;
			len--;
		}
		while(len && isspace((unsigned char)v[len - 1])) len--;
		if(len >= sizeof(q->retry_after)) len = sizeof(q->retry_after) - 1;
		memcpy(q->retry_after, v, len);
		q->retry_after[len] = '\0';
	}
	return n;
}

static int add_header(struct request *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int add_header(struct request *q, const char *fmt, ...)
{
	char line[HEADER_MAX + 64];
	struct curl_slist *l;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if(n < 0 || (size_t)n >= sizeof(line)) return MQC_ERR_INVAL;
	l = curl_slist_append(q->headers, line);
	if(l == NULL) return MQC_ERR_NOMEM;
	q->headers = l;
	return MQC_OK;
}

/* A request of provider p to url, posting body (taken: freed with the
 * request). Not yet started. */
static struct request *request_new(struct push_sender *s, enum push_provider p, const char *url,
		char *body, size_t len, void *arg)
{
	struct request *q = calloc(1, sizeof(*q));
	bool http = strncasecmp(url, "http://", 7) == 0;
	long version = CURL_HTTP_VERSION_2TLS;

	if(q == NULL){
		free(body);
		return NULL;
	}
	q->s = s;
	q->body = body;
	q->provider = p;
	q->arg = arg;
	q->easy = curl_easy_init();
	if(q->easy == NULL){
		request_free(q);
		return NULL;
	}
	s->inflight++;   /* counted from here: request_free takes it back */
	/* APNs is HTTP/2 only: over http:// (tests) with prior knowledge. */
	if(http) version = p == PUSH_APNS ? CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE : CURL_HTTP_VERSION_1_1;
	if(curl_easy_setopt(q->easy, CURLOPT_URL, url)
			|| curl_easy_setopt(q->easy, CURLOPT_PROTOCOLS_STR, s->cfg->push_allow_http ? "http,https" : "https")
			|| curl_easy_setopt(q->easy, CURLOPT_FOLLOWLOCATION, 0L)
			|| curl_easy_setopt(q->easy, CURLOPT_HTTP_VERSION, version)
			|| curl_easy_setopt(q->easy, CURLOPT_TIMEOUT_MS, (long)PUSH_SEND_TIMEOUT_MS)
			|| curl_easy_setopt(q->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)PUSH_SEND_TIMEOUT_MS)
			|| curl_easy_setopt(q->easy, CURLOPT_NOSIGNAL, 1L)
			|| curl_easy_setopt(q->easy, CURLOPT_USERAGENT, "mqchat-archiver")
			|| curl_easy_setopt(q->easy, CURLOPT_POST, 1L)
			|| curl_easy_setopt(q->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len)
			|| curl_easy_setopt(q->easy, CURLOPT_POSTFIELDS, body)
			|| curl_easy_setopt(q->easy, CURLOPT_WRITEFUNCTION, write_cb)
			|| curl_easy_setopt(q->easy, CURLOPT_WRITEDATA, q)
			|| curl_easy_setopt(q->easy, CURLOPT_HEADERFUNCTION, header_cb)
			|| curl_easy_setopt(q->easy, CURLOPT_HEADERDATA, q)
			|| curl_easy_setopt(q->easy, CURLOPT_PRIVATE, q)
			|| add_header(q, "Expect:")){
		request_free(q);
		return NULL;
	}
	/* People choose these URLs: never let one reach inside the operator's
	 * network (http, for tests and development, allows loopback). */
	if((p == PUSH_WEBPUSH || p == PUSH_WEBHOOK) && !s->cfg->push_allow_http
			&& (curl_easy_setopt(q->easy, CURLOPT_OPENSOCKETFUNCTION, open_public_cb)
				|| curl_easy_setopt(q->easy, CURLOPT_OPENSOCKETDATA, q))){
		request_free(q);
		return NULL;
	}
	q->next = s->reqs;
	if(s->reqs) s->reqs->prev = q;
	s->reqs = q;
	return q;
}

/* Hand q to the multi handle. On failure q is freed. */
static int request_go(struct request *q)
{
	if(curl_easy_setopt(q->easy, CURLOPT_HTTPHEADER, q->headers)
			|| curl_multi_add_handle(q->s->multi, q->easy) != CURLM_OK){
		request_free(q);
		return MQC_ERR_NOMEM;
	}
	return MQC_OK;
}

/* A string member of the target's data, or NULL. */
static const char *data_str(const struct push_target *t, const char *key)
{
	return json_string_value(json_object_get(t->data, key));
}

/* The VAPID Authorization for endpoint's origin, made or reused. */
static const char *vapid_auth(struct push_sender *s, const char *endpoint, char *err, size_t errlen)
{
	char origin[256];
	struct vapid_jwt *v = NULL;
	int64_t now = time__mono_ms();
	size_t i;

	if(!push_send__origin(endpoint, origin, sizeof(origin))){
		mqc_seterr(err, errlen, "endpoint does not parse");
		return NULL;
	}
	for(i = 0; i < s->nvapid; i++){
		if(strcmp(s->vapid_jwts[i].origin, origin) == 0){
			v = &s->vapid_jwts[i];
			break;
		}
	}
	if(v && now - v->made < VAPID_REUSE_MS) return v->header;
	if(v == NULL){
		if(s->nvapid == VAPID_ORIGINS_MAX) s->nvapid = 0;   /* start again: they are cheap */
		if(s->vapid_jwts == NULL){
			s->vapid_jwts = calloc(VAPID_ORIGINS_MAX, sizeof(*s->vapid_jwts));
			if(s->vapid_jwts == NULL){
				mqc_seterr(err, errlen, "out of memory");
				return NULL;
			}
		}
		v = &s->vapid_jwts[s->nvapid++];
		snprintf(v->origin, sizeof(v->origin), "%s", origin);
	}
	if(push_crypto__vapid_header(s->vapid, origin, s->cfg->push_vapid_subject,
			time__now_ms() / 1000 + VAPID_EXP_S, v->header, sizeof(v->header), err, errlen) != 0){
		v->origin[0] = '\0';
		return NULL;
	}
	v->made = now;
	return v->header;
}

static int send_webpush(struct push_sender *s, const struct push_job *job, const struct push_target *t,
		void *arg, struct push_result *r)
{
	const char *endpoint = data_str(t, "endpoint"), *p256dh = data_str(t, "p256dh"),
	      *auth = data_str(t, "auth"), *vapid;
	json_t *n = push_send__notification(job);
	char *plain = n ? json_dumps(n, JSON_COMPACT) : NULL, topic[33];
	unsigned char *body = NULL;
	size_t len = 0;
	struct request *q;

	json_decref(n);
	if(endpoint == NULL || p256dh == NULL || auth == NULL){
		free(plain);
		snprintf(r->why, sizeof(r->why), "target without endpoint, p256dh or auth");
		return MQC_ERR_INVAL;
	}
	if(plain == NULL){
		snprintf(r->why, sizeof(r->why), "out of memory");
		return MQC_ERR_NOMEM;
	}
	vapid = vapid_auth(s, endpoint, r->why, sizeof(r->why));
	if(vapid == NULL || push_crypto__webpush_encrypt(p256dh, auth, plain, strlen(plain), &body, &len,
			r->why, sizeof(r->why)) != 0){
		free(plain);
		return MQC_ERR_INVAL;
	}
	free(plain);
	push_send__topic(job->conv, topic);
	q = request_new(s, PUSH_WEBPUSH, endpoint, (char *)body, len, arg);
	if(q == NULL
			|| add_header(q, "Content-Type: application/octet-stream")
			|| add_header(q, "Content-Encoding: aes128gcm")
			|| add_header(q, "TTL: 86400")
			|| add_header(q, "Urgency: high")
			|| add_header(q, "Topic: %s", topic)
			|| add_header(q, "Authorization: %s", vapid)){
		if(q) request_free(q);
		snprintf(r->why, sizeof(r->why), "out of memory");
		return MQC_ERR_NOMEM;
	}
	return request_go(q);
}

/* Ask token_uri for an access token (the jwt-bearer grant). */
static int fcm_fetch_token(struct push_sender *s)
{
	char jwt[HEADER_MAX * 2], err[256];
	char *body;
	struct request *q;
	size_t len;

	if(push_crypto__google_assertion(s->fcm_key, s->fcm_email, FCM_SCOPE, s->fcm_token_uri,
			time__now_ms() / 1000, jwt, sizeof(jwt), err, sizeof(err)) != 0){
		log_warnx("push: fcm: cannot make the token request: %s", err);
		return MQC_ERR_CRYPTO;
	}
	len = strlen(jwt) + 128;
	body = malloc(len);
	if(body == NULL) return MQC_ERR_NOMEM;
	/* The assertion is base64url and dots: nothing to escape. */
	snprintf(body, len, "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer&assertion=%s", jwt);
	q = request_new(s, PUSH_FCM, s->fcm_token_uri, body, strlen(body), NULL);
	if(q == NULL) return MQC_ERR_NOMEM;
	q->token_request = true;
	if(add_header(q, "Content-Type: application/x-www-form-urlencoded")){
		request_free(q);
		return MQC_ERR_NOMEM;
	}
	if(request_go(q) != MQC_OK) return MQC_ERR_NOMEM;
	s->fcm_fetching = true;
	return MQC_OK;
}

/* The token request q finished with status. */
static void fcm_token_done(struct push_sender *s, struct request *q, int status)
{
	json_t *o = status == 200 ? json_loadb(q->resp, q->resp_len, 0, NULL) : NULL;
	const char *token = json_string_value(json_object_get(o, "access_token"));
	json_int_t expires = json_integer_value(json_object_get(o, "expires_in"));
	int64_t now = time__mono_ms();

	s->fcm_fetching = false;
	if(token == NULL || strlen(token) >= sizeof(s->fcm_token) || expires <= 0){
		log_warnx("push: fcm: no access token from %s (HTTP %d); trying again in %d s", s->fcm_token_uri,
				status, FCM_TOKEN_RETRY_MS / 1000);
		s->fcm_failed_until = now + FCM_TOKEN_RETRY_MS;
		json_decref(o);
		return;
	}
	snprintf(s->fcm_token, sizeof(s->fcm_token), "%s", token);
	s->fcm_token_at = now;
	s->fcm_expires = now + (int64_t)expires * 1000 - FCM_EARLY_MS;
	if(s->fcm_expires < now + 1000) s->fcm_expires = now + 1000;
	log_debug("push: fcm: access token for %lld s", (long long)expires);
	json_decref(o);
}

/* The notification as FCM data: string values, and "sender" for "from"
 * (FCM reserves "from"). New reference. */
static json_t *fcm_data(const struct push_job *job)
{
	json_t *n = push_send__notification(job), *d = json_object(), *v;
	const char *k;
	char num[24];

	if(n == NULL || d == NULL) goto fail;
	json_object_foreach(n, k, v){
		const char *key = strcmp(k, "from") == 0 ? "sender" : k;
		json_t *str;

		if(json_is_integer(v)){
			snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
			str = json_string(num);
		}else{
			str = json_string(json_string_value(v));
		}
		if(json_object_set_new(d, key, str) != 0) goto fail;
	}
	json_decref(n);
	return d;
fail:
	json_decref(n);
	json_decref(d);
	return NULL;
}

static int send_fcm(struct push_sender *s, const struct push_job *job, const struct push_target *t,
		void *arg, struct push_result *r)
{
	const char *token = data_str(t, "token");
	int64_t now = time__mono_ms();
	char url[2048];
	json_t *msg;
	char *body;
	struct request *q;
	size_t ulen = strlen(s->cfg->push_fcm_url);

	if(token == NULL){
		snprintf(r->why, sizeof(r->why), "target without token");
		return MQC_ERR_INVAL;
	}
	if(s->fcm_token[0] == '\0' || now >= s->fcm_expires){
		if(now < s->fcm_failed_until){
			r->outcome = PUSH_RETRY;
			r->retry_after_ms = s->fcm_failed_until - now;
			snprintf(r->why, sizeof(r->why), "no access token from %s", s->fcm_token_uri);
			return MQC_ERR_IO;
		}
		if(!s->fcm_fetching && fcm_fetch_token(s) != MQC_OK){
			r->outcome = PUSH_RETRY;
			snprintf(r->why, sizeof(r->why), "cannot ask for an access token");
			return MQC_ERR_IO;
		}
		return MQC_ERR_BUSY;
	}
	while(ulen && s->cfg->push_fcm_url[ulen - 1] == '/') ulen--;
	snprintf(url, sizeof(url), "%.*s/v1/projects/%s/messages:send", (int)ulen, s->cfg->push_fcm_url,
			s->fcm_project);
	msg = json_pack("{s:{s:s, s:o, s:{s:s, s:s}}}", "message", "token", token, "data", fcm_data(job),
			"android", "priority", "high", "collapse_key", job->conv);
	body = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
	json_decref(msg);
	if(body == NULL){
		snprintf(r->why, sizeof(r->why), "out of memory");
		return MQC_ERR_NOMEM;
	}
	q = request_new(s, PUSH_FCM, url, body, strlen(body), arg);
	if(q == NULL || add_header(q, "Content-Type: application/json; charset=utf-8")
			|| add_header(q, "Authorization: Bearer %s", s->fcm_token)){
		if(q) request_free(q);
		snprintf(r->why, sizeof(r->why), "out of memory");
		return MQC_ERR_NOMEM;
	}
	snprintf(q->fcm_token, sizeof(q->fcm_token), "%s", s->fcm_token);
	return request_go(q);
}

static int send_apns(struct push_sender *s, const struct push_job *job, const struct push_target *t,
		void *arg, struct push_result *r)
{
	const char *token = data_str(t, "token"), *p;
	int64_t now = time__mono_ms();
	bool room = strncmp(job->conv, "r:", 2) == 0;
	char url[2048], alert[512], title[64];
	json_t *n, *msg;
	char *body;
	struct request *q;
	size_t ulen = strlen(s->cfg->push_apns_url);

	for(p = token; p && *p; p++) if(!isxdigit((unsigned char)*p)) break;
	if(token == NULL || *token == '\0' || *p != '\0' || strlen(token) > 200){
		snprintf(r->why, sizeof(r->why), "target without a hex token");
		return MQC_ERR_INVAL;
	}
	if(s->apns_at == 0 || now - s->apns_at >= APNS_REUSE_MS){
		if(push_crypto__apns_jwt(s->apns_key, s->cfg->push_apns_key_id, s->cfg->push_apns_team_id,
				time__now_ms() / 1000, s->apns_jwt, sizeof(s->apns_jwt), r->why, sizeof(r->why)) != 0){
			s->apns_at = 0;
			return MQC_ERR_CRYPTO;
		}
		s->apns_at = now;
	}
	/* No text of the message unless the person allows previews. */
	if(job->preview) snprintf(alert, sizeof(alert), "%s", job->preview);
	else if(room) snprintf(alert, sizeof(alert), "from %s in %s", job->sender, job->conv + 2);
	else snprintf(alert, sizeof(alert), "from %s", job->sender);
	if(job->count > 1) snprintf(title, sizeof(title), "%d new messages", job->count);
	else snprintf(title, sizeof(title), "New message");
	n = push_send__notification(job);
	msg = json_pack("{s:{s:{s:s, s:s}, s:s, s:i}, s:o}", "aps", "alert", "title", title, "body", alert,
			"thread-id", job->conv, "mutable-content", 1, "mqchat", n);
	body = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
	json_decref(msg);
	if(body == NULL){
		snprintf(r->why, sizeof(r->why), "out of memory");
		return MQC_ERR_NOMEM;
	}
	while(ulen && s->cfg->push_apns_url[ulen - 1] == '/') ulen--;
	snprintf(url, sizeof(url), "%.*s/3/device/%s", (int)ulen, s->cfg->push_apns_url, token);
	q = request_new(s, PUSH_APNS, url, body, strlen(body), arg);
	if(q == NULL || add_header(q, "Content-Type: application/json")
			|| add_header(q, "authorization: bearer %s", s->apns_jwt)
			|| add_header(q, "apns-topic: %s", s->cfg->push_apns_topic)
			|| add_header(q, "apns-push-type: alert")
			|| add_header(q, "apns-priority: 10")
			|| add_header(q, "apns-collapse-id: %s", job->conv)
			|| add_header(q, "apns-expiration: %lld", (long long)(time__now_ms() / 1000 + 86400))){
		if(q) request_free(q);
		snprintf(r->why, sizeof(r->why), "out of memory");
		return MQC_ERR_NOMEM;
	}
	return request_go(q);
}

static int send_webhook(struct push_sender *s, const struct push_job *job, const struct push_target *t,
		void *arg, struct push_result *r)
{
	const char *url = data_str(t, "url");
	json_t *n = push_send__notification(job);
	char *body = n ? json_dumps(n, JSON_COMPACT) : NULL, sig[65];
	int64_t ts = time__now_ms() / 1000;
	struct request *q;

	json_decref(n);
	if(url == NULL || t->secret[0] == '\0'){
		free(body);
		snprintf(r->why, sizeof(r->why), "target without url or secret");
		return MQC_ERR_INVAL;
	}
	if(body == NULL){
		snprintf(r->why, sizeof(r->why), "out of memory");
		return MQC_ERR_NOMEM;
	}
	push_crypto__webhook_sign(t->secret, ts, body, strlen(body), sig);
	q = request_new(s, PUSH_WEBHOOK, url, body, strlen(body), arg);
	if(q == NULL || add_header(q, "Content-Type: application/json")
			|| add_header(q, "X-Mqchat-Timestamp: %lld", (long long)ts)
			|| add_header(q, "X-Mqchat-Signature: sha256=%s", sig)){
		if(q) request_free(q);
		snprintf(r->why, sizeof(r->why), "out of memory");
		return MQC_ERR_NOMEM;
	}
	return request_go(q);
}

int push_send__job(struct push_sender *s, const struct push_job *job, const struct push_target *t,
		void *arg, struct push_result *r)
{
	const char *url = NULL;
	int rc;

	memset(r, 0, sizeof(*r));
	r->outcome = PUSH_FAILED;
	if(!push_send__has(s, t->provider)){
		snprintf(r->why, sizeof(r->why), "%s is not set up", push_store__provider_name(t->provider));
		return MQC_ERR_INVAL;
	}
	/* A URL registered while http was allowed is not used once it is not. */
	if(t->provider == PUSH_WEBPUSH) url = data_str(t, "endpoint");
	else if(t->provider == PUSH_WEBHOOK) url = data_str(t, "url");
	if(url && !push__url_ok(url, s->cfg->push_allow_http)){
		snprintf(r->why, sizeof(r->why), "the URL is not https");
		return MQC_ERR_INVAL;
	}
	switch(t->provider){
	case PUSH_WEBPUSH: rc = send_webpush(s, job, t, arg, r); break;
	case PUSH_FCM: rc = send_fcm(s, job, t, arg, r); break;
	case PUSH_APNS: rc = send_apns(s, job, t, arg, r); break;
	case PUSH_WEBHOOK: rc = send_webhook(s, job, t, arg, r); break;
	default: rc = MQC_ERR_INVAL; break;
	}
	if(rc == MQC_ERR_NOMEM) r->outcome = PUSH_RETRY;
	return rc;
}

/* The answer of q, a job's request, into r. */
static void job_result(struct push_sender *s, struct request *q, CURLcode code, struct push_result *r)
{
	long status = 0;

	memset(r, 0, sizeof(*r));
	if(code == CURLE_OK) curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &status);
	r->status = (int)status;
	r->outcome = push_send__classify(q->provider, r->status, q->resp);
	if(q->retry_after[0]) r->retry_after_ms = push__retry_after_ms(q->retry_after, time__now_ms());
	if(r->retry_after_ms < 0) r->retry_after_ms = 0;
	if(q->refused_addr){
		r->outcome = PUSH_FAILED;
		snprintf(r->why, sizeof(r->why), "its host is not at a public address");
	}else if(code != CURLE_OK){
		snprintf(r->why, sizeof(r->why), "%s", curl_easy_strerror(code));
	}else{
		/* The answer's first line, printable only (it is the provider's text). */
		size_t i, j = 0;

		j = (size_t)snprintf(r->why, sizeof(r->why), "HTTP %d ", r->status);
		for(i = 0; i < q->resp_len && j + 1 < sizeof(r->why) && q->resp[i] != '\n'; i++){
			unsigned char c = (unsigned char)q->resp[i];
			r->why[j++] = (char)(c >= 0x20 && c < 0x7f ? c : '?');
		}
		r->why[j] = '\0';
	}
	/* FCM: a token the service no longer takes is fetched again, once;
	 * APNs: a provider token it refuses is made again. */
	if(q->provider == PUSH_FCM && r->status == 401){
		if(strcmp(q->fcm_token, s->fcm_token) != 0){
			r->outcome = PUSH_RETRY;   /* a newer token is there already */
		}else if(!s->fcm_after_401){
			s->fcm_token[0] = '\0';   /* fetched again, once */
			s->fcm_after_401 = true;
			r->outcome = PUSH_RETRY;
		}
	}else if(q->provider == PUSH_FCM && r->outcome == PUSH_SENT){
		s->fcm_after_401 = false;
	}
	if(q->provider == PUSH_APNS && r->status == 403 && strstr(q->resp, "ProviderToken")){
		s->apns_at = 0;
		r->outcome = PUSH_RETRY;
	}
}

void push_send__run(struct push_sender *s, int timeout_ms, push_done_cb cb, void *cbarg)
{
	struct push_result r;
	CURLMsg *m;
	int running, left;

	if(timeout_ms < 0) timeout_ms = 0;
	curl_multi_poll(s->multi, NULL, 0, timeout_ms, NULL);
	curl_multi_perform(s->multi, &running);
	while((m = curl_multi_info_read(s->multi, &left)) != NULL){
		struct request *q = NULL;

		if(m->msg != CURLMSG_DONE) continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&q);
		if(q == NULL) continue;
		if(q->token_request){
			long status = 0;

			if(m->data.result == CURLE_OK) curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &status);
			else log_warnx("push: fcm: token request: %s", curl_easy_strerror(m->data.result));
			fcm_token_done(s, q, (int)status);
		}else{
			job_result(s, q, m->data.result, &r);
			cb(cbarg, q->arg, &r);
		}
		request_free(q);
	}
}
