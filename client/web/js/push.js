// push.js - notifications of this browser (Web Push, docs/PUSH.md) and the
// muted conversations (docs/PROTOCOL.md "Push notifications").
//
// Web Push where the browser has it ('serviceWorker' in navigator and
// PushManager): turning notifications on asks the permission, the
// server's VAPID key (push_config), subscribes through the service worker
// (sw.js, which shows what arrives) and registers the subscription for
// this device (push_register, provider webpush); turning them off
// unsubscribes and unregisters. The service worker is registered only
// then: a browser that never turned them on runs none. After each connect
// a subscription this browser holds is registered again (the endpoint
// may have changed, and an archiver that lost it learns it back); logging
// out forgets it (the server removes the device's target with its token).
//
// Mutes: the `mutes` answer kept as key ('u:bob', 'r:lobby') -> until (ms,
// 0 for ever), refreshed after each connect and each mute or unmute;
// `mutes` events tell the list and the conversation view.

import {conn} from './conn.js';

const SW_URL = 'sw.js';

export function pushSupported() {
	return 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
}

// The server's VAPID key (base64url) as the bytes subscribe() takes.
function keyBytes(b64) {
	const s = b64.replace(/-/g, '+').replace(/_/g, '/');
	const bin = atob(s + '='.repeat((4 - (s.length % 4)) % 4));
	return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function sameKey(sub, key) {
	const had = sub.options && sub.options.applicationServerKey;
	if (!had) return true;
	const a = new Uint8Array(had);
	return a.length === key.length && a.every((b, i) => b === key[i]);
}

function pushError(code, message) {
	const e = new Error(message);
	e.code = code;
	return e;
}

// The registration that serves this page, without making one.
async function registration() {
	if (!pushSupported()) return null;
	try {
		return (await navigator.serviceWorker.getRegistration()) || null;
	} catch {
		return null;
	}
}

// This browser's push subscription, or null.
export async function currentSubscription() {
	const reg = await registration();
	if (!reg) return null;
	try {
		return await reg.pushManager.getSubscription();
	} catch {
		return null;
	}
}

function register(sub) {
	const j = sub.toJSON();
	const keys = j.keys || {};
	return conn.rpc('push_register', {device: conn.device, provider: 'webpush',
		endpoint: j.endpoint, p256dh: keys.p256dh, auth: keys.auth});
}

// Turn notifications on for this device. Resolves once the server has the
// target; rejects with e.code: unsupported, denied, not_configured, or an
// RPC error's code (its words are errorText's).
export async function enablePush() {
	if (!pushSupported()) throw pushError('unsupported', 'This browser cannot show notifications from mqchat.');
	const perm = await Notification.requestPermission();
	if (perm !== 'granted') {
		throw pushError('denied', perm === 'denied'
			? 'Notifications are blocked for this site: allow them in the browser\u2019s site settings.'
			: 'Notifications were not allowed.');
	}
	const cfg = await conn.rpc('push_config');
	const providers = Array.isArray(cfg.providers) ? cfg.providers : [];
	if (!providers.includes('webpush') || typeof cfg.vapid_public_key !== 'string') {
		throw pushError('not_configured', 'This server does not send notifications to browsers.');
	}
	const key = keyBytes(cfg.vapid_public_key);
	const reg = await navigator.serviceWorker.register(SW_URL);
	await navigator.serviceWorker.ready;
	let sub = await reg.pushManager.getSubscription();
	// A subscription made for another server key cannot be used with this one.
	if (sub && !sameKey(sub, key)) {
		await sub.unsubscribe().catch(() => {});
		sub = null;
	}
	if (!sub) sub = await reg.pushManager.subscribe({userVisibleOnly: true, applicationServerKey: key});
	await register(sub);
}

// Turn them off: the browser's subscription first (nothing more can
// arrive), then the server's target.
export async function disablePush() {
	const sub = await currentSubscription();
	if (sub) await sub.unsubscribe().catch(() => {});
	await conn.rpc('push_unregister', {device: conn.device});
}

// Is this device's web push target on? (This browser subscribed, and the
// server lists a webpush target for conn.device.)
export async function pushEnabled() {
	const sub = await currentSubscription();
	if (!sub) return false;
	const a = await conn.rpc('push_targets');
	return (a.targets || []).some((t) => t.device === conn.device && t.provider === 'webpush');
}

// ---- mutes ----

class Mutes extends EventTarget {
	constructor() {
		super();
		this.map = new Map();   // key -> until (ms; 0 for ever)
		this.changes = 0;       // mutes and unmutes sent: a `mutes` answer older than one is stale
	}

	supported() {
		const f = conn.hello && Array.isArray(conn.hello.features) ? conn.hello.features : [];
		return f.includes('mute');
	}

	// Until when key is muted: 0 for ever, a time, or null (not muted).
	until(key) {
		if (!this.map.has(key)) return null;
		const u = this.map.get(key);
		if (u && u <= Date.now()) return null;
		return u;
	}

	muted(key) {
		return this.until(key) !== null;
	}

	async load() {
		if (!this.supported()) return;
		const at = this.changes;
		const a = await conn.rpc('mutes');
		// A mute or unmute went out meanwhile: this answer may not have it
		// (requests may be answered out of order), and that one's answer set
		// the map already.
		if (at !== this.changes) return;
		const next = new Map();
		for (const m of a.mutes || []) {
			if (typeof m.with === 'string') next.set('u:' + m.with, m.until || 0);
			else if (typeof m.room === 'string') next.set('r:' + m.room, m.until || 0);
		}
		this.map = next;
		this.dispatchEvent(new CustomEvent('mutes', {detail: {}}));
	}

	static target(key) {
		return key[0] === 'r' ? {room: key.slice(2)} : {with: key.slice(2)};
	}

	// Mute key for forS seconds (0: until unmuted).
	async mute(key, forS) {
		const args = Mutes.target(key);
		if (forS) args.for_s = forS;
		this.changes++;
		const a = await conn.rpc('mute', args);
		this.map.set(key, a.until || 0);
		this.dispatchEvent(new CustomEvent('mutes', {detail: {key}}));
		return a;
	}

	async unmute(key) {
		this.changes++;
		await conn.rpc('unmute', Mutes.target(key));
		this.map.delete(key);
		this.dispatchEvent(new CustomEvent('mutes', {detail: {key}}));
	}
}

export const mutes = new Mutes();

// After each connect: the mutes, and this browser's subscription again.
conn.addEventListener('ready', () => {
	mutes.load().catch(() => {});
	currentSubscription().then((sub) => {
		if (sub && Notification.permission === 'granted') register(sub).catch(() => {});
	});
});

// Logged out: this browser's subscription goes too (the server dropped the
// target with the device's token).
conn.addEventListener('login', (e) => {
	if (e.detail && e.detail.status === 'logout') {
		currentSubscription().then((sub) => sub && sub.unsubscribe()).catch(() => {});
	}
	mutes.map.clear();
});

// A click on a notification while the app is open: the service worker
// asks this page to show that conversation.
if ('serviceWorker' in navigator) {
	navigator.serviceWorker.addEventListener('message', (e) => {
		const d = e.data;
		if (d && d.type === 'open' && typeof d.hash === 'string' && /^#\/[ur]\/[a-z0-9][a-z0-9_.-]{0,31}$/.test(d.hash)) {
			location.hash = d.hash;
		}
	});
	navigator.serviceWorker.startMessages();
}
