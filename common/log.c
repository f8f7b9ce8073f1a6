/* log.c - logging for the archiver daemon and the command-line tools (see log.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

int log_verbosity = LOG_LVL_INFO;
static const char *log_progname = "mqchat";
static FILE *log_fp;
static char log_path[4096];
/* The archiver logs from more than one thread (its worker answers
 * requests): a line is written whole, and never to a file being swapped. */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

void log_init(const char *progname, int verbosity)
{
	log_progname = progname;
	log_verbosity = verbosity;
}

int log_open(const char *path)
{
	FILE *fp;

	if(path == NULL){
		pthread_mutex_lock(&log_mu);
		if(log_fp) fclose(log_fp);
		log_fp = NULL;
		log_path[0] = '\0';
		pthread_mutex_unlock(&log_mu);
		return 0;
	}
	fp = fopen(path, "a");
	if(fp == NULL) return -1;
	setvbuf(fp, NULL, _IOLBF, 0);
	pthread_mutex_lock(&log_mu);
	if(log_fp) fclose(log_fp);
	log_fp = fp;
	snprintf(log_path, sizeof(log_path), "%s", path);
	pthread_mutex_unlock(&log_mu);
	return 0;
}

void log_reopen(void)
{
	char path[sizeof(log_path)];

	if(log_path[0] == '\0') return;
	memcpy(path, log_path, sizeof(path));
	if(log_open(path) != 0){
		fprintf(stderr, "%s: cannot reopen log %s: %s\n", log_progname, path, strerror(errno));
	}
}

/* The format attribute lets clang's -Wformat-nonliteral accept vfprintf. */
static void vlog(enum log_level lvl, int with_errno, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static void vlog(enum log_level lvl, int with_errno, const char *fmt, va_list ap)
{
	static const char *names[] = {"error", "warning", "info", "debug"};
	int saved = errno;
	char stamp[32];
	struct tm tm;
	time_t now = time(NULL);
	FILE *fp;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	pthread_mutex_lock(&log_mu);
	fp = log_fp ? log_fp : stderr;
	fprintf(fp, "%s %s[%s]: ", stamp, log_progname, names[lvl]);
	vfprintf(fp, fmt, ap);
	if(with_errno) fprintf(fp, ": %s", strerror(saved));
	fputc('\n', fp);
	fflush(fp);
	pthread_mutex_unlock(&log_mu);
	errno = saved;
}

void log_write(enum log_level lvl, int with_errno, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(lvl, with_errno, fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_ERROR, 1, fmt, ap);
	va_end(ap);
	exit(1);
}

char *log_escape(const char *in, size_t inlen, char *out, size_t outlen)
{
	size_t i, n = 0;

	if(outlen == 0) return out;
	for(i=0; i<inlen; i++){
		unsigned char c = (unsigned char)in[i];
		if(c >= 0x20 && c < 0x7f && c != '\\'){
			if(n + 1 + 3 >= outlen) goto cut;
			out[n++] = (char)c;
		}else{
			if(n + 4 + 3 >= outlen) goto cut;
			n += (size_t)snprintf(out + n, outlen - n, "\\x%02x", c);
		}
	}
	out[n] = '\0';
	return out;
cut:
	snprintf(out + n, outlen - n, "...");
	return out;
}
