/* archive.c - the message archive (stub, being written; see archive.h). */
#include <stdio.h>

#include "archive.h"
#include "err.h"

int archive__open(const char *path, struct archive **out, char *err, size_t errlen)
{
	(void)path;
	*out = NULL;
	if(err && errlen) snprintf(err, errlen, "not implemented yet");
	return MQC_ERR_DB;
}

void archive__close(struct archive *ar) { (void)ar; }
int archive__purge(struct archive *ar, int64_t cutoff_ms, int64_t *deleted)
{ (void)ar; (void)cutoff_ms; *deleted = 0; return MQC_ERR_DB; }
int archive__erase_user(struct archive *ar, const char *user, int64_t *deleted)
{ (void)ar; (void)user; *deleted = 0; return MQC_ERR_DB; }
json_t *archive__export_user(struct archive *ar, const char *user) { (void)ar; (void)user; return NULL; }
json_t *archive__stats(struct archive *ar) { (void)ar; return NULL; }
