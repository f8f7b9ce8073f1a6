// store.js - the model of the web app: conversations, their messages, nicks,
// presence, typing and blocks (docs/PROTOCOL.md "Writing an app", steps 5
// to 8 and 10). Views only read it and listen to its events.
//
// A message is (from, id), whichever way it came: live, a sent copy, sync,
// history, or twice for a note to oneself. Live messages have no seq until
// a sync or history page gives them one; they sort after the others, in the
// order they came. Changes (edit, delete, reaction) apply to (of, ref) in
// their conversation, and to nothing when that message is not held.
//
// Events: convs {}, messages {key, ids?}, presence {user}, typing {key},
// blocks {}, nick {user}.

import {conn} from './conn.js';
import {ulid, parseConv, utf8Len} from './util.js';

const SERVICE = 'archiver';
const RANK = {failed: -1, pending: 0, sent: 1, delivered: 2, read: 3};
const TYPING_MS = 6000;
const PAGE = 100;
const CONV_PAGE = 50;
const WHOIS_PARALLEL = 6;

const mkey = (from, id) => from + '\n' + id;

const cacheKey = (me) => 'mqchat.convs.' + me;

function forget(key) {
	try {
		localStorage.removeItem(key);
	} catch {
		// Nothing to forget.
	}
}

function msgTime(m) {
	return m ? (m.server_ts || m.ts || 0) : 0;
}

class Store extends EventTarget {
	constructor() {
		super();
		this.cs = new Map();          // key -> conversation (public fields + private _*)
		this.listMore = false;
		this.listBefore = 0;
		this.listLoading = null;
		this.listLoaded = false;
		this.maxSeq = 0;              // sync position
		this.syncing = null;          // the catch-up on its way (catchUp)
		this.syncAgain = false;
		this.arrival = 0;
		this.nicks = new Map();       // user -> nick ('' while asked)
		this.whoisQueue = [];
		this.whoisBusy = 0;
		this.myNick = '';
		this.pres = new Map();
		this.presAsked = new Set();
		this.typers = new Map();      // key -> Map(user -> timer)
		this.blocks = new Set();
		this.mine = new Map();        // id -> {key, msg} of my texts
		this.pendingEmit = new Map(); // key -> Set of ids (or null: all)
		this.pendingConvs = false;
		this.hookConn();
	}

	// ---- public reading interface ----

	convs() {
		const out = [];
		for (const c of this.cs.values()) {
			if (c.gone) continue;
			if (c.kind === 'user' && !c.last && !c.listed) continue;
			out.push(c);
		}
		out.sort((a, b) => (b.ts - a.ts) || (a.key < b.key ? -1 : 1));
		return out;
	}

	conv(key) {
		return this.cs.get(key);
	}

	messages(key) {
		const c = this.cs.get(key);
		if (!c) return [];
		if (!c._list) {
			const all = [];
			for (const m of c._msgs.values()) {
				if (m.type !== 'text' && m.type !== 'event') continue;
				if (m.from !== conn.me && this.blocks.has(m.from)) continue;
				all.push(m);
			}
			all.sort((a, b) => {
				if (a.seq && b.seq) return a.seq - b.seq;
				if (a.seq) return -1;
				if (b.seq) return 1;
				return a._arrival - b._arrival;
			});
			c._list = all;
		}
		return c._list;
	}

	hasMore(key) {
		const c = this.cs.get(key);
		return c ? c._more : true;
	}

	hasMoreConvs() {
		return this.listMore;
	}

	nick(user) {
		if (!user) return '';
		if (user === conn.me) return this.myNick || user;
		const n = this.nicks.get(user);
		if (n === undefined) {
			this.nicks.set(user, '');
			this.whoisQueue.push(user);
			this.pumpWhois();
			return user;
		}
		return n || user;
	}

	presence(user) {
		return this.pres.get(user) || null;
	}

	typing(key) {
		const t = this.typers.get(key);
		return t ? [...t.keys()] : [];
	}

	blocked(user) {
		return this.blocks.has(user);
	}

	// ---- conversations ----

	ensure(key) {
		let c = this.cs.get(key);
		if (!c) {
			const p = parseConv(key);
			if (!p) return null;
			c = {
				key, kind: p.kind, name: p.name, title: p.name, last: null, unread: 0, read_seq: 0, ts: 0,
				_msgs: new Map(), _list: null, _more: true, _loading: null, _readSig: '', listed: false, gone: false,
			};
			if (p.kind === 'user') c.title = this.nick(p.name);
			else {
				const r = conn.rooms.get(p.name);
				if (r && r.title) c.title = r.title;
			}
			this.cs.set(key, c);
		}
		return c;
	}

	// Open a conversation that may have no message yet (a new chat).
	open(key) {
		const c = this.ensure(key);
		if (c) {
			if (c.gone && c.kind === 'room' && conn.rooms.has(c.name)) c.gone = false;
			this.followRoom(c);
		}
		return c;
	}

	// A room shown that this connection does not follow yet (someone added
	// me a moment ago): ask `rooms`, which subscribes it.
	followRoom(c) {
		if (c.kind !== 'room' || conn.rooms.has(c.name) || c._asked) return;
		c._asked = true;
		this.online().then(() => conn.refreshRooms()).catch(() => {}).finally(() => {
			setTimeout(() => { c._asked = false; }, 5000);
		});
	}

	fromConvEntry(e) {
		const key = typeof e.room === 'string' ? 'r:' + e.room : typeof e.with === 'string' ? 'u:' + e.with : null;
		if (!key) return;
		const c = this.ensure(key);
		if (!c) return;
		c.listed = true;
		c.gone = false;
		c._cached = false;
		c.unread = e.unread || 0;
		c.read_seq = e.read_seq || 0;
		if (c.kind === 'room') c.title = e.title || c.name;
		if (e.last && (!c.last || !c.last.seq || (e.last.seq || 0) >= c.last.seq || msgTime(e.last) >= c.ts)) {
			// The held message when there is one: it has the live changes.
			const held = c._msgs.get(mkey(e.last.from, e.last.id));
			c.last = held || {...e.last, reactions: e.last.reactions || []};
			c.ts = Math.max(c.ts, msgTime(e.last));
		}
		if (e.last_seq > this.maxSeq) this.maxSeq = e.last_seq;
		if (c.kind === 'room' && !conn.rooms.has(c.name)) conn.subscribeRoom(c.name);
		return c;
	}

	// The list as this browser last saw it, shown while the connection
	// opens (the `conversations` answer replaces it).
	loadCache(me) {
		this.cacheUser = me;
		let data = null;
		try {
			data = JSON.parse(localStorage.getItem(cacheKey(me)) || 'null');
		} catch {
			data = null;
		}
		if (!data || !Array.isArray(data.convs)) return;
		if (typeof data.me === 'string') this.myNick = data.me;
		for (const e of data.convs) {
			if (!e || typeof e.key !== 'string' || this.cs.has(e.key)) continue;
			const p = parseConv(e.key);
			if (p && p.kind === 'user' && typeof e.nick === 'string' && e.nick && !this.nicks.has(p.name)) {
				// Shown now, asked again once connected.
				this.nicks.set(p.name, e.nick);
				this.whoisQueue.push(p.name);
			}
			const c = this.ensure(e.key);
			if (!c) continue;
			c._cached = true;
			c.listed = true;
			c.title = typeof e.title === 'string' ? e.title : c.title;
			c.unread = e.unread | 0;
			c.read_seq = e.read_seq | 0;
			c.ts = +e.ts || 0;
			c.last = e.last && typeof e.last === 'object' ? e.last : null;
		}
		this.changedConvs();
	}

	saveCache() {
		const me = this.cacheUser;
		if (!me || me !== conn.me || !this.listLoaded) return;
		const convs = this.convs().slice(0, CONV_PAGE).map((c) => {
			const m = c.last;
			const last = m ? {from: m.from, id: m.id, type: m.type, seq: m.seq, ts: m.ts, server_ts: m.server_ts,
				body: typeof m.body === 'string' ? m.body.slice(0, 200) : undefined,
				event: m.event, user: m.user, by: m.by, deleted: m.deleted} : null;
			return {key: c.key, title: c.title, unread: c.unread, read_seq: c.read_seq, ts: c.ts, last,
				nick: c.kind === 'user' ? this.nicks.get(c.name) || undefined : undefined};
		});
		try {
			localStorage.setItem(cacheKey(me), JSON.stringify({me: this.myNick, convs}));
			this.cacheSaved = true;
		} catch {
			// Full or denied: no cache, the list comes from the server.
		}
	}

	// The first page of the list (again after a reconnect).
	async loadConvs() {
		const a = await conn.rpc('conversations', {limit: CONV_PAGE});
		performance.mark('mqchat:conversations');
		for (const e of a.conversations || []) this.fromConvEntry(e);
		// What the cache had and this page leaves out, where the page
		// would have shown it, is gone (a room left elsewhere).
		const oldest = Math.min(...(a.conversations || []).map((e) => msgTime(e.last) || 0), Infinity);
		for (const [key, c] of this.cs) {
			if (!c._cached) continue;
			c._cached = false;
			if (!a.more || c.ts >= oldest) {
				if (c._msgs.size) c.gone = c.kind === 'room';
				else this.cs.delete(key);
			}
		}
		this.listLoaded = true;
		if (!this.listBefore || !this.listMore) {
			this.listMore = !!a.more;
			this.listBefore = minLastSeq(a.conversations);
		}
		this.changedConvs();
	}

	// The next page of the list; resolves with whether there is more.
	loadMoreConvs() {
		if (!this.listMore) return Promise.resolve(false);
		if (this.listLoading) return this.listLoading;
		this.listLoading = (async () => {
			try {
				const a = await conn.rpc('conversations', {limit: CONV_PAGE, before: this.listBefore});
				for (const e of a.conversations || []) this.fromConvEntry(e);
				this.listMore = !!a.more;
				const b = minLastSeq(a.conversations);
				if (b) this.listBefore = b;
				else this.listMore = false;
				this.changedConvs();
				return this.listMore;
			} finally {
				this.listLoading = null;
			}
		})();
		return this.listLoading;
	}

	// Move a conversation to the top for a new message.
	bump(c, m, {badge = false, clear = false} = {}) {
		if (!c.last || !c.last.seq || !m.seq || m.seq >= c.last.seq) {
			c.last = m;
			c.ts = Math.max(c.ts, msgTime(m) || Date.now(), Date.now() - 1);
		}
		if (badge) c.unread++;
		if (clear) c.unread = 0;
		this.changedConvs();
	}

	// ---- history ----

	loadOlder(key) {
		const c = this.ensure(key);
		if (!c) return Promise.resolve(false);
		if (c._loading) return c._loading;
		if (!c._more) return Promise.resolve(false);
		c._loading = (async () => {
			try {
				const args = c.kind === 'room' ? {room: c.name} : {with: c.name};
				args.limit = PAGE;
				this.followRoom(c);
				await this.online();
				// Live messages have no seq until a page gives them one, and
				// they sort after those that have: while some that came
				// before this request are still without, take the next page
				// too (a large message comes alone on a page of its own).
				const asked = ++this.arrival;
				let a;
				for (let pages = 0; ; pages++) {
					const before = oldestSeq(c);
					if (before) args.before = before;
					a = await conn.rpc('history', args);
					for (const row of a.messages || []) this.mergeRow(c, row, false);
					if (!a.more || !(a.messages || []).length || pages >= 4 || !unseqBefore(c, asked)) break;
				}
				c._more = !!a.more && (a.messages || []).length > 0;
				if (c._receiptFloor !== undefined) this.readReceipts(c);
				this.changed(key, null);
				return c._more;
			} finally {
				c._loading = null;
			}
		})();
		return c._loading;
	}

	// The whole body of a message that came truncated (PROTOCOL.md "get").
	async fetchFull(key, m) {
		if (!m || !m.truncated || !m.seq || m._fetching) return m;
		m._fetching = true;
		try {
			let body = '', offset = 0;
			for (let i = 0; i < 64; i++) {
				const a = await conn.rpc('get', {seq: m.seq, offset});
				body += a.body || '';
				if (!a.more) break;
				offset = a.next;
			}
			m.body = body;
			m.truncated = false;
			this.changed(key, [m.id]);
		} finally {
			m._fetching = false;
		}
		return m;
	}

	// ---- sync (after a reconnect, or a resync notice) ----

	// Sync from the largest seq held until `more` is false (PROTOCOL.md
	// "Several nodes"), one sync at a time: asked while one runs, it runs
	// once more after it, from where that one ended.
	catchUp() {
		if (this.syncing) {
			this.syncAgain = true;
			return this.syncing;
		}
		this.syncing = (async () => {
			try {
				do {
					this.syncAgain = false;
					await this.sync();
				} while (this.syncAgain);
			} finally {
				this.syncing = null;
			}
		})();
		return this.syncing;
	}

	async sync() {
		let after = this.maxSeq;
		for (let i = 0; i < 200; i++) {
			const a = await conn.rpc('sync', {after, limit: 500, changes: true});
			const rows = (a.messages || []).slice().sort((x, y) => x.seq - y.seq);
			for (const r of rows) {
				this.ingestRow(r);
				if (r.seq > after) after = r.seq;
			}
			if (!a.more || !rows.length) break;
		}
		if (after > this.maxSeq) this.maxSeq = after;
	}

	rowKey(r) {
		if (typeof r.room === 'string') return 'r:' + r.room;
		const me = conn.me;
		const peer = r.from === me ? r.to : r.from;
		return typeof peer === 'string' ? 'u:' + peer : null;
	}

	ingestRow(r) {
		const key = this.rowKey(r);
		if (!key) return;
		const c = this.ensure(key);
		if (!c) return;
		if (r.type === 'text' || r.type === 'event') {
			const isNew = !c._msgs.has(mkey(r.from, r.id));
			const m = this.mergeRow(c, r, true);
			if (m && isNew) {
				if (!c.last || !c.last.seq || m.seq > c.last.seq) {
					c.last = m;
					c.ts = Math.max(c.ts, msgTime(m));
					this.changedConvs();
				}
			}
		} else if (r.type === 'edit') {
			this.applyEdit(c, r.of, r.ref, r.body, r.ts || r.server_ts);
		} else if (r.type === 'delete') {
			this.applyDelete(c, r.of, r.ref, r.ts || r.server_ts, r.by || r.from);
		} else if (r.type === 'reaction') {
			this.applyReaction(c, r.of, r.ref, r.from, r.emoji, r.remove === true);
		}
	}

	// Merge an archived row (history/sync) into conversation c.
	mergeRow(c, r, fromSync) {
		if (typeof r.id !== 'string' || typeof r.from !== 'string') return null;
		if (r.seq > 0 && fromSync && r.seq > this.maxSeq) this.maxSeq = r.seq;
		const k = mkey(r.from, r.id);
		let m = c._msgs.get(k);
		const isNew = !m;
		if (!m) {
			m = {from: r.from, id: r.id, reactions: [], _arrival: ++this.arrival};
			c._msgs.set(k, m);
		}
		m.type = r.type;
		if (r.seq) m.seq = r.seq;
		if (r.ts !== undefined && r.ts !== null) m.ts = r.ts;
		else if (m.ts === undefined) m.ts = r.server_ts;
		if (r.server_ts) m.server_ts = r.server_ts;
		if (r.type === 'event') {
			m.event = r.event;
			if (r.user) m.user = r.user;
			if (r.by) m.by = r.by;
		} else if (!m.deleted) {
			if (r.deleted) {
				m.deleted = r.deleted;
				m.deleted_by = r.deleted_by;
				m.body = '';
				m.reactions = [];
				delete m.edited;
			} else {
				// A body cut to fit the page: the whole one held already
				// (it came live) stays; otherwise `get` brings it.
				const whole = r.truncated && typeof m.body === 'string' && !m.truncated &&
					utf8Len(m.body) === r.body_bytes;
				if (!whole && (!m.edited || (r.edited || 0) >= m.edited || m.body === undefined)) {
					m.body = r.body;
					if (r.edited) m.edited = r.edited;
					if (r.truncated) {
						m.truncated = true;
						m.body_bytes = r.body_bytes;
						queueMicrotask(() => this.fetchFull(c.key, m).catch(() => {}));
					} else {
						delete m.truncated;
					}
				}
				if (r.reply_to) {
					m.reply_to = r.reply_to;
					m.reply_from = r.reply_from;
				}
				m.reactions = Array.isArray(r.reactions) ? r.reactions.map((x) => ({emoji: x.emoji, users: [...(x.users || [])]})) : [];
			}
		}
		if (r.status && (m.status === undefined || (RANK[r.status] || 0) > (RANK[m.status] || 0) || m.status === 'failed')) {
			m.status = r.status;
		}
		if (m.from === conn.me && m.type === 'text') this.mine.set(m.id, {key: c.key, msg: m});
		// Delivered receipts for direct texts that reached me while away.
		if (isNew && c.kind === 'user' && m.type === 'text' && m.from !== conn.me && m.from !== SERVICE &&
			r.status === 'sent' && !m.deleted) {
			this.receipt(m, 'delivered');
		}
		c._list = null;
		this.changed(c.key, [m.id]);
		return m;
	}

	// ---- live envelopes ----

	hookConn() {
		conn.addEventListener('envelope', (e) => this.onEnvelope(e.detail));
		conn.addEventListener('outbox', (e) => this.onOutbox(e.detail));
		conn.addEventListener('puback', (e) => {
			const {key, id} = e.detail;
			this.onStatus(key, id, 'sent');
			// A first message makes a contact: their presence shows now.
			const p = parseConv(key);
			if (p && p.kind === 'user' && p.name !== conn.me && !this.pres.has(p.name) && !this.presAsked.has(p.name)) {
				this.presAsked.add(p.name);
				conn.refreshPresence();
			}
		});
		conn.addEventListener('failed', (e) => this.onStatus(e.detail.key, e.detail.id, 'failed', e.detail.code));
		conn.addEventListener('presence', (e) => {
			const d = e.detail;
			if (d.none) this.pres.delete(d.user);
			else this.pres.set(d.user, {online: d.online, status: d.status, since: d.since});
			this.emit('presence', {user: d.user});
		});
		conn.addEventListener('typing', (e) => this.onTyping(e.detail));
		conn.addEventListener('ready', (e) => this.onReady(e.detail));
		conn.addEventListener('resync', () => {
			// Before the list has loaded there is no position yet: the
			// list and each conversation's history come as they are now.
			if (!this.listLoaded || conn.state !== 'online') return;
			// Then the list, for the badges of what the sync brought.
			this.catchUp().then(() => this.loadConvs().catch(() => {}),
				(e) => this.warn('Catching up failed: ' + e.message));
		});
		conn.addEventListener('rooms', (e) => this.onRooms(e.detail));
		conn.addEventListener('login', () => {
			if (this.cacheUser) forget(cacheKey(this.cacheUser));
			this.cacheUser = '';
			this.reset();
		});
		window.addEventListener('pagehide', () => this.saveCache());
		document.addEventListener('visibilitychange', () => {
			if (document.visibilityState === 'visible' && conn.state === 'online') {
				conn.refreshRooms().catch(() => {});
			}
		});
		// Rooms someone added me to show in `rooms`: look now and then.
		setInterval(() => {
			if (conn.state === 'online' && document.visibilityState === 'visible') conn.refreshRooms().catch(() => {});
		}, 30000);
	}

	reset() {
		this.cacheSaved = false;
		this.cs.clear();
		this.listMore = false;
		this.listBefore = 0;
		this.listLoaded = false;
		this.maxSeq = 0;
		this.nicks.clear();
		this.myNick = '';
		this.pres.clear();
		this.typers.clear();
		this.blocks.clear();
		this.mine.clear();
		this.changedConvs();
	}

	// After every connect. A reconnect syncs whether the broker kept the
	// session or not: with it, sync brings what other devices did; without
	// it (sessionPresent false), also what its queue held.
	async onReady({first}) {
		const tasks = [];
		if (first || !this.listLoaded) {
			tasks.push(this.loadConvs().catch((e) => this.warn('The conversation list did not load: ' + e.message)));
		} else {
			tasks.push((async () => {
				try {
					await this.catchUp();
				} catch (e) {
					this.warn('Catching up failed: ' + e.message);
				}
				await this.loadConvs().catch(() => {});
			})());
		}
		tasks.push(conn.rpc('blocked').then((a) => this.setBlocks(a.users || [])).catch(() => {}));
		if (!this.myNick) {
			tasks.push(conn.rpc('profile').then((a) => {
				this.myNick = a.nick || a.name || conn.me;
				this.emit('nick', {user: conn.me});
				this.changedConvs();
			}).catch(() => {}));
		}
		// Nicks asked while offline.
		this.pumpWhois();
		await Promise.all(tasks);
	}

	onRooms({added, gone}) {
		for (const r of added) {
			const c = this.ensure('r:' + r);
			c.gone = false;
			c.listed = true;
			const info = conn.rooms.get(r);
			if (info && info.title) c.title = info.title;
			// Found later (someone added me): new, so on top. Those of the
			// first `rooms` answer wait for their place in the list.
			if (!c.ts && this.listLoaded) c.ts = Date.now();
		}
		for (const r of gone) {
			const c = this.cs.get('r:' + r);
			if (c) c.gone = true;
		}
		for (const [r, info] of conn.rooms) {
			const c = this.cs.get('r:' + r);
			if (c && info.title && c.title !== info.title) c.title = info.title;
		}
		if (added.length || gone.length) this.changedConvs();
	}

	setBlocks(users) {
		this.blocks = new Set(users);
		for (const c of this.cs.values()) c._list = null;
		this.emit('blocks', {});
		this.changedConvs();
		for (const c of this.cs.values()) this.changed(c.key, null);
	}

	onEnvelope({key, from, env}) {
		const c = this.ensure(key);
		if (!c) return;
		const me = conn.me;
		switch (env.type) {
		case 'text': {
			if (from === SERVICE) return;
			const k = mkey(from, env.id);
			let m = c._msgs.get(k);
			const isNew = !m;
			if (!m) {
				m = {from, id: env.id, type: 'text', reactions: [], _arrival: ++this.arrival};
				c._msgs.set(k, m);
				m.body = typeof env.body === 'string' ? env.body : '';
				m.ts = Number.isInteger(env.ts) ? env.ts : Date.now();
				if (typeof env.reply_to === 'string' && typeof env.reply_from === 'string') {
					m.reply_to = env.reply_to;
					m.reply_from = env.reply_from;
				}
			}
			if (from === me) {
				// A sent copy (or this device's own, back from the broker).
				if (m.status === undefined || m.status === 'pending' || m.status === 'failed') m.status = 'sent';
				this.mine.set(m.id, {key, msg: m});
			}
			c._list = null;
			this.clearTyping(key, from);
			this.changed(key, [m.id]);
			if (!isNew) return;
			if (from === me) {
				this.bump(c, m, {clear: true});
			} else if (!this.blocks.has(from)) {
				this.bump(c, m, {badge: true});
				if (c.kind === 'user') this.receipt(m, 'delivered');
			}
			return;
		}
		case 'event': {
			if (from !== SERVICE || c.kind !== 'room') return;
			const k = mkey(from, env.id);
			if (c._msgs.has(k)) return;
			const m = {from, id: env.id, type: 'event', event: env.event, user: env.user, by: env.by,
				ts: Number.isInteger(env.ts) ? env.ts : Date.now(), reactions: [], _arrival: ++this.arrival};
			c._msgs.set(k, m);
			c._list = null;
			this.changed(key, [m.id]);
			this.bump(c, m);
			this.onRoomEvent(c, m);
			return;
		}
		case 'receipt':
			if (from === me || from === SERVICE) return;
			this.onReceipt(key, from, env);
			return;
		case 'reaction':
			if (typeof env.ref !== 'string' || typeof env.of !== 'string' || typeof env.emoji !== 'string') return;
			this.applyReaction(c, env.of, env.ref, from, env.emoji, env.remove === true);
			return;
		case 'edit':
			if (from !== SERVICE) return;
			this.applyEdit(c, env.of, env.ref, env.body, env.ts || Date.now());
			return;
		case 'delete':
			if (from !== SERVICE) return;
			this.applyDelete(c, env.of, env.ref, env.ts || Date.now(), env.by);
			return;
		case 'read':
			if (from !== SERVICE) return;
			if (Number.isInteger(env.seq) && env.seq >= c.read_seq) {
				c.read_seq = env.seq;
				c.unread = Number.isInteger(env.unread) ? env.unread : 0;
				this.changedConvs();
			}
			return;
		default:
			// A type this app does not know: skip it (PROTOCOL.md "Versioning").
		}
	}

	onRoomEvent(c, m) {
		const me = conn.me;
		if (m.event === 'deleted' || ((m.event === 'removed' || m.event === 'left') && m.user === me)) {
			conn.unsubscribeRoom(c.name);
			c.gone = true;
			this.changedConvs();
		} else if (m.event === 'changed' || m.event === 'promoted' || m.event === 'demoted') {
			conn.refreshRooms().then(() => this.onRooms({added: [], gone: []})).catch(() => {});
		}
	}

	onReceipt(key, from, env) {
		if (typeof env.ref !== 'string') return;
		const st = env.status === 'read' ? 'read' : env.status === 'delivered' ? 'delivered' : null;
		if (!st) return;
		let hit = this.cs.get(key)?._msgs.get(mkey(conn.me, env.ref));
		let hkey = key;
		if (!hit) {
			const x = this.mine.get(env.ref);
			if (!x) return;
			hit = x.msg;
			hkey = x.key;
		}
		if (hkey.startsWith('r:')) {
			// A room message keeps `sent`; count who got and read it.
			const list = st === 'read' ? (hit.read_by ||= []) : (hit.delivered_to ||= []);
			if (!list.includes(from)) list.push(from);
		} else if ((RANK[st] || 0) > (RANK[hit.status] || 0)) {
			hit.status = st;
		} else {
			return;
		}
		this.changed(hkey, [hit.id]);
	}

	find(c, of, ref) {
		if (typeof of !== 'string' || typeof ref !== 'string') return null;
		return c._msgs.get(mkey(of, ref)) || null;
	}

	applyEdit(c, of, ref, body, ts) {
		const m = this.find(c, of, ref);
		if (!m || m.deleted || typeof body !== 'string') return;
		if (m.edited && ts && ts < m.edited) return;
		m.body = body;
		m.edited = ts || Date.now();
		m.truncated = false;
		this.changed(c.key, [m.id]);
		this.patchLast(c, m, {body, edited: m.edited});
	}

	applyDelete(c, of, ref, ts, by) {
		const m = this.find(c, of, ref);
		if (!m) {
			this.patchLast(c, {from: of, id: ref}, {deleted: ts || Date.now(), deleted_by: by, body: ''});
			return;
		}
		if (m.deleted) return;
		m.deleted = ts || Date.now();
		m.deleted_by = by;
		m.body = '';
		m.reactions = [];
		delete m.edited;
		delete m.reply_to;
		delete m.reply_from;
		this.changed(c.key, [m.id]);
		this.patchLast(c, m, {});
	}

	// The list's preview when it is that message (held or not).
	patchLast(c, m, fields) {
		if (c.last && c.last.from === m.from && c.last.id === m.id) {
			if (c.last !== m) Object.assign(c.last, fields);
			this.changedConvs();
		}
	}

	applyReaction(c, of, ref, user, emoji, remove) {
		const m = this.find(c, of, ref);
		if (!m || m.deleted || m.type !== 'text') return;
		let r = m.reactions.find((x) => x.emoji === emoji);
		if (remove) {
			if (!r || !r.users.includes(user)) return;
			r.users = r.users.filter((u) => u !== user);
			if (!r.users.length) m.reactions = m.reactions.filter((x) => x !== r);
		} else {
			if (r && r.users.includes(user)) return;
			if (!r) {
				r = {emoji, users: []};
				m.reactions.push(r);
			}
			r.users.push(user);
		}
		this.changed(c.key, [m.id]);
	}

	onOutbox({key, env}) {
		const c = this.ensure(key);
		if (!c) return;
		if (env.type === 'reaction') {
			this.applyReaction(c, env.of, env.ref, conn.me, env.emoji, env.remove === true);
			return;
		}
		if (env.type !== 'text') return;
		const k = mkey(conn.me, env.id);
		let m = c._msgs.get(k);
		if (!m) {
			m = {from: conn.me, id: env.id, type: 'text', body: env.body, ts: env.ts || Date.now(), reactions: [],
				status: 'pending', _arrival: ++this.arrival};
			if (env.reply_to) {
				m.reply_to = env.reply_to;
				m.reply_from = env.reply_from;
			}
			c._msgs.set(k, m);
			c._list = null;
			this.mine.set(m.id, {key, msg: m});
			this.changed(key, [m.id]);
			this.bump(c, m, {clear: true});
		}
	}

	onStatus(key, id, status, code) {
		const c = this.cs.get(key);
		const m = c && c._msgs.get(mkey(conn.me, id));
		if (!m) return;
		if (status === 'failed') {
			if (m.status === 'pending' || m.status === undefined) {
				m.status = 'failed';
				m.failed_code = code;
			}
		} else if ((RANK[status] || 0) > (RANK[m.status] || 0)) {
			m.status = status;
			delete m.failed_code;
		} else {
			return;
		}
		this.changed(key, [id]);
	}

	// ---- reading ----

	// The person has seen the newest messages of `key`: one `read` up to the
	// newest shown (not again for the same one) and `read` receipts for
	// the texts from others that came since the marker.
	markRead(key) {
		const c = this.cs.get(key);
		if (!c) return;
		const list = this.messages(key);
		let newest = null;
		for (let i = list.length - 1; i >= 0; i--) {
			const m = list[i];
			if (m.from === conn.me && (m.status === 'pending' || m.status === 'failed')) continue;
			newest = m;
			break;
		}
		if (!newest) return;
		const sig = mkey(newest.from, newest.id);
		if (c.unread) {
			c.unread = 0;
			this.changedConvs();
		}
		// What others wrote after the marker as it stood at the first look
		// gets a `read` receipt, also what a history page shows later.
		if (c._receiptFloor === undefined) c._receiptFloor = c.read_seq;
		this.readReceipts(c);
		if (c._readSig === sig) return;
		c._readSig = sig;
		if (newest.seq && newest.seq <= c.read_seq) return;
		if (newest.from === conn.me && !newest.seq) return; // sending moved the marker already
		const args = c.kind === 'room' ? {room: c.name} : {with: c.name};
		if (newest.seq) args.seq = newest.seq;
		else {
			args.ref = newest.id;
			args.of = newest.from;
		}
		this.online().then(() => conn.rpc('read', args)).then((a) => {
			if (a.read_seq >= c.read_seq) {
				c.read_seq = a.read_seq;
				c.unread = a.unread || 0;
				this.changedConvs();
			}
		}).catch(() => {
			c._readSig = '';
		});
	}

	readReceipts(c) {
		const list = this.messages(c.key);
		let n = 0;
		for (let i = list.length - 1; i >= 0 && n < 100; i--) {
			const m = list[i];
			if (m.seq && m.seq <= c._receiptFloor) break;
			if (m.type !== 'text' || m.from === conn.me || m.from === SERVICE || m.deleted || m._readSent) continue;
			if (c.kind === 'user' && m.status === 'read') continue;
			this.receipt(m, 'read');
			n++;
		}
	}

	receipt(m, status) {
		if (status === 'read') {
			m._readSent = true;
			m._deliveredSent = true;
		} else {
			if (m._deliveredSent) return;
			m._deliveredSent = true;
		}
		if (conn.state !== 'online' && conn.state !== 'connecting') return;
		// After the message is drawn (the views draw in a microtask): a
		// receipt is not worth holding the new message back for.
		setTimeout(() => {
			conn.publish(`chat/inbox/${m.from}/${conn.me}`, {id: ulid(), type: 'receipt', ref: m.id, status}).catch(() => {});
		}, 0);
	}

	// Resolves once connected (at once when online): what a view asks while
	// the connection opens waits for it instead of failing.
	online() {
		if (conn.state === 'online') return Promise.resolve();
		return new Promise((resolve) => {
			const on = () => {
				if (conn.state !== 'online') return;
				conn.removeEventListener('ready', on);
				resolve();
			};
			conn.addEventListener('ready', on);
		});
	}

	// ---- typing ----

	onTyping({key, from, typing}) {
		let t = this.typers.get(key);
		if (typing) {
			if (this.blocks.has(from)) return;
			if (!t) this.typers.set(key, t = new Map());
			clearTimeout(t.get(from));
			t.set(from, setTimeout(() => this.clearTyping(key, from), TYPING_MS));
			this.emit('typing', {key});
		} else {
			this.clearTyping(key, from);
		}
	}

	clearTyping(key, from) {
		const t = this.typers.get(key);
		if (!t || !t.has(from)) return;
		clearTimeout(t.get(from));
		t.delete(from);
		this.emit('typing', {key});
	}

	// ---- nicks ----

	pumpWhois() {
		while (this.whoisBusy < WHOIS_PARALLEL && this.whoisQueue.length && conn.state === 'online') {
			const user = this.whoisQueue.shift();
			this.whoisBusy++;
			conn.rpc('whois', {user}).then((a) => {
				this.nicks.set(user, a.nick || user);
			}, (e) => {
				if (e.code === 'offline' || e.code === 'timeout') {
					this.nicks.delete(user);
				} else {
					this.nicks.set(user, user);
				}
			}).finally(() => {
				this.whoisBusy--;
				const c = this.cs.get('u:' + user);
				if (c) c.title = this.nicks.get(user) || user;
				this.emit('nick', {user});
				this.changedConvs();
				this.pumpWhois();
			});
		}
	}

	// Forget a nick so the next nick() asks again.
	refreshNick(user) {
		this.nicks.delete(user);
		this.nick(user);
	}

	// ---- events, batched per task ----

	emit(type, detail = {}) {
		this.dispatchEvent(new CustomEvent(type, {detail}));
	}

	warn(message) {
		this.emit('warn', {message});
	}

	changed(key, ids) {
		const c = this.cs.get(key);
		if (c) c._list = null;
		const had = this.pendingEmit.has(key);
		const cur = this.pendingEmit.get(key);
		if (!ids) this.pendingEmit.set(key, null);
		else if (!had) this.pendingEmit.set(key, new Set(ids));
		else if (cur) for (const id of ids) cur.add(id);
		this.schedule();
	}

	changedConvs() {
		this.pendingConvs = true;
		this.schedule();
	}

	schedule() {
		if (this.scheduled) return;
		this.scheduled = true;
		queueMicrotask(() => {
			this.scheduled = false;
			const pend = this.pendingEmit;
			this.pendingEmit = new Map();
			for (const [key, ids] of pend) this.emit('messages', {key, ids: ids ? [...ids] : undefined});
			if (this.pendingConvs) {
				this.pendingConvs = false;
				this.emit('convs', {});
				clearTimeout(this.cacheTimer);
				// The first list at once (a page may be left right away),
				// then at most once a second.
				if (!this.cacheSaved) this.saveCache();
				else this.cacheTimer = setTimeout(() => this.saveCache(), 1000);
			}
		});
	}
}

// Is a message of c that came before arrival number `asked` still without
// a seq (not counting mine that the broker has not taken yet)?
function unseqBefore(c, asked) {
	for (const m of c._msgs.values()) {
		if (m.seq || m._arrival >= asked) continue;
		if (m.status === 'pending' || m.status === 'failed') continue;
		return true;
	}
	return false;
}

function oldestSeq(c) {
	let min = 0;
	for (const m of c._msgs.values()) if (m.seq && (!min || m.seq < min)) min = m.seq;
	return min;
}

function minLastSeq(list) {
	let min = 0;
	for (const e of list || []) if (e.last_seq && (!min || e.last_seq < min)) min = e.last_seq;
	return min;
}

export const store = new Store();

// RPCs the views make (blocks, profile, rooms) change the model: keep it
// in step without asking the views to.
// A `blocked` list asked before a block or unblock whose answer came
// first is older than what the store holds: it is not taken.
let blocksAsked = 0;
conn.addEventListener('rpc', (e) => {
	const {op, args, answer, asked} = e.detail;
	if (op === 'block' && args.user) {
		blocksAsked = Math.max(blocksAsked, asked);
		store.setBlocks([...store.blocks, args.user]);
	} else if (op === 'unblock' && args.user) {
		blocksAsked = Math.max(blocksAsked, asked);
		store.setBlocks([...store.blocks].filter((u) => u !== args.user));
	} else if (op === 'blocked' && Array.isArray(answer.users)) {
		if (asked < blocksAsked) return;
		blocksAsked = asked;
		store.setBlocks(answer.users);
	} else if (op === 'profile' && answer.nick) {
		store.myNick = answer.nick;
		store.emit('nick', {user: conn.me});
		store.changedConvs();
	} else if (op === 'room_set' && args.room && typeof args.title === 'string') {
		const c = store.conv('r:' + args.room);
		if (c) {
			c.title = args.title || c.name;
			store.changedConvs();
		}
		const r = conn.rooms.get(args.room);
		if (r) r.title = args.title;
	} else if (op === 'room_create' && answer.room) {
		const c = store.open('r:' + answer.room);
		c.listed = true;
		c.gone = false;
		if (args.title) c.title = args.title;
		c.ts = Date.now();
		store.changedConvs();
	}
});

// "alice added bob", with nicks (PROTOCOL "Rooms run by their members").
export function eventText(m) {
	const u = m.user ? store.nick(m.user) : '', b = m.by ? store.nick(m.by) : '';
	switch (m.event) {
	case 'created': return b ? `${b} created the room` : 'The room was created';
	case 'joined': return `${u} joined`;
	case 'added': return b ? `${b} added ${u}` : `${u} was added`;
	case 'removed': return b ? `${b} removed ${u}` : `${u} was removed`;
	case 'left': return `${u || b} left`;
	case 'promoted': return b ? `${b} made ${u} an admin` : `${u} is now an admin`;
	case 'demoted': return b ? `${b} made ${u} a member` : `${u} is no longer an admin`;
	case 'changed': return `${b || u || 'Someone'} changed the room's title or description`;
	case 'deleted': return b ? `${b} deleted the room` : 'The room was deleted';
	default: return [b, m.event || 'event', u].filter(Boolean).join(' ');
	}
}
