// chat.js - the conversation view (#/u/<user>, #/r/<room>): the messages
// with scroll-back, live updates, replies, reactions, edits, deletes,
// receipts and typing, the composer, and the conversation's menu (mute
// for an hour, 8 hours or always, unmute: push.js).
//
// Every text from another person (bodies, nicks, titles) goes into the page
// through el()/text(): inert. The view only reads the store; what it sends
// goes through conn (texts and reactions with conn.send, typing with
// conn.publish, edit/delete with conn.rpc), and the store follows from the
// envelopes that come back.
//
// Long conversations: only a window of at most WINDOW messages of
// store.messages(key) is in the DOM. Scrolling near one end of it adds a
// batch there and drops one at the other end (loading a history page when
// the store holds nothing older), and the message at the top of the
// viewport is kept where it was. Each message also has
// `content-visibility: auto` (chat.css): the browser lays out and paints
// only those near the viewport. So a frame costs the same at message 10
// or 10,000: a DOM of every message made hit testing, paint and layout
// grow with the history (hundreds of ms a frame at a few thousand).

import {el, fill, text, fmtTime, convKey} from './util.js';
import {conn} from './conn.js';
import {store, eventText} from './store.js';
import {registerView, navigate, toast} from './app.js';
import {mutes} from './push.js';
import {icon} from './list.js';

const INITIAL = 60;       // messages rendered when a conversation opens
const BATCH = 50;         // messages added (and dropped) per step of scrolling
const WINDOW = 250;       // messages in the DOM at most
const TOP_MARGIN = 1500;  // px from an end of the window at which the next batch comes
const BOTTOM_SLACK = 48;  // px from the bottom that still counts as "at the bottom"
const TYPING_EVERY = 3000, TYPING_IDLE = 5000;  // PROTOCOL "Writing an app" 11
export const EMOJI = ['👍', '❤️', '😂', '😮', '😢', '🙏'];
const DELETED_TEXT = 'This message was deleted';

let view = null;            // the mounted ChatView
let lastKey = '';           // the last conversation opened (search's scope)
const drafts = new Map();   // key -> unsent text, kept across views

// The conversation shown last ('' when none): search offers it as a scope.
export function currentConv() {
	return lastKey;
}

// Open conversation `key` scrolled to message `seq` (highlighted), loading
// history until it is there.
export function openAt(key, seq) {
	const name = key.slice(2);
	const hash = (key[0] === 'r' ? '#/r/' : '#/u/') + name + '?seq=' + Number(seq);
	if (view && view.key === key) {
		history.replaceState(null, '', hash);
		view.focusSeq(Number(seq));
	} else {
		navigate(hash);
	}
}

const mkey = (m) => m.from + '/' + m.id;

function hello() {
	const h = conn.hello || {};
	return {
		features: Array.isArray(h.features) ? h.features : [],
		window: typeof h.edit_window_s === 'number' ? h.edit_window_s : 3600,
	};
}

// Formatters made once: Date's toLocale*String make one per call, which
// costs more than the rest of a message's node.
const TIME_FMT = new Intl.DateTimeFormat([], {hour: '2-digit', minute: '2-digit'});
const FULL_FMT = new Intl.DateTimeFormat([], {dateStyle: 'medium', timeStyle: 'short'});
const DAY_FMT = new Intl.DateTimeFormat([], {weekday: 'short', year: 'numeric', month: 'short', day: 'numeric'});

function hhmm(ms) {
	return ms ? TIME_FMT.format(ms) : '';
}

function full(ms) {
	return ms ? FULL_FMT.format(ms) : '';
}

function dayOf(m) {
	const t = m.server_ts || m.ts;
	if (!t) return '';
	const d = new Date(t);
	return d.getFullYear() + '-' + (d.getMonth() + 1) + '-' + d.getDate();
}

function dayLabel(m) {
	const t = m.server_ts || m.ts;
	const d = new Date(t), now = new Date();
	if (d.toDateString() === now.toDateString()) return 'Today';
	const y = new Date(now);
	y.setDate(now.getDate() - 1);
	if (d.toDateString() === y.toDateString()) return 'Yesterday';
	return DAY_FMT.format(d);
}

const STATUS_LABEL = {
	pending: 'Sending', sent: 'Sent', delivered: 'Delivered', read: 'Read', failed: 'Not sent',
};

// Text with http(s) links made into anchors; the rest stays text nodes.
function linkify(body) {
	const out = [];
	const re = /\bhttps?:\/\/[^\s<>"']+/g;
	let last = 0, m;
	while ((m = re.exec(body)) !== null) {
		let url = m[0];
		const trail = /[.,;:!?)\]]+$/.exec(url);
		if (trail) url = url.slice(0, -trail[0].length);
		if (m.index > last) out.push(body.slice(last, m.index));
		out.push(el('a', {href: url, target: '_blank', rel: 'noopener noreferrer'}, url));
		last = m.index + url.length;
		re.lastIndex = last;
	}
	if (last === 0) return [body];
	if (last < body.length) out.push(body.slice(last));
	return out;
}

class ChatView {
	constructor(root, kind, name, focus) {
		view = this;  // before the first render: its callbacks check it
		this.root = root;
		this.kind = kind;
		this.name = name;
		this.key = convKey(kind, name);
		this.me = conn.me;
		this.nodes = new Map();     // mkey -> {node, sig}
		this.dayNodes = new Map();  // day key -> node
		this.byKey = new Map();     // mkey -> msg, as of the last render
		this.loKey = '';            // the oldest message rendered
		this.hiKey = '';            // the newest message rendered
		this.lo = 0;
		this.hi = 0;
		this.tail = true;           // the window follows the newest
		this.lastNewest = '';       // the newest message, as of the last render
		this.lastRead = '';         // the newest message markRead was called for
		this.loading = false;
		this.atBottom = true;
		this.role = '';
		this.members = null;
		this.replyTo = null;
		this.editing = null;
		this.menu = null;
		this.typingOn = false;
		this.typingAt = 0;
		this.typingIdle = null;
		this.scrollQueued = false;
		this.off = [];
		if (store.open) store.open(this.key);
		this.build();
		this.listen();
		this.render({initial: true});
		this.header();
		if (this.kind === 'room') this.loadRoom();
		if (focus > 0) this.focusSeq(focus);
		else this.scrollToBottom();
		requestAnimationFrame(() => this.onScroll());
	}

	build() {
		const room = this.kind === 'room';
		this.title = el('h2', {id: 'chat-title'});
		this.presence = el('span', {id: 'chat-presence'});
		this.typingEl = el('span', {id: 'chat-typing', 'aria-live': 'polite'});
		this.mutedText = el('span', {class: 'muted-text'});
		this.mutedEl = el('span', {id: 'chat-muted', class: 'muted-mark', hidden: true}, icon('muted'), this.mutedText);
		this.convMenuBtn = el('button', {id: 'chat-menu', type: 'button', title: 'Conversation menu',
			'aria-label': 'Conversation menu', 'aria-haspopup': 'menu', 'aria-expanded': 'false', hidden: true,
			onclick: () => (this.convMenu ? this.closeConvMenu(true) : this.openConvMenu())});
		this.convMenu = null;
		this.top = el('div', {class: 'msg-top'});
		this.list = el('div', {class: 'msg-list', role: 'log', 'aria-label': 'Messages'});
		this.scroller = el('div', {id: 'messages', tabIndex: 0, 'data-more': 'true'}, this.top, this.list);
		this.pill = el('button', {id: 'new-pill', class: 'new-pill', type: 'button', hidden: true,
			onclick: () => this.scrollToBottom(true)}, 'New messages ↓');
		this.replyText = el('span', {class: 'bar-text'});
		this.replyBar = el('div', {id: 'reply-bar', class: 'composer-bar', hidden: true},
			el('span', {class: 'bar-icon', 'aria-hidden': 'true'}), this.replyText,
			el('button', {id: 'reply-cancel', type: 'button', title: 'Cancel reply', 'aria-label': 'Cancel reply',
				onclick: () => this.setReply(null)}));
		this.editBar = el('div', {id: 'edit-bar', class: 'composer-bar editing', hidden: true},
			el('span', {class: 'bar-icon', 'aria-hidden': 'true'}), el('span', {class: 'bar-text'}, 'Editing message'),
			el('button', {id: 'edit-cancel', type: 'button', title: 'Cancel edit', 'aria-label': 'Cancel edit',
				onclick: () => this.setEdit(null)}));
		this.composer = el('textarea', {id: 'composer', rows: '1', 'data-mode': 'send',
			placeholder: 'Message', 'aria-label': 'Message'});
		this.sendBtn = el('button', {id: 'send', type: 'submit', title: 'Send', 'aria-label': 'Send'});
		const form = el('form', {class: 'composer-row', onsubmit: (e) => {
			e.preventDefault();
			this.submit();
		}}, this.composer, this.sendBtn);
		this.section = el('section', {id: 'chat', 'data-conv': this.key, class: room ? 'room' : 'direct'},
			el('header', {class: 'chat-head'},
				el('a', {id: 'chat-back', href: '#/', title: 'Back to the list', 'aria-label': 'Back'}),
				el('div', {class: 'chat-head-text'}, this.title,
					el('div', {class: 'chat-sub'}, this.mutedEl, this.presence, this.typingEl)),
				el('div', {class: 'chat-menu-wrap'}, this.convMenuBtn),
				room ? el('a', {id: 'chat-info', href: '#/room/' + this.name, title: 'Room info',
					'aria-label': 'Room info'}) : null),
			el('div', {class: 'messages-wrap'}, this.scroller, this.pill),
			this.replyBar, this.editBar, form);
		fill(this.root, this.section);
		this.composer.value = drafts.get(this.key) || '';
		this.grow();
	}

	on(target, type, fn, opts) {
		target.addEventListener(type, fn, opts);
		this.off.push(() => target.removeEventListener(type, fn, opts));
	}

	listen() {
		this.on(store, 'messages', (e) => {
			if (e.detail && e.detail.key === this.key) this.render({ids: e.detail.ids});
		});
		this.on(store, 'typing', (e) => {
			if (!e.detail || e.detail.key === this.key) this.showTyping();
		});
		this.on(store, 'presence', (e) => {
			if (this.kind === 'user' && (!e.detail || e.detail.user === this.name)) this.showPresence();
		});
		this.on(store, 'convs', () => this.header());
		this.on(mutes, 'mutes', () => this.showMuted());
		this.on(document, 'click', (e) => {
			if (this.convMenu && !this.convMenu.contains(e.target) && e.target !== this.convMenuBtn) this.closeConvMenu();
		}, true);
		this.on(store, 'nick', () => {
			this.header();
			this.render({});
		});
		this.on(conn, 'ready', () => {
			this.me = conn.me;
			if (this.kind === 'room') this.loadRoom();
			this.header();
			this.onScroll();
		});
		this.on(conn, 'rooms', () => {
			if (this.kind === 'room') this.loadRoom();
		});
		this.on(this.scroller, 'scroll', () => {
			if (this.scrollQueued) return;
			this.scrollQueued = true;
			requestAnimationFrame(() => {
				this.scrollQueued = false;
				this.onScroll();
			});
		}, {passive: true});
		this.on(document, 'visibilitychange', () => this.markRead());
		this.on(window, 'focus', () => this.markRead());
		this.on(this.list, 'click', (e) => this.onClick(e));
		this.on(this.list, 'keydown', (e) => this.onMenuKey(e));
		this.on(document, 'click', (e) => {
			if (this.menu && !this.menu.node.contains(e.target)) this.closeMenu();
		}, true);
		this.on(this.composer, 'keydown', (e) => this.onComposerKey(e));
		this.on(this.composer, 'input', () => this.onInput());
		this.on(this.composer, 'blur', () => this.saveDraft());
		// The view shrinks (reply bar, composer lines, a phone's keyboard):
		// stay at the newest when there.
		if (window.ResizeObserver) {
			const ro = new ResizeObserver(() => {
				if (this.atBottom) this.scroller.scrollTop = this.scroller.scrollHeight;
			});
			ro.observe(this.scroller);
			this.off.push(() => ro.disconnect());
		}
		// A timer keeps "last seen" current.
		const t = setInterval(() => this.showPresence(), 60000);
		this.off.push(() => clearInterval(t));
	}

	destroy() {
		this.closeConvMenu();
		this.stopTyping();
		this.saveDraft();
		for (const f of this.off) f();
		this.off = [];
	}

	saveDraft() {
		if (this.editing) return;
		const v = this.composer.value;
		if (v) drafts.set(this.key, v);
		else drafts.delete(this.key);
	}

	// Header: title, presence or members, typing.
	header() {
		let title;
		if (this.kind === 'room') {
			const c = store.conv(this.key);
			title = (c && c.title) || this.roomTitle || this.name;
		} else {
			title = store.nick(this.name);
			if (this.name === this.me) title += ' (notes)';
		}
		if (this.title.textContent !== title) text(this.title, title);
		document.title = title + ' - mqchat';
		this.showPresence();
		this.showTyping();
		this.showMuted();
	}

	// ---- the conversation menu: mute, unmute ---------------------------

	showMuted() {
		const until = mutes.until(this.key);
		const label = until === null ? '' : until ? 'Muted until ' + fmtTime(until) : 'Muted';
		this.mutedEl.hidden = until === null;
		text(this.mutedText, label);
		this.convMenuBtn.hidden = !mutes.supported();
		if (this.convMenu) this.fillConvMenu();
	}

	fillConvMenu() {
		const items = mutes.muted(this.key) ? [['unmute', 'Unmute', 0]]
			: [['mute-1h', 'Mute for 1 hour', 3600], ['mute-8h', 'Mute for 8 hours', 8 * 3600], ['mute-always', 'Mute always', 0]];
		fill(this.convMenu, items.map(([a, label, forS]) => el('button', {type: 'button', role: 'menuitem', 'data-action': a,
			onclick: () => this.muteAction(a, forS)}, label)));
	}

	openConvMenu() {
		this.closeMenu();
		this.convMenu = el('div', {id: 'chat-menu-list', class: 'conv-actions', role: 'menu', 'aria-label': 'Conversation menu'});
		this.fillConvMenu();
		this.convMenu.addEventListener('keydown', (e) => {
			const btns = Array.from(this.convMenu.querySelectorAll('button'));
			const i = btns.indexOf(e.target);
			if (e.key === 'Escape') {
				e.preventDefault();
				this.closeConvMenu(true);
			} else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
				e.preventDefault();
				btns[(i + (e.key === 'ArrowDown' ? 1 : btns.length - 1)) % btns.length].focus();
			} else if (e.key === 'Tab') {
				this.closeConvMenu();
			}
		});
		this.convMenuBtn.after(this.convMenu);
		this.convMenuBtn.setAttribute('aria-expanded', 'true');
		this.convMenu.querySelector('button').focus();
	}

	closeConvMenu(refocus) {
		if (!this.convMenu) return;
		this.convMenu.remove();
		this.convMenu = null;
		this.convMenuBtn.setAttribute('aria-expanded', 'false');
		if (refocus) this.convMenuBtn.focus();
	}

	async muteAction(a, forS) {
		const key = this.key;
		this.closeConvMenu(true);
		const name = this.kind === 'room' ? '#' + this.name : store.nick(this.name);
		try {
			if (a === 'unmute') {
				await mutes.unmute(key);
				toast(name + ' is unmuted.', 'info');
			} else {
				const r = await mutes.mute(key, forS);
				toast(r.until ? name + ' is muted until ' + fmtTime(r.until) + '.' : name + ' is muted.', 'info');
			}
		} catch (e) {
			toast((a === 'unmute' ? 'Could not unmute: ' : 'Could not mute: ') + (e.message || e.code), 'error');
		}
	}

	showPresence() {
		let s = '';
		if (this.kind === 'room') {
			if (this.members) s = this.members.length + (this.members.length === 1 ? ' member' : ' members');
		} else if (this.name !== this.me) {
			const p = store.presence(this.name);
			if (p) {
				const online = p.online !== undefined ? p.online : p.status === 'online';
				if (online) s = 'online';
				else if (p.since) s = 'last seen ' + fmtTime(p.since);
				else s = 'offline';
			}
		}
		text(this.presence, s);
	}

	showTyping() {
		const who = (store.typing(this.key) || []).filter((u) => u !== this.me).map((u) => store.nick(u));
		let s = '';
		if (who.length === 1) s = `${who[0]} is typing...`;
		else if (who.length === 2) s = `${who[0]} and ${who[1]} are typing...`;
		else if (who.length > 2) s = `${who.length} people are typing...`;
		text(this.typingEl, s);
		this.section.classList.toggle('typing', !!s);
	}

	// My role and the members, from conn.rooms (the `rooms` answer).
	loadRoom() {
		const r = conn.rooms && conn.rooms.get(this.name);
		if (!r) return;
		this.role = r.role || '';
		this.members = Array.isArray(r.members) && r.members.length ? r.members : this.members;
		this.roomTitle = r.title || '';
		this.header();
	}

	// ---- rendering ------------------------------------------------------

	// Bring the DOM in line with store.messages(key). Only a window of at
	// most WINDOW messages is in the DOM: [lo, hi) of the list, kept by the
	// keys of its ends (the list grows at both ends), following the newest
	// while `tail`. opts: initial; ids (what changed; none: check all);
	// up / down (move the window a batch back or forward); at (index: a
	// window around it); end (the newest). Nodes are kept by (from, id)
	// and rebuilt only when what they show changed; the message at the top
	// of the viewport stays where it is.
	render(opts = {}) {
		const msgs = store.messages(this.key) || [];
		const len = msgs.length;
		let loIdx = -1, hiIdx = -1;
		let byKey = this.byKey;
		if (msgs === this.msgs && len === this.count) {
			// The same list as last time (the store makes a new one for any
			// change): the window's ends are where they were.
			loIdx = this.lo;
			hiIdx = this.hi - 1;
		} else {
			byKey = new Map();
			for (let i = 0; i < len; i++) {
				const k = mkey(msgs[i]);
				byKey.set(k, msgs[i]);
				if (k === this.loKey) loIdx = i;
				if (k === this.hiKey) hiIdx = i;
			}
			this.byKey = byKey;
			this.msgs = msgs;
		}
		let lo, hi;
		if (opts.at !== undefined) {
			lo = Math.max(0, opts.at - BATCH);
			hi = Math.min(len, lo + 2 * BATCH);
			lo = Math.max(0, Math.min(lo, hi - 2 * BATCH));
		} else if (opts.initial || opts.end || loIdx < 0 || (!this.tail && hiIdx < 0)) {
			hi = len;
			lo = Math.max(0, len - INITIAL);
		} else {
			lo = loIdx;
			hi = this.tail ? len : hiIdx + 1;
		}
		if (opts.up) {
			// Trimmed back to WINDOW only past WINDOW + BATCH: every other
			// step adds without dropping.
			lo = Math.max(0, lo - BATCH);
			if (hi - lo > WINDOW + BATCH) hi = lo + WINDOW;
		} else if (opts.down) {
			hi = Math.min(len, hi + BATCH);
			if (hi - lo > WINDOW + BATCH) lo = hi - WINDOW;
		} else if (hi - lo > WINDOW + BATCH) {
			// Live messages pushed the window past its size: drop the oldest.
			lo = hi - WINDOW;
		}
		this.tail = hi >= len;
		// Which nodes must be rebuilt: all (no ids) or those named and the
		// replies that quote them.
		let ids = null;
		if (Array.isArray(opts.ids) && opts.ids.length) ids = new Set(opts.ids);
		const checkAll = !ids && !opts.up && !opts.down;

		const wasBottom = this.atBottom && !opts.initial && opts.at === undefined;
		const anchor = opts.initial || opts.at !== undefined || opts.end ? null : this.anchor();
		const newest = len ? mkey(msgs[len - 1]) : '';

		const gen = (this.gen = (this.gen || 0) + 1);
		let cur = this.list.firstChild;
		let prevDay = null;
		const dayCount = new Map();
		for (let i = lo; i < hi; i++) {
			const m = msgs[i];
			const d = dayOf(m);
			if (d && d !== prevDay) {
				const n = (dayCount.get(d) || 0) + 1;
				dayCount.set(d, n);
				const dk = d + '#' + n;
				let dn = this.dayNodes.get(dk);
				if (!dn) {
					dn = el('div', {class: 'day-sep', role: 'separator'}, el('span', null, dayLabel(m)));
					this.dayNodes.set(dk, dn);
				}
				dn._gen = gen;
				if (dn !== cur) this.list.insertBefore(dn, cur);
				else cur = cur.nextSibling;
				prevDay = d;
			}
			const k = mkey(m);
			let ent = this.nodes.get(k);
			const check = !ent || checkAll || (ids && (ids.has(m.id) || (m.reply_to && ids.has(m.reply_to))));
			if (check) {
				const sig = this.sig(m);
				if (!ent) {
					ent = {node: el('div'), sig: null};
					this.nodes.set(k, ent);
				}
				if (ent.sig !== sig) {
					if (this.menu && this.menu.node === ent.node) this.closeMenu();
					this.fillMsg(ent.node, m);
					ent.sig = sig;
				}
			}
			ent.gen = gen;
			if (ent.node !== cur) this.list.insertBefore(ent.node, cur);
			else cur = cur.nextSibling;
		}
		// What is left after the walk is no longer shown.
		while (cur) {
			const next = cur.nextSibling;
			cur.remove();
			cur = next;
		}
		if (this.nodes.size > hi - lo) {
			for (const [k, ent] of this.nodes) {
				if (ent.gen !== gen) {
					if (this.menu && this.menu.node === ent.node) this.closeMenu();
					this.nodes.delete(k);
				}
			}
		}
		for (const [k, dn] of this.dayNodes) if (dn._gen !== gen) this.dayNodes.delete(k);
		this.loKey = lo < hi ? mkey(msgs[lo]) : '';
		this.hiKey = lo < hi ? mkey(msgs[hi - 1]) : '';
		this.lo = lo;
		this.hi = hi;
		this.count = len;

		const more = lo > 0 || this.hasMore();
		this.scroller.dataset.more = more ? 'true' : 'false';
		this.scroller.dataset.newer = this.tail ? 'false' : 'true';
		this.showTop(more, len === 0);

		const appended = newest && newest !== this.lastNewest && this.lastNewest !== '';
		const newestMsg = newest ? byKey.get(newest) : null;
		this.lastNewest = newest;
		if (opts.initial || opts.at !== undefined) return;
		if (opts.end || (wasBottom && this.tail)) {
			this.scrollToBottom();
		} else if (appended && newestMsg && newestMsg.from === this.me && !opts.up && !opts.down) {
			this.scrollToBottom();
		} else {
			if (anchor) this.restore(anchor);
			if (appended && !opts.up && !opts.down) this.pill.hidden = false;
		}
		this.markRead();
	}

	hasMore() {
		try {
			return !!store.hasMore(this.key);
		} catch {
			return false;
		}
	}

	showTop(more, empty) {
		let s;
		if (this.loading) s = 'Loading...';
		else if (more) s = '';
		else if (empty) s = 'No messages yet. Say hello!';
		else s = 'This is the beginning of the conversation.';
		if (this.top.textContent !== s) text(this.top, s);
		this.top.classList.toggle('loading', this.loading);
	}

	// What a message's node shows, as one string: rebuilt when it changes.
	sig(m) {
		let s = (this.kind === 'room' ? store.nick(m.from) + '|' + (m.read_by ? m.read_by.length : '') + '/' +
			(m.delivered_to ? m.delivered_to.length : '') : '') + '|' + m.type + '|' + (m.seq || '') + '|' + (m.status || '') + '|' + (m.edited || '') + '|' +
			(m.deleted ? 'D' + (m.deleted_by || '') : '') + '|' + (m.failed_code || '') + '|' +
			(m.truncated ? 'T' : '') + '|';
		if (m.reactions && m.reactions.length) {
			for (const r of m.reactions) s += r.emoji + ':' + (r.users || []).join(',') + ';';
		}
		if (m.reply_to) {
			const q = this.byKey.get((m.reply_from || '') + '/' + m.reply_to);
			s += '|Q' + store.nick(m.reply_from || '') + (q ? (q.deleted ? 'D' : q.body) : '-');
		}
		return s + '|' + (m.type === 'event' ? (m.event || '') + (m.user || '') + (m.by || '') : m.body);
	}

	fillMsg(node, m) {
		const mine = m.from === this.me;
		const room = this.kind === 'room';
		node.className = 'msg' + (mine ? ' mine' : '') + (m.type === 'event' ? ' event' : '') +
			(m.deleted ? ' deleted' : '') + (m.status === 'failed' ? ' failed' : '');
		node.dataset.from = m.from;
		node.dataset.id = m.id;
		if (m.seq) node.dataset.seq = m.seq;
		else delete node.dataset.seq;
		const t = m.server_ts || m.ts;
		const menuBtn = el('button', {class: 'msg-menu', type: 'button', title: 'Actions',
			'aria-label': 'Message actions', 'aria-haspopup': 'menu', 'aria-expanded': 'false'});
		if (m.type === 'event') {
			fill(node, el('div', {class: 'msg-body', title: full(t)}, eventText(m)), menuBtn);
			return;
		}
		const parts = [];
		if (room && !mine) {
			parts.push(el('div', {class: 'msg-author', 'data-user': m.from}, store.nick(m.from)));
		}
		if (m.reply_to && !m.deleted) {
			const q = this.byKey.get((m.reply_from || '') + '/' + m.reply_to);
			let qt;
			if (!q) qt = 'Original message not loaded';
			else if (q.deleted) qt = DELETED_TEXT;
			else if (q.type === 'event') qt = eventText(q);
			else qt = q.body.length > 200 ? q.body.slice(0, 200) + '…' : q.body;
			parts.push(el('button', {class: 'msg-reply', type: 'button', 'data-ref': m.reply_to,
				'data-of': m.reply_from || '', title: 'Show the original message'},
			el('span', {class: 'msg-reply-author'}, store.nick(m.reply_from || '')),
			el('span', {class: 'msg-reply-text' + (q && q.deleted ? ' gone' : '')}, qt)));
		}
		if (m.deleted) {
			parts.push(el('div', {class: 'msg-body'}, DELETED_TEXT));
		} else {
			parts.push(el('div', {class: 'msg-body', dir: 'auto'}, linkify(m.body || '')));
			if (m.truncated && m.seq) {
				parts.push(el('button', {class: 'msg-full', type: 'button', 'data-seq': m.seq},
					'Show the whole message'));
			}
		}
		const meta = [];
		if (m.edited && !m.deleted) meta.push(el('span', {class: 'msg-edited', title: 'Edited ' + full(m.edited)}, 'edited'));
		let tt = full(t);
		if (mine && room && (m.read_by || m.delivered_to)) {
			if (m.read_by && m.read_by.length) tt += '\nRead by ' + m.read_by.map((u) => store.nick(u)).join(', ');
			const got = (m.delivered_to || []).filter((u) => !(m.read_by || []).includes(u));
			if (got.length) tt += '\nDelivered to ' + got.map((u) => store.nick(u)).join(', ');
		}
		meta.push(el('time', {class: 'msg-time', datetime: t ? new Date(t).toISOString() : '', title: tt}, hhmm(t)));
		if (mine && !room && m.status) {
			const st = m.status;
			meta.push(el('span', {class: 'msg-status', 'data-status': st, role: 'img',
				'aria-label': STATUS_LABEL[st] || st, title: STATUS_LABEL[st] || st}));
		}
		parts.push(el('div', {class: 'msg-meta'}, meta));
		if (m.status === 'failed' && mine) {
			parts.push(el('div', {class: 'msg-fail'},
				el('span', null, 'Not sent' + (m.failed_code ? ': ' + m.failed_code.replace(/_/g, ' ') : '')),
				el('button', {class: 'msg-retry', type: 'button'}, 'Retry')));
		}
		if (m.reactions && m.reactions.length && !m.deleted) {
			parts.push(el('div', {class: 'msg-reactions'}, m.reactions.filter((r) => r.users && r.users.length).map((r) => {
				const minePicked = r.users.includes(this.me);
				return el('button', {class: 'reaction' + (minePicked ? ' picked' : ''), type: 'button',
					'data-emoji': r.emoji, 'aria-pressed': minePicked ? 'true' : 'false',
					title: r.users.map((u) => store.nick(u)).join(', ') + (minePicked ? ' (click to remove yours)' : '')},
				r.emoji + ' ' + r.users.length);
			})));
		}
		fill(node, el('div', {class: 'msg-bubble'}, parts), menuBtn);
	}

	// The first message at the top of the viewport and where it stands, to
	// keep it there when messages are added above it.
	anchor() {
		const box = this.scroller.getBoundingClientRect();
		if (!box.height) return null;
		const x = box.left + box.width / 2;
		for (const dy of [8, 40, 100]) {
			let n = document.elementFromPoint(x, box.top + dy);
			while (n && n !== this.list && !(n.parentNode === this.list)) n = n.parentNode;
			// Not a day line: it moves up when messages of its day come above.
			while (n && n.parentNode === this.list && !n.classList.contains('msg')) n = n.nextElementSibling;
			if (n && n.parentNode === this.list) return {node: n, top: n.getBoundingClientRect().top};
		}
		// Above the list (the loading line at the very top): its first message.
		const f = this.list.querySelector('.msg');
		return f ? {node: f, top: f.getBoundingClientRect().top} : null;
	}

	restore(a) {
		if (!a.node.isConnected) return;
		const d = a.node.getBoundingClientRect().top - a.top;
		if (Math.abs(d) >= 1) this.scroller.scrollTop += d;
	}

	// At the newest message: the window follows the newest and the view is
	// scrolled to its end.
	isAtBottom() {
		const s = this.scroller;
		return this.tail && s.scrollHeight - s.scrollTop - s.clientHeight < BOTTOM_SLACK;
	}

	scrollToBottom(smooth) {
		if (!this.tail) this.render({end: true});
		const s = this.scroller;
		s.scrollTop = s.scrollHeight;
		// Sizes of messages rendered for the first time settle in the next frame.
		requestAnimationFrame(() => {
			if (this.atBottom || smooth !== undefined) s.scrollTop = s.scrollHeight;
		});
		this.atBottom = true;
		this.pill.hidden = true;
		this.markRead();
	}

	onScroll() {
		if (view !== this) return;
		const s = this.scroller;
		this.atBottom = this.isAtBottom();
		if (this.atBottom) {
			this.pill.hidden = true;
			this.markRead();
		}
		if (s.scrollTop < TOP_MARGIN) this.older();
		else if (!this.tail && s.scrollHeight - s.scrollTop - s.clientHeight < TOP_MARGIN) this.newer();
	}

	// One step back: move the window a batch back over what the store
	// holds, or load a history page.
	async older() {
		if (this.loading) return;
		if (this.lo > 0) {
			this.render({up: true});
			// At the very top no scroll event comes: look again next frame.
			requestAnimationFrame(() => this.onScroll());
			return;
		}
		if (!this.hasMore()) return;
		this.loading = true;
		this.showTop(true, false);
		try {
			await store.loadOlder(this.key);
		} catch (e) {
			// Offline: the next connect ('ready') tries again.
			if (view === this && e.code !== 'offline') toast(rpcError('Could not load older messages', e), 'error');
			this.loading = false;
			this.showTop(this.hasMore(), false);
			return;
		}
		this.loading = false;
		if (view !== this) return;
		this.render({});
		// Keep going while the top is still near (a fast fling, a short page).
		requestAnimationFrame(() => this.onScroll());
	}

	// One step forward, when the window left the newest behind.
	newer() {
		this.render({down: true});
		requestAnimationFrame(() => this.onScroll());
	}

	// Load history until message `seq` is held, render a window around
	// it, scroll it into the middle and highlight it.
	async focusSeq(seq) {
		const find = () => (store.messages(this.key) || []).findIndex((m) => m.seq === seq);
		let idx = find();
		let pages = 0;
		while (idx < 0 && this.hasMore() && pages < 500 && view === this) {
			this.loading = true;
			this.showTop(true, false);
			try {
				await store.loadOlder(this.key);
			} catch (e) {
				toast('Could not load the message: ' + (e.message || e.code || e), 'error');
				break;
			} finally {
				this.loading = false;
			}
			pages++;
			idx = find();
		}
		if (view !== this) return;
		if (idx < 0) {
			this.render({});
			toast('That message is not in the history any more', 'info');
			return;
		}
		this.reveal(idx);
	}

	// Show message idx of the list, highlighted.
	reveal(idx) {
		const m = (store.messages(this.key) || [])[idx];
		if (!m) return;
		let ent = this.nodes.get(mkey(m));
		if (!ent || !ent.node.isConnected) {
			this.render({at: idx});
			ent = this.nodes.get(mkey(m));
		}
		if (ent) this.highlight(ent.node);
	}

	highlight(node) {
		node.scrollIntoView({block: 'center'});
		this.atBottom = this.isAtBottom();
		node.classList.remove('highlight');
		void node.offsetWidth;
		node.classList.add('highlight');
		setTimeout(() => node.classList.remove('highlight'), 2500);
	}

	// PROTOCOL "Writing an app" 8: once per look, when the newest is shown;
	// asked after the next frame, so that a new message is drawn first.
	markRead() {
		if (this.readQueued) return;
		this.readQueued = true;
		requestAnimationFrame(() => setTimeout(() => {
			this.readQueued = false;
			this.markReadNow();
		}, 0));
	}

	markReadNow() {
		if (view !== this || document.visibilityState !== 'visible') return;
		if (!this.atBottom || !this.lastNewest || this.lastRead === this.lastNewest) return;
		this.lastRead = this.lastNewest;
		try {
			store.markRead(this.key);
		} catch {
			// offline: the next look tries again
			this.lastRead = '';
		}
	}

	// ---- clicks and the per-message menu ---------------------------------

	msgOf(node) {
		return this.byKey.get(node.dataset.from + '/' + node.dataset.id);
	}

	onClick(e) {
		const t = e.target.closest('button, a');
		if (!t || !this.list.contains(t)) return;
		const node = t.closest('.msg');
		if (!node) return;
		const m = this.msgOf(node);
		if (!m) return;
		if (t.classList.contains('msg-menu')) {
			if (this.menu && this.menu.node === node) this.closeMenu(true);
			else this.openMenu(node, m, t);
		} else if (t.dataset.action) {
			this.action(t.dataset.action, node, m);
		} else if (t.classList.contains('react-pick')) {
			const picked = (m.reactions || []).some((r) => r.emoji === t.dataset.emoji && r.users.includes(this.me));
			this.react(m, t.dataset.emoji, picked);
			this.closeMenu(true);
		} else if (t.classList.contains('reaction')) {
			const r = (m.reactions || []).find((x) => x.emoji === t.dataset.emoji);
			this.react(m, t.dataset.emoji, !!(r && r.users.includes(this.me)));
		} else if (t.classList.contains('msg-reply')) {
			this.gotoOriginal(t.dataset.of, t.dataset.ref);
		} else if (t.classList.contains('msg-retry')) {
			this.retry(m);
		} else if (t.classList.contains('msg-full')) {
			this.fetchWhole(m);
		}
	}

	canEdit(m) {
		const h = hello();
		return m.type === 'text' && m.from === this.me && !m.deleted && h.features.includes('edit') &&
			m.status !== 'pending' && m.status !== 'failed' && this.inWindow(m, h.window);
	}

	canDelete(m) {
		const h = hello();
		if (m.type !== 'text' || m.deleted || !h.features.includes('delete')) return false;
		if (m.status === 'pending' || m.status === 'failed') return false;
		if (this.kind === 'room' && (this.role === 'owner' || this.role === 'admin')) return true;
		return m.from === this.me && this.inWindow(m, h.window);
	}

	inWindow(m, win) {
		if (!win) return false;
		const t = m.server_ts || m.ts || Date.now();
		return Date.now() - t < win * 1000;
	}

	openMenu(node, m, btn) {
		this.closeMenu();
		const h = hello();
		const items = [];
		if (m.type === 'text' && !m.deleted) {
			if (h.features.includes('replies')) items.push(['reply', 'Reply']);
			if (h.features.includes('reactions')) items.push(['react', 'React']);
			items.push(['copy', 'Copy text']);
			if (this.canEdit(m)) items.push(['edit', 'Edit']);
			if (this.canDelete(m)) items.push(['delete', 'Delete']);
		} else if (m.type === 'event') {
			items.push(['copy', 'Copy text']);
		}
		if (!items.length) return;
		const actions = el('div', {class: 'msg-actions', role: 'menu', 'aria-label': 'Message actions'},
			items.map(([a, label]) => el('button', {type: 'button', role: 'menuitem', 'data-action': a,
				class: a === 'delete' ? 'danger' : ''}, label)));
		const box = node.getBoundingClientRect(), sbox = this.scroller.getBoundingClientRect();
		if (box.top - sbox.top > sbox.height / 2) actions.classList.add('up');
		node.classList.add('menu-open');
		node.appendChild(actions);
		btn.setAttribute('aria-expanded', 'true');
		this.menu = {node, actions, btn};
		actions.querySelector('button').focus();
	}

	closeMenu(refocus) {
		const mm = this.menu;
		if (!mm) return;
		this.menu = null;
		mm.actions.remove();
		mm.node.classList.remove('menu-open');
		mm.btn.setAttribute('aria-expanded', 'false');
		if (refocus && mm.btn.isConnected) mm.btn.focus();
	}

	onMenuKey(e) {
		if (!this.menu || !this.menu.actions.contains(e.target)) return;
		const btns = Array.from(this.menu.actions.querySelectorAll('button'));
		const i = btns.indexOf(e.target);
		if (e.key === 'Escape') {
			e.preventDefault();
			e.stopPropagation();
			this.closeMenu(true);
		} else if (e.key === 'ArrowDown' || e.key === 'ArrowRight') {
			e.preventDefault();
			btns[(i + 1) % btns.length].focus();
		} else if (e.key === 'ArrowUp' || e.key === 'ArrowLeft') {
			e.preventDefault();
			btns[(i - 1 + btns.length) % btns.length].focus();
		} else if (e.key === 'Home') {
			e.preventDefault();
			btns[0].focus();
		} else if (e.key === 'End') {
			e.preventDefault();
			btns[btns.length - 1].focus();
		} else if (e.key === 'Tab') {
			this.closeMenu();
		}
	}

	action(a, node, m) {
		switch (a) {
		case 'reply':
			this.closeMenu();
			this.setReply(m);
			break;
		case 'react': {
			const picks = EMOJI.map((em) => {
				const picked = (m.reactions || []).some((r) => r.emoji === em && r.users.includes(this.me));
				return el('button', {type: 'button', role: 'menuitem', class: 'react-pick' + (picked ? ' picked' : ''),
					'data-emoji': em, 'aria-label': 'React ' + em, 'aria-pressed': picked ? 'true' : 'false'}, em);
			});
			fill(this.menu.actions, picks);
			this.menu.actions.classList.add('picker');
			picks[0].focus();
			break;
		}
		case 'copy': {
			const s = m.type === 'event' ? eventText(m) : (m.body || '');
			this.closeMenu(true);
			const done = () => toast('Copied', 'info');
			if (navigator.clipboard && navigator.clipboard.writeText) {
				navigator.clipboard.writeText(s).then(done, () => this.copyFallback(s));
			} else {
				this.copyFallback(s);
			}
			break;
		}
		case 'edit':
			this.closeMenu();
			this.setEdit(m);
			break;
		case 'delete': {
			this.closeMenu(true);
			const q = m.from === this.me ? 'Delete this message for everyone?'
				: `Delete ${store.nick(m.from)}'s message for everyone?`;
			if (window.confirm(q)) this.remove(m);
			break;
		}
		}
	}

	copyFallback(s) {
		const ta = el('textarea', {class: 'copy-buffer', 'aria-hidden': 'true'});
		ta.value = s;
		document.body.appendChild(ta);
		ta.select();
		let ok = false;
		try {
			ok = document.execCommand('copy');
		} catch {
			ok = false;
		}
		ta.remove();
		toast(ok ? 'Copied' : 'Could not copy', ok ? 'info' : 'error');
	}

	react(m, emoji, remove) {
		const env = {type: 'reaction', ref: m.id, of: m.from, emoji};
		if (remove) env.remove = true;
		try {
			conn.send(this.key, env);
		} catch (e) {
			toast('Could not react: ' + (e.message || e), 'error');
		}
	}

	async remove(m) {
		const args = {ref: m.id};
		if (m.from !== this.me) {
			args.room = this.name;
			args.of = m.from;
		}
		try {
			await conn.rpc('delete', args);
		} catch (e) {
			toast(rpcError('Could not delete', e), 'error');
		}
	}

	retry(m) {
		const env = {id: m.id, type: 'text', body: m.body};
		if (m.ts) env.ts = m.ts;
		if (m.reply_to) {
			env.reply_to = m.reply_to;
			env.reply_from = m.reply_from;
		}
		try {
			conn.send(this.key, env);
		} catch (e) {
			toast('Could not send: ' + (e.message || e), 'error');
		}
	}

	async fetchWhole(m) {
		try {
			await store.fetchFull(this.key, m);
		} catch (e) {
			toast(rpcError('Could not load the message', e), 'error');
		}
	}

	gotoOriginal(of, ref) {
		const msgs = store.messages(this.key) || [];
		const idx = msgs.findIndex((x) => x.id === ref && (!of || x.from === of));
		if (idx < 0) {
			toast('The original message is not loaded; scroll up to find it', 'info');
			return;
		}
		const ent = this.nodes.get(mkey(msgs[idx]));
		if (ent && ent.node.isConnected) this.highlight(ent.node);
		else this.reveal(idx);
	}

	// ---- composer --------------------------------------------------------

	setReply(m) {
		if (m && this.editing) this.setEdit(null);
		this.replyTo = m;
		if (m) {
			fill(this.replyText, el('strong', null, store.nick(m.from)), ' ',
				el('span', {class: 'bar-quote'}, (m.body || '').slice(0, 120)));
			this.replyBar.hidden = false;
			this.composer.focus();
		} else {
			this.replyBar.hidden = true;
			fill(this.replyText);
		}
	}

	setEdit(m) {
		if (m) {
			if (this.replyTo) this.setReply(null);
			if (!this.editing) this.saveDraft();
			this.stopTyping();
			this.editing = m;
			this.composer.value = m.body || '';
			this.composer.dataset.mode = 'edit';
			this.editBar.hidden = false;
			this.composer.focus();
			this.composer.setSelectionRange(this.composer.value.length, this.composer.value.length);
		} else {
			this.editing = null;
			this.composer.dataset.mode = 'send';
			this.editBar.hidden = true;
			this.composer.value = drafts.get(this.key) || '';
		}
		this.grow();
	}

	grow() {
		const c = this.composer;
		c.style.height = 'auto';
		const max = parseFloat(getComputedStyle(c).lineHeight || '20') * 6 + 16 || 140;
		c.style.height = Math.min(c.scrollHeight + 2, max) + 'px';
		c.style.overflowY = c.scrollHeight > max ? 'auto' : 'hidden';
	}

	onComposerKey(e) {
		if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !e.altKey && !e.ctrlKey && !e.metaKey) {
			e.preventDefault();
			this.submit();
		} else if (e.key === 'Escape') {
			if (this.editing) {
				e.preventDefault();
				this.setEdit(null);
			} else if (this.replyTo) {
				e.preventDefault();
				this.setReply(null);
			}
		} else if (e.key === 'ArrowUp' && !this.composer.value && !this.editing) {
			// The newest own text, for a quick edit (as in most chat apps).
			const msgs = store.messages(this.key) || [];
			for (let i = msgs.length - 1; i >= 0 && i >= msgs.length - 50; i--) {
				if (msgs[i].from === this.me && this.canEdit(msgs[i])) {
					e.preventDefault();
					this.setEdit(msgs[i]);
					break;
				}
			}
		}
	}

	onInput() {
		this.grow();
		if (this.editing) return;
		if (!this.composer.value.trim()) {
			this.stopTyping();
			return;
		}
		const now = Date.now();
		if (!this.typingOn || now - this.typingAt >= TYPING_EVERY) {
			this.typingOn = true;
			this.typingAt = now;
			this.publishTyping(true);
		}
		clearTimeout(this.typingIdle);
		this.typingIdle = setTimeout(() => this.stopTyping(), TYPING_IDLE);
	}

	stopTyping() {
		clearTimeout(this.typingIdle);
		this.typingIdle = null;
		if (!this.typingOn) return;
		this.typingOn = false;
		this.publishTyping(false);
	}

	publishTyping(on) {
		if (!hello().features.includes('typing') || conn.state !== 'online') return;
		try {
			conn.sendTyping(this.key, on);
		} catch {
			// a lost typing signal is never sent again (PROTOCOL "Typing")
		}
	}

	async submit() {
		const body = this.composer.value.replace(/\s+$/, '');
		if (!body.trim()) return;
		if (this.editing) {
			const m = this.editing;
			if (body === m.body) {
				this.setEdit(null);
				return;
			}
			this.sendBtn.disabled = true;
			try {
				await conn.rpc('edit', {ref: m.id, body});
				if (view === this && this.editing === m) this.setEdit(null);
			} catch (e) {
				toast(rpcError('Could not edit', e), 'error');
			} finally {
				this.sendBtn.disabled = false;
			}
			return;
		}
		const env = {type: 'text', body};
		if (this.replyTo) {
			env.reply_to = this.replyTo.id;
			env.reply_from = this.replyTo.from;
		}
		this.stopTyping();
		try {
			conn.send(this.key, env);
		} catch (e) {
			toast('Could not send: ' + (e.message || e), 'error');
			return;
		}
		this.composer.value = '';
		drafts.delete(this.key);
		this.setReply(null);
		this.grow();
		this.scrollToBottom();
		this.composer.focus();
	}
}

function rpcError(what, e) {
	const why = {
		too_late: 'it is older than the edit window',
		not_found: 'the message is gone',
		forbidden: 'you may not do that',
		offline: 'you are offline',
		timeout: 'the server did not answer',
		rate_limited: 'too many requests, try again in a moment',
	}[e && e.code];
	return what + ': ' + (why || (e && (e.message || e.code)) || 'error');
}

registerView('chat', {
	mount(root, params) {
		if (view) view.destroy();
		const kind = params.kind === 'room' || params.kind === 'r' ? 'room' : 'user';
		lastKey = convKey(kind, params.name);
		view = new ChatView(root, kind, params.name, Number(params.seq) || 0);
	},
	unmount() {
		if (view) view.destroy();
		view = null;
	},
});
