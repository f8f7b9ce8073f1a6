/* rpc_conv.h - the ops of rpc_conv.c (docs/PROTOCOL.md): hello,
 * conversations, read. rpc.c's op table calls them; nothing else does. */
#ifndef MQCHAT_RPC_CONV_H
#define MQCHAT_RPC_CONV_H

#include <jansson.h>

struct rpc_req;

/* {"protocol","features","edit_window_s"}: what this server speaks. */
json_t *rpc__op_hello(struct rpc_req *r);
/* My conversations, newest last text or event first, paged by "before"
 * (a last_seq) and "limit" (1..100, default 50), each with its last
 * message, my read_seq and unread. */
json_t *rpc__op_conversations(struct rpc_req *r);
/* Move my read marker in a conversation ("with" or "room") forward to
 * "seq", or to ("ref", "of"); answers read_seq and unread, and tells my
 * devices with a `read` envelope on chat/inbox/<me>/<archiver>. */
json_t *rpc__op_read(struct rpc_req *r);

#endif
