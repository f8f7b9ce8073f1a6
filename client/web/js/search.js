// search.js - the search view (#/search): the `search` op (PROTOCOL.md
// "search") over every conversation or the one shown last, newest first,
// paged with `before` = `next`; a hit opens its conversation at that
// message.

import {el, fill, text, fmtTime, debounce, utf8Len} from './util.js';
import {conn} from './conn.js';
import {store} from './store.js';
import {registerView, toast} from './app.js';
import {currentConv, openAt} from './chat.js';

const LIMIT = 20;
const AUTO_PAGES = 5;     // pages asked by themselves while a page comes short
const CONTEXT = 60;       // characters shown on each side of the match

let last = {q: '', scope: 'all'};   // kept across visits: back from a hit shows the same results
let view = null;

function convOf(m) {
	if (m.room) return 'r:' + m.room;
	const peer = m.from === conn.me ? (m.to || m.from) : m.from;
	return 'u:' + peer;
}

function convName(key) {
	if (key.startsWith('r:')) {
		const c = store.conv(key);
		return (c && c.title) || '#' + key.slice(2);
	}
	const name = key.slice(2);
	return name === conn.me ? store.nick(name) + ' (notes)' : store.nick(name);
}

// The body cut around the first match, the match in <mark> (all text nodes).
function snippet(body, q) {
	const lower = body.toLowerCase(), ql = q.toLowerCase();
	const i = lower.indexOf(ql);
	if (i < 0 || lower.length !== body.length) {
		return [body.length > 2 * CONTEXT ? body.slice(0, 2 * CONTEXT) + '…' : body];
	}
	const a = Math.max(0, i - CONTEXT), b = Math.min(body.length, i + q.length + CONTEXT);
	return [(a > 0 ? '…' : '') + body.slice(a, i), el('mark', null, body.slice(i, i + q.length)),
		body.slice(i + q.length, b) + (b < body.length ? '…' : '')];
}

class SearchView {
	constructor(root, params = {}) {
		view = this;
		this.token = 0;
		this.next = null;
		this.more = false;
		this.busy = 0;
		this.count = 0;
		this.input = el('input', {id: 'search-input', type: 'search', placeholder: 'Search messages',
			'aria-label': 'Search messages', autocomplete: 'off', maxlength: '256', enterkeyhint: 'search'});
		this.scope = el('select', {id: 'search-scope', 'aria-label': 'Where to search'},
			el('option', {value: 'all'}, 'All conversations'));
		const cur = currentConv();
		if (cur) this.scope.appendChild(el('option', {value: cur}, 'In ' + convName(cur)));
		this.note = el('div', {class: 'search-note', id: 'search-note', 'aria-live': 'polite'});
		this.results = el('ol', {id: 'search-results', 'aria-label': 'Results'});
		this.moreBtn = el('button', {id: 'search-more', type: 'button', hidden: true,
			onclick: () => this.page()}, 'More results');
		const form = el('form', {class: 'search-form', role: 'search', onsubmit: (e) => {
			e.preventDefault();
			this.run();
		}}, this.input, this.scope);
		this.section = el('section', {id: 'search-view'},
			el('header', {class: 'search-head'},
				el('a', {class: 'search-back', href: '#/', title: 'Back to the list', 'aria-label': 'Back'}),
				el('h2', null, 'Search')),
			form, this.note,
			el('div', {class: 'search-body'}, this.results, this.moreBtn));
		fill(root, this.section);
		if (params.q) last = {q: params.q, scope: params.conv || 'all'};
		if (last.scope !== 'all' && ![...this.scope.options].some((o) => o.value === last.scope) &&
			/^[ur]:/.test(last.scope)) {
			this.scope.appendChild(el('option', {value: last.scope}, 'In ' + convName(last.scope)));
		}
		this.input.value = last.q;
		this.scope.value = [...this.scope.options].some((o) => o.value === last.scope) ? last.scope : 'all';
		// Typing searches after a pause, only when the words changed; Enter
		// (or the scope) asks again in any case.
		this.debounced = debounce(() => this.run(false), 350);
		this.input.addEventListener('input', () => this.debounced());
		this.scope.addEventListener('change', () => this.run());
		this.results.addEventListener('click', (e) => {
			const b = e.target.closest('.search-hit');
			if (b) openAt(b.dataset.conv, Number(b.dataset.seq));
		});
		if (last.q) this.run();
		else this.hint('');
		this.input.focus();
	}

	hint(q) {
		if (!q) text(this.note, 'Type at least 3 characters to search your messages.');
		else text(this.note, 'Type at least 3 characters.');
	}

	// A new search: from the newest. The results shown stay until the
	// first page of the new ones comes.
	run(force = true) {
		const q = this.input.value.trim();
		if (!force && q === this.asked && this.scope.value === this.askedScope) return;
		this.asked = q;
		this.askedScope = this.scope.value;
		last = {q: this.input.value, scope: this.scope.value};
		this.token++;
		this.next = null;
		this.more = false;
		this.count = 0;
		this.fresh = true;
		this.moreBtn.hidden = true;
		if ([...q].length < 3) {
			fill(this.results);
			this.hint(q);
			return;
		}
		if (utf8Len(q) > 256) {
			fill(this.results);
			text(this.note, 'That is too long to search for (256 bytes at most).');
			return;
		}
		if (conn.hello && Array.isArray(conn.hello.features) && !conn.hello.features.includes('search')) {
			text(this.note, 'This server does not offer search.');
			return;
		}
		this.q = q;
		this.page(AUTO_PAGES);
	}

	// One page more (and, while pages come short, up to `auto` more).
	async page(auto = 1) {
		if (this.busy === this.token) return;
		const token = this.token, q = this.q;
		const args = {text: q, limit: LIMIT};
		const sc = this.scope.value;
		if (sc.startsWith('r:')) args.room = sc.slice(2);
		else if (sc.startsWith('u:')) args.with = sc.slice(2);
		let got = 0;
		this.busy = token;
		text(this.note, 'Searching...');
		this.moreBtn.hidden = true;
		try {
			for (let i = 0; i < auto; i++) {
				if (this.next !== null) args.before = this.next;
				const a = await conn.rpc('search', args);
				if (token !== this.token || view !== this) return;
				const msgs = a.messages || [];
				if (this.fresh) {
					this.fresh = false;
					fill(this.results);
				}
				for (const m of msgs) this.results.appendChild(this.hit(m, q));
				got += msgs.length;
				this.count += msgs.length;
				this.more = !!a.more && a.next !== undefined;
				this.next = this.more ? a.next : null;
				if (!this.more || got >= LIMIT) break;
			}
		} catch (e) {
			if (token !== this.token || view !== this) return;
			if (this.fresh) {
				this.fresh = false;
				fill(this.results);
			}
			text(this.note, 'Search failed: ' + (e.code === 'offline' ? 'you are offline' : (e.message || e.code)));
			toast('Search failed: ' + (e.message || e.code), 'error');
			this.moreBtn.hidden = !this.more;
			return;
		} finally {
			if (this.busy === token) this.busy = 0;
		}
		if (this.fresh) {
			this.fresh = false;
			fill(this.results);
		}
		if (this.count === 0) text(this.note, this.more ? 'Nothing found yet.' : 'Nothing found.');
		else text(this.note, this.count + (this.count === 1 ? ' result' : ' results') + (this.more ? ' so far' : ''));
		this.moreBtn.hidden = !this.more;
	}

	hit(m, q) {
		const key = convOf(m);
		const t = m.server_ts || m.ts;
		return el('li', {class: 'search-hit', 'data-conv': key, 'data-seq': m.seq},
			el('button', {type: 'button'},
				el('div', {class: 'hit-head'},
					el('span', {class: 'hit-conv'}, convName(key)),
					el('time', {datetime: t ? new Date(t).toISOString() : ''}, fmtTime(t))),
				el('div', {class: 'hit-text'},
					el('span', {class: 'hit-from'}, (m.from === conn.me ? 'You' : store.nick(m.from)) + ': '),
					snippet(m.body || '', q))));
	}
}

registerView('search', {
	mount(root, params) {
		view = new SearchView(root, params || {});
	},
	unmount() {
		view = null;
	},
});
