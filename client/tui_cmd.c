/* tui_cmd.c - the terminal app's slash commands and Tab completion (see
 * tui.h; the list is in client/README.md, "The terminal app"). */
#include <stdlib.h>
#include <string.h>

#include "tui.h"

#define WORDS_MAX 4

/* A command line split: the command, up to WORDS_MAX - 1 words, and the
 * rest of the line after the words asked for (texts keep their spaces). */
struct words {
	char *w[WORDS_MAX];
	int n;
};

/* Split the first `want` words of line (a copy in buf) and return the
 * rest after them (leading spaces skipped), "" if none. */
static const char *split(const char *line, char *buf, size_t len, int want, struct words *ws)
{
	char *p;

	snprintf(buf, len, "%s", line);
	/* Completion leaves a space after a name: it is not part of it. */
	p = buf + strlen(buf);
	while(p > buf && p[-1] == ' ') *--p = '\0';
	p = buf;
	ws->n = 0;
	while(ws->n < want && ws->n < WORDS_MAX){
		while(*p == ' ') p++;
		if(*p == '\0') break;
		ws->w[ws->n++] = p;
		while(*p && *p != ' ') p++;
		if(*p) *p++ = '\0';
	}
	while(*p == ' ') p++;
	return p;
}

static const char *const commands[] = {
	"/open", "/msg", "/reply", "/react", "/unreact", "/edit", "/delete", "/search", "/rooms",
	"/room", "/block", "/unblock", "/blocked", "/devices", "/nick", "/profile", "/whois",
	"/who", "/mute", "/unmute", "/reconnect", "/help", "/quit",
};
static const char *const room_subs[] = {
	"create", "add", "remove", "promote", "demote", "title", "info", "leave", "delete",
};

static const char *const help[] = {
	"keys: Enter send · Tab complete · Up/Down typed lines · PgUp/PgDn scroll",
	"      Ctrl-N/Ctrl-P next/previous conversation · Alt-Up/Alt-Down select a message, Esc unselects",
	"      Ctrl-A/E start/end · Ctrl-W/U/K delete word/to start/to end · Ctrl-L redraw · Ctrl-C or Ctrl-D quit",
	"/open NAME | /open #ROOM      open a conversation (also /o, /query)",
	"/msg NAME TEXT                send to someone and open the conversation",
	"/reply TEXT                   answer the selected message (else the newest)",
	"/react EMOJI, /unreact EMOJI  on the selected message (else the newest)",
	"/edit TEXT, /delete           my selected message (else my newest)",
	"/search TEXT                  in every conversation",
	"/rooms                        the rooms I am in",
	"/room create NAME [TITLE] · /room add|remove|promote|demote USER",
	"/room title TEXT · /room info · /room leave · /room delete",
	"/block USER, /unblock USER, /blocked",
	"/devices · /devices revoke DEVICE|--others   devices holding a token",
	"/nick NICK · /profile · /whois USER · /who   names and presence",
	"/mute [30m|8h|2d], /unmute    push notifications of this conversation",
	"/reconnect · /quit            a text starting with / is sent as //text",
};

/* ---- targets ---- */

struct tmsg *tui_cmd__target(struct tui *t, bool mine)
{
	struct tconv *c = t->open;
	int i;

	if(c == NULL) return NULL;
	if(t->sel >= 0 && t->sel < c->nmsgs) return c->msgs[t->sel];
	for(i=c->nmsgs - 1; i>=0; i--){
		struct tmsg *m = c->msgs[i];
		if(m->is_event || m->deleted) continue;
		if(mine && strcmp(m->from, t->st.me)) continue;
		return m;
	}
	return NULL;
}

/* ---- conversations ---- */


/* Open NAME or #ROOM; a person is probed first (does the account exist,
 * does it take my messages). */
static void open_name(struct tui *t, const char *arg)
{
	const char *with = NULL, *room = NULL;
	char why[256];
	struct tconv *c;

	if(arg == NULL || arg[0] == '\0'){
		tui__info(t, "usage: /open NAME or /open #ROOM");
		return;
	}
	if(arg[0] == '#'){
		room = arg + 1;
	}else{
		with = arg;
	}
	if(!names__valid_str(room ? room : with)){
		tui__info(t, "'%s' is not a valid %s name", room ? room : with, room ? "room" : "user");
		return;
	}
	c = tui_store__conv(&t->st, room ? TCONV_ROOM : TCONV_DIRECT, room ? room : with, false);
	if(c == NULL && room){
		tui__info(t, "you are not in a room #%s (/rooms lists yours; /room create %s makes it)",
				room, room);
		return;
	}
	if(c == NULL && strcmp(with, t->st.me) != 0){
		if(!t->s.connected){
			tui__info(t, "offline: open a new conversation once connected");
			return;
		}
		if(cmd_chat__probe(&t->s, with, NULL, why, sizeof(why)) != EXIT_OK){
			tui__info(t, "%s", why);
			return;
		}
	}
	if(c == NULL) c = tui_store__conv(&t->st, TCONV_DIRECT, with, true);
	if(c) tui__open(t, c);
}

static void cmd_msg(struct tui *t, const char *line)
{
	char buf[TUI_LINE_MAX + 1];
	struct words ws;
	const char *text = split(line, buf, sizeof(buf), 2, &ws);
	struct tconv *before = t->open;

	if(ws.n < 2 || text[0] == '\0'){
		tui__info(t, "usage: /msg NAME TEXT");
		return;
	}
	open_name(t, ws.w[1]);
	if(t->open && t->open != before) tui__send_text(t, text, NULL);
	else if(t->open && ws.w[1][0] != '#' && !strcmp(t->open->name, ws.w[1])) tui__send_text(t, text, NULL);
}

/* ---- messages ---- */

static void cmd_edit(struct tui *t, const char *text, bool del)
{
	struct tmsg *m = tui_cmd__target(t, !del);
	json_t *req;
	bool mine;

	if(m == NULL){
		tui__info(t, "no message of yours here to %s", del ? "delete" : "edit");
		return;
	}
	mine = !strcmp(m->from, t->st.me);
	if(!del && !mine){
		tui__info(t, "only your own messages can be edited");
		return;
	}
	if(!del && text[0] == '\0'){
		tui__info(t, "usage: /edit NEW TEXT");
		return;
	}
	req = json_pack("{s:s, s:s}", "op", del ? "delete" : "edit", "ref", m->id);
	if(req == NULL) return;
	if(!del) json_object_set_new(req, "body", json_string(text));
	if(del && !mine){
		if(t->open->kind != TCONV_ROOM){
			json_decref(req);
			tui__info(t, "only your own messages can be deleted here");
			return;
		}
		json_object_set_new(req, "room", json_string(t->open->name));
		json_object_set_new(req, "of", json_string(m->from));
	}
	tui__rpc_plain(t, req, "", del ? "delete the message" : "edit the message");
	t->sel = -1;
}

static void cmd_react(struct tui *t, const char *emoji, bool remove)
{
	struct tmsg *m = tui_cmd__target(t, false);

	if(emoji[0] == '\0' || strchr(emoji, ' ')){
		tui__info(t, "usage: /%s EMOJI (one, without spaces)", remove ? "unreact" : "react");
		return;
	}
	if(m == NULL){
		tui__info(t, "no message here to react to");
		return;
	}
	if(strlen(emoji) > 32){
		tui__info(t, "an emoji is at most 32 bytes");
		return;
	}
	tui__react(t, m, emoji, remove);
	t->sel = -1;
}

static void cmd_reply(struct tui *t, const char *text)
{
	struct tmsg *m = tui_cmd__target(t, false);

	if(text[0] == '\0'){
		tui__info(t, "usage: /reply TEXT");
		return;
	}
	if(m == NULL){
		tui__info(t, "no message here to reply to");
		return;
	}
	tui__send_text(t, text, m);
}

/* ---- rooms ---- */

static void cmd_room(struct tui *t, const char *line)
{
	char buf[2048], done[160], doing[160];
	struct words ws;
	const char *rest = split(line, buf, sizeof(buf), 3, &ws);
	const char *sub = ws.n > 1 ? ws.w[1] : "";
	const char *arg = ws.n > 2 ? ws.w[2] : "";
	const char *room = t->open && t->open->kind == TCONV_ROOM ? t->open->name : NULL;
	json_t *req = NULL;

	if(!strcmp(sub, "create")){
		if(arg[0] == '\0'){
			tui__info(t, "usage: /room create NAME [TITLE]");
			return;
		}
		if(arg[0] == '#') arg++;
		req = json_pack("{s:s, s:s}", "op", "room_create", "room", arg);
		if(req && rest[0]) json_object_set_new(req, "title", json_string(rest));
		snprintf(done, sizeof(done), "created #%s: /open #%s, then /room add NAME", arg, arg);
		snprintf(doing, sizeof(doing), "create #%s", arg);
		tui__rpc_plain(t, req, done, doing);
		return;
	}
	if(room == NULL){
		tui__info(t, "open a room first (/open #ROOM), then /room %s", sub[0] ? sub : "...");
		return;
	}
	if(!strcmp(sub, "add") || !strcmp(sub, "remove") || !strcmp(sub, "promote")
			|| !strcmp(sub, "demote")){
		char op[16];
		if(arg[0] == '\0'){
			tui__info(t, "usage: /room %s USER", sub);
			return;
		}
		snprintf(op, sizeof(op), "room_%s", sub);
		req = json_pack("{s:s, s:s, s:s}", "op", op, "room", room, "user", arg);
		snprintf(done, sizeof(done), "%s: %s in #%s", sub, arg, room);
		snprintf(doing, sizeof(doing), "%s %s %s #%s", sub, arg,
				!strcmp(sub, "add") ? "to" : !strcmp(sub, "remove") ? "from" : "in", room);
		tui__rpc_plain(t, req, "", doing);
		(void)done;
	}else if(!strcmp(sub, "title")){
		char text[1024];
		snprintf(text, sizeof(text), "%s%s%s", arg, rest[0] ? " " : "", rest);
		req = json_pack("{s:s, s:s, s:s}", "op", "room_set", "room", room, "title", text);
		snprintf(doing, sizeof(doing), "set the title of #%s", room);
		tui__rpc_plain(t, req, "", doing);
	}else if(!strcmp(sub, "info")){
		struct tui_rpc *r = tui__rpc(t, json_pack("{s:s, s:s}", "op", "room_info", "room", room),
				TRPC_ROOM_INFO);
		if(r) snprintf(r->doing, sizeof(r->doing), "show #%s", room);
	}else if(!strcmp(sub, "leave")){
		req = json_pack("{s:s, s:s}", "op", "room_leave", "room", room);
		snprintf(done, sizeof(done), "you left #%s", room);
		snprintf(doing, sizeof(doing), "leave #%s", room);
		tui__rpc_plain(t, req, done, doing);
	}else if(!strcmp(sub, "delete")){
		if(strcmp(arg, room) != 0){
			tui__info(t, "this deletes #%s and all its messages for everyone: type /room delete %s",
					room, room);
			return;
		}
		req = json_pack("{s:s, s:s}", "op", "room_delete", "room", room);
		snprintf(done, sizeof(done), "deleted #%s", room);
		snprintf(doing, sizeof(doing), "delete #%s", room);
		tui__rpc_plain(t, req, done, doing);
	}else{
		tui__info(t, "usage: /room create|add|remove|promote|demote|title|info|leave|delete ...");
	}
}

static void cmd_rooms(struct tui *t)
{
	int i, n = 0;

	for(i=0; i<t->st.nconvs; i++){
		struct tconv *c = t->st.convs[i];
		if(c->kind != TCONV_ROOM) continue;
		tui__info(t, "#%s%s%s · %d member%s%s%s", c->name, c->title && c->title[0] ? " · " : "",
				c->title ? c->title : "", c->nmembers, c->nmembers == 1 ? "" : "s",
				c->role[0] && strcmp(c->role, "member") ? " · you are " : "",
				c->role[0] && strcmp(c->role, "member") ? c->role : "");
		n++;
	}
	if(n == 0) tui__info(t, "you are in no room: /room create NAME makes one");
}

static void cmd_who(struct tui *t)
{
	int i, n = 0;

	if(t->open && t->open->kind == TCONV_ROOM){
		for(i=0; i<t->open->nmembers; i++){
			const struct tpresence *p = tui_store__presence_of(&t->st, t->open->members[i]);
			tui__info(t, "%s%s", t->open->members[i], p && p->online ? " · online" : "");
		}
		return;
	}
	for(i=0; i<t->st.npresence; i++){
		if(!t->st.presence[i].online) continue;
		tui__info(t, "%s · online", t->st.presence[i].user);
		n++;
	}
	if(n == 0) tui__info(t, "nobody who shows you their presence is online");
}

/* ---- mute ---- */

/* /mute [DURATION] and /unmute: the open conversation's notifications. */
static void cmd_mute(struct tui *t, const char *arg, bool unmute)
{
	struct tconv *c = t->open;
	char done[160], doing[160], label[NAME_MAX_LEN + 2], dur[48] = "";
	long long for_s = 0;
	json_t *req;

	if(c == NULL){
		tui__info(t, "open a conversation first, then /%s", unmute ? "unmute" : "mute");
		return;
	}
	if(!unmute && arg[0] && (for_s = util__duration(arg)) < 0){
		tui__info(t, "usage: /mute [30m|8h|2d|SECONDS] (without: for ever)");
		return;
	}
	tui_view__label(c, label, sizeof(label));
	req = tui__conv_req(unmute ? "unmute" : "mute", c);
	if(req && for_s > 0) json_object_set_new(req, "for_s", json_integer(for_s));
	if(for_s > 0) util__say_duration(for_s, dur, sizeof(dur));
	snprintf(done, sizeof(done), unmute ? "%s unmuted: notifications again"
			: "%s muted%s%s: no notifications for it", label, for_s ? " for " : "", dur);
	snprintf(doing, sizeof(doing), "%s %s", unmute ? "unmute" : "mute", label);
	tui__rpc_plain(t, req, done, doing);
}

/* ---- the table ---- */

void tui_cmd__run(struct tui *t, const char *line)
{
	char buf[TUI_LINE_MAX + 1], done[160], doing[160];
	struct words ws;
	const char *rest = split(line, buf, sizeof(buf), 1, &ws);
	const char *cmd = ws.n ? ws.w[0] : "/";
	size_t i;

	if(!strcmp(cmd, "/open") || !strcmp(cmd, "/o") || !strcmp(cmd, "/query")
			|| !strcmp(cmd, "/join")){
		open_name(t, rest);
	}else if(!strcmp(cmd, "/msg")){
		cmd_msg(t, line);
	}else if(!strcmp(cmd, "/reply")){
		cmd_reply(t, rest);
	}else if(!strcmp(cmd, "/react") || !strcmp(cmd, "/unreact")){
		cmd_react(t, rest, !strcmp(cmd, "/unreact"));
	}else if(!strcmp(cmd, "/edit")){
		cmd_edit(t, rest, false);
	}else if(!strcmp(cmd, "/delete")){
		cmd_edit(t, rest, true);
	}else if(!strcmp(cmd, "/search")){
		struct tui_rpc *r;
		if(strlen(rest) < 3){
			tui__info(t, "usage: /search TEXT (at least 3 characters)");
			return;
		}
		r = tui__rpc(t, json_pack("{s:s, s:s, s:i}", "op", "search", "text", rest, "limit", 20),
				TRPC_SEARCH);
		if(r) snprintf(r->doing, sizeof(r->doing), "search");
	}else if(!strcmp(cmd, "/rooms")){
		cmd_rooms(t);
	}else if(!strcmp(cmd, "/room")){
		cmd_room(t, line);
	}else if(!strcmp(cmd, "/block") || !strcmp(cmd, "/unblock")){
		bool block = !strcmp(cmd, "/block");
		if(rest[0] == '\0' || strchr(rest, ' ')){
			tui__info(t, "usage: %s USER", cmd);
			return;
		}
		snprintf(done, sizeof(done), "%s %s", block ? "blocked" : "unblocked", rest);
		snprintf(doing, sizeof(doing), "%s %s", cmd + 1, rest);
		tui__rpc_plain(t, json_pack("{s:s, s:s}", "op", cmd + 1, "user", rest), done, doing);
	}else if(!strcmp(cmd, "/blocked")){
		if(t->st.nblocked == 0) tui__info(t, "you block nobody");
		for(i=0; i<(size_t)t->st.nblocked; i++) tui__info(t, "blocked: %s", t->st.blocked[i]);
	}else if(!strcmp(cmd, "/devices")){
		struct words dw;
		char dbuf[256];
		split(line, dbuf, sizeof(dbuf), 3, &dw);
		if(dw.n >= 2 && !strcmp(dw.w[1], "revoke")){
			json_t *req;
			if(dw.n < 3){
				tui__info(t, "usage: /devices revoke DEVICE or /devices revoke --others");
				return;
			}
			if(!strcmp(dw.w[2], "--others")){
				req = json_pack("{s:s, s:s}", "op", "device_revoke", "others", t->opt->device);
				snprintf(done, sizeof(done), "logged out every other device");
			}else{
				req = json_pack("{s:s, s:s}", "op", "device_revoke", "device", dw.w[2]);
				snprintf(done, sizeof(done), "logged out %s", dw.w[2]);
			}
			tui__rpc_plain(t, req, done, "log the device out");
			return;
		}
		struct tui_rpc *r = tui__rpc(t, json_pack("{s:s}", "op", "devices"), TRPC_DEVICES);
		if(r) snprintf(r->doing, sizeof(r->doing), "list the devices");
	}else if(!strcmp(cmd, "/nick")){
		if(rest[0] == '\0'){
			tui__info(t, "usage: /nick NICK");
			return;
		}
		snprintf(done, sizeof(done), "nick set: %s", rest);
		tui__rpc_plain(t, json_pack("{s:s, s:s}", "op", "profile", "nick", rest), done,
				"set the nick");
	}else if(!strcmp(cmd, "/profile")){
		tui__info(t, "%s%s%s%s · device %s", t->st.me,
				strcmp(tui_store__nick(&t->st, t->st.me), t->st.me) ? " (" : "",
				strcmp(tui_store__nick(&t->st, t->st.me), t->st.me)
					? tui_store__nick(&t->st, t->st.me) : "",
				strcmp(tui_store__nick(&t->st, t->st.me), t->st.me) ? ")" : "", t->opt->device);
	}else if(!strcmp(cmd, "/whois")){
		struct tui_rpc *r;
		if(rest[0] == '\0'){
			tui__info(t, "usage: /whois USER");
			return;
		}
		if(!t->s.connected){
			tui__info(t, "offline: try again once connected");
			return;
		}
		r = tui__rpc(t, json_pack("{s:s, s:s}", "op", "whois", "user", rest), TRPC_WHOIS);
		if(r) snprintf(r->doing, sizeof(r->doing), "look up %.100s", rest);
	}else if(!strcmp(cmd, "/who")){
		cmd_who(t);
	}else if(!strcmp(cmd, "/mute") || !strcmp(cmd, "/unmute")){
		cmd_mute(t, rest, !strcmp(cmd, "/unmute"));
	}else if(!strcmp(cmd, "/reconnect")){
		session__resume(&t->s);
		tui__info(t, "reconnecting");
	}else if(!strcmp(cmd, "/help")){
		for(i=0; i<sizeof(help)/sizeof(help[0]); i++) tui__info(t, "%s", help[i]);
	}else if(!strcmp(cmd, "/quit") || !strcmp(cmd, "/exit")){
		t->quit = true;
	}else{
		tui__info(t, "unknown command %.60s (/help lists them; //text sends /text)", cmd);
	}
}

/* ---- completion ---- */

static void add_cand(const char ***cands, int *n, int *cap, const char *s)
{
	int i;

	for(i=0; i<*n; i++){
		if(!strcmp((*cands)[i], s)) return;
	}
	if(*n == *cap){
		int c = *cap ? *cap * 2 : 64;
		const char **m = realloc(*cands, (size_t)c * sizeof(*m));
		if(m == NULL) return;
		*cands = m;
		*cap = c;
	}
	(*cands)[(*n)++] = s;
}

void tui_cmd__complete(struct tui *t)
{
	char word[256], first[32] = "";
	const char **cands = NULL;
	char **owned = NULL;
	int n = 0, cap = 0, nowned = 0, i, k, got;
	bool first_word;
	size_t wl;

	tui_line__word(&t->line, word, sizeof(word), &first_word);
	wl = strlen(word);
	sscanf(t->line.buf, "%31s", first);
	if(first_word && word[0] == '/'){
		for(i=0; i<(int)(sizeof(commands)/sizeof(commands[0])); i++) add_cand(&cands, &n, &cap, commands[i]);
	}else if(!strcmp(first, "/room") && t->line.cur <= strlen("/room ") + wl + 1
			&& strncmp(t->line.buf, "/room ", 6) == 0 && strchr(t->line.buf + 6, ' ') == NULL){
		for(i=0; i<(int)(sizeof(room_subs)/sizeof(room_subs[0])); i++) add_cand(&cands, &n, &cap, room_subs[i]);
	}else{
		/* Names: conversations (rooms with '#'), room members, people seen. */
		owned = calloc((size_t)t->st.nconvs + 1, sizeof(char *));
		for(i=0; i<t->st.nconvs && owned; i++){
			struct tconv *c = t->st.convs[i];
			char label[NAME_MAX_LEN + 2];
			tui_view__label(c, label, sizeof(label));
			if((owned[nowned] = strdup(label))) add_cand(&cands, &n, &cap, owned[nowned++]);
			for(k=0; c->kind == TCONV_ROOM && k<c->nmembers; k++) add_cand(&cands, &n, &cap, c->members[k]);
		}
		for(i=0; i<t->st.npresence; i++) add_cand(&cands, &n, &cap, t->st.presence[i].user);
	}
	/* Only those that start with the word. */
	for(i=k=0; i<n; i++){
		if(!strncmp(cands[i], word, wl)) cands[k++] = cands[i];
	}
	got = tui_line__complete(&t->line, cands, k);
	if(got > 1){
		char list[400] = "";
		size_t o = 0;
		for(i=0; i<k && o < sizeof(list) - 40; i++){
			o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? " " : "", cands[i]);
		}
		snprintf(t->notice, sizeof(t->notice), "%s", list);
	}
	for(i=0; i<nowned; i++) free(owned[i]);
	free(owned);
	free(cands);
	t->dirty = true;
}
