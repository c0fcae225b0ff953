// The kiln admin dashboard in a real browser: Debian's headless Chromium
// driven by playwright-core, against the stack tests/e2e/dashboard.bats
// started. Signs in as an administrator, generates traffic and sees the
// api's request rate rise on the page, turns maintenance on in the UI and
// sees a kiln-api write answer 503 (and succeed once it is off), locks a
// user in the UI and sees their login refused, and finds those actions in
// the page's audit table, newest first; then changes the user's role,
// unlocks them, flushes the cache, discards and retries a job, and ends
// its own session (back to sign-in). Every step saves a full-page
// screenshot. Fails on any console error, page error or CSP violation,
// after proving with an injected inline script that violations are seen.
//
// Environment: KILN_BASE, KILN_ADMIN_EMAIL, KILN_ADMIN_PASSWORD,
// KILN_ADMIN_ID, KILN_USER_EMAIL, KILN_USER_PASSWORD, KILN_USER_TOKEN,
// KILN_USER_ID, KILN_EXERCISE_ID, KILN_JOB_ID, KILN_ARTIFACTS (screenshots);
// CHROMIUM (default /usr/bin/chromium). Exit 0 when every check passed.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

function need(name) {
	const v = process.env[name];
	if (!v) throw new Error(`${name} is not set`);
	return v;
}

const BASE = need('KILN_BASE');
const ADMIN = { email: need('KILN_ADMIN_EMAIL'), password: need('KILN_ADMIN_PASSWORD'), id: Number(need('KILN_ADMIN_ID')) };
const USER = {
	email: need('KILN_USER_EMAIL'),
	password: need('KILN_USER_PASSWORD'),
	token: need('KILN_USER_TOKEN'),
	id: Number(need('KILN_USER_ID')),
};
const EXERCISE = Number(need('KILN_EXERCISE_ID'));
const JOB = Number(need('KILN_JOB_ID')); // a scheduled job to discard and retry
const ARTIFACTS = need('KILN_ARTIFACTS');
const TRAFFIC = 400; // GET /api/v1/exercises requests
const MESSAGE = 'Dashboard e2e: back at 14:00 UTC';

mkdirSync(ARTIFACTS, { recursive: true });
const t0 = Date.now();
const log = (msg) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${msg}`);

// ------------------------------------------------------------------ HTTP outside the browser

async function call(method, path, { token, body, headers } = {}) {
	const h = { ...(headers || {}) };
	if (token) h.Authorization = `Bearer ${token}`;
	if (body !== undefined) h['Content-Type'] = 'application/json';
	const res = await fetch(BASE + path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
	const text = await res.text();
	let json = null;
	try {
		json = text ? JSON.parse(text) : null;
	} catch {
		json = null;
	}
	return { status: res.status, type: res.headers.get('content-type') || '', json, text };
}

let submissions = 0;
function submit() {
	submissions++;
	return call('POST', `/api/v1/exercises/${EXERCISE}/submissions`, {
		token: USER.token,
		body: { answer: `answer ${submissions}` },
		headers: { 'Idempotency-Key': `dashboard-e2e-${process.pid}-${submissions}` },
	});
}

// traffic(n, concurrency): n GETs of the exercise list; every one must be 200.
async function traffic(n, concurrency) {
	let next = 0;
	const codes = new Map();
	const deadline = Date.now() + 60000;
	async function lane() {
		while (next < n && Date.now() < deadline) {
			next++;
			const r = await fetch(`${BASE}/api/v1/exercises?limit=5`);
			await r.arrayBuffer();
			codes.set(r.status, (codes.get(r.status) || 0) + 1);
		}
	}
	await Promise.all(Array.from({ length: concurrency }, lane));
	return codes;
}

// ------------------------------------------------------------------ the browser

const browser = await chromium.launch({
	executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
	headless: true,
	args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
// Every CSP violation the page sees, recorded before any of its own script runs.
await context.addInitScript(() => {
	window.__csp = [];
	document.addEventListener('securitypolicyviolation', (e) => {
		window.__csp.push({ directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample });
	});
});
const page = await context.newPage();
page.setDefaultTimeout(20000);

const problems = []; // console errors, page errors, failed loads: the test fails on any
const apiErrors = []; // 4xx answers of the API that a step provoked on purpose
page.on('console', (m) => {
	if (m.type() !== 'error' && !/Content.Security.Policy/i.test(m.text())) return;
	const url = m.location().url || '';
	const path = url.startsWith(BASE) ? url.slice(BASE.length) : url;
	// Chromium reports every non-2xx fetch as "Failed to load resource";
	// a 4xx of the API the page handled (wrong password, 409, 401) is
	// expected and checked by the step that caused it.
	const m4 = /status of (4\d\d)/.exec(m.text());
	if (m4 && /^\/(auth|admin\/api)\//.test(path)) {
		apiErrors.push(`${m4[1]} ${path}`);
		return;
	}
	problems.push(`console ${m.type()}: ${m.text()} (${url})`);
});
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
page.on('requestfailed', (r) => problems.push(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
page.on('response', (r) => {
	const path = r.url().slice(BASE.length);
	if (r.status() >= 500 || (r.status() >= 400 && !/^\/(auth|admin\/api)\//.test(path))) {
		problems.push(`HTTP ${r.status()} for ${r.request().method()} ${r.url()}`);
	}
});

let shot = 0;
async function screenshot(name) {
	const file = join(ARTIFACTS, `${String(++shot).padStart(2, '0')}-${name}.png`);
	await page.screenshot({ path: file, fullPage: true });
	console.log(`screenshot: ${file}`);
}

async function confirmDialog() {
	await page.locator('#confirm').waitFor({ state: 'visible' });
	await page.click('#confirm-ok');
	await page.locator('#confirm').waitFor({ state: 'hidden' });
}

async function tab(name) {
	await page.click(`#tabs a[data-tab="${name}"]`);
	await page.locator(`#view-${name}`).waitFor({ state: 'visible' });
}

// searchUser(email, id): search the users tab for email and wait until the
// table lists that one user only (not the list shown before the search).
async function searchUser(email, id) {
	await page.fill('#users-q', email);
	await page.click('#users-filter button[type="submit"]');
	await page.waitForFunction((uid) => {
		const rows = document.querySelectorAll('#users-table tbody tr');
		return rows.length === 1 && rows[0].dataset.userId === String(uid);
	}, id);
	return page.locator(`#users-table tr[data-user-id="${id}"]`);
}

const apiRps = () => page.evaluate(() => {
	const r = document.querySelector('#apps-table tr[data-app="api"]');
	return r ? Number(r.dataset.rps) : null;
});

try {
	// ---------------------------------------------------------------- sign in
	const resp = await page.goto(`${BASE}/admin/`);
	assert.equal(resp.status(), 200, 'GET /admin/');
	assert.match(resp.headers()['content-security-policy'] || '', /script-src 'self'/, 'the page has its CSP');
	await page.locator('#signin').waitFor({ state: 'visible' });
	assert.equal(await page.title(), 'kiln admin');
	await screenshot('sign-in');

	await page.fill('#signin-email', ADMIN.email);
	await page.fill('#signin-password', `${ADMIN.password}-wrong`);
	await page.click('#signin-submit');
	await page.locator('#signin-problem').waitFor({ state: 'visible' });
	const refused = await page.textContent('#signin-problem');
	assert.match(refused, /\(HTTP 401\)/, `wrong password shown as the server's 401: ${refused}`);
	assert.equal(await page.getAttribute('body', 'data-signed-in'), 'false');
	log(`wrong password refused on the page: ${refused.trim()}`);
	await screenshot('sign-in-refused');

	await page.fill('#signin-password', ADMIN.password);
	await page.click('#signin-submit');
	await page.waitForSelector('body[data-signed-in="true"]');
	assert.equal((await page.textContent('#whoami-email')).trim(), ADMIN.email);
	await page.waitForSelector('#apps-table tr[data-app="api"]');
	await page.waitForFunction(() => Number(document.getElementById('chart-rps').dataset.points) > 0);
	log('signed in; the overview shows the api');
	await screenshot('overview');

	// ---------------------------------------------------------------- traffic
	const before = await apiRps();
	assert.ok(before !== null && Number.isFinite(before), `requests/s of api on the page: ${before}`);
	const codes = await traffic(TRAFFIC, 4);
	assert.deepEqual([...codes.entries()], [[200, TRAFFIC]], `GET /api/v1/exercises answers: ${[...codes.entries()]}`);
	// TRAFFIC requests inside a window of at most 60 s raise the rate by
	// at least TRAFFIC / 60 (6.7); half of that is asked for.
	const rise = TRAFFIC / 60 / 2;
	const handle = await page.waitForFunction(
		(min) => {
			const r = document.querySelector('#apps-table tr[data-app="api"]');
			if (!r || !(Number(r.dataset.rps) >= min)) return false;
			return { rps: Number(r.dataset.rps), shown: r.querySelector('td[data-metric="rps"]').textContent };
		},
		before + rise,
		{ timeout: 30000 },
	);
	const { rps: after, shown } = await handle.jsonValue();
	assert.equal(shown, after.toFixed(1), 'the figure shown is the one measured');
	const chartMax = Number(await page.getAttribute('#chart-rps', 'data-max'));
	assert.ok(chartMax >= before + rise, `the requests/s chart reached ${chartMax}`);
	log(`api requests/s on the page: ${before} before, ${after} after ${TRAFFIC} requests`);
	await screenshot('traffic');

	// ---------------------------------------------------------------- maintenance
	await tab('operations');
	await page.waitForSelector('#maintenance[data-enabled="false"]');
	await page.fill('#maintenance-message', MESSAGE);
	await page.click('#maintenance-toggle');
	await confirmDialog();
	await page.waitForSelector('#maintenance[data-enabled="true"]');
	await page.locator('#maintenance-banner').waitFor({ state: 'visible' });
	assert.equal((await page.textContent('#maintenance-banner-text')).trim(), MESSAGE);
	let w = await submit();
	assert.equal(w.status, 503, `a write during maintenance: ${w.status} ${w.text}`);
	assert.match(w.type, /^application\/problem\+json/);
	assert.equal(w.json.detail, MESSAGE, 'the 503 carries the message set in the UI');
	log(`maintenance on from the UI: POST submission -> ${w.status} "${w.json.detail}"`);
	await screenshot('maintenance-on');

	await page.click('#maintenance-toggle');
	await confirmDialog();
	await page.waitForSelector('#maintenance[data-enabled="false"]');
	await page.locator('#maintenance-banner').waitFor({ state: 'hidden' });
	w = await submit();
	assert.equal(w.status, 202, `a write after maintenance: ${w.status} ${w.text}`);
	log(`maintenance off from the UI: POST submission -> ${w.status}`);
	await screenshot('maintenance-off');

	// ---------------------------------------------------------------- users
	await tab('users');
	const selfRow = await searchUser(ADMIN.email, ADMIN.id);
	await selfRow.locator('button[data-action="lock"]').click();
	await confirmDialog();
	await page.locator('#users-problem').waitFor({ state: 'visible' });
	const selfLock = await page.textContent('#users-problem');
	assert.match(selfLock, /\(HTTP 409\)/, `locking yourself is refused and shown: ${selfLock}`);
	assert.equal(await selfRow.getAttribute('data-locked'), 'false');
	log(`lock yourself refused on the page: ${selfLock.trim()}`);
	await screenshot('lock-self-refused');

	let login = await call('POST', '/auth/login', { body: { email: USER.email, password: USER.password } });
	assert.equal(login.status, 200, `the user signs in before the lock: ${login.status} ${login.text}`);
	const userToken = login.json.access_token;
	const row = await searchUser(USER.email, USER.id);
	assert.equal(await row.getAttribute('data-locked'), 'false');
	assert.equal(await page.isVisible('#users-problem'), false, 'the earlier problem is cleared');
	await row.locator('button[data-action="lock"]').click();
	await confirmDialog();
	await page.waitForSelector(`#users-table tr[data-user-id="${USER.id}"][data-locked="true"]`);
	await page.locator('#users-notice').waitFor({ state: 'visible' });
	login = await call('POST', '/auth/login', { body: { email: USER.email, password: USER.password } });
	assert.equal(login.status, 403, `login of the locked user: ${login.status} ${login.text}`);
	const me = await call('GET', '/auth/me', { token: userToken });
	assert.equal(me.status, 401, `the locked user's token: ${me.status}`);
	log(`user ${USER.id} locked from the UI: login -> 403, their token -> 401`);
	await screenshot('user-locked');

	// ---------------------------------------------------------------- audit
	await tab('audit');
	await page.waitForFunction(() => document.querySelectorAll('#audit-table tbody tr').length >= 3);
	const rows = await page.$$eval('#audit-table tbody tr', (trs) =>
		trs.map((tr) => ({
			id: Number(tr.dataset.auditId),
			action: tr.dataset.action,
			target: `${tr.dataset.targetType || ''}:${tr.dataset.targetId || ''}`,
			text: tr.textContent,
		})),
	);
	log(`audit table: ${rows.map((r) => `${r.id} ${r.action} ${r.target}`).join(', ')}`);
	assert.deepEqual(
		rows.map((r) => r.action),
		['user.lock', 'maintenance.off', 'maintenance.on'],
		'the audit table lists exactly the three changes, newest first (the refused self-lock wrote nothing)',
	);
	assert.equal(rows[0].target, `user:${USER.id}`);
	assert.ok(rows[0].id > rows[1].id && rows[1].id > rows[2].id, 'ids descend');
	for (const r of rows) assert.ok(r.text.includes(ADMIN.email), `the actor is shown: ${r.text}`);
	assert.match(rows[0].text, /locked/, 'the change of the lock is shown');
	await screenshot('audit');

	// ---------------------------------------------------------------- the other actions
	// Role and unlock on the same user, the cache flush, and discard + retry
	// of a scheduled job; each lands in the audit table on top.
	await tab('users');
	let urow = await searchUser(USER.email, USER.id);
	await urow.locator('select.role-select').selectOption('author');
	await confirmDialog();
	await page.waitForSelector(`#users-table tr[data-user-id="${USER.id}"][data-role="author"]`);
	urow = page.locator(`#users-table tr[data-user-id="${USER.id}"]`);
	await urow.locator('button[data-action="unlock"]').click();
	await confirmDialog();
	await page.waitForSelector(`#users-table tr[data-user-id="${USER.id}"][data-locked="false"][data-role="author"]`);
	login = await call('POST', '/auth/login', { body: { email: USER.email, password: USER.password } });
	assert.equal(login.status, 200, `login after the unlock: ${login.status} ${login.text}`);
	const who = await call('GET', '/auth/me', { token: login.json.access_token });
	assert.equal(who.json.role, 'author', 'the role set in the UI');
	log(`user ${USER.id} made author and unlocked from the UI: login -> 200, role ${who.json.role}`);
	await screenshot('user-unlocked');

	await tab('operations');
	await page.click('#cache-flush');
	await confirmDialog();
	await page.locator('#cache-notice').waitFor({ state: 'visible' });
	assert.match(await page.textContent('#cache-notice'), /namespace is now \d+/);

	await tab('jobs');
	await page.selectOption('#jobs-state', 'scheduled');
	await page.click('#jobs-filter button[type="submit"]');
	const job = page.locator(`#jobs-table tr[data-job-id="${JOB}"]`);
	await page.waitForFunction(
		(id) => {
			const rows = [...document.querySelectorAll('#jobs-table tbody tr')];
			return rows.length > 0 && rows.every((r) => r.dataset.state === 'scheduled') && rows.some((r) => r.dataset.jobId === String(id));
		},
		JOB,
	);
	await job.locator('button[data-action="discard"]').click();
	await confirmDialog();
	await page.waitForSelector(`#jobs-table tr[data-job-id="${JOB}"][data-state="discarded"]`);
	await job.locator('button[data-action="retry"]').click();
	await confirmDialog();
	await page.waitForSelector(`#jobs-table tr[data-job-id="${JOB}"][data-state="available"]`);
	log(`job ${JOB} discarded and retried from the UI; cache flushed`);
	await screenshot('jobs');

	await tab('audit');
	await page.waitForFunction(() => document.querySelectorAll('#audit-table tbody tr').length >= 8);
	const all = await page.$$eval('#audit-table tbody tr', (trs) => trs.map((tr) => tr.dataset.action));
	assert.deepEqual(all, [
		'job.retry',
		'job.discard',
		'cache.flush',
		'user.unlock',
		'user.role',
		'user.lock',
		'maintenance.off',
		'maintenance.on',
	]);
	await screenshot('audit-all');

	// ---------------------------------------------------------------- session end
	// Revoking your own sessions ends this page's session: the next API call
	// answers 401, the refresh token is revoked too, so the page signs out.
	await tab('users');
	const self = await searchUser(ADMIN.email, ADMIN.id);
	await self.locator('button[data-action="revoke-sessions"]').click();
	await confirmDialog();
	await page.locator('#signin').waitFor({ state: 'visible' });
	assert.match(await page.textContent('#signin-problem'), /session has ended/);
	assert.equal(await page.getAttribute('body', 'data-signed-in'), 'false');
	assert.equal(await page.isVisible('#tabs'), false);
	log('own sessions revoked from the UI: the page is back at sign-in');
	await screenshot('session-ended');

	// ---------------------------------------------------------------- CSP
	// The collector works and the policy is enforced: an inline script is
	// refused and reported; then nothing else may have been.
	const control = await page.evaluate(async () => {
		const before = window.__csp.length;
		const s = document.createElement('script');
		s.textContent = 'window.__inlineRan = true;';
		document.head.append(s);
		await new Promise((r) => setTimeout(r, 200));
		const seen = window.__csp.splice(before);
		return { ran: window.__inlineRan === true, seen };
	});
	assert.equal(control.ran, false, 'an inline script is not run');
	assert.equal(control.seen.length, 1, `the injected inline script is reported once: ${JSON.stringify(control.seen)}`);
	const cspProblems = problems.filter((p) => /Content.Security.Policy/i.test(p));
	assert.equal(cspProblems.length, 1, `the console reported the injected script only: ${cspProblems}`);
	problems.splice(problems.indexOf(cspProblems[0]), 1);
	const violations = await page.evaluate(() => window.__csp);
	assert.deepEqual(violations, [], `CSP violations: ${JSON.stringify(violations)}`);
	assert.deepEqual(problems, [], `console errors, page errors, failed loads:\n${problems.join('\n')}`);
	const provoked = /^(401 \/auth\/(login|refresh)|409 \/admin\/api\/users\/\d+\/lock|401 \/admin\/api\/)/;
	for (const e of apiErrors) assert.match(e, provoked, `unexpected API error: ${e}`);
	log(`no console error, page error or CSP violation; API errors the steps provoked: ${apiErrors.join(', ')}`);
	console.log(`dashboard: all checks passed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
} catch (err) {
	await screenshot('failure').catch(() => {});
	console.error(`dashboard: FAILED: ${err.stack || err}`);
	if (problems.length) console.error(`collected:\n${problems.join('\n')}`);
	process.exitCode = 1;
} finally {
	await browser.close();
}
