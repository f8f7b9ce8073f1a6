/* tui.h - the terminal app (`mqchat` on a terminal): one full-screen
 * process for all conversations. tui.c runs the connection, the requests and
 * the keys; tui_view.c draws; tui_cmd.c runs the slash commands. The model
 * (tui_store.h) and the input line (tui_line.h) are pure and tested apart.
 * The screen is described in client/README.md, "The terminal app". */
#ifndef MQCHAT_TUI_H
#define MQCHAT_TUI_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "mqchat.h"
#include "session.h"
#include "tui_line.h"
#include "tui_store.h"

/* What an RPC that is on its way is for: its answer goes to the handler of
 * that kind (tui.c). */
enum tui_rpc_kind {
	TRPC_HELLO = 1,
	TRPC_CONVERSATIONS,
	TRPC_ROOMS,
	TRPC_BLOCKED,
	TRPC_PROFILE,
	TRPC_HISTORY,
	TRPC_SYNC,
	TRPC_READ,
	TRPC_SEARCH,
	TRPC_DEVICES,
	TRPC_ROOM_INFO,
	TRPC_WHOIS,
	TRPC_MUTES,
	TRPC_PLAIN,         /* a command: "-!- <done>" on success, its error otherwise */
};

#define TUI_RPCS 64
#define TUI_INFO_MAX 200
#define TUI_DELIVERED 64

struct tui_rpc {
	char id[40];
	enum tui_rpc_kind kind;
	enum tconv_kind ckind;      /* the conversation it concerns, if any */
	char cname[NAME_MAX_LEN + 1];
	char done[160];             /* TRPC_PLAIN: what to say on success */
	char doing[160];            /* "cannot <doing>: <why>" on failure */
	int64_t deadline;           /* monotonic ms */
	bool silent;                /* no words on failure (background requests) */
};

/* One of my texts on its way: until its PUBACK. */
struct tui_out {
	char id[MSGID_LEN + 1];
	int mid;
	enum tconv_kind ckind;
	char cname[NAME_MAX_LEN + 1];
	char *payload;              /* the envelope, to publish again (rate_limited) */
	char topic[TOPIC_MAX_LEN + 1];
	int64_t resend_at;          /* monotonic ms; 0: not waiting to resend */
};

struct tui {
	struct options *opt;
	struct session s;
	struct tstore st;
	struct tui_line line;
	struct tconv *open;         /* the conversation shown, or NULL */
	int scroll;                 /* rows scrolled back from the newest */
	int sel;                    /* the selected message's index in open, or -1 */
	bool at_top;                /* the view shows the oldest message held (tui_view.c) */
	char *info[TUI_INFO_MAX];   /* "-!- " lines under the open conversation */
	int ninfo;
	char notice[256];           /* the status line's latest word */
	json_t *answers;            /* RPC answers come in, not yet handled */
	json_t *mutes;              /* the mutes answer's list, or NULL (none, or an older server) */
	struct tui_rpc rpcs[TUI_RPCS];
	int nrpcs;
	struct tui_out *outs;
	int nouts, capouts;
	int edit_window_s;
	bool was_connected;         /* to see the connection come back */
	unsigned resyncs;           /* the session's resyncs caught up with (session.h) */
	bool dirty;                 /* redraw */
	bool utf8;                  /* the locale speaks UTF-8: draw ✓ and │ */
	bool quit;
	int64_t next_rooms_ms;      /* when to ask for the rooms again */
	int64_t next_clock_ms;
	/* Typing sent: to which conversation, when last "true", last key. */
	bool typing_on;
	enum tconv_kind typing_kind;
	char typing_name[NAME_MAX_LEN + 1];
	int64_t typing_sent_ms, typing_key_ms;
	char **subscribed_rooms;    /* rooms whose topics this session subscribed */
	int nsubscribed;
	int sync_pages;             /* sync pages asked in this catch-up */
	/* "from/id" of the texts I said delivered for (deliver_newest). */
	char delivered[TUI_DELIVERED][NAME_MAX_LEN + MSGID_MAX_LEN + 2];
	int ndelivered;
	bool history_asked;         /* a history request for open is on its way */
};

/* Run the app; conv: "bob" or "#lobby" to open first, or NULL. Returns an
 * exit code. Needs a terminal on stdin and stdout. */
int tui__run(struct options *opt, const char *conv);

/* ---- tui.c, for tui_cmd.c ---- */

/* Send an RPC (req taken); its answer goes to the handler of kind. The
 * returned slot (or NULL: offline or full, said) may be filled further. */
struct tui_rpc *tui__rpc(struct tui *t, json_t *req, enum tui_rpc_kind kind);
/* A TRPC_PLAIN request: on success say done, on failure "cannot doing: why". */
void tui__rpc_plain(struct tui *t, json_t *req, const char *done, const char *doing);
/* A request {"op": op, "with"|"room": c's name} (new reference). */
json_t *tui__conv_req(const char *op, const struct tconv *c);
/* Open a conversation (loads its history if not yet), or NULL to close. */
void tui__open(struct tui *t, struct tconv *c);
/* Send a text to the open conversation (reply: the message it answers, or NULL). */
void tui__send_text(struct tui *t, const char *body, const struct tmsg *reply);
/* Send a reaction to m in the open conversation. */
void tui__react(struct tui *t, const struct tmsg *m, const char *emoji, bool remove);
/* Subscribe the topics of room (once per session). */
void tui__room_subscribe(struct tui *t, const char *room);
/* Add a "-!- " line (printf format) under the open conversation. */
void tui__info(struct tui *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The server's clock now (ms since the epoch). */
int64_t tui__now(const struct tui *t);
/* Is c muted (push notifications), and until when (0: for ever)? */
bool tui__muted(const struct tui *t, const struct tconv *c, int64_t *until);
/* Ask for the mutes again (after /mute, /unmute). */
void tui__ask_mutes(struct tui *t);

/* ---- tui_cmd.c ---- */

/* Run a line that starts with '/'. */
void tui_cmd__run(struct tui *t, const char *line);
/* Tab: complete the word before the cursor (commands, then names). */
void tui_cmd__complete(struct tui *t);
/* The message commands act on: the selected one, else for mine (edit,
 * delete) my newest text, else the newest text. NULL if none. */
struct tmsg *tui_cmd__target(struct tui *t, bool mine);

/* ---- tui_view.c ---- */

/* Start curses (UTF-8 locale set by the caller) and stop it, leaving the
 * terminal as it was. */
void tui_view__start(struct tui *t);
void tui_view__stop(struct tui *t);
/* Draw everything (when t->dirty, or the clock turned). */
void tui_view__draw(struct tui *t);
/* Rows of messages the screen shows (for PgUp/PgDn). */
int tui_view__page(const struct tui *t);
/* The conversation's label as the list shows it: "bob" or "#lobby". */
void tui_view__label(const struct tconv *c, char *out, size_t len);

#endif
