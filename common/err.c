/* err.c - texts for the status codes of err.h. */
#include <stdio.h>

#include "err.h"

const char *mqc_strerror(int err)
{
	switch(err){
		case MQC_OK: return "success";
		case MQC_ERR_NOMEM: return "out of memory";
		case MQC_ERR_INVAL: return "invalid argument";
		case MQC_ERR_NOTFOUND: return "not found";
		case MQC_ERR_EXISTS: return "already exists";
		case MQC_ERR_DB: return "database error";
		case MQC_ERR_BUSY: return "database is locked";
		case MQC_ERR_SCHEMA: return "database has the wrong schema";
		case MQC_ERR_IO: return "input/output error";
		case MQC_ERR_PERM: return "not permitted";
		case MQC_ERR_CRYPTO: return "cryptography error";
		case MQC_ERR_TOOBIG: return "too large";
		case MQC_ERR_TIMEOUT: return "timed out";
		case MQC_ERR_FULL: return "no space left";
		case MQC_ERR_AGAIN: return "nothing yet";
		case MQC_ERR_CORRUPT: return "corrupt data";
	}
	return "unknown error";
}

void mqc_verror(const char *fmt, va_list ap)
{
	fflush(stdout);
	fputs("Error: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void mqc_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if(err == NULL || errlen == 0) return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}
