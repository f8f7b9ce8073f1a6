/* names.h - the name grammar of the wire contract.
 *
 * user, device-kind account and room names: ^[a-z0-9][a-z0-9_.-]{0,31}$
 * device suffix of a client id:           [A-Za-z0-9_.-]{1,64}
 * client id:                              <user> | <user>@<device>
 * message ids (envelope id / ref):         [A-Za-z0-9_-]{1,64}
 * nicks (display names):                   1..64 bytes of UTF-8, see below
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
#define NICK_MAX_LEN 64
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

/* Split a client id into its user part and device part.
 * On success returns true, *user_len is the length of the user part and
 * *device and *device_len the device suffix (NULL/0 if there is none). The user
 * part is NOT checked against the name grammar here (the pseudo-user
 * "_register" uses the same shape); the device part is. Returns false for an
 * empty id, an empty part or an invalid device. */
bool names__split_clientid(const char *id, size_t *user_len,
		const char **device, size_t *device_len);

/* True if id[0..len) is a registration client id, REGISTER_USER "@" and a
 * valid device suffix, the one rule the plugin's auth and ACL and the
 * archiver's registration apply. *device_len (if not NULL) gets the length
 * of the suffix, which the plugin's auth also bounds below. */
bool names__register_clientid(const char *id, size_t len, size_t *device_len);

/* ---- nicks ----
 *
 * A nick is what other people see in place of an account's name, so it
 * must show what it is: 1..NICK_MAX_LEN bytes of valid UTF-8 without
 *   - control characters (C0, DEL, C1),
 *   - bidirectional controls (U+061C, U+200E, U+200F, U+202A..U+202E,
 *     U+2066..U+2069), which reorder the text around them,
 *   - invisible and format characters (U+00AD, U+034F, U+115F, U+1160,
 *     U+180E, U+200B..U+200D, U+2028, U+2029, U+2060..U+2064,
 *     U+206A..U+206F, U+2800, U+3164, U+FEFF, U+FFA0, U+FFF9..U+FFFB,
 *     the tags U+E0000..U+E007F, the noncharacters U+FFFE, U+FFFF),
 *   - a space (any Unicode space) as its first or last character.
 * Nor may it look like another account's name or nick; that needs the
 * store (common/nick.h) and compares keys (names__nick_key). */

/* True if s[0..len) may be a nick. Otherwise false, and err (if not NULL)
 * gets why, naming the character and its position, e.g. "U+202E
 * RIGHT-TO-LEFT OVERRIDE at character 4 is a bidirectional control: it
 * reorders the text around it". */
bool names__nick_valid(const char *s, size_t len, char *err, size_t errlen);

/* The look-alike key of s[0..len) (a nick or a name), NUL-terminated in
 * out: two texts that people would read as the same have the same key.
 * It drops spaces, '_', '-', '.', combining marks and invisible
 * characters; folds the case of Latin, Greek and Cyrillic letters; takes
 * accented Latin-1 letters and Greek and Cyrillic letters shaped like
 * Latin ones (Cyrillic 'а', Greek 'Ο') to the Latin letter, fullwidth forms
 * to ASCII; and makes one letter of each group that is hard to tell
 * apart: i l 1 | (and I), o 0, rn m, vv w. Bytes that are not UTF-8 are
 * kept. The key is never longer than s; out must hold len + 1 bytes
 * (NICK_MAX_LEN + 1 for any valid nick), or the key is cut. Returns its
 * length. An empty key (a text of separators only) looks like nothing. */
size_t names__nick_key(const char *s, size_t len, char *out, size_t outlen);

#endif
