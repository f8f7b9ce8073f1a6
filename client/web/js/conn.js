// conn.js - the one MQTT connection of the web app (docs/PROTOCOL.md
// "Writing an app", steps 1 to 4 and 9).
//
// MQTT 5 over WebSockets, clean start false with a week's session, so the
// broker queues what arrives while the page is closed. Logs in once with
// the password, then asks a device token and keeps only that
// (localStorage `mqchat.session`). Subscribes every filter of step 3 at each
// connect, asks `hello`, and hands every envelope to the store as an event.
// What the person sends waits in a persistent outbox until its PUBACK, so a
// message typed offline (or before a reload) leaves on the next connect
// with the same id: the archive and every app keep it once.
//
// Events (CustomEvent, `detail`): state, envelope, presence, typing,
// notice, outbox, puback, failed, ready ({first, sessionPresent}), resync
// (a resync notice: messages on their way may be lost, sync), login (the
// person must log in again: detail.reason), rooms (conn.rooms changed).

import mqtt from '../vendor/mqtt.esm.js';
import {ulid, randomId, parseConv, NAME_RE} from './util.js';

const SESSION_KEY = 'mqchat.session';
const DEVICE_KEY = 'mqchat.device';
const outboxKey = (user) => 'mqchat.outbox.' + user;
const SESSION_EXPIRY = 604800;
const BACKOFF_MIN = 1000, BACKOFF_MAX = 15000;
// How long a refused publish waits for its notice (which says why).
const NOTICE_WAIT = 1500;
const SERVICE = 'archiver';

// Words for login_status answers (PROTOCOL.md "Why a login was refused").
export function loginStatusText(st) {
	if (!st) return 'Wrong name or password (or too many tries: wait a minute).';
	switch (st.status) {
	case 'throttled':
		return `Too many attempts: wait ${Math.ceil((st.retry_ms || 1000) / 1000)} s and try again.`;
	case 'disabled':
		return 'This account is disabled: ask the operator.';
	case 'too_many_connections':
		return `${st.limit || 'Too many'} connections are open already: close one.`;
	case 'too_many_sessions':
		return 'Too many devices use this account: log out of one (Settings, Devices) and try again.';
	case 'refused':
		return 'Wrong name or password.';
	default:
		return 'The server refused the login.';
	}
}

function rpcError(code, message, answer) {
	const e = new Error(message || code);
	e.code = code;
	if (answer) {
		e.answer = answer;
		if (answer.retry_ms) e.retry_ms = answer.retry_ms;
	}
	return e;
}

function load(key, dflt) {
	try {
		const v = localStorage.getItem(key);
		return v === null ? dflt : JSON.parse(v);
	} catch {
		return dflt;
	}
}

function save(key, v) {
	try {
		if (v === null || v === undefined) localStorage.removeItem(key);
		else localStorage.setItem(key, JSON.stringify(v));
	} catch {
		// Storage full or denied: the app keeps working from memory.
	}
}

// The WebSocket MQTT.js talks through. A write to a socket that is closing
// (the broker went away a moment ago, the close event is on its way) is
// dropped here rather than logged by the browser as an error: the
// connection is dead anyway, and QoS 1 goes again after the reconnect.
function makeSocket(url, protocols) {
	const ws = new WebSocket(url, protocols);
	const send = ws.send.bind(ws);
	ws.send = (data) => {
		if (ws.readyState === WebSocket.OPEN) send(data);
	};
	return ws;
}

// The MQTT client id in the URL too (`cid`): a load balancer in front of
// several nodes cannot read MQTT inside WebSocket frames, so it routes a
// browser by this parameter to the node its MQTT client id hashes to
// (config/haproxy.cfg); a single broker ignores it.
function urlWithClientId(url, cid) {
	return url + (url.includes('?') ? '&' : '?') + 'cid=' + encodeURIComponent(cid);
}

// A short-lived `_register` connection (PROTOCOL.md "Registration"): one
// request on chat/register/<clientid>/req, one answer. Used for
// registration and for login_status.
function registerRequest(url, req, timeout = 8000) {
	return new Promise((resolve, reject) => {
		const cid = '_register@' + randomId(12);
		const resp = `chat/register/${cid}/resp`;
		let done = false;
		const client = mqtt.connect(urlWithClientId(url, cid), {
			protocolVersion: 5, clean: true, clientId: cid, username: '_register', timerVariant: 'native',
			createWebsocket: makeSocket,
			password: 'x', keepalive: 30, reconnectPeriod: 0, connectTimeout: timeout,
		});
		const finish = (err, answer) => {
			if (done) return;
			done = true;
			clearTimeout(timer);
			client.end(true);
			if (err) reject(err);
			else resolve(answer);
		};
		const timer = setTimeout(() => finish(rpcError('timeout', 'The server did not answer.')), timeout);
		client.on('error', (err) => finish(err && err.code === 135
			? rpcError('throttled', 'Too many tries from this address: wait a minute and try again.')
			: rpcError('offline', 'Cannot reach the server: ' + err.message)));
		client.on('close', () => {
			if (!done) setTimeout(() => finish(rpcError('offline', 'Cannot reach the server.')), 50);
		});
		client.on('message', (topic, payload) => {
			if (topic !== resp) return;
			let a;
			try {
				a = JSON.parse(payload.toString());
			} catch {
				return;
			}
			if (a && a.id === req.id) finish(null, a);
		});
		client.on('connect', () => {
			client.subscribe(resp, {qos: 1}, (err) => {
				if (err) return finish(rpcError('offline', err.message));
				// login_status is answered by the plugin itself, whose PUBACK
				// is 0x87: the error of this publish means nothing.
				client.publish(`chat/register/${cid}/req`, JSON.stringify(req), {qos: 1}, () => {});
			});
		});
	});
}

// MQTT.js writes each packet into a corked stream and uncorks it on its
// next tick, which in a browser is a setTimeout: the frame would wait for
// the page's next task, often after its next frame is drawn (~15 ms from
// a click to the frame out, measured by make bench). What the person is
// waiting for goes out now; the later uncork finds nothing left to do.
function flush(client) {
	const s = client.stream;
	if (s && s.writableCorked) s.uncork();
}

class Conn extends EventTarget {
	constructor() {
		super();
		this.me = '';
		this.device = load(DEVICE_KEY, '');
		if (typeof this.device !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(this.device)) {
			this.device = 'web-' + randomId(8);
			save(DEVICE_KEY, this.device);
		}
		this.state = 'offline';
		this.url = '';
		this.hello = null;
		this.rooms = new Map();       // room -> {room, title, role, members}
		this.client = null;
		this.connects = 0;            // successful connects of this client
		this.backoff = BACKOFF_MIN;
		this.rpcs = new Map();        // id -> {resolve, reject, timer, op, args}
		this.rpcSeq = 0;
		this.rpcAsked = 0;
		this.notices = new Map();     // ref -> notice that came before its PUBACK
		this.noticeWaiters = new Map(); // ref -> fn(notice)
		this.outbox = [];             // [{key, topic, env, state}]
		this.inflight = new Set();    // ids published on the current client
		this.password = null;         // only during the first login
		window.addEventListener('online', () => this.kick());
		// The browser lost the network: the socket is as good as dead (the
		// keepalive would take a minute to say so). Drop it; MQTT.js keeps
		// what is in flight and the reconnect sends it again.
		window.addEventListener('offline', () => {
			const c = this.client;
			if (!c || this.state === 'login') return;
			this.setState('offline');
			if (c.connected && c.stream) c.stream.destroy();
		});
	}

	configure(url) {
		this.url = url;
	}

	session() {
		const s = load(SESSION_KEY, null);
		return s && typeof s.user === 'string' && typeof s.token === 'string' ? s : null;
	}

	setState(state) {
		if (state === this.state) return;
		this.state = state;
		this.emit('state', {state});
	}

	emit(type, detail = {}) {
		this.dispatchEvent(new CustomEvent(type, {detail}));
	}

	// ---- login, register, logout ----

	// Log in with a password; resolves once connected (then asks a device
	// token). Rejects with e.message in words when refused.
	login(user, password) {
		user = String(user || '').trim().toLowerCase();
		if (!NAME_RE.test(user)) return Promise.reject(rpcError('bad_name', 'Names are 1 to 32 of a-z, 0-9, _ . - (starting with a letter or digit).'));
		if (!password) return Promise.reject(rpcError('bad_password', 'Type your password.'));
		this.password = password;
		return this.open(user, password, true).then((gotToken) => {
			this.password = null;
			// Everything from now on rides on the token: a revoked device's
			// connection is closed (one made with the password would stay).
			if (gotToken) return this.resume();
			return undefined;
		});
	}

	// Connect with the stored token; resolves once connected. Rejects when
	// there is no token or it is refused (then emits 'login').
	resume() {
		const s = this.session();
		if (!s) return Promise.reject(rpcError('no_session', 'Log in first.'));
		if (s.device) this.device = s.device;
		return this.open(s.user, s.token, false);
	}

	// Register per PROTOCOL.md "Registration"; resolves with the answer
	// (ok) or rejects with e.code = the refusal's code and e.message in words.
	async register(user, password, nick, invite) {
		const req = {id: 'reg-' + randomId(6), user: String(user || '').trim().toLowerCase(), password};
		if (nick) req.nick = nick;
		if (invite) req.invite = invite;
		const a = await registerRequest(this.url, req);
		if (a.ok) return a;
		throw rpcError(a.error || 'refused', registerErrorText(a), a);
	}

	loginStatus(user) {
		return registerRequest(this.url, {id: 'ls-' + randomId(6), op: 'login_status', user});
	}

	open(user, password, withPassword) {
		this.close();
		this.me = user;
		this.outbox = load(outboxKey(user), []).filter((o) => o && o.env && o.topic && o.key);
		this.connects = 0;
		this.backoff = BACKOFF_MIN;
		this.setState('connecting');
		// Messages left in the outbox by an earlier page show as pending.
		for (const o of this.outbox) this.emit('outbox', {key: o.key, env: o.env, state: 'pending'});
		// One tab per device: two would take the session from each other
		// in a loop. Logging in here takes it from the other tab.
		return this.lock(withPassword).then((ok) => {
			if (!ok) {
				this.setState('offline');
				this.emit('elsewhere', {});
				throw rpcError('elsewhere', 'mqchat is open in another tab.');
			}
			return this.connect(user, password, withPassword);
		});
	}

	// Hold this device's Web Lock while the tab is connected (steal: take
	// it from the tab that holds it). Resolves whether it is held.
	lock(steal) {
		if (this.holding || !navigator.locks) return Promise.resolve(true);
		return new Promise((resolve) => {
			navigator.locks.request('mqchat.device.' + this.device, steal ? {steal: true} : {ifAvailable: true}, (l) => {
				if (!l) {
					resolve(false);
					return undefined;
				}
				this.holding = true;
				resolve(true);
				return new Promise((release) => {
					this.unlock = () => {
						this.holding = false;
						this.unlock = null;
						release();
					};
				});
			}).catch(() => {
				// Another tab took this device over: leave it the session.
				this.holding = false;
				this.unlock = null;
				this.close();
				this.setState('offline');
				this.emit('elsewhere', {});
			});
		});
	}

	// Use the app in this tab again (after 'elsewhere').
	takeOver() {
		return this.lock(true).then(() => this.resume());
	}

	connect(user, password, withPassword) {
		return new Promise((resolve, reject) => {
			let settled = false;
			const client = mqtt.connect(urlWithClientId(this.url, `${user}@${this.device}`), {
				protocolVersion: 5,
				// The worker timers MQTT.js would make from a blob: URL are
				// refused by the page's CSP (script-src 'self').
				timerVariant: 'native',
				createWebsocket: makeSocket,
				clean: false,
				clientId: `${user}@${this.device}`,
				username: user,
				password,
				keepalive: 60,
				reconnectPeriod: BACKOFF_MIN,
				connectTimeout: 10000,
				resubscribe: false,
				properties: {sessionExpiryInterval: SESSION_EXPIRY},
			});
			this.client = client;
			client.on('connect', (connack) => {
				if (client !== this.client) return;
				performance.mark('mqchat:connected');
				this.unknownRefusals = 0;
				this.backoff = BACKOFF_MIN;
				client.options.reconnectPeriod = BACKOFF_MIN;
				this.onConnect(connack, withPassword).then((v) => {
					if (!settled) {
						settled = true;
						resolve(v);
					}
				}, (err) => {
					if (!settled) {
						settled = true;
						reject(err);
					}
				});
			});
			client.on('message', (topic, payload) => {
				if (client === this.client) this.onMessage(topic, payload);
			});
			client.on('close', () => {
				if (client !== this.client) return;
				this.inflight.clear();
				this.failRpcsOnClose();
				if (this.state === 'login' || this.loggingOut) return;
				if (navigator.onLine === false) {
					// No network: try again when the browser says it is back
					// (kick), not in a loop of failing sockets.
					client._clearReconnect();
					this.setState('offline');
					return;
				}
				this.setState(this.connects ? 'reconnecting' : 'connecting');
				// Back off: 1 s, 2 s, 4 s ... 15 s, a little jitter.
				const period = Math.min(this.backoff, BACKOFF_MAX);
				this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX);
				if (client.options.reconnectPeriod > 0) {
					client.options.reconnectPeriod = Math.round(period * (0.8 + Math.random() * 0.4));
					client._clearReconnect();
					client._setupReconnect();
				}
			});
			client.on('error', async (err) => {
				if (client !== this.client) return;
				if (err && err.code === 135 || err && (err.code === 134 || err.code === 4 || err.code === 5)) {
					// CONNECT refused: stop, ask login_status why.
					client.options.reconnectPeriod = 0;
					client._clearReconnect();
					let st = null;
					try {
						st = await this.loginStatus(user);
					} catch {
						st = null;
					}
					if (client !== this.client) return;
					let reason = loginStatusText(st);
					if (!withPassword && (!st || st.status === 'refused')) {
						reason = 'This browser was logged out (from another device, or its login was replaced): log in again.';
					}
					if (st && st.status === 'throttled' && !withPassword) {
						// A token is never throttled, but the address may be:
						// try again when it says.
						client.options.reconnectPeriod = Math.max(st.retry_ms || 1000, 1000);
						client._setupReconnect();
						this.setState('reconnecting');
						return;
					}
					if (!withPassword && !st && (this.unknownRefusals = (this.unknownRefusals || 0) + 1) <= 3) {
						// Refused, and no word why (login_status did not
						// answer): try a few times before asking the password.
						client.options.reconnectPeriod = BACKOFF_MAX;
						client._setupReconnect();
						this.setState('reconnecting');
						return;
					}
					if (!withPassword && st && st.status !== 'refused') {
						// The token is good, the account cannot come in now
						// (disabled, too many connections): say why, try later.
						this.emit('notice', {type: 'local', code: st.status, message: reason});
						client.options.reconnectPeriod = 30000;
						client._setupReconnect();
						this.setState('reconnecting');
						return;
					}
					{
						this.unknownRefusals = 0;
						if (!withPassword && (!st || st.status === 'refused')) save(SESSION_KEY, null);
						client.end(true);
						this.client = null;
						this.setState('login');
						const e = rpcError(st ? st.status : 'refused', reason, st);
						if (!settled) {
							settled = true;
							reject(e);
						}
						if (!withPassword) this.emit('login', {reason, status: st && st.status});
					}
				}
			});
		});
	}

	// Reconnect now (the browser says the network is back).
	kick() {
		const c = this.client;
		if (!c || c.connected || this.state === 'login') return;
		this.backoff = BACKOFF_MIN;
		c.options.reconnectPeriod = BACKOFF_MIN;
		c._clearReconnect();
		c._reconnect();
	}

	close() {
		if (this.client) {
			const c = this.client;
			this.client = null;
			c.end(true);
		}
		this.failRpcsOnClose();
		this.inflight.clear();
	}

	// Log out: revoke this device's token, forget it, back to the login.
	// The revocation closes this very connection, so its answer may never
	// come: the close is as good.
	async logout() {
		const c = this.client;
		this.loggingOut = true;
		try {
			if (c && c.connected) {
				c.options.reconnectPeriod = 0;
				await Promise.race([
					this.rpc('device_revoke', {device: this.device}, {timeout: 4000}).catch(() => {}),
					new Promise((resolve) => c.once('close', resolve)),
				]);
			}
		} finally {
			this.loggingOut = false;
		}
		save(SESSION_KEY, null);
		this.close();
		if (this.unlock) this.unlock();
		this.me = '';
		this.hello = null;
		this.rooms.clear();
		this.outbox = [];
		this.setState('login');
		this.emit('login', {reason: '', status: 'logout'});
	}

	// ---- after each connect ----

	async onConnect(connack, withPassword) {
		const me = this.me;
		if (withPassword && this.connects === 0 && this.password) {
			// The password's one use: a token for this device. Resolves
			// true when there is one (login() then connects with it).
			const password = this.password;
			await this.subscribe({[`chat/rpc/${me}/resp`]: {qos: 1}});
			try {
				const t = await this.rpc('device_token', {device: this.device, password}, {timeout: 15000});
				save(SESSION_KEY, {user: me, device: this.device, token: t.token});
				this.close();
				return true;
			} catch (e) {
				// No token (too many devices, say): carry on with the
				// password, kept in memory for the reconnects.
				this.emit('notice', {type: 'local', code: e.code, message: 'This browser could not keep the login: ' + e.message});
			}
		}
		const first = this.connects === 0;
		this.connects++;
		const filters = {
			[`chat/rpc/${me}/resp`]: {qos: 1},
			[`chat/inbox/${me}/#`]: {qos: 1},
			[`chat/inbox/+/${me}`]: {qos: 1},
			[`chat/notice/${me}`]: {qos: 0},
			[`chat/presence/+`]: {qos: 1},
			[`chat/typing/${me}/+`]: {qos: 0},
		};
		for (const room of this.rooms.keys()) {
			filters[`chat/room/${room}/#`] = {qos: 1};
			filters[`chat/roomtyping/${room}/+`] = {qos: 0};
		}
		await this.subscribe(filters);
		performance.mark('mqchat:subscribed');
		this.flushOutbox();
		const [hello, rooms] = await Promise.all([
			this.rpc('hello').catch(() => null),
			this.rpc('rooms').catch(() => null),
		]);
		this.hello = hello || {protocol: 1, features: [], edit_window_s: 0};
		if (rooms && Array.isArray(rooms.rooms)) await this.setRooms(rooms.rooms);
		this.setState('online');
		performance.mark('mqchat:ready');
		// Without the session (a broker restarted without it, another node
		// of the service): what it had queued is gone, the store syncs.
		this.emit('ready', {first, sessionPresent: !!(connack && connack.sessionPresent)});
	}

	subscribe(filters) {
		const c = this.client;
		if (!c) return Promise.resolve();
		return new Promise((resolve) => {
			c.subscribe(filters, (err, granted) => {
				if (err) {
					this.emit('notice', {type: 'local', code: 'subscribe', message: 'Subscribing failed: ' + err.message});
				} else {
					for (const g of granted || []) {
						if (g.qos >= 0x80) {
							this.emit('notice', {type: 'local', code: 'subscribe', topic: g.topic,
								message: `The server refused the subscription ${g.topic}`});
						}
					}
				}
				resolve();
			});
		});
	}

	// The rooms of the `rooms` answer: subscribe the new ones, drop the
	// ones left.
	async setRooms(list) {
		const next = new Map();
		for (const r of list) if (r && typeof r.room === 'string') next.set(r.room, r);
		const added = [...next.keys()].filter((r) => !this.rooms.has(r));
		const gone = [...this.rooms.keys()].filter((r) => !next.has(r));
		this.rooms = next;
		if (added.length) {
			const f = {};
			for (const r of added) {
				f[`chat/room/${r}/#`] = {qos: 1};
				f[`chat/roomtyping/${r}/+`] = {qos: 0};
			}
			await this.subscribe(f);
		}
		for (const r of gone) this.unsubscribeFilters(r);
		this.emit('rooms', {added, gone});
	}

	async refreshRooms() {
		const a = await this.rpc('rooms');
		await this.setRooms(a.rooms || []);
		return a.rooms;
	}

	// Presence of people who just became contacts comes with their next
	// change; subscribing again brings the retained ones now
	// (PROTOCOL.md "Presence").
	refreshPresence() {
		clearTimeout(this.presenceTimer);
		this.presenceTimer = setTimeout(() => {
			if (this.client && this.client.connected) this.subscribe({'chat/presence/+': {qos: 1}});
		}, 1500);
	}

	subscribeRoom(room) {
		if (!this.rooms.has(room)) {
			this.rooms.set(room, {room, title: '', role: 'member', members: []});
			this.emit('rooms', {added: [room], gone: []});
		}
		return this.subscribe({[`chat/room/${room}/#`]: {qos: 1}, [`chat/roomtyping/${room}/+`]: {qos: 0}});
	}

	unsubscribeRoom(room) {
		if (this.rooms.delete(room)) this.emit('rooms', {added: [], gone: [room]});
		this.unsubscribeFilters(room);
	}

	unsubscribeFilters(room) {
		if (this.client) this.client.unsubscribe([`chat/room/${room}/#`, `chat/roomtyping/${room}/+`]);
	}

	// ---- incoming ----

	onMessage(topic, payload) {
		const me = this.me;
		const parts = topic.split('/');
		if (parts[0] !== 'chat') return;
		const text = payload.length ? payload.toString() : '';
		let obj = null;
		if (text) {
			try {
				obj = JSON.parse(text);
			} catch {
				return;
			}
			if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return;
		}
		switch (parts[1]) {
		case 'rpc':
			if (parts[3] === 'resp' && obj) this.onAnswer(obj);
			return;
		case 'inbox': {
			if (!obj || parts.length !== 4) return;
			const [, , to, from] = parts;
			let key;
			if (from === SERVICE && to === me) {
				if (typeof obj.room === 'string') key = 'r:' + obj.room;
				else if (typeof obj.with === 'string') key = 'u:' + obj.with;
				else return;
			} else if (to === me) {
				key = 'u:' + from;
			} else if (from === me) {
				key = 'u:' + to;
			} else {
				return;
			}
			this.emitEnvelope(key, from, obj, topic);
			return;
		}
		case 'room':
			if (!obj || parts.length !== 4) return;
			this.emitEnvelope('r:' + parts[2], parts[3], obj, topic);
			return;
		case 'notice':
			// A resync notice (PROTOCOL.md "Several nodes"): the service
			// lost messages on their way to me; the store syncs.
			if (obj && obj.type === 'resync') this.emit('resync', obj);
			else if (obj) this.onNotice(obj);
			return;
		case 'presence':
			if (parts.length !== 3) return;
			this.emit('presence', {user: parts[2], online: !!obj && obj.status === 'online', ...(obj || {}), none: !obj});
			return;
		case 'typing':
			if (!obj || parts.length !== 4 || parts[3] === me) return;
			this.emit('typing', {key: 'u:' + parts[3], from: parts[3], typing: obj.typing === true});
			return;
		case 'roomtyping':
			if (!obj || parts.length !== 4 || parts[3] === me) return;
			this.emit('typing', {key: 'r:' + parts[2], from: parts[3], typing: obj.typing === true});
			return;
		default:
		}
	}

	emitEnvelope(key, from, env, topic) {
		if (typeof env.id !== 'string' || typeof env.type !== 'string') return;
		this.emit('envelope', {key, from, env, topic, live: true});
	}

	onNotice(n) {
		// A sibling device's refusals are its own business.
		if (n.client && this.client && n.client !== this.client.options.clientId) return;
		if (n.ref) {
			const w = this.noticeWaiters.get(n.ref);
			if (w) {
				this.noticeWaiters.delete(n.ref);
				w(n);
			} else {
				this.notices.set(n.ref, n);
				setTimeout(() => this.notices.delete(n.ref), 10000);
			}
		}
		this.emit('notice', n);
	}

	// The notice for a refused publish `ref`: at once if it came first,
	// else wait a little for it.
	waitNotice(ref) {
		const n = this.notices.get(ref);
		if (n) {
			this.notices.delete(ref);
			return Promise.resolve(n);
		}
		return new Promise((resolve) => {
			const t = setTimeout(() => {
				this.noticeWaiters.delete(ref);
				resolve(null);
			}, NOTICE_WAIT);
			this.noticeWaiters.set(ref, (notice) => {
				clearTimeout(t);
				resolve(notice);
			});
		});
	}

	// ---- RPC ----

	// Ask the archiver. Resolves with the answer (ok:true); rejects with
	// e.code = 'timeout', 'offline' or the answer's error code. An archiver
	// too busy (rate_limited) is asked again after retry_ms, up to 3 times,
	// except for the ops that check a password (their rate_limited is a
	// throttle the person must see).
	async rpc(op, args = {}, {timeout = 10000} = {}) {
		const passwordOp = op === 'passwd' || op === 'device_token' || op === 'delete_account';
		// The order this request was made in: an answer describes the
		// server as of its request, so a listener can tell a stale one
		// (a `blocked` list asked before an `unblock` that came back first).
		const asked = ++this.rpcAsked;
		for (let attempt = 0; ; attempt++) {
			try {
				const a = await this.rpcOnce(op, args, timeout);
				this.afterRpc(op, args, a, asked);
				return a;
			} catch (e) {
				if (e.code !== 'rate_limited' || passwordOp || attempt >= 3) throw e;
				await new Promise((r) => setTimeout(r, Math.min(e.retry_ms || 500, 5000)));
			}
		}
	}

	rpcOnce(op, args, timeout) {
		const c = this.client;
		if (!c || !c.connected) return Promise.reject(rpcError('offline', 'Not connected.'));
		const id = 'w' + (++this.rpcSeq).toString(36) + '-' + randomId(4);
		const req = {...args, id, op};
		return new Promise((resolve, reject) => {
			const timer = setTimeout(() => {
				this.rpcs.delete(id);
				reject(rpcError('timeout', 'The server did not answer in time.'));
			}, timeout);
			this.rpcs.set(id, {resolve, reject, timer, op});
			c.publish(`chat/rpc/${this.me}/req`, JSON.stringify(req), {qos: 1}, async (err) => {
				if (!err) return;
				if (err.code === 135) {
					const n = await this.waitNotice(id);
					const p = this.rpcs.get(id);
					if (!p) return;
					this.rpcs.delete(id);
					clearTimeout(p.timer);
					if (n && n.code === 'rate_limited') this.rateLimited = {at: Date.now(), retry_ms: n.retry_ms || 500};
					const rl = this.rateLimited;
					const e = n ? rpcError(n.code, n.message, n)
						: rl && Date.now() - rl.at < 5000 ? rpcError('rate_limited', 'Sending too fast.', {retry_ms: rl.retry_ms})
						: rpcError('refused', 'The server refused the request.');
					reject(e);
				}
				// Other errors (connection closed): the answer may still
				// come after a reconnect; the timeout decides.
			});
			flush(c);
		});
	}

	onAnswer(a) {
		const p = this.rpcs.get(a.id);
		if (!p) return;
		this.rpcs.delete(a.id);
		clearTimeout(p.timer);
		if (a.ok) p.resolve(a);
		else p.reject(rpcError(a.error || 'error', a.message || a.error || 'The request failed.', a));
	}

	failRpcsOnClose() {
		// Answers to requests already sent may come after the reconnect (the
		// session keeps them); the timeouts stay in charge.
	}

	// Room ops change which rooms this connection follows.
	afterRpc(op, args, a, asked) {
		if (op === 'room_create' && a.room) this.subscribeRoom(a.room);
		else if ((op === 'room_leave' || op === 'room_delete') && args.room) this.unsubscribeRoom(args.room);
		this.emit('rpc', {op, args, answer: a, asked});
	}

	// ---- publishing ----

	// Publish an object; resolves on PUBACK (QoS 0: at once), rejects with
	// e.code from the notice when refused.
	publish(topic, obj, {qos = 1} = {}) {
		const c = this.client;
		if (!c) return Promise.reject(rpcError('offline', 'Not connected.'));
		const payload = JSON.stringify(obj);
		if (qos === 0) {
			if (c.connected) {
				c.publish(topic, payload, {qos: 0});
				flush(c);
			}
			return Promise.resolve();
		}
		return new Promise((resolve, reject) => {
			c.publish(topic, payload, {qos}, async (err) => {
				if (!err) return resolve();
				if (err.code === 135) {
					const n = obj && obj.id ? await this.waitNotice(obj.id) : null;
					return reject(rpcError(n ? n.code : 'refused', n ? n.message : 'The server refused it.', n));
				}
				reject(rpcError('offline', err.message));
			});
			flush(c);
		});
	}

	// The topic of a message into conversation `key`.
	topicOf(key) {
		const c = parseConv(key);
		if (!c) throw new Error('bad conversation ' + key);
		return c.kind === 'room' ? `chat/room/${c.name}/${this.me}` : `chat/inbox/${c.name}/${this.me}`;
	}

	// Typing signal (PROTOCOL.md "Typing"): QoS 0, dropped when offline.
	sendTyping(key, typing) {
		const c = parseConv(key);
		if (!c || !this.client || !this.client.connected) return;
		const topic = c.kind === 'room' ? `chat/roomtyping/${c.name}/${this.me}` : `chat/typing/${c.name}/${this.me}`;
		if (c.kind === 'user' && c.name === this.me) return;
		this.publish(topic, {typing: !!typing}, {qos: 0});
	}

	// A text or a reaction into conversation `key`: kept in the outbox until
	// its PUBACK; returns the envelope (with id and ts).
	send(key, env) {
		env = {...env};
		if (!env.id) env.id = ulid();
		if (env.ts === undefined && env.type === 'text') env.ts = Date.now();
		const o = {key, topic: this.topicOf(key), env};
		this.outbox.push(o);
		this.saveOutbox();
		// On the wire first, then drawn: the views' work on 'outbox' must
		// not hold the message back.
		this.publishOutbox(o);
		this.emit('outbox', {key, env, state: 'pending'});
		return env;
	}

	// Send a failed message again (same id).
	resend(key, id) {
		const o = this.outbox.find((x) => x.env.id === id);
		if (o) return this.publishOutbox(o);
		return null;
	}

	saveOutbox() {
		if (this.me) save(outboxKey(this.me), this.outbox.length ? this.outbox : null);
	}

	flushOutbox() {
		for (const o of this.outbox) if (!this.inflight.has(o.env.id) && !o.waiting) this.publishOutbox(o);
	}

	publishOutbox(o) {
		const c = this.client;
		if (!c) return;
		const id = o.env.id;
		// MQTT.js keeps a QoS 1 publish of this client across reconnects
		// and sends it again itself: publish each item once per client.
		if (this.inflight.has(id)) return;
		this.inflight.add(id);
		c.publish(o.topic, JSON.stringify(o.env), {qos: 1}, async (err) => {
			this.inflight.delete(id);
			if (!this.outbox.includes(o)) return;
			if (!err) {
				this.dropOutbox(o);
				this.emit('puback', {id, key: o.key});
				return;
			}
			if (err.code === 135) {
				const n = await this.waitNotice(id);
				if (n && n.code === 'rate_limited') this.rateLimited = {at: Date.now(), retry_ms: n.retry_ms || 500};
				// Notices are capped at 10 a second: a refusal without one
				// while sending too fast is that too; otherwise try a few
				// times before calling it failed.
				const rl = this.rateLimited;
				// `unavailable`: the node cannot take messages now; nothing
				// was taken, so the same, after retry_ms.
				const limited = (n && (n.code === 'rate_limited' || n.code === 'unavailable')) ||
					(!n && rl && Date.now() - rl.at < 5000);
				o.tries = (o.tries || 0) + 1;
				if (limited || (!n && o.tries <= 3)) {
					o.waiting = true;
					// Spread the retries at the send rate (20 a second).
					this.retrying = (this.retrying || 0) + 1;
					const wait = (limited ? Math.max(n ? n.retry_ms : rl.retry_ms, 50) : 1000 * o.tries) + this.retrying * 55;
					setTimeout(() => {
						this.retrying--;
						o.waiting = false;
						if (this.outbox.includes(o)) this.publishOutbox(o);
					}, wait);
					return;
				}
				this.dropOutbox(o);
				this.emit('failed', {id, key: o.key, code: n ? n.code : 'refused',
					message: n ? n.message : 'The server refused the message.'});
				return;
			}
			// The connection went away: the next connect sends it again.
		});
		flush(c);
	}

	dropOutbox(o) {
		const i = this.outbox.indexOf(o);
		if (i >= 0) this.outbox.splice(i, 1);
		this.saveOutbox();
	}
}

function registerErrorText(a) {
	switch (a.error) {
	case 'taken': return 'That name is taken (or looks too much like another): pick another.';
	case 'invalid_name': return 'Names are 1 to 32 of a-z, 0-9, _ . - (starting with a letter or digit).';
	case 'invalid_nick': return 'That display name cannot be used: ' + (a.message || '');
	case 'nick_taken': return 'That display name looks like someone else\'s: pick another.';
	case 'weak_password': return 'The password needs at least 8 characters.';
	case 'invite_required': return 'Registration needs an invitation code: ask the operator for one.';
	case 'invite_invalid': return 'That invitation code is unknown, used up or expired.';
	case 'closed': return 'Registration is closed on this server: ask the operator for an account.';
	case 'already_registered': return 'This page made an account already: log in with it.';
	case 'rate_limited': return 'Too many new accounts right now: try again in a minute.';
	default: return a.message || 'Registration failed.';
	}
}

export const conn = new Conn();
