// The reviewers' workbench in real headless Chromium (Debian's `chromium` via playwright-core)
// against the real `proctor` binary: sign in, open the queue, open a flagged session and see
// its evidence; confirm with one reviewer and countersign with another; a reviewer of another
// province sees nothing. It takes screenshots of the main pages.
// Nothing is mocked; a missing binary or browser fails the test.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// Screenshots go to a temp folder unless REVIEW_SCREENSHOTS names one (the README's come from
// `REVIEW_SCREENSHOTS=../docs/screenshots npm test`).
const SHOTS = process.env.REVIEW_SCREENSHOTS ? resolve(process.env.REVIEW_SCREENSHOTS) : mkdtempSync(join(tmpdir(), 'review-shots-'));
const CONSENT_SHA256 = '5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';
const PASSWORD = 'a long test passphrase';

function proctorBin() {
  const candidates = [
    process.env.PROCTOR_BIN,
    process.env.CARGO_TARGET_DIR && join(process.env.CARGO_TARGET_DIR, 'debug/proctor'),
    join(REPO, 'target/debug/proctor'),
  ].filter(Boolean);
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`the proctor binary is missing (looked in ${candidates.join(', ')}): run cargo build --workspace`);
  return found;
}

async function freePort() {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? res(a.port) : rej(new Error('no port'))));
    });
  });
}

/** The stand-in face check reads brightness: a bright frame passes, a dark one fails. */
function png(bright) {
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(512, bright ? 180 : 0)]);
}

let server;
let dataDir;
let base;
let browser;
let sessionId;

// The store and bus the server runs on: the embedded default unless REVIEW_E2E_DATABASE_URL
// (PostgreSQL) and REVIEW_E2E_REDIS_URL (Redis Streams) name others; `proctor admin` uses the same.
function serverEnv() {
  const env = { ...process.env, PROCTOR_LOG: 'warn' };
  delete env.PROCTOR_DATABASE_URL;
  delete env.PROCTOR_REDIS_URL;
  if (process.env.REVIEW_E2E_DATABASE_URL) env.PROCTOR_DATABASE_URL = process.env.REVIEW_E2E_DATABASE_URL;
  if (process.env.REVIEW_E2E_REDIS_URL) {
    env.PROCTOR_REDIS_URL = process.env.REVIEW_E2E_REDIS_URL;
    env.PROCTOR_REDIS_NAMESPACE = `review-e2e-${process.pid}`;
  }
  return env;
}

function cli(args, input) {
  const env = serverEnv();
  const r = spawnSync(proctorBin(), [...args, '--data-dir', dataDir], { input, env, encoding: 'utf8' });
  assert.equal(r.status, 0, `proctor ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

async function api(method, path, token, body, contentType = 'application/json') {
  const r = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': contentType } : {}) },
    body: body === undefined ? undefined : contentType === 'application/json' ? JSON.stringify(body) : body,
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, json, text };
}

before(async () => {
  assert.ok(existsSync(CHROMIUM), `Chromium is missing at ${CHROMIUM}: apt-get install chromium`);
  dataDir = mkdtempSync(join(tmpdir(), 'proctor-review-e2e-'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const env = serverEnv();
  server = spawn(proctorBin(), ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--face', 'stand-in'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${base}/healthz`)).ok && existsSync(join(dataDir, 'demo-credentials.json'))) break;
    } catch { /* not up yet */ }
    if (i > 300) throw new Error('proctor did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  // A flagged session on the demo platform (province 41): face enrolled, then a failed check.
  const creds = JSON.parse(readFileSync(join(dataDir, 'demo-credentials.json'), 'utf8'));
  const tok = await fetch(`${base}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: creds.client_id, client_secret: creds.client_secret }),
  }).then((r) => r.json());
  const token = tok.access_token;
  const cls = await api('POST', '/api/v1/classes', token, { name: 'Review e2e class', course_id: creds.course_id, planned_total_hours: 30, planned_online_hours: 10 });
  assert.equal(cls.status, 201, cls.text);
  const learner = await api('POST', '/api/v1/learners', token, { external_ref: 'rev-e2e-1', real_name: '张三', id_number: '41010119900101123X', face_consent: true });
  assert.equal(learner.status, 201, learner.text);
  const enrol = await api('POST', `/api/v1/learners/${learner.json.id}/face-enrolment?consent_text_version=e2e-1&consent_text_sha256=${CONSENT_SHA256}`, token, png(true), 'image/png');
  assert.equal(enrol.status, 201, enrol.text);
  const e = await api('POST', '/api/v1/enrolments', token, { class_id: cls.json.id, learner_id: learner.json.id });
  assert.equal(e.status, 201, e.text);
  const st = await api('POST', '/api/v1/sessions', token, { enrolment_id: e.json.id, lesson_id: creds.lesson_ids[0] });
  assert.equal(st.status, 201, st.text);
  sessionId = st.json.session_id;
  const fc = await api('POST', `/api/v1/sessions/${sessionId}/face-checks`, st.json.learner_token, png(false), 'image/png');
  assert.equal(fc.status, 201, fc.text);
  for (let i = 0; ; i++) {
    const v = await api('GET', `/api/v1/sessions/${sessionId}/verdict`, token);
    if (v.json?.flagged_for_review) break;
    if (i > 200) throw new Error(`the session was not flagged: ${v.text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  cli(['admin', 'create-reviewer', 'alice', '--province', '41', '--role', 'reviewer', '--password-stdin'], `${PASSWORD}\n`);
  cli(['admin', 'create-reviewer', 'bob', '--province', '41', '--role', 'senior_reviewer', '--password-stdin'], `${PASSWORD}\n`);
  cli(['admin', 'create-reviewer', 'carol', '--province', '11', '--role', 'reviewer', '--password-stdin'], `${PASSWORD}\n`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  if (server) {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function signIn(name) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  // Nothing may load from anywhere but the server.
  const foreign = [];
  context.on('request', (req) => { if (!req.url().startsWith(base)) foreign.push(req.url()); });
  const page = await context.newPage();
  await page.goto(`${base}/review`);
  assert.match(page.url(), /\/review\/login$/);
  await page.fill('input[name=name]', name);
  await page.fill('input[name=password]', PASSWORD);
  await Promise.all([page.waitForURL(/\/review\/queue/), page.click('button[type=submit]')]);
  return { context, page, foreign };
}

test('a reviewer signs in, opens the flagged session and sees its evidence', async () => {
  const { context, page, foreign } = await signIn('alice');
  // The verdict API folds the log when no verdict is stored yet; the queue lists stored verdicts,
  // which the worker writes a moment later (at most every 200 ms, longer on a loaded machine).
  const rows = page.locator('#queue tr.item');
  for (let i = 0; !/yes/.test((await rows.count()) >= 1 ? await rows.first().innerText() : ''); i++) {
    if (i > 100) break;
    await new Promise((r) => setTimeout(r, 100));
    await page.reload();
  }
  assert.ok((await rows.count()) >= 1, 'the queue lists the session');
  assert.match(await rows.first().innerText(), /yes/, 'the riskiest row is flagged');
  await page.screenshot({ path: join(SHOTS, 'queue.png'), fullPage: true });
  await Promise.all([page.waitForURL(/\/review\/sessions\//), page.click(`a[href="/review/sessions/${sessionId}"]`)]);
  assert.match(await page.locator('#profile').innerText(), /henan-2023 v\d+/);
  assert.match(await page.locator('#faces').innerText(), /no/, 'the failed face check is shown');
  assert.match(await page.locator('#rules').innerText(), /R4_face_liveness/);
  assert.ok((await page.locator('#timeline tr').count()) >= 1);
  await page.screenshot({ path: join(SHOTS, 'session.png'), fullPage: true });
  await Promise.all([page.waitForURL(/\/replay$/), page.click('#replay')]);
  assert.match(await page.locator('#replay-result').innerText(), /matches the stored verdict/);
  assert.deepEqual(foreign, [], 'nothing loads from the internet');
  await context.close();
});

test('one reviewer confirms, another countersigns', async () => {
  const a = await signIn('alice');
  await a.page.goto(`${base}/review/sessions/${sessionId}`);
  await a.page.selectOption('select[name=outcome]', 'confirm');
  await a.page.fill('input[name=reason_code]', 'R4_face_liveness');
  await a.page.fill('input[name=comment]', 'the frame is dark; the learner was not identified');
  await Promise.all([a.page.waitForURL(new RegExp(`/review/sessions/${sessionId}$`)), a.page.click('fieldset button')]);
  assert.equal(await a.page.locator('#status').innerText(), 'awaiting_countersign');
  assert.equal(await a.page.locator('#decisions button', { hasText: 'Countersign' }).count(), 0, 'the first signer gets no countersign button');
  await a.context.close();

  const b = await signIn('bob');
  await b.page.goto(`${base}/review/sessions/${sessionId}`);
  await Promise.all([b.page.waitForURL(new RegExp(`/review/sessions/${sessionId}$`)), b.page.click('#decisions button:has-text("Countersign")')]);
  assert.equal(await b.page.locator('#status').innerText(), 'confirmed');
  const row = await b.page.locator('#decisions tr').nth(1).innerText();
  assert.match(row, /alice/);
  assert.match(row, /bob/);
  await b.page.screenshot({ path: join(SHOTS, 'decision.png'), fullPage: true });
  await b.page.goto(`${base}/review/audit`);
  assert.match(await b.page.locator('#audit').innerText(), /countersign/);
  await b.page.screenshot({ path: join(SHOTS, 'audit.png'), fullPage: true });
  await b.context.close();
});

test('a reviewer of another province sees nothing', async () => {
  const { context, page } = await signIn('carol');
  assert.equal(await page.locator('#queue tr.item').count(), 0);
  const r = await page.goto(`${base}/review/sessions/${sessionId}`);
  assert.equal(r.status(), 404);
  const snap = await page.goto(`${base}/review/sessions/${sessionId}/replay`);
  assert.equal(snap.status(), 404);
  await context.close();
});
