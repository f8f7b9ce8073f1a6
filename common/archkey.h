/* archkey.h - the keys archive.db stores its messages under, computed the
 * same way by the archiver and by the bench that fills an archive for it. */
#ifndef MQCHAT_ARCHKEY_H
#define MQCHAT_ARCHKEY_H

#include <stddef.h>
#include <stdint.h>

/* The dedup key of a message: FNV-1a 64 over sender, a 0 byte and id (two
 * NUL-terminated strings). Collisions are resolved by comparing the text,
 * so it need only be fast and stable: rows already stored carry it. */
int64_t archkey__id_hash(const char *sender, const char *id);

/* The conversation key of the direct messages between a and b, the same
 * for both orders: "d:<lower>|<higher>" (strcmp order) into out. */
void archkey__dm_conv(const char *a, const char *b, char *out, size_t outlen);

#endif
