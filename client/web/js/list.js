// list.js - the side pane: who I am, the actions (search, new chat, new
// room, settings) and the conversation list with its badges, last message,
// time, presence and a muted mark, kept live from the store and paged as it
// scrolls.

import {conn} from './conn.js';
import {store, eventText} from './store.js';
import {el, fill, text, fmtTime, NAME_RE} from './util.js';
import {navigate, toast} from './app.js';
import {mutes} from './push.js';

let convsEl, meEl, box, input;
const rows = new Map(); // key -> {li, name, last, time, badge, dot}
let activeKey = '';
let renderQueued = false;

// The preview of a conversation's last message: plain text, one line.
function preview(c) {
	const m = c.last;
	if (!m) return c.kind === 'room' ? 'No messages yet' : '';
	if (m.type === 'event') return eventText(m);
	if (m.deleted) return 'This message was deleted';
	if (m.from !== conn.me && store.blocked(m.from)) return 'A message from someone you blocked';
	let body = typeof m.body === 'string' ? m.body : '';
	body = body.replace(/\s+/g, ' ').trim();
	if (body.length > 120) body = body.slice(0, 120) + '\u2026';
	if (m.from === conn.me) return 'You: ' + body;
	if (c.kind === 'room') return store.nick(m.from) + ': ' + body;
	return body;
}

// Small line icons, drawn with SVG nodes (no markup strings).
const ICONS = {
	search: [['circle', {cx: 10.5, cy: 10.5, r: 6.5}], ['path', {d: 'M15.5 15.5 L21 21'}]],
	settings: [['circle', {cx: 12, cy: 12, r: 3}], ['path', {d: gear(), 'stroke-linejoin': 'round'}]],
	// A bell struck through: a muted conversation.
	muted: [['path', {d: 'M18 13.5V10a6 6 0 0 0-9.4-4.9 M6.3 7.6A6 6 0 0 0 6 10v4l-2 3h13', 'stroke-linejoin': 'round'}],
		['path', {d: 'M10 20a2.2 2.2 0 0 0 4 0'}], ['path', {d: 'M3 3 L21 21'}]],
};

// A gear of 8 teeth as one closed path.
function gear() {
	const pts = [];
	for (let k = 0; k < 8; k++) {
		const a = (k * Math.PI) / 4;
		for (const [da, r] of [[-0.42, 7], [-0.22, 9.6], [0.22, 9.6], [0.42, 7]]) {
			pts.push((12 + r * Math.cos(a + da)).toFixed(2) + ' ' + (12 + r * Math.sin(a + da)).toFixed(2));
		}
	}
	return 'M' + pts.join(' L') + ' Z';
}
export function icon(name) {
	const NS = 'http://www.w3.org/2000/svg';
	const svg = document.createElementNS(NS, 'svg');
	for (const [k, v] of Object.entries({viewBox: '0 0 24 24', width: 20, height: 20, fill: 'none',
		stroke: 'currentColor', 'stroke-width': 2, 'stroke-linecap': 'round', 'aria-hidden': 'true', class: 'icon-svg'})) {
		svg.setAttribute(k, String(v));
	}
	for (const [tag, attrs] of ICONS[name] || []) {
		const n = document.createElementNS(NS, tag);
		for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
		svg.appendChild(n);
	}
	return svg;
}

function convHash(c) {
	return (c.kind === 'room' ? '#/r/' : '#/u/') + encodeURIComponent(c.name);
}

function makeRow(c) {
	const name = el('span', {class: 'conv-name'});
	const muted = el('span', {class: 'conv-muted', title: 'Muted', hidden: true}, icon('muted'));
	const time = el('time', {class: 'conv-time'});
	const last = el('span', {class: 'conv-last'});
	const badge = el('span', {class: 'conv-badge', hidden: true});
	const dot = el('span', {class: 'presence-dot', 'aria-hidden': 'true'});
	const avatar = el('span', {class: 'avatar', 'aria-hidden': 'true'});
	const link = el('a', {class: 'conv-link', href: convHash(c)},
		el('span', {class: 'avatar-wrap'}, avatar, dot),
		el('span', {class: 'conv-text'},
			el('span', {class: 'conv-top'}, name, muted, time),
			el('span', {class: 'conv-bottom'}, last, badge)));
	const li = el('li', {class: 'conv', 'data-conv': c.key}, link);
	return {li, link, name, muted, time, last, badge, dot, avatar};
}

function updateRow(r, c) {
	const title = c.kind === 'room' ? (c.title || c.name) : store.nick(c.name);
	text(r.name, c.kind === 'user' && c.name === conn.me ? title + ' (notes)' : title);
	text(r.avatar, c.kind === 'room' ? '#' : (title || '?').slice(0, 1).toUpperCase());
	r.avatar.classList.toggle('room', c.kind === 'room');
	const ts = c.last ? (c.last.server_ts || c.last.ts) : 0;
	text(r.time, ts ? fmtTime(ts) : '');
	if (ts) r.time.setAttribute('datetime', new Date(ts).toISOString());
	text(r.last, preview(c));
	const n = c.unread || 0;
	text(r.badge, n > 999 ? '999+' : String(n));
	r.badge.hidden = n === 0;
	r.badge.setAttribute('aria-label', n + ' unread');
	r.li.classList.toggle('unread', n > 0);
	const isMuted = mutes.muted(c.key);
	r.muted.hidden = !isMuted;
	r.li.classList.toggle('muted', isMuted);
	const p = c.kind === 'user' ? store.presence(c.name) : null;
	r.dot.hidden = c.kind !== 'user';
	r.dot.classList.toggle('online', !!(p && p.online));
	r.link.setAttribute('aria-label', `${title}${n ? `, ${n} unread` : ''}${p && p.online ? ', online' : ''}${isMuted ? ', muted' : ''}: ${preview(c)}`);
	const active = c.key === activeKey;
	r.li.classList.toggle('active', active);
	if (active) r.link.setAttribute('aria-current', 'page');
	else r.link.removeAttribute('aria-current');
}

function render() {
	renderQueued = false;
	const list = store.convs();
	const seen = new Set();
	let prev = null;
	for (const c of list) {
		seen.add(c.key);
		let r = rows.get(c.key);
		if (!r) {
			r = makeRow(c);
			rows.set(c.key, r);
		}
		updateRow(r, c);
		// Move only what is out of place (keeps focus and scroll).
		const want = prev ? prev.nextSibling : convsEl.firstChild;
		if (want !== r.li) convsEl.insertBefore(r.li, want);
		prev = r.li;
	}
	for (const [key, r] of rows) {
		if (!seen.has(key)) {
			r.li.remove();
			rows.delete(key);
		}
	}
	if ((list.length || store.listLoaded) && !performance.getEntriesByName('mqchat:list').length) {
		performance.mark('mqchat:list');
	}
	const empty = document.getElementById('convs-empty');
	if (empty) empty.hidden = list.length > 0 || !store.listLoaded;
	const more = document.getElementById('convs-more');
	if (more) more.hidden = !store.hasMoreConvs();
	const total = list.reduce((n, c) => n + (c.unread || 0), 0);
	document.title = total ? `(${total}) mqchat` : 'mqchat';
}

function queueRender() {
	if (renderQueued) return;
	renderQueued = true;
	requestAnimationFrame(render);
}

function renderMe() {
	if (!conn.me) {
		text(meEl, '');
		return;
	}
	text(meEl, store.nick(conn.me));
	meEl.title = conn.me + '@' + conn.device;
}

export function focusNewChat() {
	box.hidden = false;
	input.focus();
}

function goNewChat() {
	const user = input.value.trim().toLowerCase().replace(/^@/, '');
	if (!NAME_RE.test(user)) {
		toast('Type an account name (a-z, 0-9, _ . -).', 'error');
		input.focus();
		return;
	}
	input.value = '';
	box.hidden = true;
	store.open('u:' + user);
	navigate('#/u/' + encodeURIComponent(user));
}

// More of the list when its end comes into view.
function watchScroll(scroller) {
	const sentinel = el('li', {id: 'convs-more', class: 'convs-more', 'aria-hidden': 'true', hidden: true}, 'Loading...');
	const io = new IntersectionObserver((entries) => {
		if (entries.some((e) => e.isIntersecting) && store.hasMoreConvs()) {
			store.loadMoreConvs().catch((e) => toast('More conversations did not load: ' + e.message, 'error'));
		}
	}, {root: scroller, rootMargin: '200px'});
	io.observe(sentinel);
	return sentinel;
}

export function mountList(side) {
	meEl = el('span', {id: 'me', class: 'me'});
	input = el('input', {id: 'new-chat-user', type: 'text', placeholder: 'Account name',
		autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', 'aria-label': 'Chat with (account name)'});
	input.addEventListener('keydown', (e) => {
		if (e.key === 'Enter') {
			e.preventDefault();
			goNewChat();
		} else if (e.key === 'Escape') {
			e.preventDefault();
			box.hidden = true;
			document.getElementById('new-chat').focus();
		}
	});
	box = el('div', {id: 'new-chat-box', class: 'new-chat-box', hidden: true},
		input,
		el('button', {id: 'new-chat-go', type: 'button', class: 'primary', onclick: goNewChat}, 'Chat'));
	convsEl = el('ul', {id: 'convs', class: 'convs', 'aria-label': 'Conversations'});
	// Up and down walk the list (Tab leaves it).
	convsEl.addEventListener('keydown', (e) => {
		if (!['ArrowDown', 'ArrowUp', 'Home', 'End'].includes(e.key) || e.altKey || e.ctrlKey || e.metaKey) return;
		const links = [...convsEl.querySelectorAll('.conv-link')];
		if (!links.length) return;
		const i = links.indexOf(document.activeElement);
		const j = e.key === 'Home' ? 0 : e.key === 'End' ? links.length - 1
			: e.key === 'ArrowDown' ? Math.min(i + 1, links.length - 1) : Math.max(i - 1, 0);
		e.preventDefault();
		links[j].focus();
	});
	const scroller = el('div', {class: 'convs-scroll'}, convsEl,
		el('p', {id: 'convs-empty', class: 'convs-empty', hidden: true},
			'No conversations yet. Start one with New chat.'));
	scroller.appendChild(el('ul', {class: 'convs-tail', 'aria-hidden': 'true'}, watchScroll(scroller)));
	fill(side,
		el('header', {class: 'side-head'},
			el('span', {class: 'me-wrap'}, el('span', {class: 'status-dot', 'aria-hidden': 'true'}), meEl),
			el('span', {class: 'side-actions'},
				el('button', {id: 'open-search', type: 'button', class: 'icon', title: 'Search (Ctrl+K)',
					'aria-label': 'Search', onclick: () => navigate('#/search')}, icon('search')),
				el('button', {id: 'open-settings', type: 'button', class: 'icon', title: 'Settings',
					'aria-label': 'Settings', onclick: () => navigate('#/settings')}, icon('settings')))),
		el('div', {class: 'side-new'},
			el('button', {id: 'new-chat', type: 'button', 'aria-expanded': 'false', onclick: () => {
				box.hidden = !box.hidden;
				document.getElementById('new-chat').setAttribute('aria-expanded', String(!box.hidden));
				if (!box.hidden) input.focus();
			}}, '+ New chat'),
			el('button', {id: 'new-room', type: 'button', onclick: () => navigate('#/room-new')}, '+ New room')),
		box,
		scroller);
	store.addEventListener('convs', queueRender);
	store.addEventListener('presence', queueRender);
	store.addEventListener('blocks', queueRender);
	mutes.addEventListener('mutes', queueRender);
	store.addEventListener('nick', (e) => {
		if (e.detail.user === conn.me) renderMe();
		queueRender();
	});
	conn.addEventListener('ready', renderMe);
	conn.addEventListener('state', renderMe);
	document.addEventListener('mqchat:route', (e) => {
		const {name, params} = e.detail;
		activeKey = name === 'chat' ? params.key : '';
		queueRender();
	});
	// Times like "14:03" turn into "Mon 14:03": redraw now and then.
	setInterval(queueRender, 60000);
	renderMe();
	render();
}
