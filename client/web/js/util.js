// util.js - small helpers every module of the web app uses.
//
// Every text that comes from another person (bodies, nicks, room titles,
// names) goes into the page with textContent through el() or text(): never
// innerHTML, so no markup in a message is ever parsed.

// el('div', {class: 'msg', 'data-id': id, onclick: fn}, child, 'text', ...)
// Attributes: `class`, any `data-*`/`aria-*`/plain attribute (set with
// setAttribute), `on<event>` functions (addEventListener), `hidden`,
// `disabled`, `value`, `checked`, `type`, `placeholder` as properties.
// Children: nodes, strings (text nodes), numbers, null/undefined/false
// (skipped) and arrays of those.
export function el(tag, attrs, ...children) {
	const node = document.createElement(tag);
	if (attrs) {
		for (const [k, v] of Object.entries(attrs)) {
			if (v === undefined || v === null || v === false) continue;
			if (k.startsWith('on') && typeof v === 'function') {
				node.addEventListener(k.slice(2), v);
			} else if (k === 'class') {
				node.className = v;
			} else if (k === 'style') {
				throw new Error('el: no style attributes (the CSP forbids them); use a class');
			} else if (['hidden', 'disabled', 'value', 'checked', 'type', 'placeholder',
				'tabIndex', 'title'].includes(k)) {
				node[k] = v;
			} else {
				node.setAttribute(k, v === true ? '' : String(v));
			}
		}
	}
	append(node, children);
	return node;
}

function append(node, children) {
	for (const c of children) {
		if (c === undefined || c === null || c === false) continue;
		if (Array.isArray(c)) append(node, c);
		else if (c instanceof Node) node.appendChild(c);
		else node.appendChild(document.createTextNode(String(c)));
	}
}

// Replace a node's children with the given ones (same forms as el's).
export function fill(node, ...children) {
	node.replaceChildren();
	append(node, children);
	return node;
}

// Set a node's text (inert).
export function text(node, s) {
	node.textContent = s === undefined || s === null ? '' : String(s);
	return node;
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

// A ULID: 48 bits of milliseconds and 80 random bits, Crockford base 32,
// 26 characters; sortable by time. Message ids (PROTOCOL.md "Send").
const B32 = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export function ulid(now = Date.now()) {
	let t = now, out = '';
	for (let i = 0; i < 10; i++) {
		out = B32[t % 32] + out;
		t = Math.floor(t / 32);
	}
	const rnd = new Uint8Array(16);
	crypto.getRandomValues(rnd);
	for (let i = 0; i < 16; i++) out += B32[rnd[i] & 31];
	return out;
}

// Random characters of [A-Za-z0-9] (device names, register client ids).
export function randomId(n) {
	const abc = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
	const rnd = new Uint8Array(n);
	crypto.getRandomValues(rnd);
	let s = '';
	for (let i = 0; i < n; i++) s += abc[rnd[i] % abc.length];
	return s;
}

// "14:03" today, "Mon 14:03" this week, "2026-11-30" before.
export function fmtTime(ms) {
	if (!ms) return '';
	const d = new Date(ms), now = new Date();
	const hm = d.toLocaleTimeString([], {hour: '2-digit', minute: '2-digit'});
	if (d.toDateString() === now.toDateString()) return hm;
	if (now - d < 6 * 86400000) return d.toLocaleDateString([], {weekday: 'short'}) + ' ' + hm;
	return d.toISOString().slice(0, 10);
}

// A conversation's key: 'u:<user>' (direct, also a note to oneself) or
// 'r:<room>'.
export const convKey = (kind, name) => (kind === 'room' ? 'r:' : 'u:') + name;
export function parseConv(key) {
	if (typeof key !== 'string' || key.length < 3 || key[1] !== ':') return null;
	if (key[0] === 'u') return {kind: 'user', name: key.slice(2)};
	if (key[0] === 'r') return {kind: 'room', name: key.slice(2)};
	return null;
}

// Names: PROTOCOL.md "Connecting".
export const NAME_RE = /^[a-z0-9][a-z0-9_.-]{0,31}$/;

// Bytes of s in UTF-8 (the server's limits are in bytes).
export function utf8Len(s) {
	return new TextEncoder().encode(s).length;
}

export function debounce(fn, ms) {
	let t = null;
	return (...args) => {
		clearTimeout(t);
		t = setTimeout(() => fn(...args), ms);
	};
}
