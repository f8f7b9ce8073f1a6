// sw.js - the web app's service worker: shows the notifications Web Push
// brings (docs/PUSH.md) and opens the conversation they are about.
//
// Registered by js/push.js only when the person turns notifications on; at
// the app's root so its scope is the whole app. It handles no fetch: the
// app loads from the network as before.
//
// A push's data is the notification of docs/PROTOCOL.md "Push
// notifications": {"type":"message","with":"bob"|"room":"lobby","from",
// "id","seq","count"[,"body"]}. "body" only when the person turned
// previews on; without it the notification says who wrote, never what.
// The tag is the conversation: the newest notification of a conversation
// replaces the one before.

'use strict';

const NAME_RE = /^[a-z0-9][a-z0-9_.-]{0,31}$/;

function parse(data) {
	if (!data) return null;
	try {
		const n = data.json();
		return n && typeof n === 'object' ? n : null;
	} catch {
		return null;
	}
}

// The conversation of notification n: {hash, label, room}, or null.
function conversation(n) {
	if (n && typeof n.room === 'string' && NAME_RE.test(n.room)) {
		return {hash: '#/r/' + n.room, label: '#' + n.room, room: true};
	}
	if (n && typeof n.with === 'string' && NAME_RE.test(n.with)) {
		return {hash: '#/u/' + n.with, label: n.with, room: false};
	}
	return null;
}

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));

self.addEventListener('push', (e) => {
	const n = parse(e.data);
	const c = conversation(n);
	const from = n && typeof n.from === 'string' && NAME_RE.test(n.from) ? n.from : '';
	const count = n && Number.isInteger(n.count) && n.count > 1 ? n.count : 1;
	const title = count > 1 ? count + ' new messages' : 'New message';
	let body = '';
	if (n && typeof n.body === 'string' && n.body) {
		body = c && c.room && from ? from + ': ' + n.body : n.body;
	} else if (c) {
		body = c.room ? (from ? 'from ' + from + ' in ' + c.label : 'in ' + c.label) : 'from ' + c.label;
	}
	e.waitUntil(self.registration.showNotification(title, {
		body,
		tag: c ? c.hash : 'mqchat',
		renotify: true,
		data: {hash: c ? c.hash : '#/'},
	}));
});

self.addEventListener('notificationclick', (e) => {
	e.notification.close();
	const hash = (e.notification.data && e.notification.data.hash) || '#/';
	const url = new URL(self.registration.scope);
	url.hash = hash;
	e.waitUntil((async () => {
		const wins = await self.clients.matchAll({type: 'window', includeUncontrolled: true});
		const scope = self.registration.scope;
		const app = wins.find((w) => w.url.startsWith(scope));
		if (app) {
			app.postMessage({type: 'open', hash});
			return app.focus();
		}
		return self.clients.openWindow(url.href);
	})());
});
