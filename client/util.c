/* util.c - small helpers of the chat client: ids, numbers, safe printing,
 * time formats, input checks. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "envelope.h"
#include "err.h"
#include "mqchat.h"
#include "rand.h"
#include "timeutil.h"

void util__msgid(char *out)
{
	static const char alphabet[] =
		"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	unsigned char r[64];
	size_t i = 0, k = sizeof(r);

	/* Rejection sampling keeps the 62 symbols equally likely. */
	while(i < MSGID_LEN){
		if(k == sizeof(r)){
			if(rand__bytes(r, sizeof(r)) != MQC_OK){
				/* OpenSSL's generator fails only when it cannot seed;
				 * fall back to time so an id is still unique. */
				int64_t t = time__mono_ns() ^ time__now_ms();
				memcpy(r, &t, sizeof(t));
				memset(r + sizeof(t), 0, sizeof(r) - sizeof(t));
			}
			k = 0;
		}
		if(r[k] < 248) out[i++] = alphabet[r[k] % 62];
		k++;
	}
	out[MSGID_LEN] = '\0';
}

void util__randhex(char *out, size_t n)
{
	unsigned char r[64];
	size_t i;

	if(n > sizeof(r)) n = sizeof(r);
	if(rand__bytes(r, n) != MQC_OK){
		int64_t t = time__mono_ns();
		memset(r, 0, sizeof(r));
		memcpy(r, &t, sizeof(t) < n ? sizeof(t) : n);
	}
	for(i=0; i<n; i++) snprintf(out + 2*i, 3, "%02x", r[i]);
	out[2*n] = '\0';
}

long long util__number(const char *s, long long min, long long max)
{
	char *end;
	long long v;

	if(s == NULL || *s < '0' || *s > '9') return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if(errno || *end != '\0' || v < min || v > max) return -1;
	return v;
}

/* Length of the UTF-8 sequence at p (assumed valid), at least 1. */
static size_t seq_len(unsigned char c)
{
	if(c >= 0xF0) return 4;
	if(c >= 0xE0) return 3;
	if(c >= 0xC0) return 2;
	return 1;
}

void util__print_safe(FILE *fp, const char *s, size_t len)
{
	size_t i = 0;

	while(i < len){
		unsigned char c = (unsigned char)s[i];
		size_t n = seq_len(c);

		if(c == '\n'){
			fputs("\n    ", fp);            /* continuation lines are indented */
		}else if(c < 0x20 || c == 0x7f){
			fputc('?', fp);                 /* no terminal escapes from peers */
		}else if(c == 0xC2 && i + 1 < len && (unsigned char)s[i+1] < 0xA0){
			fputc('?', fp);                 /* C1 controls U+0080..U+009F */
		}else{
			if(i + n > len) n = len - i;
			fwrite(s + i, 1, n, fp);
		}
		i += n;
	}
}

void util__fmt_time(int64_t ms, bool full, char *out, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(out, len, full ? "%Y-%m-%d %H:%M:%S" : "%H:%M:%S", &tm);
}

char *util__read_all(FILE *fp, size_t max, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);

	if(buf == NULL) return NULL;
	for(;;){
		size_t r;
		if(n + 1 >= cap){
			char *nb;
			if(cap > max + 1){
				free(buf);
				errno = EFBIG;
				return NULL;
			}
			cap *= 2;
			nb = realloc(buf, cap);
			if(nb == NULL){
				free(buf);
				return NULL;
			}
			buf = nb;
		}
		r = fread(buf + n, 1, cap - n - 1, fp);
		n += r;
		if(r == 0) break;
	}
	if(ferror(fp) || n > max){
		free(buf);
		errno = ferror(fp) ? EIO : EFBIG;
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

int util__check_text(const char *body, size_t len)
{
	if(len == 0){
		util__error("empty message");
		return EXIT_USAGE;
	}
	if(memchr(body, '\0', len) != NULL){
		util__error("message contains a NUL byte");
		return EXIT_USAGE;
	}
	if(!utf8__valid(body, len)){
		util__error("message is not valid UTF-8");
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

int util__check_body(const char *body, size_t len)
{
	if(len > PAYLOAD_MAX){
		util__error("message too large: %zu bytes (limit %d)", len, PAYLOAD_MAX);
		return EXIT_FAILED;
	}
	return util__check_text(body, len);
}

/* n with a comma every three digits ("65,536") into out (32 bytes). */
static const char *grouped(size_t n, char *out)
{
	char digits[24];
	int nd = snprintf(digits, sizeof(digits), "%zu", n), i, k = 0;

	for(i=0; i<nd; i++){
		if(i > 0 && (nd - i) % 3 == 0) out[k++] = ',';
		out[k++] = digits[i];
	}
	out[k] = '\0';
	return out;
}

/* The bytes body takes inside a JSON string as jansson writes it (the
 * envelope's encoder): len, or more with quotes, backslashes and control
 * characters escaped. */
static size_t escaped_len(const char *body, size_t len)
{
	json_t *j = json_stringn(body, len);
	size_t n = j ? json_dumpb(j, NULL, 0, JSON_ENCODE_ANY) : 0;

	json_decref(j);
	return n >= 2 ? n - 2 : len;      /* without the quotes */
}

int util__envelope_fits(size_t env_len, const char *body, size_t len, char *why, size_t why_len)
{
	char a[32], b[32], c[32];
	size_t esc, rest, fit;

	if(env_len <= PAYLOAD_MAX) return EXIT_OK;
	esc = body ? escaped_len(body, len) : len;
	/* What the envelope holds besides the text: id, type, ts, a reply's
	 * quote. The text may take what is left. */
	rest = env_len > esc ? env_len - esc : 0;
	fit = rest < PAYLOAD_MAX ? PAYLOAD_MAX - rest : 0;
	if(esc > len){
		snprintf(why, why_len, "message too large: %s bytes of text, %s once escaped (a line "
				"break, tab, quote or backslash takes 2 bytes, another control character "
				"6); at most %s fit in one message", grouped(len, a), grouped(esc, b),
				grouped(fit, c));
	}else{
		snprintf(why, why_len, "message too large: %s bytes of text; at most %s fit in one "
				"message", grouped(len, a), grouped(fit, c));
	}
	return EXIT_USAGE;
}

void util__error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mqc_verror(fmt, ap);
	va_end(ap);
}

int util__mkdirs(char *dir)
{
	char *p;

	for(p = dir + 1; *p; p++){
		if(*p != '/') continue;
		*p = '\0';
		if(mkdir(dir, 0700) != 0 && errno != EEXIST){
			*p = '/';
			return -1;
		}
		*p = '/';
	}
	return mkdir(dir, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

long long util__duration(const char *v)
{
	char *end;
	long long n, unit = 1;

	if(*v < '0' || *v > '9') return -1;
	n = strtoll(v, &end, 10);
	if(*end && end[1] == '\0'){
		switch(*end){
		case 's': unit = 1; break;
		case 'm': unit = 60; break;
		case 'h': unit = 3600; break;
		case 'd': unit = 86400; break;
		default: return -1;
		}
	}else if(*end){
		return -1;
	}
	if(n <= 0 || n > UTIL_DURATION_MAX / unit) return -1;
	return n * unit;
}

const char *util__say_duration(long long s, char *buf, size_t len)
{
	static const struct { long long unit; const char *name; } units[] = {
		{86400, "day"}, {3600, "hour"}, {60, "minute"}, {1, "second"}};
	size_t i;

	for(i=0; i<sizeof(units) / sizeof(units[0]); i++){
		if(s % units[i].unit == 0){
			long long n = s / units[i].unit;
			snprintf(buf, len, "%lld %s%s", n, units[i].name, n == 1 ? "" : "s");
			break;
		}
	}
	return buf;
}
