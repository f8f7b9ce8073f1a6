/* nick_answer.h - how the archiver refuses a nick on the wire: the same
 * codes and texts for the profile RPC and for registration. */
#ifndef MQCHAT_NICK_ANSWER_H
#define MQCHAT_NICK_ANSWER_H

#include <jansson.h>

struct nick_clash;

/* New reference: the answer to request id refusing a nick for rc, a
 * return of nick__check or nick__set:
 *   MQC_ERR_INVAL   invalid_nick, why (the character and its position)
 *   MQC_ERR_EXISTS  nick_taken, or taken when a new account's name is
 *                   what looks like another account's (clash->by_name)
 *   anything else   internal
 * The message names the other account when its name is the look-alike
 * (the asker typed that name), never when its nick is (a nick does not
 * lead to the account behind it). */
json_t *nick_answer__refusal(json_t *id, int rc, const struct nick_clash *clash, const char *why);

#endif
