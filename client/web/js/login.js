// login.js - the login and registration forms (docs/PROTOCOL.md
// "Registration", "Why a login was refused").
//
// Logging in asks the password once: conn keeps a device token from then
// on. Registration is offered always; a server where it is off or needs an
// invitation says so (`closed`, `invite_required`) and the form shows it.

import {conn} from './conn.js';
import {el, fill, text, NAME_RE} from './util.js';

let done = null;   // called once logged in
let built = false;

export function showLogin(reason, onDone) {
	done = onDone;
	const root = document.getElementById('login');
	if (!built) build(root);
	root.hidden = false;
	showForm('login');
	const err = document.getElementById('login-error');
	text(err, reason || '');
	err.hidden = !reason;
	const user = document.getElementById('login-user');
	if (!user.value) {
		const s = conn.session();
		if (s) user.value = s.user;
	}
	document.getElementById('login-password').value = '';
	(user.value ? document.getElementById('login-password') : user).focus();
}

export function hideLogin() {
	const root = document.getElementById('login');
	if (root) root.hidden = true;
}

function showForm(which) {
	document.getElementById('login-form').hidden = which !== 'login';
	document.getElementById('register-form').hidden = which !== 'register';
	const h = document.getElementById('login-heading');
	text(h, which === 'login' ? 'Log in to mqchat' : 'Create an account');
}

function field(id, label, attrs) {
	return el('label', {class: 'field', for: id},
		el('span', {class: 'field-label'}, label),
		el('input', {id, name: id, ...attrs}));
}

function build(root) {
	built = true;
	const loginForm = el('form', {id: 'login-form', class: 'login-form', novalidate: true},
		field('login-user', 'Name', {type: 'text', autocomplete: 'username', autocapitalize: 'none',
			spellcheck: 'false', required: true, maxlength: '32'}),
		field('login-password', 'Password', {type: 'password', autocomplete: 'current-password', required: true}),
		el('p', {id: 'login-error', class: 'form-error', role: 'alert', hidden: true}),
		el('button', {id: 'login-submit', type: 'submit', class: 'primary'}, 'Log in'),
		el('p', {class: 'form-alt'}, 'No account yet? ',
			el('button', {id: 'show-register', type: 'button', class: 'link'}, 'Create one')));
	const regForm = el('form', {id: 'register-form', class: 'login-form', novalidate: true, hidden: true},
		field('reg-user', 'Name (a-z, 0-9, _ . -)', {type: 'text', autocomplete: 'username', autocapitalize: 'none',
			spellcheck: 'false', required: true, maxlength: '32'}),
		field('reg-password', 'Password (8 characters or more)', {type: 'password', autocomplete: 'new-password', required: true}),
		field('reg-nick', 'Display name (optional)', {type: 'text', autocomplete: 'nickname', maxlength: '64'}),
		field('reg-invite', 'Invitation code (if the server asks for one)', {type: 'text', autocomplete: 'off', spellcheck: 'false'}),
		el('p', {id: 'reg-error', class: 'form-error', role: 'alert', hidden: true}),
		el('button', {id: 'reg-submit', type: 'submit', class: 'primary'}, 'Create account'),
		el('p', {class: 'form-alt'}, 'Have an account? ',
			el('button', {id: 'show-login', type: 'button', class: 'link'}, 'Log in')));
	fill(root, el('div', {class: 'login-card'},
		el('h1', {class: 'brand'}, 'mqchat'),
		el('h2', {id: 'login-heading'}, 'Log in to mqchat'),
		loginForm, regForm));

	loginForm.addEventListener('submit', onLogin);
	regForm.addEventListener('submit', onRegister);
	document.getElementById('show-register').addEventListener('click', () => {
		showForm('register');
		const u = document.getElementById('login-user').value.trim();
		const ru = document.getElementById('reg-user');
		if (u && !ru.value) ru.value = u.toLowerCase();
		ru.focus();
	});
	document.getElementById('show-login').addEventListener('click', () => {
		showForm('login');
		document.getElementById('login-user').focus();
	});
}

function setError(id, msg) {
	const e = document.getElementById(id);
	text(e, msg || '');
	e.hidden = !msg;
}

function busy(button, on, label) {
	button.disabled = on;
	text(button, label);
	button.setAttribute('aria-busy', on ? 'true' : 'false');
}

async function onLogin(ev) {
	ev.preventDefault();
	const user = document.getElementById('login-user').value.trim().toLowerCase();
	const pw = document.getElementById('login-password').value;
	const btn = document.getElementById('login-submit');
	if (!NAME_RE.test(user)) {
		setError('login-error', 'Type your account name (a-z, 0-9, _ . -).');
		document.getElementById('login-user').focus();
		return;
	}
	if (!pw) {
		setError('login-error', 'Type your password.');
		document.getElementById('login-password').focus();
		return;
	}
	setError('login-error', '');
	busy(btn, true, 'Logging in...');
	try {
		await conn.login(user, pw);
		document.getElementById('login-password').value = '';
		if (done) done();
	} catch (e) {
		setError('login-error', e.message || 'The login failed.');
		document.getElementById('login-password').focus();
	} finally {
		busy(btn, false, 'Log in');
	}
}

async function onRegister(ev) {
	ev.preventDefault();
	const user = document.getElementById('reg-user').value.trim().toLowerCase();
	const pw = document.getElementById('reg-password').value;
	const nick = document.getElementById('reg-nick').value.trim();
	const invite = document.getElementById('reg-invite').value.trim();
	const btn = document.getElementById('reg-submit');
	if (!NAME_RE.test(user)) {
		setError('reg-error', 'Names are 1 to 32 of a-z, 0-9, _ . - (starting with a letter or digit).');
		document.getElementById('reg-user').focus();
		return;
	}
	if (new TextEncoder().encode(pw).length < 8) {
		setError('reg-error', 'The password needs at least 8 characters.');
		document.getElementById('reg-password').focus();
		return;
	}
	setError('reg-error', '');
	busy(btn, true, 'Creating...');
	try {
		await conn.register(user, pw, nick, invite);
	} catch (e) {
		setError('reg-error', e.message || 'Registration failed.');
		if (e.code === 'invite_required' || e.code === 'invite_invalid') document.getElementById('reg-invite').focus();
		busy(btn, false, 'Create account');
		return;
	}
	busy(btn, true, 'Logging in...');
	try {
		await conn.login(user, pw);
		document.getElementById('reg-password').value = '';
		if (done) done();
	} catch (e) {
		setError('reg-error', 'The account was made, but logging in failed: ' + e.message);
	} finally {
		busy(btn, false, 'Create account');
	}
}
