#!/usr/bin/env node
// The queue board in a real browser: headless Chromium opens /admin/sign-in, types an ops key,
// submits, and must land on /admin/queues with every queue listed and an HttpOnly,
// SameSite=Strict session cookie. Drives Chromium over the DevTools protocol on a pipe
// (--remote-debugging-pipe), so it needs no WebSocket client and no dependency.
//
//   BASE_URL=http://127.0.0.1:3000 OPS_KEY=bsk_... node scripts/queue-board-browser.mjs
//
// CHROMIUM (default /usr/bin/chromium) names the browser; apt-get install -y chromium.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const base = (process.env.BASE_URL ?? 'http://127.0.0.1:3000').replace(/\/$/, '');
const key = process.env.OPS_KEY;
const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';
const timeoutMs = Number(process.env.TIMEOUT_MS ?? 60_000);
if (!key) {
  console.error('OPS_KEY is required: an API key with the ops scope');
  process.exit(2);
}

const expected = await fetch(`${base}/admin/queues/api/queues`, { headers: { authorization: `Bearer ${key}` } });
if (!expected.ok) throw new Error(`the board's API refused the key: ${expected.status}`);
const queueNames = (await expected.json()).queues.map((q) => q.name);

const profile = mkdtempSync(join(tmpdir(), 'queue-board-browser-'));
const browser = spawn(
  chromium,
  ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-dev-shm-usage', `--user-data-dir=${profile}`, '--remote-debugging-pipe', 'about:blank'],
  { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] },
);
let stderr = '';
browser.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
const [toBrowser, fromBrowser] = [browser.stdio[3], browser.stdio[4]];

// The pipe carries JSON messages, each ended by a NUL byte.
let nextId = 1;
const pending = new Map();
let buffered = '';
fromBrowser.on('data', (chunk) => {
  buffered += chunk.toString('utf8');
  for (let end = buffered.indexOf('\0'); end >= 0; end = buffered.indexOf('\0')) {
    const message = JSON.parse(buffered.slice(0, end));
    buffered = buffered.slice(end + 1);
    const waiter = pending.get(message.id);
    if (!waiter) continue;
    pending.delete(message.id);
    if (message.error) waiter.reject(new Error(`${waiter.method}: ${message.error.message}`));
    else waiter.resolve(message.result);
  }
});
function send(method, params = {}, sessionId) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject, method });
    toBrowser.write(`${JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) })}\0`);
  });
}

const deadline = Date.now() + timeoutMs;
async function until(what, probe) {
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

let failed = false;
try {
  const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
  const page = (method, params) => send(method, params, sessionId);
  const evaluate = async (expression) => (await page('Runtime.evaluate', { expression, returnByValue: true })).result.value;

  await page('Page.navigate', { url: `${base}/admin/queues` });
  await until('the redirect to the sign-in page', async () => (await evaluate(`location.pathname === '/admin/sign-in' && !!document.querySelector('#key')`)));
  console.log('ok - an anonymous browser is sent to /admin/sign-in');

  await evaluate(`document.querySelector('#key').focus()`);
  await page('Input.insertText', { text: key });
  await page('Input.dispatchKeyEvent', { type: 'keyDown', key: 'Enter', code: 'Enter', windowsVirtualKeyCode: 13, text: '\r' });
  await page('Input.dispatchKeyEvent', { type: 'keyUp', key: 'Enter', code: 'Enter', windowsVirtualKeyCode: 13 });

  await until('the board', async () => (await evaluate(`location.pathname`))?.startsWith('/admin/queues'));
  const text = await until('every queue on the board', async () => {
    const body = await evaluate(`document.body ? document.body.innerText : ''`);
    return queueNames.every((name) => body.includes(name)) ? body : null;
  });
  console.log(`ok - the board lists ${queueNames.join(', ')} (${text.length} characters of page)`);

  const { cookies } = await send('Storage.getCookies', {});
  const session = cookies.find((c) => c.name === 'admin_session');
  if (!session) throw new Error('no admin_session cookie');
  if (!session.httpOnly || session.sameSite !== 'Strict' || session.path !== '/admin') throw new Error(`cookie attributes: ${JSON.stringify(session)}`);
  if (session.value.includes(key)) throw new Error('the cookie holds the key');
  console.log(`ok - admin_session is HttpOnly, SameSite=Strict, Path=/admin, ends ${new Date(session.expires * 1000).toISOString()}`);
  if (await evaluate(`document.cookie.includes('admin_session')`)) throw new Error('scripts can read the session cookie');
  console.log('ok - page scripts cannot read it');
} catch (err) {
  failed = true;
  console.error(`not ok - ${err.message}`);
  if (stderr) console.error(stderr);
} finally {
  await send('Browser.close').catch(() => {});
  browser.kill();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
