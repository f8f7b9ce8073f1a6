/* log.h - logging for the archiver daemon and the command-line tools.
 *
 * After the OpenBSD log.c API: log_warn appends strerror(errno), log_warnx
 * does not; fatal logs and exits(1). The daemon logs to stderr (or to a
 * file given with log_open, reopened on SIGHUP). The level test happens inside
 * the macro, before any argument is evaluated. Chat text is untrusted: pass
 * it through log_escape before logging it. */
#ifndef MQCHAT_LOG_H
#define MQCHAT_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN = 1,
	LOG_LVL_INFO = 2,
	LOG_LVL_DEBUG = 3,
};

extern int log_verbosity;

/* Set the program name used as prefix and the verbosity. */
void log_init(const char *progname, int verbosity);
/* Log to path (appending) instead of stderr; NULL for stderr. Returns 0 or -1. */
int log_open(const char *path);
/* Reopen the log file (after rotation); no-op on stderr. */
void log_reopen(void);

void log_write(enum log_level lvl, int with_errno, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#define log_warn(...)  do{ if(log_verbosity >= LOG_LVL_WARN) log_write(LOG_LVL_WARN, 1, __VA_ARGS__); }while(0)
#define log_warnx(...) do{ if(log_verbosity >= LOG_LVL_WARN) log_write(LOG_LVL_WARN, 0, __VA_ARGS__); }while(0)
#define log_info(...)  do{ if(log_verbosity >= LOG_LVL_INFO) log_write(LOG_LVL_INFO, 0, __VA_ARGS__); }while(0)
#define log_debug(...) do{ if(log_verbosity >= LOG_LVL_DEBUG) log_write(LOG_LVL_DEBUG, 0, __VA_ARGS__); }while(0)
#define log_error(...) log_write(LOG_LVL_ERROR, 0, __VA_ARGS__)

/* Copy untrusted text into out (NUL-terminated, at most outlen bytes) with
 * control characters, backslashes and non-ASCII bytes escaped as \xNN, cut
 * with "..." if too long. Returns out. */
char *log_escape(const char *in, size_t inlen, char *out, size_t outlen);

#endif
