import { once } from 'node:events';
import { Writable } from 'node:stream';
import t from 'tap';
import { pino } from 'pino';
import { loggerOptions } from '../src/lib/logger.js';

/** A logger with the service's options whose output the test can read. */
function captureLogs(level: 'info' | 'trace') {
  let out = '';
  const sink = new Writable({
    write(chunk, _enc, cb) {
      out += chunk;
      cb();
    },
  });
  return { logger: pino(loggerOptions({ LOG_LEVEL: level }), sink), text: () => out };
}
import { setup } from './helper.js';

t.test('unknown routes answer 404 problem+json', async (t) => {
  const ctx = await setup(t);
  const res = await ctx.call('GET', '/v1/nothing-here');
  t.equal(res.status, 404);
  t.equal(res.body.code, 'route_not_found');
  t.match(res.headers['content-type'], /application\/problem\+json/);
  t.equal(res.body.type, 'urn:billing-service:problem:route_not_found');
});

t.test('a method a path does not route answers 405 method_not_allowed with Allow', async (t) => {
  const ctx = await setup(t);
  for (const [method, url, allow] of [
    ['DELETE', '/healthz', 'GET, HEAD'],
    ['PATCH', '/v1/plans', 'GET, HEAD'],
    ['PUT', '/v1/accounts', 'GET, HEAD, POST'],
    ['POST', '/v1/accounts/acc_01kb2m3n4p5q6r7s8t9v0w1x2y/kyc/', undefined],
  ] as const) {
    const res = await ctx.call(method, url);
    if (allow === undefined) {
      t.equal(res.status, 405, `${method} ${url}`);
      t.match(res.headers.allow, /PUT/, 'Allow names the routed method');
    } else {
      t.equal(res.status, 405, `${method} ${url}`);
      t.equal(res.headers.allow, allow, 'Allow lists the methods of the path');
    }
    t.match(res.headers['content-type'], /application\/problem\+json/);
    t.equal(res.body.code, 'method_not_allowed');
  }
  t.equal((await ctx.call('GET', '/v1/nothing-here')).body.code, 'route_not_found', 'a path routed for no method is still 404');
});

t.test('a 401 names the Bearer scheme and realm, and invalid_token when a key was sent', async (t) => {
  const ctx = await setup(t);
  const none = await ctx.call('GET', '/v1/plans', { key: null });
  t.equal(none.status, 401);
  t.equal(none.body.code, 'unauthenticated');
  t.equal(none.headers['www-authenticate'], 'Bearer realm="billing-service"', 'no error= without credentials (RFC 6750 3.1)');
  const bad = await ctx.call('GET', '/v1/plans', { key: 'bsk_not_a_key' });
  t.equal(bad.status, 401);
  t.match(bad.headers['www-authenticate'], /^Bearer realm="billing-service", error="invalid_token"/);
  const basic = await ctx.call('GET', '/v1/plans', { key: null, headers: { authorization: 'Basic dXNlcjpwYXNz' } });
  t.equal(basic.status, 401);
  t.equal(basic.headers['www-authenticate'], 'Bearer realm="billing-service"', 'another scheme sent no bearer token: no error= either');
  const ok = await ctx.call('GET', '/v1/plans');
  t.notOk(ok.headers['www-authenticate'], 'only on a 401');
});

t.test('a 5xx never shows internals, and carries the request id', async (t) => {
  const ctx = await setup(t);
  ctx.app.get('/explode', async () => {
    throw new Error('connection to 10.0.0.5 failed: password authentication failed for user "billing"');
  });
  const res = await ctx.app.inject({ method: 'GET', url: '/explode', headers: { 'x-request-id': 'req-abc-123' } });
  t.equal(res.statusCode, 500);
  const body = res.json();
  t.equal(body.code, 'internal_error');
  t.equal(body.requestId, 'req-abc-123');
  t.equal(res.headers['x-request-id'], 'req-abc-123', 'the request id is echoed');
  t.notMatch(res.body, /password|10\.0\.0\.5|stack/, 'no internals');
});

t.test('a request id that is not safe to log is replaced', async (t) => {
  const ctx = await setup(t);
  const res = await ctx.app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'bad id\nwith newline' } });
  t.match(res.headers['x-request-id'], /^[0-9a-f-]{36}$/);
});

t.test('logs never carry authorization headers, keys or payment tokens', async (t) => {
  const { logger, text } = captureLogs('info');
  logger.info({ req: { headers: { authorization: 'Bearer bsk_secret1' } } }, 'request');
  logger.info({ payment: { paymentToken: 'tok_visa_secret2', vpa: 'someone@upi' }, apiKey: { key: 'bsk_secret3' } }, 'charge');
  t.notMatch(text(), /secret1|secret2|secret3|someone@upi/);
  t.match(text(), /\[redacted\]/);
});

t.test('health and readiness', async (t) => {
  const ctx = await setup(t);
  t.same((await ctx.call('GET', '/healthz', { key: null })).body, { status: 'ok' });
  const ready = await ctx.call('GET', '/readyz', { key: null });
  t.equal(ready.status, 200);
  t.same(ready.body.checks, { postgres: 'ok', schema: 'ok', redis: 'ok' });
  // Without Redis the api still serves everything it serves: ready, and says it is degraded.
  const ended = once(ctx.redis, 'end');
  ctx.redis.disconnect();
  await ended;
  const degraded = await ctx.call('GET', '/readyz', { key: null });
  t.equal(degraded.status, 200);
  t.same(degraded.body, { status: 'degraded', checks: { postgres: 'ok', schema: 'ok', redis: 'failed' } });
  await ctx.redis.connect();

  // Without Postgres it is not ready.
  const { buildApp } = await import('../src/app.js');
  const { openPostgres } = await import('../src/db/client.js');
  const nowhere = openPostgres('postgres://postgres@127.0.0.1:1/none', 1, ctx.app.log as never);
  const app = await buildApp({ config: ctx.config, logger: ctx.app.log as never, database: nowhere, redis: ctx.redis, clock: ctx.clock });
  t.teardown(async () => {
    await app.close();
    await nowhere.close();
  });
  const notReady = await app.inject({ method: 'GET', url: '/readyz' });
  t.equal(notReady.statusCode, 503);
  t.equal(notReady.json().code, 'service_unavailable');
});

t.test('NUL characters are bad input (400), never a 500', async (t) => {
  const ctx = await setup(t);
  const account = (await ctx.call('POST', '/v1/accounts', { body: { name: 'Acme', email: 'a@example.com', country: 'IN' } })).body;
  const cases: Array<[string, string, unknown]> = [
    ['POST', '/v1/accounts', { name: 'a\u0000b', email: 'a@example.com', country: 'IN' }],
    ['GET', '/v1/plans?accountId=%00', undefined],
    ['GET', '/v1/accounts?cursor=AA', undefined],
    ['DELETE', `/v1/accounts/${account.id}/whitelisted-numbers/%00`, undefined],
    ['PUT', `/v1/accounts/${account.id}/kyc`, { status: 'submitted', reason: '\u0000' }],
  ];
  for (const [method, url, body] of cases) {
    const res = await ctx.call(method as 'GET', url, { body });
    t.equal(res.status, 400, `${method} ${url}`);
  }
});

t.test('the app\'s own logs carry no keys, tokens or secrets', async (t) => {
  const { buildApp } = await import('../src/app.js');
  const ctx = await setup(t);
  const { logger, text } = captureLogs('trace');
  const app = await buildApp({ config: ctx.config, logger, database: ctx.database, redis: ctx.redis, clock: ctx.clock });
  t.teardown(() => app.close());
  app.get('/explode', async () => {
    throw new Error('boom');
  });
  const account = (await ctx.call('POST', '/v1/accounts', { body: { name: 'Acme', email: 'a@example.com', country: 'IN' } })).body;
  await ctx.call('PUT', `/v1/accounts/${account.id}/kyc`, { key: ctx.keys.kyc, body: { status: 'submitted' } });
  await ctx.call('PUT', `/v1/accounts/${account.id}/kyc`, { key: ctx.keys.kyc, body: { status: 'approved' } });
  const headers = { authorization: `Bearer ${ctx.keys.ops}`, 'idempotency-key': 'log-check' };
  for (const token of ['tok_visa', 'tok_chargeDeclined']) {
    await app.inject({
      method: 'POST',
      url: `/v1/accounts/${account.id}/upgrade`,
      headers: { ...headers, 'idempotency-key': `log-${token}` },
      payload: { planId: 'plan_starter_v1', billingCycle: 'monthly', initialCredits: 100000, paymentMethod: { type: 'card', token } },
    });
  }
  await app.inject({ method: 'GET', url: '/explode', headers });
  await app.inject({ method: 'GET', url: '/v1/plans', headers: { authorization: 'Bearer bsk_wrong-key-value' } });
  t.ok(text().length > 0, 'something was logged');
  t.notMatch(text(), new RegExp(ctx.keys.ops.slice(4)), 'no API key');
  t.notMatch(text(), /wrong-key-value/, 'not even a wrong one');
  t.notMatch(text(), /tok_visa|tok_chargeDeclined/, 'no payment token');
});

t.test('database errors are logged without their query parameters', async (t) => {
  const { DrizzleQueryError } = await import('drizzle-orm/errors');
  const { logger, text } = captureLogs('info');
  logger.error({ err: new DrizzleQueryError('insert into payment_methods values ($1, $2)', ['pm_1', 'tok_secretcard'], new Error('boom')) }, 'failed');
  t.match(text(), /insert into payment_methods/);
  t.notMatch(text(), /tok_secretcard/);
});

t.test('request logs carry the path and the query names, never a query value', async (t) => {
  const { buildApp } = await import('../src/app.js');
  const ctx = await setup(t);
  const { logger, text } = captureLogs('info');
  const app = await buildApp({ config: ctx.config, logger, database: ctx.database, redis: ctx.redis, clock: ctx.clock });
  t.teardown(() => app.close());
  const headers = { authorization: `Bearer ${ctx.keys.read}` };
  t.equal((await app.inject({ method: 'GET', url: '/v1/plans?api_key=bsk_secretvalue123&x=1', headers })).statusCode, 200);
  await app.inject({ method: 'GET', url: '/v1/nothing-here?token=tok_secretvalue456', headers });
  const requests = text()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line))
    .filter((entry) => entry.req);
  t.ok(requests.length >= 2, 'the requests were logged');
  t.notMatch(text(), /secretvalue/, 'no query value anywhere in the log');
  t.ok(requests.some((entry) => entry.req.url === '/v1/plans?api_key=[redacted]&x=[redacted]'), 'the path and the parameter names are kept');
});

t.test('an API key pasted into a path is redacted in the log too', async (t) => {
  const { buildApp } = await import('../src/app.js');
  const ctx = await setup(t);
  const { logger, text } = captureLogs('info');
  const app = await buildApp({ config: ctx.config, logger, database: ctx.database, redis: ctx.redis, clock: ctx.clock });
  t.teardown(() => app.close());
  await app.inject({ method: 'GET', url: `/v1/accounts/${ctx.keys.read}`, headers: { authorization: `Bearer ${ctx.keys.read}` } });
  t.notMatch(text(), new RegExp(ctx.keys.read.slice(4)), 'the key is nowhere in the log');
  t.match(text(), /"url":"\/v1\/accounts\/\[redacted\]"/);
});

t.test('a request that arrives while the process shuts down gets a 503 problem, not the framework\'s own answer', async (t) => {
  const ctx = await setup(t);
  const closing = ctx.app.close();
  const res = await ctx.app.inject({ method: 'GET', url: '/v1/plans', headers: { authorization: `Bearer ${ctx.keys.read}` } });
  t.equal(res.statusCode, 503);
  t.match(res.headers['content-type'], /^application\/problem\+json/);
  t.same([res.json().code, res.headers['retry-after'], res.headers.connection], ['service_unavailable', '2', 'close']);
  await closing;
});
