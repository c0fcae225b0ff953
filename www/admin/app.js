// The kiln admin dashboard (docs/admin.md, "The dashboard"). Plain ES
// module, no framework, no build step. The page's Content-Security-Policy
// allows only its own script, style and origin, so: no inline script or
// style, and every piece of data goes into the DOM as text (textContent,
// never innerHTML).
//
// Tokens live in memory only: reloading the page signs out. A 401 from the
// API is answered once by a refresh (POST /auth/refresh with the in-memory
// refresh token); when that fails too the page goes back to sign-in.

import { PALETTE, drawChart } from './charts.js';

const REFRESH_MS = 2000; // stats polling period
const HISTORY_MS = 5 * 60 * 1000; // chart span kept client-side
const MAINTENANCE_EVERY = 5; // maintenance state: every 5th stats poll
const QUEUE_STATES = ['available', 'running', 'scheduled', 'retryable'];
const LATENCIES = [
	['p50', 'p50_ms', 0],
	['p95', 'p95_ms', 3],
	['p99', 'p99_ms', 6],
];
const RETRYABLE = new Set(['discarded', 'cancelled', 'retryable']);
const DISCARDABLE = new Set(['available', 'scheduled', 'retryable']);

const state = {
	access: null,
	refresh: null,
	me: null,
	generation: 0, // bumped at every sign-in/out: late answers are dropped
	refreshing: null,
	timer: null,
	polls: 0,
	history: [], // {t, apps: {name: {...}}, queue}
	colors: new Map(), // app -> palette index, stable for the session
	latest: null,
	maintenance: null,
	cursors: { users: null, jobs: null, audit: null },
	loaded: new Set(), // views loaded since sign-in
};

const $ = (id) => document.getElementById(id);

// el(tag, props, ...children): a new element; props are assigned as DOM
// properties except "class", data-* and aria-* (attributes); children are nodes or
// strings (text nodes). Returns the element.
function el(tag, props, ...children) {
	const node = document.createElement(tag);
	for (const [k, v] of Object.entries(props || {})) {
		if (v === undefined || v === null) continue;
		if (k === 'class') node.className = v;
		else if (k.startsWith('data-') || k.startsWith('aria-')) node.setAttribute(k, String(v));
		else node[k] = v;
	}
	for (const c of children) {
		if (c === null || c === undefined || c === false) continue;
		node.append(c instanceof Node ? c : document.createTextNode(String(c)));
	}
	return node;
}

// ------------------------------------------------------------------ API

class ApiError extends Error {
	constructor(status, problem, statusText) {
		super((problem && (problem.detail || problem.title)) || statusText || `HTTP ${status}`);
		this.status = status;
		this.problem = problem || {};
	}
}

class SignedOut extends Error {}

// request(method, path, body, opts): the parsed JSON answer (null when the
// body is empty). Throws ApiError for a non-2xx status, SignedOut when the
// session ended (after a failed refresh), TypeError when unreachable.
async function request(method, path, body, opts = {}) {
	const auth = opts.auth !== false;
	const gen = state.generation;
	const headers = { Accept: 'application/json, application/problem+json' };
	if (body !== undefined) headers['Content-Type'] = 'application/json';
	if (auth) {
		if (!state.access) throw new SignedOut('signed out');
		headers.Authorization = `Bearer ${state.access}`;
	}
	const res = await fetch(path, {
		method,
		headers,
		body: body === undefined ? undefined : JSON.stringify(body),
		cache: 'no-store',
		credentials: 'omit',
	});
	if (auth && gen !== state.generation) throw new SignedOut('signed out');
	if (auth && res.status === 401) {
		if (opts.retried !== true && (await refreshTokens(gen))) {
			return request(method, path, body, { ...opts, retried: true });
		}
		sessionEnded('Your session has ended. Sign in again.');
		throw new SignedOut('session ended');
	}
	const text = await res.text();
	let data = null;
	if (text) {
		try {
			data = JSON.parse(text);
		} catch {
			data = null;
		}
	}
	if (!res.ok) throw new ApiError(res.status, data, res.statusText);
	return data;
}

// refreshTokens(gen): true when the in-memory refresh token gave a new pair.
// Concurrent callers share one refresh.
function refreshTokens(gen) {
	if (!state.refresh) return Promise.resolve(false);
	if (!state.refreshing) {
		state.refreshing = (async () => {
			try {
				const t = await request('POST', '/auth/refresh', { refresh_token: state.refresh }, { auth: false });
				if (gen !== state.generation) return false;
				state.access = t.access_token;
				state.refresh = t.refresh_token;
				return true;
			} catch {
				return false;
			} finally {
				state.refreshing = null;
			}
		})();
	}
	return state.refreshing;
}

// showProblem(node, err): render an error (problem+json detail and each
// errors[] entry, or a network failure) into node and show it.
function showProblem(node, err) {
	if (err instanceof SignedOut) return;
	let summary;
	let items = [];
	if (err instanceof ApiError) {
		const p = err.problem;
		summary = `${p.detail || p.title || err.message} (HTTP ${err.status})`;
		if (Array.isArray(p.errors)) {
			items = p.errors.map((e) => (e && e.field ? `${e.field}: ${e.reason}` : String(e && e.reason)));
		}
	} else if (err instanceof TypeError) {
		summary = 'The server could not be reached.';
	} else {
		summary = err && err.message ? err.message : String(err);
	}
	const list = items.length ? el('ul', {}, ...items.map((t) => el('li', {}, t))) : null;
	node.replaceChildren(el('p', {}, summary), ...(list ? [list] : []));
	node.hidden = false;
}

function clearProblem(node) {
	node.replaceChildren();
	node.hidden = true;
}

function notice(node, text) {
	node.textContent = text;
	node.hidden = false;
}

// ------------------------------------------------------------------ formatting

function fmtNum(v, digits) {
	return v === null || v === undefined || Number.isNaN(v) ? '—' : Number(v).toFixed(digits);
}

function fmtMs(v) {
	if (v === null || v === undefined) return '—';
	return v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0);
}

function fmtPct(v) {
	return v === null || v === undefined ? '—' : `${(v * 100).toFixed(2)} %`;
}

function fmtDuration(ms) {
	if (ms === null || ms === undefined) return '—';
	if (ms < 1000) return `${Math.round(ms)} ms`;
	if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
	if (ms < 3600000) return `${(ms / 60000).toFixed(1)} min`;
	return `${(ms / 3600000).toFixed(1)} h`;
}

// fmtTime("2026-11-23T10:00:00.123Z") → "2026-11-23 10:00:00"
function fmtTime(s) {
	if (!s) return '—';
	const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})/.exec(s);
	return m ? `${m[1]} ${m[2]}` : String(s);
}

function fmtJson(v) {
	return v === undefined ? '' : JSON.stringify(v);
}

// ------------------------------------------------------------------ views

const VIEWS = ['overview', 'users', 'jobs', 'audit', 'operations'];
const LOADERS = {
	users: () => loadUsers(false),
	jobs: () => {
		loadJobStats();
		loadJobs(false);
	},
	audit: () => loadAudit(false),
	operations: () => loadMaintenance(),
	overview: () => drawCharts(),
};

function currentView() {
	const v = location.hash.replace(/^#/, '');
	return VIEWS.includes(v) ? v : 'overview';
}

function showView() {
	if (!state.access) return;
	const v = currentView();
	for (const s of document.querySelectorAll('.view')) s.hidden = s.dataset.view !== v;
	for (const a of document.querySelectorAll('#tabs a')) {
		if (a.dataset.tab === v) a.setAttribute('aria-current', 'page');
		else a.removeAttribute('aria-current');
	}
	// The audit log is read afresh every time it is opened; the other
	// lists once per sign-in (and by their own buttons).
	if (v === 'audit' || v === 'overview' || !state.loaded.has(v)) {
		state.loaded.add(v);
		LOADERS[v]();
	}
}

function showSignIn(message) {
	for (const s of document.querySelectorAll('.view')) s.hidden = true;
	$('tabs').hidden = true;
	$('whoami').hidden = true;
	$('maintenance-banner').hidden = true;
	$('signin').hidden = false;
	const p = $('signin-problem');
	if (message) notice(p, message);
	else clearProblem(p);
	$('signin-password').value = '';
	$('signin-email').focus();
}

function resetSession() {
	state.generation++;
	state.access = state.refresh = state.me = null;
	state.refreshing = null;
	clearTimeout(state.timer);
	state.timer = null;
	state.history = [];
	state.latest = null;
	state.maintenance = null;
	state.polls = 0;
	state.loaded.clear();
	document.body.dataset.signedIn = 'false';
	for (const t of ['apps-table', 'workers-table', 'users-table', 'jobs-table', 'audit-table']) {
		$(t).tBodies[0].replaceChildren();
	}
}

function sessionEnded(message) {
	if (!state.access) return;
	resetSession();
	showSignIn(message);
}

async function signIn(email, password) {
	const tok = await request('POST', '/auth/login', { email, password }, { auth: false });
	resetSession();
	state.access = tok.access_token;
	state.refresh = tok.refresh_token;
	const me = await request('GET', '/auth/me');
	if (me.role !== 'admin') {
		await signOut();
		throw new Error('This account is not an administrator.');
	}
	state.me = me;
	$('signin').hidden = true;
	$('tabs').hidden = false;
	$('whoami').hidden = false;
	$('whoami-email').textContent = me.email;
	document.body.dataset.signedIn = 'true';
	showView();
	poll();
}

async function signOut() {
	const token = state.access;
	resetSession();
	if (token) {
		try {
			await fetch('/auth/logout', { method: 'POST', headers: { Authorization: `Bearer ${token}` }, credentials: 'omit' });
		} catch {
			// signed out locally either way
		}
	}
}

// ------------------------------------------------------------------ stats

async function poll() {
	const gen = state.generation;
	const started = Date.now();
	try {
		const s = await request('GET', '/admin/api/stats');
		if (gen !== state.generation) return;
		record(s);
		renderStats(s);
		clearProblem($('overview-problem'));
		$('stats-status').textContent = `Updated ${fmtTime(s.generated_at)} UTC`;
	} catch (err) {
		if (err instanceof SignedOut || gen !== state.generation) return;
		$('stats-status').textContent = 'Stats unavailable';
		showProblem($('overview-problem'), err);
	}
	if (state.polls++ % MAINTENANCE_EVERY === 0) loadMaintenance();
	if (gen === state.generation) {
		state.timer = setTimeout(poll, Math.max(0, REFRESH_MS - (Date.now() - started)));
	}
}

function colorOf(app) {
	if (!state.colors.has(app)) state.colors.set(app, state.colors.size % PALETTE.length);
	return state.colors.get(app);
}

function record(s) {
	const now = Date.now();
	const apps = {};
	for (const a of s.apps || []) {
		colorOf(a.app);
		apps[a.app] = {
			rps: a.requests_per_second,
			err: a.error_rate,
			p50_ms: a.p50_ms,
			p95_ms: a.p95_ms,
			p99_ms: a.p99_ms,
			busy: (a.workers || []).filter((w) => w.state === 'busy').length,
		};
	}
	state.history.push({ t: now, apps, queue: s.queue || null });
	while (state.history.length && state.history[0].t < now - HISTORY_MS) state.history.shift();
	state.latest = s;
}

function renderStats(s) {
	const apps = s.apps || [];
	// window_seconds: one for the answer (docs/admin.md), or each app's own.
	const win = typeof s.window_seconds === 'number' ? s.window_seconds : Math.max(0, ...apps.map((a) => a.window_seconds || 0));
	$('window-note').textContent = win > 0 ? `over the last ${fmtNum(win, 0)} s` : '';
	const rows = apps.map((a) => {
		const workers = a.workers || [];
		const busy = workers.filter((w) => w.state === 'busy').length;
		return el(
			'tr',
			{ 'data-app': a.app, 'data-rps': a.requests_per_second, 'data-requests': a.requests_total },
			el('td', {}, el('span', { class: `sw c${colorOf(a.app)}` }), a.app),
			el('td', { class: 'num', 'data-metric': 'rps' }, fmtNum(a.requests_per_second, 1)),
			el('td', { class: 'num' }, fmtMs(a.p50_ms)),
			el('td', { class: 'num' }, fmtMs(a.p95_ms)),
			el('td', { class: 'num' }, fmtMs(a.p99_ms)),
			el('td', { class: a.error_rate > 0 ? 'num bad' : 'num' }, fmtPct(a.error_rate)),
			el('td', { class: 'num' }, fmtPct(a.client_error_rate)),
			el('td', { class: 'num' }, `${busy} / ${workers.length}`),
			el('td', { class: 'num' }, fmtNum(a.requests_total, 0)),
		);
	});
	$('apps-table').tBodies[0].replaceChildren(...rows);

	const wrows = [];
	for (const a of apps) {
		for (const w of a.workers || []) {
			const busy = w.state === 'busy';
			wrows.push(
				el(
					'tr',
					{ 'data-app': a.app, 'data-state': w.state },
					el('td', {}, a.app),
					el('td', { class: 'num' }, w.pid),
					el('td', {}, el('span', { class: `badge state-${w.state}` }, w.state)),
					el('td', { class: 'mono' }, busy && w.route ? `${w.method || ''} ${w.route}` : '—'),
					el('td', { class: 'num' }, busy ? fmtDuration(w.busy_for_ms) : '—'),
					el('td', { class: 'num' }, fmtNum(w.requests, 0)),
					el('td', { class: 'num' }, fmtDuration(w.busy_ms_total)),
				),
			);
		}
	}
	$('workers-table').tBodies[0].replaceChildren(...wrows);

	const sel = $('latency-app');
	const names = apps.map((a) => a.app);
	const have = [...sel.options].map((o) => o.value);
	if (names.join() !== have.join()) {
		const keep = sel.value || (names.includes('api') ? 'api' : names[0]);
		sel.replaceChildren(...names.map((n) => el('option', { value: n }, n)));
		if (names.includes(keep)) sel.value = keep;
	}
	drawCharts();
}

// ------------------------------------------------------------------ charts

function legend(id, series) {
	$(id).replaceChildren(...series.map((s) => el('li', {}, el('span', { class: `sw c${s.ci}` }), s.name)));
}

function appSeries(key, scale) {
	const names = [...state.colors.keys()].filter((n) => state.history.some((h) => n in h.apps));
	return names.map((n) => {
		const ci = colorOf(n);
		return {
			name: n,
			ci,
			color: PALETTE[ci],
			points: state.history.map((h) => [h.t, n in h.apps && h.apps[n][key] !== null ? h.apps[n][key] * scale : null]),
		};
	});
}

function drawCharts() {
	if (currentView() !== 'overview' || !state.access) return;
	const rps = appSeries('rps', 1);
	drawChart($('chart-rps'), rps, HISTORY_MS, { floor: 1 });
	legend('legend-rps', rps);

	const app = $('latency-app').value;
	const lat = LATENCIES.map(([name, key, ci]) => ({
		name,
		ci,
		color: PALETTE[ci],
		points: state.history.map((h) => [h.t, h.apps[app] ? h.apps[app][key] : null]),
	}));
	drawChart($('chart-latency'), lat, HISTORY_MS, { floor: 1, empty: 'no requests in the window' });
	legend('legend-latency', lat);

	const err = appSeries('err', 100);
	drawChart($('chart-errors'), err, HISTORY_MS, { floor: 1 });
	legend('legend-errors', err);

	const queue = QUEUE_STATES.map((st, i) => ({
		name: st,
		ci: i,
		color: PALETTE[i],
		points: state.history.map((h) => [h.t, h.queue ? h.queue[st] : null]),
	}));
	drawChart($('chart-queue'), queue, HISTORY_MS, { floor: 4, empty: 'queue unavailable' });
	legend('legend-queue', queue);

	const busy = appSeries('busy', 1);
	drawChart($('chart-busy'), busy, HISTORY_MS, { floor: 4 });
	legend('legend-busy', busy);
}

// ------------------------------------------------------------------ confirm

// confirmAction(text): true when the administrator confirmed in the dialog.
function confirmAction(text) {
	const d = $('confirm');
	$('confirm-text').textContent = text;
	d.returnValue = '';
	return new Promise((resolve) => {
		d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
		d.showModal();
		$('confirm-ok').focus();
	});
}

// act(button, problemNode, fn): run fn with the button disabled; shows any
// error in problemNode. Returns fn's result, or undefined after an error.
async function act(button, problemNode, fn) {
	clearProblem(problemNode);
	if (button) button.disabled = true;
	try {
		return await fn();
	} catch (err) {
		showProblem(problemNode, err);
		return undefined;
	} finally {
		if (button) button.disabled = false;
	}
}

// query(params): "?a=1&b=2" of the non-empty params, or "".
function query(params) {
	const q = new URLSearchParams();
	for (const [k, v] of Object.entries(params)) if (v !== '' && v !== null && v !== undefined) q.set(k, v);
	const s = q.toString();
	return s ? `?${s}` : '';
}

// ------------------------------------------------------------------ users

function userRow(u) {
	const self = state.me && u.id === state.me.id;
	const role = el(
		'select',
		{ 'aria-label': `role of ${u.email}`, class: 'role-select', disabled: self, title: self ? 'your own role' : '' },
		...['user', 'author', 'admin'].map((r) => el('option', { value: r, selected: r === u.role }, r)),
	);
	role.value = u.role;
	role.addEventListener('change', () => changeRole(u, role));

	const verb = u.locked ? 'unlock' : 'lock';
	const lock = el('button', { type: 'button', class: u.locked ? '' : 'danger', 'data-action': verb }, u.locked ? 'Unlock' : 'Lock');
	lock.addEventListener('click', () => lockUser(u, lock));
	const revoke = el('button', { type: 'button', 'data-action': 'revoke-sessions' }, 'Revoke sessions');
	revoke.addEventListener('click', () => revokeSessions(u, revoke));

	let status = el('span', { class: 'badge ok' }, 'active');
	if (u.locked) status = el('span', { class: 'badge bad' }, 'locked');
	else if (u.locked_until) {
		status = el('span', { class: 'badge warn', title: `sign-in throttled until ${u.locked_until}` }, 'throttled');
	}

	return el(
		'tr',
		{ 'data-user-id': u.id, 'data-email': u.email, 'data-locked': String(!!u.locked), 'data-role': u.role },
		el('td', { class: 'num' }, u.id),
		el('td', {}, u.email, self ? el('span', { class: 'muted' }, ' (you)') : null),
		el('td', {}, u.display_name),
		el('td', {}, role),
		el('td', {}, status),
		el('td', { class: 'num' }, u.failed_logins),
		el('td', { class: 'num' }, u.active_sessions),
		el('td', {}, fmtTime(u.created_at)),
		el('td', { class: 'actions' }, lock, revoke),
	);
}

function replaceUser(u) {
	const old = document.querySelector(`#users-table tr[data-user-id="${Number(u.id)}"]`);
	if (old) old.replaceWith(userRow(u));
}

async function loadUsers(more) {
	const p = $('users-problem');
	const body = $('users-table').tBodies[0];
	const params = {
		q: $('users-q').value.trim(),
		role: $('users-role').value,
		locked: $('users-locked').value,
		cursor: more ? state.cursors.users : '',
	};
	const r = await act($('users-more'), p, () => request('GET', `/admin/api/users${query(params)}`));
	if (!r) return;
	const rows = r.items.map(userRow);
	if (more) body.append(...rows);
	else body.replaceChildren(...rows);
	state.cursors.users = r.next_cursor || null;
	$('users-more').hidden = !state.cursors.users;
	$('users-empty').hidden = body.rows.length > 0;
}

async function lockUser(u, button) {
	const verb = u.locked ? 'unlock' : 'lock';
	const text = u.locked
		? `Unlock ${u.email}? Their sign-in throttling is cleared too.`
		: `Lock ${u.email}? Every session ends at once and sign-in is refused.`;
	if (!(await confirmAction(text))) return;
	const nu = await act(button, $('users-problem'), () => request('POST', `/admin/api/users/${u.id}/${verb}`, {}));
	if (!nu) return;
	replaceUser(nu);
	notice($('users-notice'), `${nu.email} is ${nu.locked ? 'locked' : 'unlocked'}.`);
}

async function changeRole(u, select) {
	const role = select.value;
	if (!(await confirmAction(`Make ${u.email} ${role === 'admin' ? 'an' : 'a'} ${role}? Their sessions end.`))) {
		select.value = u.role;
		return;
	}
	const nu = await act(select, $('users-problem'), () => request('PUT', `/admin/api/users/${u.id}/role`, { role }));
	if (!nu) {
		select.value = u.role;
		return;
	}
	replaceUser(nu);
	notice($('users-notice'), `${nu.email} is now ${nu.role}.`);
}

async function revokeSessions(u, button) {
	const self = state.me && u.id === state.me.id;
	const text = self
		? 'Revoke every session of your own account? This page signs out too.'
		: `Revoke every session of ${u.email}? Their tokens stop working at once.`;
	if (!(await confirmAction(text))) return;
	const r = await act(button, $('users-problem'), () => request('POST', `/admin/api/users/${u.id}/revoke-sessions`, {}));
	if (!r) return;
	notice($('users-notice'), `${r.revoked} session${r.revoked === 1 ? '' : 's'} of ${u.email} revoked.`);
	try {
		replaceUser(await request('GET', `/admin/api/users/${u.id}`));
	} catch (err) {
		showProblem($('users-problem'), err);
	}
}

// ------------------------------------------------------------------ jobs

function jobRow(j) {
	const actions = el('td', { class: 'actions' });
	if (RETRYABLE.has(j.state)) {
		const b = el('button', { type: 'button', 'data-action': 'retry' }, 'Retry');
		b.addEventListener('click', () => jobAction(j, 'retry', b));
		actions.append(b);
	}
	if (DISCARDABLE.has(j.state)) {
		const b = el('button', { type: 'button', class: 'danger', 'data-action': 'discard' }, 'Discard');
		b.addEventListener('click', () => jobAction(j, 'discard', b));
		actions.append(b);
	}
	return el(
		'tr',
		{ 'data-job-id': j.id, 'data-state': j.state },
		el('td', { class: 'num' }, j.id),
		el('td', { class: 'mono' }, j.kind),
		el('td', {}, j.queue),
		el('td', {}, el('span', { class: `badge state-${j.state}` }, j.state)),
		el('td', { class: 'num' }, `${j.attempt} / ${j.max_attempts}`),
		el('td', {}, fmtTime(j.scheduled_at)),
		el('td', { class: 'error-text', title: j.last_error || '' }, j.last_error || '—'),
		actions,
	);
}

async function loadJobStats() {
	try {
		const s = await request('GET', '/admin/api/jobs/stats');
		const chips = Object.entries(s.states || {}).map(([k, n]) =>
			el('li', { class: `chip state-${k}`, 'data-state': k }, `${k} `, el('strong', {}, n)),
		);
		if (s.oldest_available_seconds > 0) {
			chips.push(el('li', { class: 'chip' }, 'oldest runnable ', el('strong', {}, fmtDuration(s.oldest_available_seconds * 1000))));
		}
		$('jobs-states').replaceChildren(...chips);
	} catch (err) {
		showProblem($('jobs-problem'), err);
	}
}

async function loadJobs(more) {
	const body = $('jobs-table').tBodies[0];
	const params = { state: $('jobs-state').value, kind: $('jobs-kind').value.trim(), cursor: more ? state.cursors.jobs : '' };
	const r = await act($('jobs-more'), $('jobs-problem'), () => request('GET', `/admin/api/jobs${query(params)}`));
	if (!r) return;
	const rows = r.items.map(jobRow);
	if (more) body.append(...rows);
	else body.replaceChildren(...rows);
	state.cursors.jobs = r.next_cursor || null;
	$('jobs-more').hidden = !state.cursors.jobs;
	$('jobs-empty').hidden = body.rows.length > 0;
}

async function jobAction(j, verb, button) {
	const text =
		verb === 'retry' ? `Run job ${j.id} (${j.kind}) again now?` : `Discard job ${j.id} (${j.kind})? It will not run again.`;
	if (!(await confirmAction(text))) return;
	const nj = await act(button, $('jobs-problem'), () => request('POST', `/admin/api/jobs/${j.id}/${verb}`, {}));
	if (!nj) return;
	const old = document.querySelector(`#jobs-table tr[data-job-id="${Number(nj.id)}"]`);
	if (old) old.replaceWith(jobRow(nj));
	notice($('jobs-notice'), `Job ${nj.id} is ${nj.state}.`);
	loadJobStats();
}

// ------------------------------------------------------------------ audit

// changeText(before, after): "key: old → new" for each member that differs.
function changeText(before, after) {
	const b = before && typeof before === 'object' ? before : {};
	const a = after && typeof after === 'object' ? after : {};
	const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])];
	const lines = keys
		.filter((k) => fmtJson(b[k]) !== fmtJson(a[k]))
		.map((k) => `${k}: ${k in b ? fmtJson(b[k]) : '∅'} → ${k in a ? fmtJson(a[k]) : '∅'}`);
	if (!lines.length && (before !== null || after !== null)) lines.push(`${fmtJson(before)} → ${fmtJson(after)}`);
	return lines;
}

function auditRow(e) {
	const lines = changeText(e.before, e.after);
	const id = e.target_id === null || e.target_id === undefined || e.target_id === '' ? '' : ` #${e.target_id}`;
	const target = e.target_type ? `${e.target_type}${id}` : '—';
	const title = `before ${fmtJson(e.before)}\nafter ${fmtJson(e.after)}`;
	return el(
		'tr',
		{ 'data-audit-id': e.id, 'data-action': e.action, 'data-target-type': e.target_type, 'data-target-id': e.target_id },
		el('td', { class: 'nowrap' }, fmtTime(e.at)),
		el('td', {}, e.actor_email || `#${e.actor_id}`),
		el('td', {}, el('span', { class: 'badge' }, e.action)),
		el('td', {}, target),
		el('td', { class: 'change', title }, ...lines.map((l) => el('div', {}, l))),
		el('td', { class: 'mono' }, e.ip || '—'),
		el('td', { class: 'mono truncate', title: e.request_id || '' }, e.request_id || '—'),
	);
}

async function loadAudit(more) {
	const body = $('audit-table').tBodies[0];
	const params = { action: $('audit-action').value, cursor: more ? state.cursors.audit : '' };
	const r = await act($('audit-more'), $('audit-problem'), () => request('GET', `/admin/api/audit${query(params)}`));
	if (!r) return;
	const rows = r.items.map(auditRow);
	if (more) body.append(...rows);
	else body.replaceChildren(...rows);
	state.cursors.audit = r.next_cursor || null;
	$('audit-more').hidden = !state.cursors.audit;
	$('audit-empty').hidden = body.rows.length > 0;
}

// ------------------------------------------------------------------ operations

function renderMaintenance(m) {
	state.maintenance = m;
	const box = $('maintenance');
	box.dataset.enabled = String(!!m.enabled);
	$('maintenance-state').textContent = m.enabled ? `on — “${m.message}”` : 'off';
	$('maintenance-state').className = m.enabled ? 'bad' : 'good';
	const input = $('maintenance-message');
	input.disabled = !!m.enabled;
	if (m.enabled) input.value = m.message || '';
	$('maintenance-toggle').textContent = m.enabled ? 'Turn off' : 'Turn on';
	$('maintenance-toggle').className = m.enabled ? 'primary' : 'danger';
	$('maintenance-banner').hidden = !m.enabled;
	$('maintenance-banner-text').textContent = m.enabled ? m.message : '';
}

async function loadMaintenance() {
	const gen = state.generation;
	try {
		const m = await request('GET', '/admin/api/maintenance');
		if (gen === state.generation) renderMaintenance(m);
	} catch (err) {
		if (gen === state.generation) showProblem($('maintenance-problem'), err);
	}
}

async function toggleMaintenance(ev) {
	ev.preventDefault();
	const on = !(state.maintenance && state.maintenance.enabled);
	const message = $('maintenance-message').value;
	const body = { enabled: on };
	if (on && message.trim() !== '') body.message = message;
	const text = on
		? `Turn maintenance mode on? Every API write answers 503 with “${body.message || 'maintenance in progress'}”.`
		: 'Turn maintenance mode off? API writes work again.';
	if (!(await confirmAction(text))) return;
	const m = await act($('maintenance-toggle'), $('maintenance-problem'), () => request('PUT', '/admin/api/maintenance', body));
	if (m) {
		renderMaintenance(m);
		if (!m.enabled) $('maintenance-message').value = '';
	}
}

async function flushCache() {
	clearProblem($('cache-problem'));
	$('cache-notice').hidden = true;
	if (!(await confirmAction('Flush the object cache on every host?'))) return;
	const r = await act($('cache-flush'), $('cache-problem'), () => request('POST', '/admin/api/cache/flush', {}));
	if (r) notice($('cache-notice'), `Flushed: the cache namespace is now ${r.namespace}.`);
}

// ------------------------------------------------------------------ wiring

function wire() {
	$('signin-form').addEventListener('submit', async (ev) => {
		ev.preventDefault();
		const btn = $('signin-submit');
		await act(btn, $('signin-problem'), () => signIn($('signin-email').value.trim(), $('signin-password').value));
	});
	$('sign-out').addEventListener('click', async () => {
		await signOut();
		showSignIn();
	});
	window.addEventListener('hashchange', showView);
	window.addEventListener('resize', drawCharts);
	$('latency-app').addEventListener('change', drawCharts);

	$('users-filter').addEventListener('submit', (ev) => {
		ev.preventDefault();
		clearProblem($('users-notice'));
		loadUsers(false);
	});
	$('users-more').addEventListener('click', () => loadUsers(true));
	$('jobs-filter').addEventListener('submit', (ev) => {
		ev.preventDefault();
		clearProblem($('jobs-notice'));
		loadJobStats();
		loadJobs(false);
	});
	$('jobs-more').addEventListener('click', () => loadJobs(true));
	$('audit-filter').addEventListener('submit', (ev) => {
		ev.preventDefault();
		loadAudit(false);
	});
	$('audit-refresh').addEventListener('click', () => loadAudit(false));
	$('audit-more').addEventListener('click', () => loadAudit(true));
	$('maintenance-form').addEventListener('submit', toggleMaintenance);
	$('cache-flush').addEventListener('click', flushCache);
	resetSession();
	showSignIn();
}

wire();
