/* http.c - the web app's static server: the files of a folder, from memory
 * (http.h says what it answers and why). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "err.h"
#include "http.h"
#include "log.h"

/* One file as it is served. */
struct web_file {
	char *path;              /* the URL path, "/js/app.js" */
	const char *type;        /* Content-Type */
	unsigned char *body;
	size_t len;
	unsigned char *gz;       /* its .gz twin, or NULL */
	size_t gzlen;
	char etag[24];           /* "\"<16 hex>\"" */
	char gzetag[28];         /* "\"<16 hex>-gz\"" */
};

struct http {
	struct MHD_Daemon *mhd;
	struct web_file *files;
	size_t nfiles;
	size_t total;            /* bytes loaded, .gz twins included */
	char *csp;               /* the Content-Security-Policy value */
	int listen_fd;           /* ours until libmicrohttpd has it */
};

/* Content types by file name ending; the rest is application/octet-stream. */
static const struct {
	const char *ext;
	const char *type;
} types[] = {
	{".html", "text/html; charset=utf-8"},
	{".js", "text/javascript; charset=utf-8"},
	{".mjs", "text/javascript; charset=utf-8"},
	{".css", "text/css; charset=utf-8"},
	{".json", "application/json"},
	{".map", "application/json"},
	{".webmanifest", "application/manifest+json"},
	{".txt", "text/plain; charset=utf-8"},
	{".png", "image/png"},
	{".jpg", "image/jpeg"},
	{".jpeg", "image/jpeg"},
	{".gif", "image/gif"},
	{".webp", "image/webp"},
	{".svg", "image/svg+xml"},
	{".ico", "image/x-icon"},
	{".woff2", "font/woff2"},
	{".woff", "font/woff"},
	{".wasm", "application/wasm"},
};

static const char *content_type(const char *name)
{
	size_t n = strlen(name), i;

	for(i = 0; i < sizeof(types) / sizeof(types[0]); i++){
		size_t e = strlen(types[i].ext);

		if(n > e && strcasecmp(name + n - e, types[i].ext) == 0) return types[i].type;
	}
	return "application/octet-stream";
}

/* FNV-1a, 64 bits: an ETag needs to change with the bytes, not to resist
 * anyone. */
static uint64_t fnv1a(const unsigned char *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for(i = 0; i < len; i++){
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* ---- loading the folder ---- */

/* A name served as it is: letters, digits and . _ - only, not hidden.
 * Anything else would need percent-encoding in a URL, which http.h's
 * matching does not decode. */
static bool plain_name(const char *name)
{
	const char *p;

	if(name[0] == '.' || name[0] == '\0') return false;
	for(p = name; *p; p++){
		if(!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
				|| *p == '.' || *p == '_' || *p == '-')){
			return false;
		}
	}
	return true;
}

static bool ends_with(const char *s, const char *end)
{
	size_t n = strlen(s), e = strlen(end);

	return n >= e && strcmp(s + n - e, end) == 0;
}

/* Read the regular file name of the folder dirfd (never through a link)
 * into a new buffer: *buf (the caller frees it), *len, *mtime. MQC_OK,
 * MQC_ERR_NOTFOUND (no such file), MQC_ERR_TOOBIG, MQC_ERR_IO or
 * MQC_ERR_NOMEM with err filled (but for NOTFOUND). */
static int read_file(int dirfd, const char *dir, const char *name, unsigned char **buf,
		size_t *len, struct timespec *mtime, char *err, size_t errlen)
{
	struct stat st;
	size_t got = 0;
	int fd;

	*buf = NULL;
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if(fd < 0 && errno == ENOENT) return MQC_ERR_NOTFOUND;
	if(fd < 0){
		mqc_seterr(err, errlen, "%s/%s: %s", dir, name, strerror(errno));
		return MQC_ERR_IO;
	}
	if(fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)){
		close(fd);
		mqc_seterr(err, errlen, "%s/%s: not a regular file", dir, name);
		return MQC_ERR_IO;
	}
	if((uintmax_t)st.st_size > HTTP_MAX_FILE){
		close(fd);
		mqc_seterr(err, errlen, "%s/%s: file too big (%lld bytes; at most %u served)", dir, name,
				(long long)st.st_size, HTTP_MAX_FILE);
		return MQC_ERR_TOOBIG;
	}
	*len = (size_t)st.st_size;
	*mtime = st.st_mtim;
	*buf = malloc(*len ? *len : 1);
	if(*buf == NULL){
		close(fd);
		mqc_seterr(err, errlen, "out of memory");
		return MQC_ERR_NOMEM;
	}
	while(got < *len){
		ssize_t n = read(fd, *buf + got, *len - got);

		if(n < 0 && errno == EINTR) continue;
		if(n <= 0){
			mqc_seterr(err, errlen, "%s/%s: %s", dir, name, n < 0 ? strerror(errno) : "changed while read");
			close(fd);
			free(*buf);
			*buf = NULL;
			return MQC_ERR_IO;
		}
		got += (size_t)n;
	}
	close(fd);
	return MQC_OK;
}

static bool older(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* Add a file to h: path (copied), its bytes body[0..len) (stolen, freed
 * here on failure) and its .gz twin (stolen too, may be NULL). */
static int add_file(struct http *h, const char *path, unsigned char *body, size_t len,
		unsigned char *gz, size_t gzlen, char *err, size_t errlen)
{
	struct web_file *f, *v;
	uint64_t hash;

	if(h->nfiles >= HTTP_MAX_FILES || h->total + len + gzlen > HTTP_MAX_TOTAL){
		free(body);
		free(gz);
		mqc_seterr(err, errlen, "%s: too much to serve (at most %d files and %u bytes in all)", path,
				HTTP_MAX_FILES, HTTP_MAX_TOTAL);
		return MQC_ERR_TOOBIG;
	}
	v = realloc(h->files, (h->nfiles + 1) * sizeof(*v));
	if(v == NULL) goto nomem;
	h->files = v;
	f = &h->files[h->nfiles];
	memset(f, 0, sizeof(*f));
	f->path = strdup(path);
	if(f->path == NULL) goto nomem;
	f->type = content_type(path);
	f->body = body;
	f->len = len;
	f->gz = gz;
	f->gzlen = gzlen;
	hash = fnv1a(body, len);
	snprintf(f->etag, sizeof(f->etag), "\"%016llx\"", (unsigned long long)hash);
	snprintf(f->gzetag, sizeof(f->gzetag), "\"%016llx-gz\"", (unsigned long long)hash);
	h->nfiles++;
	h->total += len + gzlen;
	return MQC_OK;
nomem:
	free(body);
	free(gz);
	mqc_seterr(err, errlen, "out of memory");
	return MQC_ERR_NOMEM;
}

/* Load one regular file name of the folder dirfd (its path on disk dir)
 * as URL path prefix/name, with its .gz twin if there is a fresh one. */
static int load_file(struct http *h, int dirfd, const char *dir, const char *prefix,
		const char *name, char *err, size_t errlen)
{
	unsigned char *body, *gz = NULL;
	size_t len, gzlen = 0;
	struct timespec mt, gzmt;
	char path[512], gzname[300];
	int rc;

	if(snprintf(path, sizeof(path), "%s/%s", prefix, name) >= (int)sizeof(path)
			|| snprintf(gzname, sizeof(gzname), "%s.gz", name) >= (int)sizeof(gzname)){
		log_warnx("http: %s/%s: name too long, not served", dir, name);
		return MQC_OK;
	}
	rc = read_file(dirfd, dir, name, &body, &len, &mt, err, errlen);
	if(rc != MQC_OK) return rc;
	rc = read_file(dirfd, dir, gzname, &gz, &gzlen, &gzmt, err, errlen);
	if(rc == MQC_ERR_NOTFOUND){
		gz = NULL;
		gzlen = 0;
	}else if(rc != MQC_OK){
		free(body);
		return rc;
	}else if(older(&gzmt, &mt) || gzlen < 18){
		/* Made from an older copy (or not gzip at all): the browser
		 * would get other bytes than the file. */
		log_warnx("http: %s/%s is older than %s or empty: sending %s uncompressed", dir, gzname,
				name, path);
		free(gz);
		gz = NULL;
		gzlen = 0;
	}
	return add_file(h, path, body, len, gz, gzlen, err, errlen);
}

/* Load the folder dir (opened as fd, taken and closed here) as URL path
 * prefix ("" for the top), and its subfolders while depth > 0. */
static int load_dir(struct http *h, int fd, const char *dir, const char *prefix, int depth,
		char *err, size_t errlen)
{
	DIR *dp = fdopendir(fd);
	struct dirent *de;
	int rc = MQC_OK;

	if(dp == NULL){
		mqc_seterr(err, errlen, "%s: %s", dir, strerror(errno));
		close(fd);
		return MQC_ERR_IO;
	}
	while(rc == MQC_OK){
		struct stat st;

		errno = 0;
		de = readdir(dp);
		if(de == NULL){
			if(errno){
				mqc_seterr(err, errlen, "%s: %s", dir, strerror(errno));
				rc = MQC_ERR_IO;
			}
			break;
		}
		if(de->d_name[0] == '.') continue;
		/* Served beside their file, not as files of their own. */
		if(ends_with(de->d_name, ".gz")) continue;
		if(fstatat(dirfd(dp), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0){
			mqc_seterr(err, errlen, "%s/%s: %s", dir, de->d_name, strerror(errno));
			rc = MQC_ERR_IO;
			break;
		}
		if(!plain_name(de->d_name)){
			log_warnx("http: %s/%s: not served (names of letters, digits and . _ - only)", dir,
					de->d_name);
		}else if(S_ISREG(st.st_mode)){
			rc = load_file(h, dirfd(dp), dir, prefix, de->d_name, err, errlen);
		}else if(S_ISDIR(st.st_mode) && depth > 0){
			char sub[512], subprefix[512];
			int sfd;

			if(snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name) >= (int)sizeof(sub)){
				log_warnx("http: %s/%s: name too long, not served", dir, de->d_name);
				continue;
			}
			snprintf(subprefix, sizeof(subprefix), "%s/%s", prefix, de->d_name);
			sfd = openat(dirfd(dp), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if(sfd < 0){
				mqc_seterr(err, errlen, "%s: %s", sub, strerror(errno));
				rc = MQC_ERR_IO;
				break;
			}
			rc = load_dir(h, sfd, sub, subprefix, depth - 1, err, errlen);
		}else{
			log_warnx("http: %s/%s: not served (%s)", dir, de->d_name,
					S_ISLNK(st.st_mode) ? "a symbolic link" :
					S_ISDIR(st.st_mode) ? "folders one level deep only" : "not a regular file");
		}
	}
	closedir(dp);
	return rc;
}

/* ---- the address of MQTT, config.json and the policy ---- */

/* Check url (ws:// or wss://, nothing that could end a header value or a
 * policy's directive) and write the connect-src sources it needs into
 * out: its origin, or "ws: wss:" when the host is {host} (known only in
 * the browser). MQC_OK or MQC_ERR_INVAL with err filled. */
static int mqtt_sources(const char *url, char *out, size_t outlen, char *err, size_t errlen)
{
	const char *p, *auth;
	size_t n;

	if(strncmp(url, "ws://", 5) == 0) auth = url + 5;
	else if(strncmp(url, "wss://", 6) == 0) auth = url + 6;
	else goto bad;
	for(p = url; *p; p++){
		if(*p <= ' ' || *p >= 0x7f || strchr("\"'\\;,<>`", *p)) goto bad;
	}
	if(strlen(url) > 512) goto bad;
	n = strcspn(auth, "/?#");
	if(n == 0) goto bad;
	if(strstr(url, "{host}")){
		snprintf(out, outlen, "ws: wss:");
		return MQC_OK;
	}
	n += (size_t)(auth - url);
	snprintf(out, outlen, "%.*s", (int)n, url);
	return MQC_OK;
bad:
	mqc_seterr(err, errlen, "web_mqtt_url \"%.100s\" is not a ws:// or wss:// URL (e.g."
			" ws://127.0.0.1:8080 or wss://{host}/mqtt)", url);
	return MQC_ERR_INVAL;
}

/* The generated /config.json: {"mqtt_url": url}. */
static int add_config(struct http *h, const char *url, char *err, size_t errlen)
{
	json_t *o = json_pack("{s:s}", "mqtt_url", url);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	size_t i;

	json_decref(o);
	if(text == NULL){
		mqc_seterr(err, errlen, "out of memory");
		return MQC_ERR_NOMEM;
	}
	for(i = 0; i < h->nfiles; i++){
		struct web_file *f = &h->files[i];

		if(strcmp(f->path, "/config.json") != 0) continue;
		log_warnx("http: the folder's config.json is not served: /config.json is made from"
				" web_mqtt_url");
		h->total -= f->len + f->gzlen;
		free(f->path);
		free(f->body);
		free(f->gz);
		*f = h->files[--h->nfiles];
		break;
	}
	return add_file(h, "/config.json", (unsigned char *)text, strlen(text), NULL, 0, err, errlen);
}

/* ---- answering ---- */

/* Does the Accept-Encoding value v allow gzip? RFC 9110 12.5.3: codings
 * with optional weights, "gzip;q=0" refuses it, "*" stands for every
 * coding not named; a weight that is not a number refuses its coding. */
static bool accepts_gzip(const char *v)
{
	int gzip = -1, star = -1;   /* -1 not named, 0 refused, 1 accepted */

	while(v && *v){
		const char *tok, *end;
		size_t toklen;
		int ok = 1;

		v += strspn(v, " \t,");
		if(*v == '\0') break;
		tok = v;
		toklen = strcspn(v, " \t;,");
		end = v + strcspn(v, ",");
		/* The parameters: only q matters. */
		for(v = tok + toklen; v < end; ){
			const char *q;

			v += strspn(v, " \t;");
			if(v >= end) break;
			if((v[0] == 'q' || v[0] == 'Q') && v[1] == '='){
				q = v + 2;
				if(q[0] == '0'){
					/* 0, 0., 0.0, 0.00, 0.000 are refusals. */
					const char *d = q + 1;

					ok = 0;
					if(*d == '.'){
						for(d++; *d >= '0' && *d <= '9'; d++){
							if(*d != '0') ok = 1;
						}
					}
				}else if(q[0] != '1'){
					ok = 0;
				}
			}
			v += strcspn(v, ";,");
		}
		if(toklen == 4 && strncasecmp(tok, "gzip", 4) == 0) gzip = ok;
		else if(toklen == 6 && strncasecmp(tok, "x-gzip", 6) == 0) gzip = ok;
		else if(toklen == 1 && tok[0] == '*') star = ok;
		v = end;
	}
	return gzip >= 0 ? gzip == 1 : star == 1;
}

/* Does the If-None-Match value v name etag (weakly compared, as RFC 9110
 * 13.1.2 says for GET), or is it "*"? */
static bool etag_matches(const char *v, const char *etag)
{
	size_t elen = strlen(etag);

	while(v && *v){
		size_t n;

		v += strspn(v, " \t,");
		if(strncmp(v, "W/", 2) == 0) v += 2;
		n = strcspn(v, " \t,");
		if((n == 1 && v[0] == '*') || (n == elen && strncmp(v, etag, n) == 0)) return true;
		v += n;
	}
	return false;
}

static void add_security_headers(const struct http *h, struct MHD_Response *r)
{
	MHD_add_response_header(r, "Content-Security-Policy", h->csp);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
}

/* A short plain text answer (404, 405). */
static enum MHD_Result answer_text(const struct http *h, struct MHD_Connection *conn,
		unsigned status, const char *text)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(text), (void *)(uintptr_t)text, MHD_RESPMEM_PERSISTENT);
	if(r == NULL) return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	if(status == MHD_HTTP_METHOD_NOT_ALLOWED) MHD_add_response_header(r, "Allow", "GET, HEAD");
	add_security_headers(h, r);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static const struct web_file *find_file(const struct http *h, const char *path)
{
	size_t i;

	if(strcmp(path, "/") == 0) path = "/index.html";
	for(i = 0; i < h->nfiles; i++){
		if(strcmp(h->files[i].path, path) == 0) return &h->files[i];
	}
	return NULL;
}

/* The file f, its gzip twin when the request takes it, or 304 when the
 * browser's copy is current. The bytes stay h's (MHD_RESPMEM_PERSISTENT):
 * they live until http__stop, after the last connection. */
static enum MHD_Result answer_file(const struct http *h, struct MHD_Connection *conn,
		const struct web_file *f)
{
	const char *ae = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Encoding");
	const char *inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-None-Match");
	bool gz = f->gz != NULL && accepts_gzip(ae);
	const char *etag = gz ? f->gzetag : f->etag;
	struct MHD_Response *r;
	unsigned status = MHD_HTTP_OK;
	enum MHD_Result ret;

	if(inm && etag_matches(inm, etag)){
		r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
		status = MHD_HTTP_NOT_MODIFIED;
	}else if(gz){
		r = MHD_create_response_from_buffer(f->gzlen, f->gz, MHD_RESPMEM_PERSISTENT);
	}else{
		r = MHD_create_response_from_buffer(f->len, f->body, MHD_RESPMEM_PERSISTENT);
	}
	if(r == NULL) return MHD_NO;
	if(status == MHD_HTTP_OK){
		MHD_add_response_header(r, "Content-Type", f->type);
		if(gz) MHD_add_response_header(r, "Content-Encoding", "gzip");
	}
	if(f->gz) MHD_add_response_header(r, "Vary", "Accept-Encoding");
	MHD_add_response_header(r, "ETag", etag);
	MHD_add_response_header(r, "Cache-Control", "no-cache");
	add_security_headers(h, r);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

enum http_step http__get_step(const char *method, size_t *upload_data_size, void **req_cls)
{
	static int seen;         /* *req_cls after the first call: its address */

	if(strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0){
		return HTTP_STEP_NOT_ALLOWED;
	}
	if(*req_cls == NULL){
		*req_cls = &seen;
		return HTTP_STEP_WAIT;
	}
	/* A body on a GET: not ours to read. */
	if(*upload_data_size != 0){
		*upload_data_size = 0;
		return HTTP_STEP_WAIT;
	}
	return HTTP_STEP_ANSWER;
}

/* libmicrohttpd's request handler (http__get_step says when to answer). */
static enum MHD_Result request_cb(void *cls, struct MHD_Connection *conn, const char *url,
		const char *method, const char *version, const char *upload_data,
		size_t *upload_data_size, void **req_cls)
{
	const struct http *h = cls;
	const struct web_file *f;
	char esc[128];

	(void)version;
	(void)upload_data;
	switch(http__get_step(method, upload_data_size, req_cls)){
	case HTTP_STEP_NOT_ALLOWED:
		return answer_text(h, conn, MHD_HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed\n");
	case HTTP_STEP_WAIT:
		return MHD_YES;
	case HTTP_STEP_ANSWER:
		break;
	}
	f = find_file(h, url);
	if(f == NULL){
		log_debug("http: %s %s: not found", method, log_escape(url, strlen(url), esc, sizeof(esc)));
		return answer_text(h, conn, MHD_HTTP_NOT_FOUND, "Not Found\n");
	}
	return answer_file(h, conn, f);
}

/* Paths stay as sent (http.h): an escape matches no file. Only the path
 * and the query's arguments come here; neither is decoded. */
static size_t no_unescape_cb(void *cls, struct MHD_Connection *conn, char *s)
{
	(void)cls;
	(void)conn;
	return strlen(s);
}

/* libmicrohttpd's own messages (a client gone mid-answer, a request too
 * large): debug level, they are about clients, not about us. */
void http__mhd_log_cb(void *cls, const char *fmt, va_list ap)
{
	const char *prefix = cls;
	char buf[512];
	size_t n;

	if(log_verbosity < LOG_LVL_DEBUG) return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while(n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = '\0';
	log_debug("%s: %s", prefix, buf);
}

/* ---- start and stop ---- */

int http__listen(const char *setting, const char *bind_addr, int port, int *fd, bool *v6,
		char *err, size_t errlen)
{
	struct addrinfo hints, *ai = NULL;
	char portstr[8];
	int one = 1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	snprintf(portstr, sizeof(portstr), "%d", port);
	rc = getaddrinfo(bind_addr, portstr, &hints, &ai);
	if(rc != 0 || ai == NULL){
		mqc_seterr(err, errlen, "%s_bind \"%.100s\" is not an IP address (%s)", setting, bind_addr,
				rc ? gai_strerror(rc) : "none");
		return MQC_ERR_INVAL;
	}
	*v6 = ai->ai_family == AF_INET6;
	*fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if(*fd < 0
			|| setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0
			|| bind(*fd, ai->ai_addr, ai->ai_addrlen) != 0
			|| listen(*fd, 64) != 0){
		mqc_seterr(err, errlen, "cannot listen on %s%s%s:%d: %s%s%s%s", *v6 ? "[" : "", bind_addr,
				*v6 ? "]" : "", port, strerror(errno),
				errno == EADDRINUSE ? " (another program has that port: choose another " : "",
				errno == EADDRINUSE ? setting : "", errno == EADDRINUSE ? "_port)" : "");
		if(*fd >= 0) close(*fd);
		*fd = -1;
		freeaddrinfo(ai);
		return MQC_ERR_IO;
	}
	freeaddrinfo(ai);
	return MQC_OK;
}

int http__start(const struct http_opts *o, struct http **out, char *err, size_t errlen)
{
	const char *url = o->mqtt_url ? o->mqtt_url : HTTP_DEFAULT_MQTT_URL;
	struct http *h;
	char sources[600];
	bool v6 = false;
	int rc, fd;
	size_t csplen;

	*out = NULL;
	rc = mqtt_sources(url, sources, sizeof(sources), err, errlen);
	if(rc != MQC_OK) return rc;
	h = calloc(1, sizeof(*h));
	if(h == NULL){
		mqc_seterr(err, errlen, "out of memory");
		return MQC_ERR_NOMEM;
	}
	h->listen_fd = -1;
	csplen = strlen(sources) + 320;
	h->csp = malloc(csplen);
	if(h->csp == NULL){
		mqc_seterr(err, errlen, "out of memory");
		rc = MQC_ERR_NOMEM;
		goto fail;
	}
	/* worker-src: the service worker of Web Push (client/web/sw.js, at
	 * the root so that its scope is the whole app). */
	snprintf(h->csp, csplen, "default-src 'self'; script-src 'self'; style-src 'self';"
			" img-src 'self' data:; connect-src 'self' %s; worker-src 'self'; object-src 'none';"
			" base-uri 'none'; form-action 'none'; frame-ancestors 'none'", sources);

	fd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if(fd < 0){
		mqc_seterr(err, errlen, "web_dir %s: %s%s", o->dir, strerror(errno),
				errno == ENOENT ? " (make web builds BUILD/web)" : "");
		rc = MQC_ERR_IO;
		goto fail;
	}
	rc = load_dir(h, fd, o->dir, "", 1, err, errlen);
	if(rc == MQC_OK) rc = add_config(h, url, err, errlen);
	if(rc != MQC_OK) goto fail;
	if(find_file(h, "/") == NULL) log_warnx("http: %s has no index.html: / answers 404", o->dir);

	rc = http__listen("http", o->bind, o->port, &h->listen_fd, &v6, err, errlen);
	if(rc != MQC_OK) goto fail;
	/* One thread of libmicrohttpd's own polls every connection: the files
	 * are in memory, so no answer waits on a disk. */
	h->mhd = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG
			| (v6 ? MHD_USE_IPv6 : 0), 0, NULL, NULL, request_cb, h,
			MHD_OPTION_EXTERNAL_LOGGER, http__mhd_log_cb, (void *)(uintptr_t)"http",
			MHD_OPTION_LISTEN_SOCKET, (MHD_socket)h->listen_fd,
			MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
			MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_REQUEST_MEMORY,
			MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_TIMEOUT_S,
			MHD_OPTION_UNESCAPE_CALLBACK, no_unescape_cb, NULL,
			MHD_OPTION_END);
	if(h->mhd == NULL){
		mqc_seterr(err, errlen, "cannot start the HTTP server on %s:%d (libmicrohttpd refused;"
				" -v says why)", o->bind, o->port);
		rc = MQC_ERR_IO;
		goto fail;
	}
	h->listen_fd = -1;   /* libmicrohttpd's now: MHD_stop_daemon closes it */
	log_info("http: %zu files (%zu KB with their .gz), config.json's mqtt_url %s", h->nfiles,
			(h->total + 1023) / 1024, url);
	log_info("http: serving %s on http://%s%s%s:%d/", o->dir, v6 ? "[" : "", o->bind, v6 ? "]" : "",
			o->port);
	*out = h;
	return MQC_OK;
fail:
	http__stop(h);
	return rc;
}

void http__stop(struct http *h)
{
	size_t i;

	if(h == NULL) return;
	if(h->mhd) MHD_stop_daemon(h->mhd);
	if(h->listen_fd >= 0) close(h->listen_fd);
	for(i = 0; i < h->nfiles; i++){
		free(h->files[i].path);
		free(h->files[i].body);
		free(h->files[i].gz);
	}
	free(h->files);
	free(h->csp);
	free(h);
}
