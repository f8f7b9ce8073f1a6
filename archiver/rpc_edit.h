/* rpc_edit.h - the ops of rpc_edit.c (edit, delete) and rpc_search.c
 * (search), for rpc.c's table (docs/PROTOCOL.md, "edit", "delete",
 * "search"). The archive side is archive_ext.h. */
#ifndef MQCHAT_RPC_EDIT_H
#define MQCHAT_RPC_EDIT_H

#include <stdint.h>

#include <jansson.h>

#include "rpc_internal.h"

/* The longest body an edit may give: what a text may hold (the request
 * itself is at most 16 KiB, so that is the real bound today). */
#define RPC_EDIT_BODY_MAX 65536

/* The store's edit_window setting (seconds: common/settings.h), or its
 * default when unset or unreadable. For edit, delete, and hello's
 * edit_window_s. */
int64_t rpc__edit_window_s(struct userdb *udb);

json_t *rpc__op_edit(struct rpc_req *r);
json_t *rpc__op_delete(struct rpc_req *r);
json_t *rpc__op_search(struct rpc_req *r);

#endif
