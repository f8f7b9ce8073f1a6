/* names.h - the name grammar of the wire contract.
 *
 * user, device-kind account and room names: ^[a-z0-9][a-z0-9_.-]{0,31}$
 * device suffix of a client id:           [A-Za-z0-9_.-]{1,64}
 * client id:                              <user> | <user>@<device>
 * message ids (envelope id / ref):         [A-Za-z0-9_-]{1,64}
 *
 * All functions are pure, allocation-free and take an explicit length, so the
 * plugin can call them on topic levels in place. */
#ifndef MQCHAT_NAMES_H
#define MQCHAT_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define NAME_MAX_LEN 32
#define DEVICE_MAX_LEN 64
#define MSGID_MAX_LEN 64
/* "<user>@<device>" at its longest. */
#define CLIENTID_MAX_LEN (NAME_MAX_LEN + 1 + DEVICE_MAX_LEN)

/* The pseudo-user that self-registration connects as. Its leading '_' keeps it
 * outside the name grammar, so no account can ever be called that. */
#define REGISTER_USER "_register"

/* True if s[0..len) is a valid user/device/room name. */
bool names__valid(const char *s, size_t len);
/* NUL-terminated convenience form of names__valid. */
bool names__valid_str(const char *s);
/* True if s[0..len) is a valid device suffix. */
bool names__valid_device(const char *s, size_t len);
/* True if s[0..len) is a valid message id. */
bool names__valid_msgid(const char *s, size_t len);
/* The same answer, for s[0..len) inside a buffer lo[0..hi - lo) that may be
 * read whole: a short id is then checked with one 16-byte load of the
 * buffer around it (the envelope's id, within its payload). */
bool names__valid_msgid_in(const char *s, size_t len, const char *lo, const char *hi);
/* How many of the 16 bytes at s, from the first, are in the message-id
 * alphabet [A-Za-z0-9_-] (16 if all are): s[0..16) must be readable. An id
 * followed by a byte outside the alphabet (the envelope's closing quote)
 * is checked, and its end found, with one 16-byte step. */
unsigned names__msgid_span16(const char *s);

/* Split a client id into its user part and device part.
 * On success returns true, *user_len is the length of the user part and
 * *device and *device_len the device suffix (NULL/0 if there is none). The user
 * part is NOT checked against the name grammar here (the pseudo-user
 * "_register" uses the same shape); the device part is. Returns false for an
 * empty id, an empty part or an invalid device. */
bool names__split_clientid(const char *id, size_t *user_len,
		const char **device, size_t *device_len);

#endif
