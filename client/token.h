/* token.h - the device tokens the client keeps instead of the password
 * (docs/PROTOCOL.md, "Device tokens"; client/README.md, "Device tokens").
 *
 * One installation holds two tokens, each bound to the client id it logs
 * in as: <user>@<device> for listen and chat (the persistent session), and
 * <user>@<device>.cmd for the one-shot commands, so that a send never
 * takes over the session of a running listen. Each lives in a file named
 * after its client id, <config dir>/tokens/<user>@<device>[.cmd], mode
 * 0600 in a 0700 folder, replaced atomically. */
#ifndef MQCHAT_TOKEN_H
#define MQCHAT_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devtoken.h"
#include "mqchat.h"

struct session;

/* The one-shot commands' device of device: device (cut to 60) + ".cmd",
 * into out (DEVICE_MAX_LEN + 1 bytes). */
void token__oneshot_device(const char *device, char *out);
/* The file of the token of opt->user@device into path (len bytes); with
 * mkdirs, its folder is made (0700). 0, or -1 (no config folder, or it
 * cannot be made; errno set). */
int token__path(const struct options *opt, const char *device, char *path, size_t len,
		bool mkdirs);
/* Read the stored token of opt->user@device into out. EXIT_OK with out
 * set, or out[0] == '\0' if there is none; EXIT_USAGE (said) if the file
 * or its folder is accessible by others or the file holds no token. */
int token__load(const struct options *opt, const char *device, char out[DEVTOKEN_LEN + 1]);
/* True if a token file exists for opt->user@device (readable or not). */
bool token__exists(const struct options *opt, const char *device);
/* Store token for opt->user@device: a new file (0600) renamed over the
 * old. EXIT_OK, or EXIT_FAILED with errno set (nothing said). */
int token__save(const struct options *opt, const char *device, const char *token);
/* Delete the stored token of opt->user@device: true if there was one. */
bool token__forget(const struct options *opt, const char *device);
/* Take the lock of the one-shot client id of opt->user@device (an
 * exclusive flock on the token file's ".lock"), waiting until deadline
 * (monotonic ms). The fd to close, or -1 if it stayed busy or failed. */
int token__lock(const struct options *opt, const char *device, int64_t deadline);
/* After s logged in with password: ask the archiver for the tokens this
 * installation does not hold yet (both devices) and store them. A failure
 * (no archiver, an error answer) is one warning on stderr, never an
 * error. Waits at most 4 s (and --timeout) for an answer. */
void token__obtain(struct session *s, const char *password);
/* Ask for a new token of device with password, over s, and store it;
 * EXIT_OK, else an exit code with *why (len bytes) saying what failed. */
int token__request(struct session *s, const char *device, const char *password,
		char *why, size_t len);

#endif
