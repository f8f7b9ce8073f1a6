/* nick_answer.c - the archiver's answer refusing a nick (see nick_answer.h). */
#include "daemon.h"
#include "err.h"
#include "nick.h"
#include "nick_answer.h"

json_t *nick_answer__refusal(json_t *id, int rc, const struct nick_clash *clash, const char *why)
{
	const char *what = clash->by_name ? "that name" : "that nick";
	const char *code = clash->by_name ? "taken" : "nick_taken";

	if(rc == MQC_ERR_INVAL) return rpc__fail(id, "invalid_nick", "\"nick\": %s", why);
	if(rc != MQC_ERR_EXISTS) return rpc__fail(id, "internal", "%s", mqc_strerror(rc));
	if(clash->of_nick) return rpc__fail(id, code, "%s looks like another account's nick", what);
	return rpc__fail(id, code, "%s looks like the name of account '%s'", what, clash->account);
}
