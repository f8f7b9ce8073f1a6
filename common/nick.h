/* nick.h - the nick rule against the user store: no account's nick looks
 * like another account's name or nick.
 *
 * names.h decides which characters a nick may hold and what two texts
 * "look alike" (equal names__nick_key). This module applies that to the
 * accounts of auth.db, for every path that sets a nick: `user add` and
 * `user nick` in the CLI, registration and the `profile` RPC in the
 * archiver. A new account's name counts as a nick too (it is the default
 * nick, and what people see beside it), so a new name may not look like
 * another account's name or nick either. Nicks and names stored before
 * this rule are left as they are; they are only compared against. */
#ifndef MQCHAT_NICK_H
#define MQCHAT_NICK_H

#include <stdbool.h>
#include <stddef.h>

#include "names.h"

struct userdb;

/* Whose name or nick a text looks like. */
struct nick_clash {
	char account[NAME_MAX_LEN + 1];   /* the other account */
	bool of_nick;                     /* its nick (false: its name) */
	bool by_name;                     /* the new account's name clashes, not its nick */
};

/* May account self have nick[0..len) (len: a NUL inside is refused like
 * any control character)? new_account: self is being made, so its name is
 * checked too. Reads every account: call inside the write transaction
 * that then stores the nick, so that no other writer slips a look-alike
 * in between.
 * Returns MQC_OK; MQC_ERR_INVAL if the nick breaks names__nick_valid;
 * MQC_ERR_EXISTS if the nick (or, for a new account, the name) looks like
 * another account's name or nick, *clash (if not NULL) saying whose; or an
 * MQC_ERR_* of the store. For INVAL and EXISTS, err (if not NULL) gets a
 * message for operators, naming the character or the account. */
int nick__check(struct userdb *udb, const char *self, const char *nick, size_t len,
		bool new_account, struct nick_clash *clash, char *err, size_t errlen);

/* Check and set self's nick in one write transaction. The returns of
 * nick__check, and MQC_ERR_NOTFOUND if there is no account self. */
int nick__set(struct userdb *udb, const char *self, const char *nick, size_t len,
		struct nick_clash *clash, char *err, size_t errlen);

#endif
