import t from 'tap';
import { setup, type TestContext } from './helper.js';

const browser = { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' };
const origin = 'http://localhost:80';

async function signIn(ctx: TestContext, key: string, headers: Record<string, string> = { origin }) {
  return ctx.app.inject({
    method: 'POST',
    url: '/admin/sign-in',
    headers: { ...browser, ...headers, 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ key }).toString(),
  });
}

const cookieOf = (setCookie: string | string[] | undefined) => String(setCookie).split(';')[0]!;

t.test('an operator signs in with an ops key and sees every queue on the board', async (t) => {
  const ctx = await setup(t);
  const form = await ctx.app.inject({ method: 'GET', url: '/admin/sign-in', headers: browser });
  t.equal(form.statusCode, 200);
  t.match(form.headers['content-type'], /text\/html/);
  t.match(form.body, /<form method="post" action="\/admin\/sign-in">/);
  t.match(form.body, /type="password"/);
  t.notMatch(form.body, /<script|https?:\/\//, 'no scripts, nothing loaded from elsewhere');
  t.match(form.headers['content-security-policy'], /default-src 'none'/);

  const res = await signIn(ctx, ctx.keys.ops);
  t.equal(res.statusCode, 303);
  t.equal(res.headers.location, '/admin/queues');
  const setCookie = String(res.headers['set-cookie']);
  t.match(setCookie, /^admin_session=v1\./);
  for (const attribute of ['HttpOnly', 'SameSite=Strict', 'Path=/admin', `Max-Age=${8 * 3600}`]) t.ok(setCookie.includes(attribute), attribute);
  t.notOk(setCookie.includes('Secure'), 'plain http outside production: not Secure, or the browser would not send it back');
  t.notOk(setCookie.includes(ctx.keys.ops), 'the cookie is not the key');

  const cookie = cookieOf(res.headers['set-cookie']);
  const page = await ctx.app.inject({ method: 'GET', url: '/admin/queues', headers: { ...browser, cookie } });
  t.equal(page.statusCode, 200);
  t.match(page.headers['content-type'], /text\/html/);
  const api = await ctx.app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers: { accept: 'application/json', cookie } });
  t.equal(api.statusCode, 200);
  const names = (api.json().queues as Array<{ name: string }>).map((q) => q.name).sort();
  t.same(names, Object.values(ctx.queues).map((q) => q.name).sort(), 'every queue of the service');

  const signedIn = await ctx.app.inject({ method: 'GET', url: '/admin/sign-in', headers: { ...browser, cookie } });
  t.match(signedIn.body, /action="\/admin\/sign-out"/, 'a signed-in operator is offered sign-out');
  const out = await ctx.app.inject({ method: 'POST', url: '/admin/sign-out', headers: { ...browser, cookie, origin } });
  t.equal(out.statusCode, 303);
  t.equal(out.headers.location, '/admin/sign-in');
  t.match(String(out.headers['set-cookie']), /^admin_session=; Max-Age=0; Path=\/admin/);
});

t.test('sign-in is refused for a read-only key, an unknown key, and a request from another site', async (t) => {
  const ctx = await setup(t);
  const read = await signIn(ctx, ctx.keys.read);
  t.equal(read.statusCode, 403);
  t.notOk(read.headers['set-cookie']);
  t.match(read.body, /lacks the ops scope/);
  const unknown = await signIn(ctx, 'bsk_not_a_key');
  t.equal(unknown.statusCode, 401);
  t.notOk(unknown.headers['set-cookie']);
  const csrf = await signIn(ctx, ctx.keys.ops, { origin: 'https://evil.example' });
  t.equal(csrf.statusCode, 403, 'another origin');
  t.notOk(csrf.headers['set-cookie']);
  t.equal((await signIn(ctx, ctx.keys.ops, {})).statusCode, 403, 'neither Origin nor Sec-Fetch-Site');
  t.equal((await signIn(ctx, ctx.keys.ops, { 'sec-fetch-site': 'same-origin' })).statusCode, 303, 'Sec-Fetch-Site: same-origin stands in for Origin');
  const forged = await ctx.app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers: { cookie: 'admin_session=v1.dev-insecure.key_x.9999999999.AAAA' } });
  t.equal(forged.statusCode, 401, 'a forged session is no session');
});

t.test('failed sign-ins count toward the per-address limit', async (t) => {
  const ctx = await setup(t, { AUTH_FAILURES_PER_MINUTE: '2' });
  t.equal((await signIn(ctx, 'bsk_guess_1')).statusCode, 401);
  t.equal((await signIn(ctx, 'bsk_guess_2')).statusCode, 401);
  const limited = await signIn(ctx, ctx.keys.ops);
  t.equal(limited.statusCode, 429);
  t.ok(Number(limited.headers['retry-after']) > 0);
});

t.test("revoking the key ends its sessions", async (t) => {
  const ctx = await setup(t);
  const cookie = cookieOf((await signIn(ctx, ctx.keys.ops)).headers['set-cookie']);
  t.equal((await ctx.app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers: { cookie } })).statusCode, 200);
  const principal = await ctx.services.auth.authenticate(ctx.keys.ops);
  await ctx.query('update api_keys set revoked_at = now() where id = $1', [principal!.keyId]);
  t.equal((await ctx.app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers: { cookie } })).statusCode, 401);
  const page = await ctx.app.inject({ method: 'GET', url: '/admin/queues', headers: { ...browser, cookie } });
  t.equal(page.statusCode, 303, 'a browser is sent to sign in again');
  t.equal(page.headers.location, '/admin/sign-in');
});

t.test('a session ends after its lifetime', async (t) => {
  const ctx = await setup(t, { ADMIN_SESSION_HOURS: '1' });
  const cookie = cookieOf((await signIn(ctx, ctx.keys.ops)).headers['set-cookie']);
  t.equal((await ctx.app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers: { cookie } })).statusCode, 200);
  ctx.clock.advance(3600_000);
  t.equal((await ctx.app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers: { cookie } })).statusCode, 401);
});

t.test('an anonymous browser is sent to sign in; scripts keep the bearer key', async (t) => {
  const ctx = await setup(t);
  const page = await ctx.app.inject({ method: 'GET', url: '/admin/queues', headers: browser });
  t.equal(page.statusCode, 303);
  t.equal(page.headers.location, '/admin/sign-in');
  const script = await ctx.app.inject({ method: 'GET', url: '/admin/queues' });
  t.equal(script.statusCode, 401, 'no Accept: text/html, no redirect');
  t.match(script.headers['www-authenticate'], /^Bearer realm="billing-service"/);
  t.match(script.headers['content-type'], /application\/problem\+json/);
  const bearer = await ctx.app.inject({ method: 'GET', url: '/admin/queues', headers: { ...browser, authorization: `Bearer ${ctx.keys.read}` } });
  t.equal(bearer.statusCode, 403, 'a Bearer header is judged as a key, even from a browser');
});

t.test('in production the cookie is Secure, and sign-in needs https (here through a trusted proxy)', async (t) => {
  const ctx = await setup(t, { NODE_ENV: 'production', TRUST_PROXY: 'true', ...productionEnv });
  const plain = await signIn(ctx, ctx.keys.ops);
  t.equal(plain.statusCode, 400);
  t.notOk(plain.headers['set-cookie']);
  const res = await signIn(ctx, ctx.keys.ops, { origin: 'https://localhost:80', 'x-forwarded-proto': 'https' });
  t.equal(res.statusCode, 303);
  t.match(String(res.headers['set-cookie']), /; HttpOnly; Secure; SameSite=Strict$/);
});

const productionEnv = {
  SMTP_URL: 'smtp://127.0.0.1:2525',
  SECRETS_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64')}`,
  SELLER_LEGAL_NAME: 'Seller Private Limited',
  SELLER_ADDRESS: '1 MG Road, Bengaluru 560001',
  SELLER_GSTIN: '29AABCE1234F1Z1',
};
