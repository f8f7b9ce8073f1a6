/* nick.c - the nick rule against the user store (see nick.h). */
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "nick.h"
#include "userdb.h"

/* One walk over the accounts: the keys compared, and the first clash. */
struct walk {
	const char *self;
	const char *nick_key;
	const char *name_key;      /* NULL unless a new account's name is checked */
	struct nick_clash found;
	bool clash;
};

/* Keys that are equal and not empty (a text of separators looks like
 * nothing in particular). */
static bool same(const char *a, const char *b)
{
	return a != NULL && a[0] != '\0' && strcmp(a, b) == 0;
}

/* Compare one other account (name, nick) with the texts checked: true,
 * and w->found filled, if it looks like one of them. */
static bool clashes(struct walk *w, const char *name, const char *nick)
{
	char name_key[NAME_MAX_LEN + 1], nick_key[NICK_MAX_LEN + 1];

	names__nick_key(name, strlen(name), name_key, sizeof(name_key));
	names__nick_key(nick, strlen(nick), nick_key, sizeof(nick_key));
	/* A new name before the nick, the other's name before its nick: the
	 * clash reported is the one most worth knowing (a new account's nick
	 * is its name unless given). */
	if(same(w->name_key, name_key) || same(w->name_key, nick_key)){
		w->found.of_nick = !same(w->name_key, name_key);
		w->found.by_name = true;
	}else if(same(w->nick_key, name_key) || same(w->nick_key, nick_key)){
		w->found.of_nick = !same(w->nick_key, name_key);
		w->found.by_name = false;
	}else{
		return false;
	}
	snprintf(w->found.account, sizeof(w->found.account), "%s", name);
	return true;
}

static bool check_account(const char *name, const char *nick, void *arg)
{
	struct walk *w = arg;

	if(name && clashes(w, name, nick ? nick : "")){
		w->clash = true;
		return true;
	}
	return false;
}

/* Walk every account but w->self until one clashes. The names and nicks
 * alone, in the table's order: a check reads and keys every account (0.4
 * us each, 40 ms for 100,000 accounts here), and userdb__user_each, which
 * copies whole rows in name order, took twice as long. MQC_OK (clash or
 * not) or an MQC_ERR_* of the store. */
static int walk_accounts(struct userdb *udb, struct walk *w)
{
	return userdb__nick_walk(udb, w->self, check_account, w);
}

int nick__check(struct userdb *udb, const char *self, const char *nick, size_t len,
		bool new_account, struct nick_clash *clash, char *err, size_t errlen)
{
	char nick_key[NICK_MAX_LEN + 1], name_key[NAME_MAX_LEN + 1], why[160];
	struct walk w = {.self = self, .nick_key = nick_key};
	int rc;

	if(clash) memset(clash, 0, sizeof(*clash));
	if(!names__nick_valid(nick, len, why, sizeof(why))){
		mqc_seterr(err, errlen, "%s", why);
		return MQC_ERR_INVAL;
	}
	names__nick_key(nick, len, nick_key, sizeof(nick_key));
	if(new_account){
		names__nick_key(self, strlen(self), name_key, sizeof(name_key));
		w.name_key = name_key;
	}
	rc = walk_accounts(udb, &w);
	if(rc != MQC_OK || !w.clash) return rc;
	if(clash) *clash = w.found;
	mqc_seterr(err, errlen, "the %s '%s' looks like the %s of account '%s'",
			w.found.by_name ? "name" : "nick", w.found.by_name ? self : nick,
			w.found.of_nick ? "nick" : "name", w.found.account);
	return MQC_ERR_EXISTS;
}

int nick__set(struct userdb *udb, const char *self, const char *nick, size_t len,
		struct nick_clash *clash, char *err, size_t errlen)
{
	int rc = userdb__begin_write(udb);

	if(rc != MQC_OK) return rc;
	rc = nick__check(udb, self, nick, len, false, clash, err, errlen);
	if(rc == MQC_OK) rc = userdb__user_set_nick(udb, self, nick);
	if(rc == MQC_OK) rc = userdb__commit(udb);
	if(rc != MQC_OK) userdb__rollback(udb);
	return rc;
}
