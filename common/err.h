/* err.h - the status codes shared by every mqchat component.
 *
 * Every fallible function in common/, the archiver and the client returns one
 * of these (0 is success). Details go to a caller-supplied buffer or the log,
 * never into a new code. */
#ifndef MQCHAT_ERR_H
#define MQCHAT_ERR_H

#include <stdarg.h>
#include <stddef.h>

enum mqc_err {
	MQC_OK = 0,
	MQC_ERR_NOMEM,      /* allocation failed */
	MQC_ERR_INVAL,      /* bad argument or bad input from outside */
	MQC_ERR_NOTFOUND,   /* no such user, room, invite, ... */
	MQC_ERR_EXISTS,     /* name already taken */
	MQC_ERR_DB,         /* SQLite failed (see the error buffer / log) */
	MQC_ERR_BUSY,       /* database locked past the busy timeout */
	MQC_ERR_SCHEMA,     /* store missing tables or of another version */
	MQC_ERR_IO,         /* file or socket error (errno is set) */
	MQC_ERR_PERM,       /* not allowed */
	MQC_ERR_CRYPTO,     /* OpenSSL failed */
	MQC_ERR_TOOBIG,     /* input over a configured limit */
	MQC_ERR_TIMEOUT,    /* no answer in time */
	MQC_ERR_FULL,       /* no room left (the spool's ring) */
	MQC_ERR_AGAIN,      /* nothing yet: try again later */
	MQC_ERR_CORRUPT,    /* data that fails validation (a file's header, a record) */
};

/* A short constant English text for a status; never NULL. */
const char *mqc_strerror(int err);

/* Format a message into a caller-supplied error buffer; does nothing when
 * err is NULL or errlen 0. */
void mqc_seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The command-line tools' error line: flush stdout, then write
 * "Error: <message>\n" to stderr. */
void mqc_verror(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

#endif
