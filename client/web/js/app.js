// app.js - the web app's entry: boot, layout, routing, toasts, the
// connection banner and keyboard shortcuts.
//
// Boot: config.json says where the broker's WebSocket is; a stored device
// token connects at once (the list shows as soon as `conversations`
// answers), else the login form. Layout: #side (the list) and #main (the
// routed view); at 700 px or less one pane at a time. Views register with
// registerView(name, {mount(root, params), unmount()}); the hash picks one:
//   #/u/<user>, #/r/<room>   chat     {kind: 'user'|'room', name}
//   #/room/<room>            room     {room}
//   #/room-new               room-new {}
//   #/settings               settings {}
//   #/search[?q=...]         search   {q}
//   #/                       nothing (the list alone)

import {conn} from './conn.js';
import {store} from './store.js';
import {el, fill, text, $} from './util.js';
import {showLogin, hideLogin} from './login.js';
import {mountList, focusNewChat} from './list.js';
import './chat.js';
import './search.js';
import './panels.js';

// `var` and lazily made: the view modules import this one and register
// before its body runs.
var views;
var current; // {name, view, hash}
var booted;

export function registerView(name, view) {
	if (!views) views = new Map();
	views.set(name, view);
	if (booted && current && current.name === name) route(true);
}

export function navigate(hash) {
	if (!hash.startsWith('#')) hash = '#' + hash;
	if (location.hash === hash) route(true);
	else location.hash = hash;
}

let toastTimer = null;
export function toast(msg, kind = 'info') {
	const t = document.getElementById('toast');
	if (!t) return;
	t.dataset.kind = kind === 'error' ? 'error' : 'info';
	fill(t, el('span', {class: 'toast-text'}, String(msg)),
		el('button', {type: 'button', class: 'toast-close', 'aria-label': 'Dismiss', onclick: hideToast}, '\u00d7'));
	t.hidden = false;
	clearTimeout(toastTimer);
	toastTimer = setTimeout(hideToast, kind === 'error' ? 8000 : 4000);
}

function hideToast() {
	const t = document.getElementById('toast');
	if (t) t.hidden = true;
}

// ---- routing ----

function parseHash(hash) {
	const h = (hash || '').replace(/^#\/?/, '');
	const [path, query] = h.split('?');
	const parts = path.split('/').map((p) => {
		try {
			return decodeURIComponent(p);
		} catch {
			return '';
		}
	});
	const q = new URLSearchParams(query || '');
	switch (parts[0]) {
	case 'u':
		return parts[1] ? {name: 'chat', params: {kind: 'user', name: parts[1], key: 'u:' + parts[1], seq: q.get('seq')}} : null;
	case 'r':
		return parts[1] ? {name: 'chat', params: {kind: 'room', name: parts[1], key: 'r:' + parts[1], seq: q.get('seq')}} : null;
	case 'room':
		return parts[1] ? {name: 'room', params: {room: parts[1]}} : null;
	case 'room-new':
		return {name: 'room-new', params: {}};
	case 'settings':
		return {name: 'settings', params: {section: parts[1] || ''}};
	case 'search':
		return {name: 'search', params: {q: q.get('q') || '', conv: q.get('conv') || ''}};
	default:
		return null;
	}
}

function route(force) {
	if (!booted || !conn.me) return;
	const hash = location.hash;
	if (!force && current && current.hash === hash) return;
	const main = document.getElementById('main');
	const r = parseHash(hash);
	if (current && current.view) {
		try {
			current.view.unmount();
		} catch (e) {
			console.error(e);
		}
	}
	current = null;
	main.replaceChildren();
	const view = r && views && views.get(r.name);
	if (!view) {
		document.body.classList.remove('has-view');
		fill(main, el('div', {class: 'empty-main'},
			el('p', null, 'Pick a conversation, or start one with New chat.')));
		current = {name: '', view: null, hash};
		document.dispatchEvent(new CustomEvent('mqchat:route', {detail: {name: '', params: {}}}));
		return;
	}
	document.body.classList.add('has-view');
	current = {name: r.name, view, hash};
	try {
		view.mount(main, r.params);
	} catch (e) {
		console.error(e);
		toast('This view failed: ' + e.message, 'error');
	}
	document.dispatchEvent(new CustomEvent('mqchat:route', {detail: {name: r.name, params: r.params}}));
}

// ---- the connection banner ----

function showState() {
	const s = document.getElementById('status');
	const st = conn.state === 'online' ? 'online'
		: conn.state === 'connecting' ? 'connecting'
		: conn.state === 'reconnecting' ? (navigator.onLine === false ? 'offline' : 'reconnecting')
		: 'offline';
	s.dataset.state = st;
	text(s, st === 'online' ? 'Online'
		: st === 'connecting' ? 'Connecting...'
		: 'Offline - reconnecting...');
	document.body.classList.toggle('is-online', st === 'online');
}

// ---- showing the app or the login ----

function showApp() {
	hideLogin();
	document.getElementById('app').hidden = false;
	document.getElementById('status').hidden = false;
	showState();
	route(true);
}

function backToLogin(reason) {
	if (current && current.view) {
		try {
			current.view.unmount();
		} catch {
			// The view is going away anyway.
		}
	}
	current = null;
	document.getElementById('app').hidden = true;
	document.getElementById('status').hidden = true;
	showLogin(reason || '', onLoggedIn);
}

function onLoggedIn() {
	store.cacheUser = conn.me;
	showApp();
}

// Another tab of this browser uses the connection (one per device).
function showElsewhere() {
	let box = document.getElementById('elsewhere');
	if (!box) {
		box = el('div', {id: 'elsewhere', class: 'elsewhere', role: 'dialog', 'aria-modal': 'true',
			'aria-labelledby': 'elsewhere-h'},
		el('div', {class: 'elsewhere-card'},
			el('h2', {id: 'elsewhere-h'}, 'mqchat is open in another tab'),
			el('p', null, 'This browser keeps one connection. Use mqchat here, and the other tab lets go.'),
			el('button', {id: 'use-here', type: 'button', class: 'primary', onclick: () => {
				box.hidden = true;
				conn.takeOver().catch((e) => toast(e.message, 'error'));
			}}, 'Use here')));
		document.body.appendChild(box);
	}
	box.hidden = false;
	document.getElementById('use-here').focus();
}

// ---- keyboard ----

function onKey(e) {
	if (e.defaultPrevented) return;
	const t = e.target;
	const typing = t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable);
	if ((e.ctrlKey || e.metaKey) && (e.key === 'k' || e.key === 'K')) {
		e.preventDefault();
		navigate('#/search');
		return;
	}
	if (e.key === '/' && !typing && !e.ctrlKey && !e.metaKey && !e.altKey) {
		e.preventDefault();
		navigate('#/search');
		return;
	}
	if (e.key === 'Escape') {
		const tst = document.getElementById('toast');
		if (tst && !tst.hidden) {
			hideToast();
			return;
		}
		const box = document.getElementById('new-chat-box');
		if (box && !box.hidden) {
			box.hidden = true;
			document.getElementById('new-chat')?.focus();
			e.preventDefault();
			return;
		}
		// Nothing open and nothing focused: leave the view (back to the list).
		if (!typing && current && current.name && (!t || t === document.body)) {
			e.preventDefault();
			navigate('#/');
		}
	}
	if (e.altKey && (e.key === 'n' || e.key === 'N')) {
		e.preventDefault();
		focusNewChat();
	}
}

// ---- boot ----

async function config() {
	let cfg = {};
	try {
		const r = await fetch('config.json', {cache: 'no-store'});
		if (r.ok) cfg = await r.json();
	} catch {
		// No config.json (a plain file server): the default below.
	}
	let url = typeof cfg.mqtt_url === 'string' && cfg.mqtt_url ? cfg.mqtt_url : 'ws://{host}:8080';
	return url.split('{host}').join(location.hostname);
}

async function boot() {
	performance.mark('mqchat:boot');
	if (!views) views = new Map();
	conn.addEventListener('state', showState);
	conn.addEventListener('login', (e) => backToLogin(e.detail.reason));
	conn.addEventListener('elsewhere', showElsewhere);
	conn.addEventListener('notice', (e) => {
		const n = e.detail;
		if (n.type === 'local') toast(n.message, 'error');
		else if (n.code === 'account_disabled' || n.code === 'no_account') toast(n.message || n.code, 'error');
	});
	conn.addEventListener('failed', (e) => {
		const d = e.detail;
		toast('Not sent: ' + failText(d.code, d.message), 'error');
	});
	store.addEventListener('warn', (e) => toast(e.detail.message, 'error'));
	window.addEventListener('hashchange', () => route(false));
	document.addEventListener('keydown', onKey);
	const url = config();
	mountList(document.getElementById('side'));
	booted = true;
	conn.configure(await url);
	if (conn.session()) {
		// resume() sets conn.me at once: the list and the route show while
		// the connection opens.
		const p = conn.resume();
		store.loadCache(conn.me);
		showApp();
		p.catch((e) => {
			if (conn.state === 'login') backToLogin(e.message);
		});
	} else {
		backToLogin('');
	}
}

function failText(code, message) {
	switch (code) {
	case 'blocked': return 'they do not accept messages from you.';
	case 'no_recipient': return 'no such person.';
	case 'not_member': return 'you are not a member of this room.';
	case 'too_large': return 'the message is too long.';
	default: return message || code;
	}
}

boot();
