// panels.js - the panels beside the conversations: creating a room
// (#/room-new), a room's information and administration (#/room/<room>) and
// the settings (#/settings: profile, password, privacy, notifications,
// blocks, devices, export, log out). PROTOCOL.md "Rooms run by their members", "profile",
// "passwd", "Device tokens", "block, unblock, blocked", "Privacy", "Your
// data".
//
// Every name, nick and title from the server goes into the page as text
// (util.js el/fill/text). Every request disables what started it until
// its answer, and every refusal is said in words (errorText).

import {el, fill, text, NAME_RE, fmtTime, debounce, utf8Len} from './util.js';
import {conn} from './conn.js';
import {store} from './store.js';
import {registerView, toast, navigate} from './app.js';
import {pushSupported, enablePush, disablePush, pushEnabled} from './push.js';

// ---- errors in words ----

// What each RPC error code means for a person; `ctx` overrides them for
// one request (a string, or a function of the error).
const ERRORS = {
	timeout: 'The server did not answer in time. Try again.',
	offline: 'You are offline. Try again once the app is connected.',
	bad_request: 'The server could not accept that: check what you typed.',
	unknown_op: 'This server does not offer that.',
	not_found: 'Not found.',
	forbidden: 'You are not allowed to do that.',
	exists: 'That name is taken.',
	not_member: 'That person is not a member of this room.',
	too_many_rooms: 'You own as many rooms as this server allows. Delete or leave one first.',
	room_full: 'This room has as many members as this server allows.',
	bad_password: 'The password is wrong.',
	weak_password: 'A password needs 8 to 1024 bytes (and must not look like a device token).',
	too_many_devices: 'Too many devices are logged in. Log one out first.',
	invalid_nick: (e) => 'That nick cannot be used: ' + cleanMessage(e.message),
	nick_taken: (e) => 'That nick is taken: ' + cleanMessage(e.message),
	too_late: 'That is too old to change now.',
	internal: 'The server could not do it right now. Try again later.',
	rate_limited: (e) => 'Too many attempts. Try again in ' + seconds(e) + '.',
	refused: 'The server refused the request.',
};

// The server's message without the JSON member name it starts with
// ("\"nick\": U+202E ..." -> "U+202E ...").
function cleanMessage(m) {
	return String(m || '').replace(/^"[a-z_]+":\s*/, '');
}

function seconds(e) {
	const ms = (e && (e.retry_ms || (e.answer && e.answer.retry_ms))) || 1000;
	const s = Math.max(1, Math.ceil(ms / 1000));
	return s === 1 ? '1 second' : s + ' seconds';
}

export function errorText(e, ctx = {}) {
	const code = e && e.code;
	const t = (code && ctx[code]) || (code && ERRORS[code]);
	if (typeof t === 'function') return t(e);
	if (t) return t;
	return (e && e.message) || 'Something went wrong.';
}

// ---- small helpers ----

// Run fn with the given controls disabled; focus comes back to the one
// that had it (a disabled button loses focus, keyboard users would lose
// their place).
async function busy(nodes, fn) {
	const list = [].concat(nodes).filter(Boolean);
	const had = list.find((n) => n === document.activeElement);
	for (const n of list) {
		n.disabled = true;
		n.setAttribute('aria-busy', 'true');
	}
	try {
		return await fn();
	} finally {
		for (const n of list) {
			n.disabled = false;
			n.removeAttribute('aria-busy');
		}
		if (had && had.isConnected && (document.activeElement === document.body || !document.activeElement)) {
			had.focus();
		}
	}
}

// A list or setting that could not be read (offline, timeout): said in
// its status line until a later read works (after the reconnect).
function loadFailed(node, e) {
	say(node, 'Could not load this: ' + errorText(e));
	node.dataset.from = 'load';
}

function loaded(node) {
	if (node.dataset.from === 'load') say(node, '');
}

// An inline status line: an error (role=alert) or a note.
function statusLine(id) {
	return el('p', {id, class: 'panel-status', 'aria-live': 'polite', hidden: true});
}

// say(node, text, kind): an error stays until the next try; a short note
// ('Saved.') goes after a few seconds.
function say(node, msg, kind = 'error') {
	if (!node) return;
	clearTimeout(node._clear);
	delete node.dataset.from;
	if (kind === 'info' && msg === 'Saved.') {
		node._clear = setTimeout(() => {
			if (node.textContent === msg) node.hidden = true;
		}, 4000);
	}
	text(node, msg || '');
	node.hidden = !msg;
	node.dataset.kind = kind;
	node.setAttribute('role', kind === 'error' ? 'alert' : 'status');
}

function field(label, input, hint) {
	const id = input.id;
	const hintNode = hint ? el('p', {class: 'panel-hint', id: id + '-hint'}, hint) : null;
	if (hintNode) input.setAttribute('aria-describedby', hintNode.id);
	return el('div', {class: 'panel-field'}, el('label', {for: id}, label), input, hintNode);
}

function panelHead(title, backHref, backLabel) {
	return el('header', {class: 'panel-head'},
		el('a', {class: 'panel-back', href: backHref, 'aria-label': backLabel, title: backLabel}, '\u2190'),
		el('h2', {class: 'panel-title', tabIndex: -1}, title));
}

function charLen(s) {
	return Array.from(s).length;
}

// Titles and descriptions: no control characters (PROTOCOL.md "Rooms run
// by their members").
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;

// Enter in a description's text area submits its form, as in a field: a
// description is one line.
function enterSubmits(area, form) {
	area.addEventListener('keydown', (ev) => {
		if (ev.key === 'Enter' && !ev.isComposing) {
			ev.preventDefault();
			form.requestSubmit();
		}
	});
}

// A description is one line: line breaks typed or pasted become spaces.
function oneLine(s) {
	return s.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

// ---- the confirmation dialog ----

// Ask before something that cannot be undone. Resolves true for the
// confirming button, false for Cancel or Escape. A modal <dialog>:
// #confirm-dialog with #confirm-text, #confirm-cancel and #confirm-ok;
// Cancel has the focus first.
export function confirmAction(message, okLabel = 'OK', detail = '') {
	return new Promise((resolve) => {
		const old = document.getElementById('confirm-dialog');
		if (old) old.remove();
		const back = document.activeElement;
		let done = false;
		const finish = (v) => {
			if (done) return;
			done = true;
			if (dlg.open) dlg.close();
			dlg.remove();
			if (back && back.isConnected) back.focus();
			resolve(v);
		};
		const cancel = el('button', {type: 'button', id: 'confirm-cancel', onclick: () => finish(false)}, 'Cancel');
		const ok = el('button', {type: 'button', id: 'confirm-ok', class: 'danger', onclick: () => finish(true)}, okLabel);
		const dlg = el('dialog', {id: 'confirm-dialog', class: 'panel-dialog', 'aria-labelledby': 'confirm-text',
			'aria-describedby': detail ? 'confirm-detail' : null},
		el('p', {id: 'confirm-text'}, message),
		detail ? el('p', {id: 'confirm-detail', class: 'panel-hint'}, detail) : null,
		el('div', {class: 'panel-buttons'}, cancel, ok));
		// Escape answers Cancel here, and goes no further (app.js leaves
		// the view on an Escape nobody took).
		dlg.addEventListener('keydown', (ev) => {
			if (ev.key !== 'Escape') return;
			ev.preventDefault();
			ev.stopPropagation();
			finish(false);
		});
		dlg.addEventListener('cancel', (ev) => {
			ev.preventDefault();
			finish(false);
		});
		document.body.appendChild(dlg);
		dlg.showModal();
		cancel.focus();
	});
}

// A view just shown: keyboard and screen reader users start at its
// heading (the button that opened it is gone).
function focusHeading(root) {
	const h = root.querySelector('.panel-title');
	if (h && !root.contains(document.activeElement)) h.focus({preventScroll: true});
}

// A view's life: `alive()` turns false once it is unmounted, so answers
// that come later change nothing.
function lifetime() {
	let on = true;
	const offs = [];
	return {
		alive: () => on,
		listen(target, type, fn) {
			if (!target || !target.addEventListener) return;
			target.addEventListener(type, fn);
			offs.push(() => target.removeEventListener(type, fn));
		},
		end() {
			on = false;
			for (const f of offs.splice(0)) f();
		},
	};
}

// ---- #/room-new: create a room ----

function roomNewView() {
	let life = null;
	return {
		mount(root) {
			life = lifetime();
			const name = el('input', {id: 'room-name', type: 'text', autocomplete: 'off', autocapitalize: 'none',
				spellcheck: 'false', maxlength: '32', required: true, 'aria-required': 'true'});
			const title = el('input', {id: 'room-title', type: 'text', autocomplete: 'off', maxlength: '100'});
			const desc = el('textarea', {id: 'room-desc', rows: '3', maxlength: '1000'});
			const go = el('button', {id: 'room-create-go', type: 'submit', class: 'primary'}, 'Create room');
			const status = statusLine('room-create-error');
			const form = el('form', {id: 'room-create-form', class: 'panel-form', novalidate: true},
				field('Room name', name, 'Lowercase letters, digits and . _ - (up to 32, starting with a letter or digit). It is the room\u2019s address and cannot change.'),
				field('Title (optional)', title, 'What members see as its name, up to 100 characters.'),
				field('Description (optional)', desc),
				status,
				el('div', {class: 'panel-buttons'}, go));
			enterSubmits(desc, form);
			// Names are lowercase: shown as they will be.
			name.addEventListener('input', () => {
				if (name.value !== name.value.toLowerCase()) {
					const at = name.selectionStart;
					name.value = name.value.toLowerCase();
					name.setSelectionRange(at, at);
				}
				const v = name.value;
				const bad = v !== '' && !NAME_RE.test(v);
				name.setAttribute('aria-invalid', bad ? 'true' : 'false');
				if (!bad) say(status, '');
			});
			form.addEventListener('submit', async (ev) => {
				ev.preventDefault();
				const room = name.value.trim().toLowerCase();
				const t = title.value.trim();
				const d = oneLine(desc.value);
				let problem = '';
				if (!NAME_RE.test(room)) {
					problem = 'A room name is 1 to 32 of a-z, 0-9, _ . - and starts with a letter or digit.';
					name.focus();
				} else if (charLen(t) > 100 || CONTROL_RE.test(t)) {
					problem = 'A title has at most 100 characters, without control characters.';
					title.focus();
				} else if (charLen(d) > 1000 || CONTROL_RE.test(d)) {
					problem = 'A description has at most 1,000 characters.';
					desc.focus();
				}
				if (problem) {
					name.setAttribute('aria-invalid', NAME_RE.test(room) ? 'false' : 'true');
					say(status, problem);
					return;
				}
				say(status, '');
				const args = {room};
				if (t) args.title = t;
				if (d) args.description = d;
				await busy([go, name, title, desc], async () => {
					try {
						const a = await conn.rpc('room_create', args);
						if (!life.alive()) return;
						const made = a.room || room;
						try {
							await conn.subscribeRoom(made);
						} catch {
							// The connection's next start subscribes it again.
						}
						// The conversation opens on its "created" line: no toast
						// over the page.
						navigate('#/r/' + made);
					} catch (e) {
						if (!life.alive()) return;
						say(status, errorText(e, {
							exists: 'A room named \u201c' + room + '\u201d exists, or was deleted less than 30 days ago. Pick another name.',
							forbidden: 'Creating rooms is closed on this server.',
							bad_request: 'The server refused that name, title or description.',
						}));
					}
				});
			});
			fill(root, el('section', {id: 'room-create', class: 'panel', 'aria-labelledby': 'room-create-h'},
				panelHead('New room', '#/', 'Back to the conversations'),
				form));
			root.querySelector('.panel-title').id = 'room-create-h';
			name.focus();
		},
		unmount() {
			if (life) life.end();
		},
	};
}

// ---- #/room/<room>: a room's information and administration ----

const ROLE_RANK = {member: 1, admin: 2, owner: 3};
const ROLE_WORD = {owner: 'Owner', admin: 'Admin', member: 'Member'};

function roomView() {
	let life = null;
	return {
		mount(root, params) {
			life = lifetime();
			const room = roomParam(params);
			const panel = el('section', {id: 'room-panel', class: 'panel', 'data-room': room, 'aria-busy': 'true'});
			fill(root, panel);
			new RoomPanel(panel, room, life).start();
			focusHeading(panel);
		},
		unmount() {
			if (life) life.end();
		},
	};
}

function roomParam(params) {
	if (typeof params === 'string') return params;
	if (params && typeof params === 'object') {
		for (const k of ['room', 'name', 'id', 'arg']) if (typeof params[k] === 'string') return params[k];
		if (Array.isArray(params) && typeof params[0] === 'string') return params[0];
	}
	const m = /^#\/room\/([^/?]+)/.exec(location.hash);
	return m ? decodeURIComponent(m[1]) : '';
}

class RoomPanel {
	constructor(panel, room, life) {
		this.panel = panel;
		this.room = room;
		this.life = life;
		this.info = null;
		this.myRole = '';
		this.loading = null;
		this.gone = false;
		this.reloadSoon = debounce(() => this.load(), 150);
		this.build();
	}

	build() {
		const room = this.room;
		this.titleH = el('h2', {class: 'panel-title', id: 'room-panel-h', tabIndex: -1}, '#' + room);
		this.status = statusLine('room-error');
		this.about = el('div', {class: 'room-about'});
		this.count = el('span', {class: 'room-count'});
		this.members = el('ul', {id: 'room-members', class: 'room-members', 'aria-labelledby': 'room-members-h'});
		this.memberStatus = statusLine('room-members-status');
		this.leaveStatus = statusLine('room-leave-status');
		this.addBox = el('div', {class: 'room-add'});
		this.leaveBox = el('div', {class: 'panel-buttons room-danger'});
		this.panel.setAttribute('aria-labelledby', 'room-panel-h');
		this.sub = el('span', {class: 'panel-sub', hidden: true}, '#' + room);
		this.head = el('header', {class: 'panel-head'},
			el('a', {class: 'panel-back', id: 'room-back', href: '#/r/' + encodeURIComponent(room),
				'aria-label': 'Back to the conversation', title: 'Back to the conversation'}, '\u2190'),
			this.titleH, this.sub);
		fill(this.panel, this.head, this.status,
			el('section', {class: 'panel-card'}, el('h3', {}, 'About'), this.about),
			el('section', {class: 'panel-card'},
				el('h3', {id: 'room-members-h'}, 'Members ', this.count),
				this.members, this.memberStatus, this.addBox),
			el('section', {class: 'panel-card'}, this.leaveH = el('h3', {}, 'Leave'), this.leaveBox, this.leaveStatus));
		text(this.about, 'Loading\u2026');
	}

	start() {
		const life = this.life;
		// Membership events of this room: read room_info again.
		life.listen(conn, 'envelope', (ev) => {
			const d = ev.detail || {};
			if (d.key !== 'r:' + this.room || !d.env || d.env.type !== 'event') return;
			const env = d.env;
			if (env.event === 'deleted') return this.goneAway('This room was deleted' + (env.by && env.by !== conn.me ? ' by ' + store.nick(env.by) : '') + '.');
			if (env.event === 'removed' && env.user === conn.me) return this.goneAway('You were removed from this room.');
			this.reloadSoon();
		});
		life.listen(conn, 'ready', () => this.reloadSoon());
		// Nicks come in as whois answers arrive.
		const renick = debounce(() => {
			if (this.info && !this.gone && this.life.alive()) {
				this.renderMembers(this.info.members || []);
				this.updateAbout();
			}
		}, 100);
		life.listen(store, 'nick', renick);
		this.load();
	}

	// Not (or no longer) in the room: say so in place of the panel.
	goneAway(why) {
		if (this.gone || !this.life.alive()) return;
		this.gone = true;
		this.panel.dataset.gone = 'true';
		this.panel.setAttribute('aria-busy', 'false');
		fill(this.panel, this.head,
			el('section', {class: 'panel-card'},
				el('p', {id: 'room-error', class: 'room-gone', role: 'status'}, why),
				el('p', {}, el('a', {href: '#/'}, 'Back to the conversations'))));
	}

	async load() {
		if (this.gone || !this.life.alive()) return;
		// One request at a time; a change meanwhile asks again after it.
		if (this.loading) {
			this.again = true;
			return;
		}
		this.loading = true;
		try {
			const a = await conn.rpc('room_info', {room: this.room});
			if (!this.life.alive() || this.gone) return;
			loaded(this.status);
			this.render(a);
		} catch (e) {
			if (!this.life.alive()) return;
			if (e.code === 'not_found' || e.code === 'forbidden' || e.code === 'bad_request') {
				this.goneAway('You are not in a room named #' + this.room + ' (or it does not exist).');
			} else if (!this.info) {
				fill(this.about, el('p', {}, errorText(e)),
					el('button', {type: 'button', class: 'room-retry', onclick: () => this.load()}, 'Try again'));
			} else {
				loadFailed(this.status, e);
			}
		} finally {
			this.loading = null;
			this.panel.setAttribute('aria-busy', 'false');
			if (this.again) {
				this.again = false;
				this.load();
			}
		}
	}

	isAdmin() {
		return ROLE_RANK[this.myRole] >= 2;
	}

	render(a) {
		const prevRole = this.myRole;
		this.info = a;
		const list = Array.isArray(a.members) ? a.members : [];
		const mine = list.find((m) => m.user === conn.me);
		this.myRole = mine ? mine.role : '';
		// A member of a room this connection does not follow (added from
		// another device or by someone else since the last start): follow
		// it now, so its messages and events come live.
		if (mine && conn.rooms && !conn.rooms.has(this.room)) {
			Promise.resolve(conn.subscribeRoom(this.room)).catch(() => {});
		}
		this.panel.dataset.role = this.myRole;
		text(this.titleH, a.title ? a.title : '#' + this.room);
		this.sub.hidden = !a.title;
		if (prevRole !== this.myRole || !this.aboutBuilt) this.buildAbout();
		this.updateAbout();
		this.renderMembers(list);
		if (prevRole !== this.myRole || !this.actionsBuilt) this.buildActions();
	}

	// Title and description: a form for the owner and admins, text for
	// the others.
	buildAbout() {
		this.aboutBuilt = true;
		if (!this.isAdmin()) {
			this.titleInput = null;
			this.descInput = null;
			this.titleText = el('p', {class: 'room-title-text', id: 'room-title-text'});
			this.descText = el('p', {class: 'room-desc-text', id: 'room-desc-text'});
			this.ownerText = el('p', {class: 'panel-hint room-owner'});
			fill(this.about, this.titleText, this.descText, this.ownerText);
			return;
		}
		const title = el('input', {id: 'room-title-input', type: 'text', maxlength: '100', autocomplete: 'off'});
		const desc = el('textarea', {id: 'room-desc-input', rows: '3', maxlength: '1000'});
		const save = el('button', {id: 'room-title-save', type: 'submit'}, 'Save');
		const status = statusLine('room-about-status');
		const form = el('form', {id: 'room-about-form', class: 'panel-form', novalidate: true},
			field('Title', title), field('Description', desc), status,
			el('div', {class: 'panel-buttons'}, save));
		enterSubmits(desc, form);
		for (const n of [title, desc]) n.addEventListener('input', () => { n.dataset.dirty = '1'; });
		form.addEventListener('submit', async (ev) => {
			ev.preventDefault();
			const t = title.value.trim();
			const d = oneLine(desc.value);
			if (charLen(t) > 100 || CONTROL_RE.test(t)) return say(status, 'A title has at most 100 characters, without control characters.');
			if (charLen(d) > 1000 || CONTROL_RE.test(d)) return say(status, 'A description has at most 1,000 characters.');
			const args = {room: this.room, title: t, description: d};
			say(status, '');
			await busy([save], async () => {
				try {
					await conn.rpc('room_set', args);
					if (!this.life.alive()) return;
					delete title.dataset.dirty;
					delete desc.dataset.dirty;
					say(status, 'Saved.', 'info');
					this.load();
				} catch (e) {
					if (!this.life.alive()) return;
					say(status, errorText(e, {
						forbidden: 'Only the room\u2019s owner and admins may change its title.',
						bad_request: 'A title has at most 100 and a description at most 1,000 characters, without control characters.',
					}));
				}
			});
		});
		this.titleInput = title;
		this.descInput = desc;
		this.ownerText = el('p', {class: 'panel-hint room-owner'});
		fill(this.about, form, this.ownerText);
	}

	updateAbout() {
		const a = this.info;
		if (this.titleInput) {
			// Keep what the person is typing.
			if (!this.titleInput.dataset.dirty) this.titleInput.value = a.title || '';
			if (!this.descInput.dataset.dirty) this.descInput.value = a.description || '';
		} else {
			text(this.titleText, a.title || 'No title');
			this.titleText.classList.toggle('muted', !a.title);
			text(this.descText, a.description || 'No description.');
			this.descText.classList.toggle('muted', !a.description);
		}
		const bits = [];
		if (a.owner) bits.push('Owner: ' + store.nick(a.owner) + (store.nick(a.owner) !== a.owner ? ' (' + a.owner + ')' : ''));
		else bits.push('No owner (made by the operator)');
		if (a.created) bits.push('created ' + fmtTime(a.created));
		bits.push('your role: ' + (ROLE_WORD[this.myRole] || 'none').toLowerCase());
		text(this.ownerText, bits.join(' \u00b7 '));
	}

	renderMembers(list) {
		// Where the focus was, to put it back on the same button.
		const act = document.activeElement;
		let focusUser = null, focusClass = null;
		if (act && this.members.contains(act)) {
			const li = act.closest('.member');
			focusUser = li && li.dataset.user;
			focusClass = [...act.classList].find((c) => c.startsWith('member-'));
		}
		const sorted = list.slice().sort((x, y) =>
			(ROLE_RANK[y.role] || 0) - (ROLE_RANK[x.role] || 0) || (x.user < y.user ? -1 : x.user > y.user ? 1 : 0));
		text(this.count, '(' + sorted.length + ')');
		const mine = ROLE_RANK[this.myRole] || 0;
		const rows = sorted.map((m) => {
			const nick = store.nick(m.user);
			const me = m.user === conn.me;
			const buttons = [];
			if (mine >= 2 && !me && m.role !== 'owner') {
				if (m.role === 'member') {
					buttons.push(el('button', {type: 'button', class: 'member-promote',
						'aria-label': 'Make ' + nick + ' an admin', onclick: (ev) => this.rank(ev.currentTarget, m.user, true)}, 'Make admin'));
				} else if (m.role === 'admin') {
					buttons.push(el('button', {type: 'button', class: 'member-demote',
						'aria-label': 'Make ' + nick + ' a member', onclick: (ev) => this.rank(ev.currentTarget, m.user, false)}, 'Remove admin'));
				}
				buttons.push(el('button', {type: 'button', class: 'member-remove danger',
					'aria-label': 'Remove ' + nick + ' from the room', onclick: (ev) => this.remove(ev.currentTarget, m.user)}, 'Remove'));
			}
			return el('li', {class: 'member', 'data-user': m.user, 'data-role': m.role},
				el('span', {class: 'member-who'},
					el('span', {class: 'member-nick'}, nick, me ? ' (you)' : ''),
					nick !== m.user ? el('span', {class: 'member-user'}, m.user) : null),
				el('span', {class: 'member-role role-' + m.role}, ROLE_WORD[m.role] || m.role),
				buttons.length ? el('span', {class: 'member-actions'}, buttons) : null);
		});
		fill(this.members, rows);
		if (focusUser) {
			const li = [...this.members.children].find((n) => n.dataset.user === focusUser);
			const b = li && (li.querySelector('.' + focusClass) || li.querySelector('button'));
			if (b) b.focus();
			else this.members.closest('section').querySelector('h3').focus?.();
		}
	}

	buildActions() {
		this.actionsBuilt = true;
		if (this.isAdmin()) {
			const input = el('input', {id: 'room-add-user', type: 'text', autocomplete: 'off', autocapitalize: 'none',
				spellcheck: 'false', maxlength: '32', placeholder: 'account name'});
			const go = el('button', {id: 'room-add-go', type: 'submit'}, 'Add');
			const status = statusLine('room-add-status');
			const form = el('form', {id: 'room-add-form', class: 'panel-form panel-inline', novalidate: true},
				el('label', {for: 'room-add-user'}, 'Add someone'),
				el('div', {class: 'panel-row'}, input, go), status);
			form.addEventListener('submit', (ev) => {
				ev.preventDefault();
				this.add(input, go, status);
			});
			fill(this.addBox, form);
		} else {
			fill(this.addBox, el('p', {class: 'panel-hint'}, 'The room\u2019s owner and admins add and remove members.'));
		}
		const leave = el('button', {id: 'room-leave', type: 'button', class: 'danger', onclick: () => this.leave(leave)}, 'Leave room');
		const del = this.isAdmin()
			? el('button', {id: 'room-delete', type: 'button', class: 'danger', onclick: () => this.del(del)}, 'Delete room')
			: null;
		text(this.leaveH, del ? 'Leave or delete' : 'Leave');
		fill(this.leaveBox, leave, del);
	}

	async add(input, go, status) {
		const user = input.value.trim().toLowerCase();
		if (!NAME_RE.test(user)) {
			say(status, 'Type an account name: 1 to 32 of a-z, 0-9, _ . - starting with a letter or digit.');
			input.focus();
			return;
		}
		if ((this.info.members || []).some((m) => m.user === user)) {
			say(status, user + ' is a member already.', 'info');
			return;
		}
		say(status, '');
		await busy([go], async () => {
			try {
				await conn.rpc('room_add', {room: this.room, user});
				if (!this.life.alive()) return;
				input.value = '';
				say(status, user + ' was added.', 'info');
				this.load();
			} catch (e) {
				if (!this.life.alive()) return;
				say(status, errorText(e, {
					forbidden: this.isAdmin()
						? user + ' does not let you add them to rooms (their privacy setting). Ask them to join another way, or to change it.'
						: 'Only the room\u2019s owner and admins may add members.',
					not_found: 'There is no account named \u201c' + user + '\u201d.',
					room_full: 'This room is full: it has as many members as this server allows.',
				}));
				input.focus();
			}
		});
	}

	async rank(btn, user, promote) {
		say(this.memberStatus, '');
		await busy([btn], async () => {
			try {
				await conn.rpc(promote ? 'room_promote' : 'room_demote', {room: this.room, user});
				if (!this.life.alive()) return;
				say(this.memberStatus, store.nick(user) + (promote ? ' is now an admin.' : ' is now a member.'), 'info');
				this.load();
			} catch (e) {
				if (!this.life.alive()) return;
				this.fail(e, {
					forbidden: promote ? 'Only the owner and admins may make admins.' : 'The owner cannot be demoted, and only the owner and admins may demote.',
					not_member: store.nick(user) + ' is no longer a member.',
				});
			}
		});
	}

	async remove(btn, user) {
		const nick = store.nick(user);
		if (!await confirmAction('Remove ' + nick + ' from #' + this.room + '?', 'Remove',
			'They stop receiving the room\u2019s messages at once.')) return;
		say(this.memberStatus, '');
		await busy([btn], async () => {
			try {
				await conn.rpc('room_remove', {room: this.room, user});
				if (!this.life.alive()) return;
				say(this.memberStatus, nick + ' was removed.', 'info');
				this.load();
			} catch (e) {
				if (!this.life.alive()) return;
				this.fail(e, {
					forbidden: 'The owner cannot be removed, and only the owner and admins may remove members.',
					not_member: nick + ' is no longer a member.',
				});
			}
		});
	}

	// A refusal, said where the person acted.
	fail(e, ctx, where = this.memberStatus) {
		say(where, errorText(e, ctx));
		this.load();
	}

	async leave(btn) {
		const n = (this.info.members || []).length;
		let detail = 'You will no longer receive its messages; someone must add you again to come back.';
		if (n <= 1) detail = 'You are its last member: the room is deleted when you leave.';
		else if (this.myRole === 'owner') detail = 'You own it: it goes to its longest-standing admin (else member). ' + detail;
		if (!await confirmAction('Leave #' + this.room + '?', 'Leave', detail)) return;
		await busy([btn], async () => {
			try {
				await conn.rpc('room_leave', {room: this.room});
				this.done('You left #' + this.room + '.');
			} catch (e) {
				if (!this.life.alive()) return;
				if (e.code === 'not_found') return this.done('You are not in #' + this.room + ' any more.');
				this.fail(e, {}, this.leaveStatus);
			}
		});
	}

	async del(btn) {
		if (!await confirmAction('Delete #' + this.room + ' for all its members?', 'Delete room',
			'Nobody can write in it any more, and its name cannot be used again for 30 days. This cannot be undone.')) return;
		await busy([btn], async () => {
			try {
				await conn.rpc('room_delete', {room: this.room});
				this.done('Room #' + this.room + ' deleted.');
			} catch (e) {
				if (!this.life.alive()) return;
				this.fail(e, {forbidden: 'Only the room\u2019s owner and admins may delete it.'}, this.leaveStatus);
			}
		});
	}

	// Out of the room: stop following it, back to the list.
	done(msg) {
		this.gone = true;
		try {
			conn.unsubscribeRoom(this.room);
		} catch {
			// Not subscribed: nothing to undo.
		}
		toast(msg, 'info');
		if (this.life.alive()) navigate('#/');
	}
}

// ---- #/settings ----

const PRIVACY_CHOICES = [
	['contacts', 'My contacts'],
	['everyone', 'Everyone'],
	['nobody', 'Nobody'],
];

function settingsView() {
	let life = null;
	return {
		mount(root) {
			life = lifetime();
			const s = new Settings(life);
			fill(root, s.node);
			s.start();
			focusHeading(s.node);
		},
		unmount() {
			if (life) life.end();
		},
	};
}

class Settings {
	constructor(life) {
		this.life = life;
		this.node = el('section', {id: 'settings', class: 'panel', 'aria-labelledby': 'settings-h'},
			el('header', {class: 'panel-head'},
				el('a', {class: 'panel-back', href: '#/', 'aria-label': 'Back to the conversations', title: 'Back to the conversations'}, '\u2190'),
				el('h2', {class: 'panel-title', id: 'settings-h', tabIndex: -1}, 'Settings'),
				el('span', {class: 'panel-sub'}, conn.me ? 'Logged in as ' + conn.me : '')),
			this.profileCard(),
			this.passwordCard(),
			this.privacyCard(),
			this.notificationsCard(),
			this.blocksCard(),
			this.devicesCard(),
			this.dataCard(),
			this.sessionCard(),
			this.deleteCard());
	}

	start() {
		this.loadProfile();
		this.loadPrivacy();
		this.loadNotifications();
		this.loadBlocks();
		this.loadDevices();
		// Nicks come in as whois answers arrive.
		this.life.listen(store, 'nick', debounce(() => {
			if (this.blockUsers && this.life.alive()) this.renderBlocks(this.blockUsers);
		}, 100));
		this.life.listen(store, 'blocks', () => {
			if (this.blocksLoaded && this.life.alive()) this.renderBlocks([...store.blocks].sort());
		});
		// After a reconnect, read everything again.
		this.life.listen(conn, 'ready', () => {
			this.loadProfile();
			this.loadPrivacy();
			this.loadNotifications();
			this.loadBlocks();
			this.loadDevices();
		});
	}

	// -- profile --

	profileCard() {
		const nick = el('input', {id: 'profile-nick', type: 'text', autocomplete: 'nickname', maxlength: '64'});
		const save = el('button', {id: 'profile-save', type: 'submit'}, 'Save');
		const status = statusLine('profile-status');
		const form = el('form', {id: 'profile-form', class: 'panel-form', novalidate: true},
			field('Nick', nick, 'What others see instead of your account name.'),
			status, el('div', {class: 'panel-buttons'}, save));
		nick.addEventListener('input', () => { nick.dataset.dirty = '1'; });
		form.addEventListener('submit', async (ev) => {
			ev.preventDefault();
			const v = nick.value.trim();
			if (!v) return say(status, 'Type a nick (1 to 64 bytes).');
			if (utf8Len(v) > 64) return say(status, 'A nick has at most 64 bytes (fewer characters for accented letters or emoji).');
			say(status, '');
			await busy([save], async () => {
				try {
					const a = await conn.rpc('profile', {nick: v});
					if (!this.life.alive()) return;
					delete nick.dataset.dirty;
					nick.value = a.nick || v;
					say(status, 'Saved.', 'info');
				} catch (e) {
					if (!this.life.alive()) return;
					say(status, errorText(e));
					nick.focus();
				}
			});
		});
		this.nick = nick;
		this.profileStatus = status;
		return el('section', {class: 'panel-card', id: 'settings-profile', 'aria-labelledby': 'settings-profile-h'},
			el('h3', {id: 'settings-profile-h'}, 'Profile'), form);
	}

	async loadProfile() {
		try {
			const a = await conn.rpc('profile');
			if (!this.life.alive()) return;
			loaded(this.profileStatus);
			if (!this.nick.dataset.dirty) this.nick.value = a.nick || '';
		} catch (e) {
			if (this.life.alive()) loadFailed(this.profileStatus, e);
		}
	}

	// -- password --

	passwordCard() {
		const old = el('input', {id: 'pw-old', type: 'password', autocomplete: 'current-password'});
		const nw = el('input', {id: 'pw-new', type: 'password', autocomplete: 'new-password', minlength: '8'});
		const others = el('input', {id: 'pw-revoke-others', type: 'checkbox'});
		const save = el('button', {id: 'pw-save', type: 'submit'}, 'Change password');
		const status = statusLine('pw-status');
		const form = el('form', {id: 'pw-form', class: 'panel-form', novalidate: true},
			field('Current password', old),
			field('New password', nw, 'At least 8 bytes.'),
			el('div', {class: 'panel-check'}, others, el('label', {for: 'pw-revoke-others'}, 'Also log out my other devices')),
			status, el('div', {class: 'panel-buttons'}, save));
		form.addEventListener('submit', async (ev) => {
			ev.preventDefault();
			const o = old.value, n = nw.value;
			if (!o) {
				old.focus();
				return say(status, 'Type your current password.');
			}
			const len = utf8Len(n);
			if (len < 8 || len > 1024) {
				nw.focus();
				return say(status, 'The new password needs 8 to 1024 bytes.');
			}
			if (/^mqt1\.[A-Za-z0-9_-]{43}$/.test(n)) {
				nw.focus();
				return say(status, 'That looks like a device token; pick another password.');
			}
			if (others.checked && !await confirmAction('Log out all your other devices too?', 'Change and log out',
				'They will need the new password to log in again. This device stays logged in.')) return;
			say(status, '');
			const args = {old: o, new: n};
			if (others.checked) {
				args.revoke_devices = 'others';
				args.device = conn.device;
			}
			await busy([save, old, nw, others], async () => {
				try {
					const a = await conn.rpc('passwd', args);
					if (!this.life.alive()) return;
					old.value = '';
					nw.value = '';
					others.checked = false;
					// This device logs in with its token, which a password
					// change leaves alone: nothing to renew here.
					let msg = 'Password changed. This device stays logged in; new logins need the new password.';
					if (args.revoke_devices) {
						const k = a.revoked || 0;
						msg += ' ' + (k === 1 ? '1 other device was' : k + ' other devices were') + ' logged out.';
						this.loadDevices();
					}
					say(status, msg, 'info');
				} catch (e) {
					if (!this.life.alive()) return;
					say(status, errorText(e, {
						bad_password: 'The current password is wrong.',
						weak_password: 'The new password needs 8 to 1024 bytes and must not look like a device token.',
						rate_limited: (err) => 'Too many password checks lately. Try again in ' + seconds(err) + '.',
					}));
					(e.code === 'weak_password' ? nw : old).focus();
				}
			});
		});
		return el('section', {class: 'panel-card', id: 'settings-password', 'aria-labelledby': 'settings-password-h'},
			el('h3', {id: 'settings-password-h'}, 'Password'), form);
	}

	// -- privacy --

	privacyCard() {
		const sel = (id) => el('select', {id}, PRIVACY_CHOICES.map(([v, label]) => el('option', {value: v}, label)));
		const presence = sel('privacy-presence');
		const adds = sel('privacy-room-adds');
		const status = statusLine('privacy-status');
		this.privacy = {presence: 'contacts', room_adds: 'contacts'};
		const change = async (node, key) => {
			const want = node.value;
			const before = this.privacy[key];
			if (want === before) return;
			say(status, '');
			node.setAttribute('aria-busy', 'true');
			const seq = (this.privacySeq = (this.privacySeq || 0) + 1);
			try {
				const a = await conn.rpc('privacy', {[key]: want});
				if (!this.life.alive()) return;
				if (seq === this.privacySeq) this.showPrivacy(a);
				say(status, 'Saved.', 'info');
			} catch (e) {
				if (!this.life.alive()) return;
				if (seq === this.privacySeq) node.value = this.privacy[key];
				say(status, errorText(e));
			} finally {
				node.removeAttribute('aria-busy');
			}
		};
		presence.addEventListener('change', () => change(presence, 'presence'));
		adds.addEventListener('change', () => change(adds, 'room_adds'));
		this.presenceSel = presence;
		this.addsSel = adds;
		this.privacyStatus = status;
		return el('section', {class: 'panel-card', id: 'settings-privacy', 'aria-labelledby': 'settings-privacy-h'},
			el('h3', {id: 'settings-privacy-h'}, 'Privacy'),
			field('Who sees when I am online', presence),
			field('Who may add me to rooms', adds),
			el('p', {class: 'panel-hint'}, 'Contacts: everyone who shares a room with you, and everyone you added or wrote to. Someone who only wrote to you is not a contact until you write back.'),
			status);
	}

	showPrivacy(a) {
		if (a.presence) this.privacy.presence = a.presence;
		if (a.room_adds) this.privacy.room_adds = a.room_adds;
		this.presenceSel.value = this.privacy.presence;
		this.addsSel.value = this.privacy.room_adds;
	}

	async loadPrivacy() {
		try {
			const a = await conn.rpc('privacy');
			if (!this.life.alive()) return;
			loaded(this.privacyStatus);
			this.showPrivacy(a);
		} catch (e) {
			if (this.life.alive()) loadFailed(this.privacyStatus, e);
		}
	}

	// -- notifications (push.js; docs/PUSH.md) --

	notificationsCard() {
		const on = el('input', {id: 'push-toggle', type: 'checkbox', role: 'switch'});
		const previews = el('input', {id: 'push-previews', type: 'checkbox', role: 'switch'});
		const status = statusLine('push-status');
		const supported = pushSupported();
		// Until the server says what it offers (loadNotifications).
		on.disabled = previews.disabled = true;
		on.addEventListener('change', () => {
			const want = on.checked;
			say(status, '');
			busy([on], async () => {
				try {
					if (want) await enablePush();
					else await disablePush();
					if (!this.life.alive()) return;
					say(status, want ? 'Notifications are on for this device.' : 'Notifications are off for this device.', 'info');
				} catch (e) {
					if (!this.life.alive()) return;
					on.checked = !want;
					say(status, errorText(e, {
						not_configured: 'This server does not send notifications to browsers.',
						not_found: 'Notifications were off already.',
						too_many_devices: 'You have notifications on as many devices as this server allows: turn them off on one.',
						bad_request: 'The server did not accept this browser’s subscription.',
					}));
				}
			});
		});
		previews.addEventListener('change', () => {
			const want = previews.checked;
			say(status, '');
			busy([previews], async () => {
				try {
					const a = await conn.rpc('push_settings', {previews: want});
					if (!this.life.alive()) return;
					previews.checked = !!a.previews;
					say(status, 'Saved.', 'info');
				} catch (e) {
					if (!this.life.alive()) return;
					previews.checked = !want;
					say(status, errorText(e));
				}
			});
		});
		this.pushToggle = on;
		this.pushPreviews = previews;
		this.pushStatus = status;
		return el('section', {class: 'panel-card', id: 'settings-notifications', 'aria-labelledby': 'settings-notifications-h'},
			el('h3', {id: 'settings-notifications-h'}, 'Notifications'),
			el('div', {class: 'panel-check'}, on, el('label', {for: 'push-toggle'}, 'Notifications on this device')),
			this.pushHint = el('p', {class: 'panel-hint', id: 'push-hint'}, supported
				? 'New messages show as notifications while mqchat is closed. Muted conversations stay quiet.'
				: 'This browser cannot show notifications from mqchat.'),
			el('div', {class: 'panel-check'}, previews, el('label', {for: 'push-previews'}, 'Message previews')),
			el('p', {class: 'panel-hint'}, 'Show the start of each message in its notification. Off: a notification says only who wrote.'),
			status);
	}

	async loadNotifications() {
		if (!conn.hello) return;  // not connected yet: 'ready' loads it
		const f = conn.hello && Array.isArray(conn.hello.features) ? conn.hello.features : [];
		if (!f.includes('push')) {
			this.pushToggle.disabled = this.pushPreviews.disabled = true;
			say(this.pushStatus, 'This server does not send notifications.', 'info');
			this.pushStatus.dataset.from = 'load';
			return;
		}
		this.pushPreviews.disabled = false;
		try {
			const [settings, cfg, enabled] = await Promise.all([conn.rpc('push_settings'),
				conn.rpc('push_config'), pushSupported() ? pushEnabled() : false]);
			if (!this.life.alive()) return;
			loaded(this.pushStatus);
			this.pushPreviews.checked = !!settings.previews;
			// A browser can have them only where the server sends Web Push.
			const webpush = Array.isArray(cfg.providers) && cfg.providers.includes('webpush');
			if (pushSupported() && !webpush) text(this.pushHint, 'This server does not send notifications to browsers.');
			this.pushToggle.disabled = !pushSupported() || (!webpush && !enabled);
			if (!this.pushToggle.matches('[aria-busy]')) this.pushToggle.checked = enabled;
		} catch (e) {
			if (this.life.alive()) loadFailed(this.pushStatus, e);
		}
	}

	// -- blocks --

	blocksCard() {
		this.blocks = el('ul', {id: 'blocks', class: 'panel-list', 'aria-labelledby': 'settings-blocks-h'});
		this.blocksEmpty = el('p', {class: 'panel-hint', id: 'blocks-empty', hidden: true}, 'You block nobody.');
		const input = el('input', {id: 'block-user', type: 'text', autocomplete: 'off', autocapitalize: 'none',
			spellcheck: 'false', maxlength: '32', placeholder: 'account name'});
		const go = el('button', {id: 'block-go', type: 'submit'}, 'Block');
		const status = statusLine('blocks-status');
		const form = el('form', {id: 'block-form', class: 'panel-form panel-inline', novalidate: true},
			el('label', {for: 'block-user'}, 'Block someone'),
			el('div', {class: 'panel-row'}, input, go));
		form.addEventListener('submit', async (ev) => {
			ev.preventDefault();
			const user = input.value.trim().toLowerCase();
			if (!NAME_RE.test(user)) {
				input.focus();
				return say(status, 'Type an account name: 1 to 32 of a-z, 0-9, _ . - starting with a letter or digit.');
			}
			if (user === conn.me) return say(status, 'You cannot block yourself.');
			say(status, '');
			await busy([go], async () => {
				try {
					await conn.rpc('block', {user});
					if (!this.life.alive()) return;
					input.value = '';
					say(status, store.nick(user) + ' is blocked.', 'info');
					this.loadBlocks();
				} catch (e) {
					if (!this.life.alive()) return;
					say(status, errorText(e, {
						bad_request: 'You cannot block yourself, or that is not an account name.',
						not_found: 'There is no account named \u201c' + user + '\u201d.',
					}));
				}
			});
		});
		this.blocksStatus = status;
		return el('section', {class: 'panel-card', id: 'settings-blocks', 'aria-labelledby': 'settings-blocks-h'},
			el('h3', {id: 'settings-blocks-h'}, 'Blocked people'),
			el('p', {class: 'panel-hint'}, 'Their direct messages to you are refused, and this app hides what they write.'),
			this.blocks, this.blocksEmpty, form, status);
	}

	// The store follows block, unblock and blocked answers itself (its
	// conn 'rpc' listener), so hidden messages update without a word here,
	// and the list is drawn from the store: an answer to a `blocked` asked
	// before an unblock (this panel's or one made while it opened) is not
	// the state any more, and the store knows which came last.
	async loadBlocks() {
		try {
			await conn.rpc('blocked');
			if (!this.life.alive()) return;
			loaded(this.blocksStatus);
			this.blocksLoaded = true;
			this.renderBlocks([...store.blocks].sort());
		} catch (e) {
			if (this.life.alive()) loadFailed(this.blocksStatus, e);
		}
	}

	renderBlocks(users) {
		this.blockUsers = users;
		const hadFocus = this.blocks.contains(document.activeElement);
		fill(this.blocks, users.map((u) => {
			const nick = store.nick(u);
			const b = el('button', {type: 'button', class: 'unblock', 'aria-label': 'Unblock ' + nick,
				onclick: () => this.unblock(b, u)}, 'Unblock');
			return el('li', {class: 'blocked', 'data-user': u},
				el('span', {class: 'member-who'}, el('span', {class: 'member-nick'}, nick),
					nick !== u ? el('span', {class: 'member-user'}, u) : null),
				b);
		}));
		this.blocksEmpty.hidden = users.length > 0;
		this.blocks.hidden = users.length === 0;
		if (hadFocus) {
			const first = this.blocks.querySelector('.unblock');
			(first || document.getElementById('block-user')).focus();
		}
	}

	async unblock(btn, user) {
		say(this.blocksStatus, '');
		await busy([btn], async () => {
			try {
				await conn.rpc('unblock', {user});
				if (!this.life.alive()) return;
				say(this.blocksStatus, store.nick(user) + ' is unblocked.', 'info');
				await this.loadBlocks();
			} catch (e) {
				if (this.life.alive()) say(this.blocksStatus, errorText(e));
			}
		});
	}

	// -- devices --

	devicesCard() {
		this.devices = el('ul', {id: 'devices', class: 'panel-list', 'aria-labelledby': 'settings-devices-h'});
		this.devicesEmpty = el('p', {class: 'panel-hint', hidden: true}, 'No device holds a token.');
		const others = el('button', {id: 'logout-others', type: 'button', class: 'danger'}, 'Log out other devices');
		others.addEventListener('click', async () => {
			if (!await confirmAction('Log out all your other devices?', 'Log them out',
				'Each must log in with your password again. This device stays logged in.')) return;
			say(this.devicesStatus, '');
			await busy([others], async () => {
				try {
					const a = await conn.rpc('device_revoke', {others: conn.device});
					if (!this.life.alive()) return;
					const k = a.revoked || 0;
					say(this.devicesStatus, k === 0 ? 'No other device was logged in.'
						: (k === 1 ? '1 device was' : k + ' devices were') + ' logged out.', 'info');
					this.loadDevices();
				} catch (e) {
					if (this.life.alive()) say(this.devicesStatus, errorText(e));
				}
			});
		});
		this.devicesStatus = statusLine('devices-status');
		return el('section', {class: 'panel-card', id: 'settings-devices', 'aria-labelledby': 'settings-devices-h'},
			el('h3', {id: 'settings-devices-h'}, 'Devices'),
			el('p', {class: 'panel-hint'}, 'Each browser or app you logged in with keeps a token instead of your password.'),
			this.devices, this.devicesEmpty, this.devicesStatus,
			el('div', {class: 'panel-buttons'}, others));
	}

	async loadDevices() {
		try {
			const a = await conn.rpc('devices');
			if (!this.life.alive()) return;
			loaded(this.devicesStatus);
			this.renderDevices(a.devices || []);
		} catch (e) {
			if (this.life.alive()) loadFailed(this.devicesStatus, e);
		}
	}

	renderDevices(list) {
		const hadFocus = this.devices.contains(document.activeElement);
		// This device first, then the most recently seen.
		const sorted = list.slice().sort((x, y) =>
			(y.device === conn.device) - (x.device === conn.device) ||
			(y.last_seen || y.created || 0) - (x.last_seen || x.created || 0));
		fill(this.devices, sorted.map((d) => {
			const current = d.device === conn.device;
			// last_seen 0: no login since the token was issued.
			const times = ['Token issued ' + (d.created ? fmtTime(d.created) : '?')];
			if (current) times.push('in use now');
			else if (d.last_seen) times.push('last login ' + fmtTime(d.last_seen));
			else times.push('no login with it since');
			let revoke = null;
			if (!current) {
				revoke = el('button', {type: 'button', class: 'device-revoke danger', 'aria-label': 'Log out ' + d.device,
					onclick: () => this.revoke(revoke, d.device)}, 'Log out');
			}
			return el('li', {class: 'device' + (current ? ' current' : ''), 'data-device': d.device},
				el('span', {class: 'device-info'},
					el('span', {class: 'device-name'}, d.device, current ? el('span', {class: 'device-this'}, ' (this device)') : null),
					el('span', {class: 'device-times panel-hint'}, times.join(' \u00b7 '))),
				revoke);
		}));
		this.devicesEmpty.hidden = sorted.length > 0;
		if (hadFocus) {
			const b = this.devices.querySelector('.device-revoke');
			(b || document.getElementById('logout-others')).focus();
		}
	}

	async revoke(btn, device) {
		if (!await confirmAction('Log out the device \u201c' + device + '\u201d?', 'Log out',
			'It must log in with your password again.')) return;
		say(this.devicesStatus, '');
		await busy([btn], async () => {
			try {
				await conn.rpc('device_revoke', {device});
				if (!this.life.alive()) return;
				say(this.devicesStatus, '\u201c' + device + '\u201d was logged out.', 'info');
				this.loadDevices();
			} catch (e) {
				if (!this.life.alive()) return;
				say(this.devicesStatus, errorText(e, {not_found: '\u201c' + device + '\u201d was logged out already.'}));
				this.loadDevices();
			}
		});
	}

	// -- your data --

	dataCard() {
		const go = el('button', {id: 'export-data', type: 'button'}, 'Download my data');
		const status = statusLine('export-status');
		go.addEventListener('click', () => busy([go], () => this.exportData(status)));
		return el('section', {class: 'panel-card', id: 'settings-data', 'aria-labelledby': 'settings-data-h'},
			el('h3', {id: 'settings-data-h'}, 'Your data'),
			el('p', {class: 'panel-hint'}, 'Everything the service keeps about you (account, settings, lists and the messages you sent or received) as a JSON file.'),
			status, el('div', {class: 'panel-buttons'}, go));
	}

	async exportData(status) {
		say(status, 'Preparing\u2026', 'info');
		const out = {exported: new Date().toISOString()};
		const LISTS = ['devices', 'rooms', 'contacts', 'blocks'];
		const messages = [];
		try {
			let a = await conn.rpc('export', {}, {timeout: 30000});
			for (const k of ['account', 'privacy']) if (a[k]) out[k] = a[k];
			for (const k of LISTS) out[k] = Array.isArray(a[k]) ? a[k].slice() : [];
			// Lists too long for one answer come in parts.
			let guard = 0;
			while (a.lists_next && guard++ < 1000) {
				a = await conn.rpc('export', {lists_from: a.lists_next}, {timeout: 30000});
				for (const k of LISTS) if (Array.isArray(a[k])) out[k].push(...a[k]);
				if (!this.life.alive()) return;
			}
			let after = 0;
			for (;;) {
				const page = Array.isArray(a.messages) ? a.messages : [];
				for (const m of page) {
					messages.push(m);
					if (typeof m.seq === 'number' && m.seq > after) after = m.seq;
				}
				if (!a.more) break;
				if (!this.life.alive()) return;
				say(status, 'Preparing\u2026 ' + messages.length + ' messages so far.', 'info');
				a = await conn.rpc('export', {after}, {timeout: 30000});
			}
		} catch (e) {
			if (this.life.alive()) say(status, 'The export failed: ' + errorText(e));
			return;
		}
		out.messages = messages;
		const blob = new Blob([JSON.stringify(out, null, 1)], {type: 'application/json'});
		const url = URL.createObjectURL(blob);
		const a = el('a', {href: url, download: 'mqchat-' + (conn.me || 'data') + '-' + out.exported.slice(0, 10) + '.json', hidden: true});
		document.body.appendChild(a);
		a.click();
		a.remove();
		setTimeout(() => URL.revokeObjectURL(url), 60000);
		if (this.life.alive()) {
			say(status, 'Downloaded: ' + messages.length + (messages.length === 1 ? ' message.' : ' messages.'), 'info');
		}
	}

	// -- delete the account (PROTOCOL.md "Your data": how the app learns
	// it worked) --

	deleteCard() {
		const pw = el('input', {id: 'delete-password', type: 'password', autocomplete: 'current-password'});
		const erase = el('input', {id: 'delete-erase', type: 'checkbox'});
		const go = el('button', {id: 'delete-account', type: 'submit', class: 'danger'}, 'Delete my account');
		const status = statusLine('delete-status');
		const form = el('form', {id: 'delete-form', class: 'panel-form', novalidate: true},
			field('Your password', pw),
			el('div', {class: 'panel-check'}, erase, el('label', {for: 'delete-erase'},
				'Also erase every message I sent or received')),
			status, el('div', {class: 'panel-buttons'}, go));
		form.addEventListener('submit', async (ev) => {
			ev.preventDefault();
			if (!pw.value) {
				pw.focus();
				return say(status, 'Type your password.');
			}
			if (!await confirmAction('Delete the account ' + conn.me + ' for good?', 'Delete my account',
				(erase.checked ? 'Your messages are erased for everyone. ' : 'The people you wrote with keep your messages. ') +
				'Every device is logged out, and the name cannot be registered again for 30 days. This cannot be undone.')) return;
			say(status, '');
			await busy([go, pw, erase], () => this.deleteAccount(pw.value, erase.checked, status, pw));
		});
		return el('section', {class: 'panel-card panel-danger', id: 'settings-delete', 'aria-labelledby': 'settings-delete-h'},
			el('h3', {id: 'settings-delete-h'}, 'Delete account'), form);
	}

	async deleteAccount(password, erase, status, pw) {
		// The server closes every connection of the account, this one
		// too, before its answer can leave: the `ok` rarely comes. The
		// connection then fails to log in again with this device's token
		// (refused), and the app goes back to its login: say why there.
		const me = conn.me;
		let pending = true;
		const stop = () => {
			pending = false;
			conn.removeEventListener('login', onLogin);
			conn.removeEventListener('state', onState);
		};
		const deleted = () => {
			stop();
			toast('The account ' + me + ' was deleted.', 'info');
		};
		const onLogin = () => {
			if (pending) deleted();
		};
		// A connection that logged in with the password (this session's
		// first) goes to state 'login' without a 'login' event: forget
		// the session here, which shows the login.
		const onState = (ev) => {
			if (!pending || !ev.detail || ev.detail.state !== 'login') return;
			deleted();
			conn.logout().catch(() => {});
		};
		conn.addEventListener('login', onLogin);
		conn.addEventListener('state', onState);
		try {
			await conn.rpc('delete_account', {password, erase}, {timeout: 15000});
			if (!pending) return;
			deleted();
			await conn.logout();
		} catch (e) {
			if (!pending) return;
			stop();
			if (!this.life.alive()) return;
			if (e.code === 'timeout' || e.code === 'offline') {
				say(status, 'No answer from the server. If this app is still logged in, the account was not deleted: try again.');
				return;
			}
			say(status, errorText(e, {
				bad_password: 'The password is wrong: nothing was deleted.',
				rate_limited: (err) => 'Too many password checks lately: nothing was deleted. Try again in ' + seconds(err) + '.',
				forbidden: 'This account is a service: only an operator may delete it.',
			}));
			pw.focus();
		}
	}

	// -- log out --

	sessionCard() {
		const out = el('button', {id: 'logout', type: 'button', class: 'danger'}, 'Log out');
		out.addEventListener('click', () => busy([out], async () => {
			try {
				await conn.logout();
			} catch (e) {
				toast(errorText(e), 'error');
			}
		}));
		return el('section', {class: 'panel-card', id: 'settings-session'},
			el('h3', {}, 'This device'),
			el('p', {class: 'panel-hint'}, 'Logging out forgets this device\u2019s token; you need your password to come back.'),
			el('div', {class: 'panel-buttons'}, out));
	}
}

registerView('room-new', roomNewView());
registerView('room', roomView());
registerView('settings', settingsView());
