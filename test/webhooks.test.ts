import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import t, { type Test } from 'tap';
import { createLogger } from '../src/lib/logger.js';
import { isNonPublicAddress, nextDelayMs, urlProblem } from '../src/modules/webhooks/domain.js';
import { startWorkers } from '../src/workers.js';
import { readyAccount, setup, type TestContext } from './helper.js';

const env = { SCHEDULER_INTERVAL_MS: '30', OUTBOX_POLL_MS: '50', WEBHOOK_ALLOWED_HOSTS: '127.0.0.1', WEBHOOK_RETRY_SCALE: '0.0001', PRE_DEBIT_NOTICE_HOURS: '0' };

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A real HTTP receiver on loopback; `answer` decides each response's status. */
async function receiver(t: Test, answer: (n: number) => number = () => 200, delayMs = 0) {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.statusCode = answer(received.length);
      setTimeout(() => res.end(), delayMs);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`, received };
}

async function until(what: string, fn: () => Promise<boolean> | boolean, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 30));
  }
}

async function world(t: Test) {
  const ctx = await setup(t, env);
  const workers = await startWorkers(
    { config: ctx.config, logger: createLogger({ LOG_LEVEL: 'silent' }), database: ctx.database, redis: ctx.redis, queues: ctx.queues, clock: ctx.clock },
    { mailer: { send: async () => {}, close: () => {} } },
  );
  t.teardown(() => workers.close());
  return ctx;
}

const endpoint = async (ctx: TestContext, accountId: string, url: string, eventTypes: string[] = []) => {
  const res = await ctx.call('POST', `/v1/accounts/${accountId}/webhook-endpoints`, { key: ctx.keys.write, body: { url, eventTypes } });
  if (res.status !== 201) throw new Error(`endpoint ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string; secret: string };
};

const kyc = (ctx: TestContext, accountId: string, status: string) => ctx.call('PUT', `/v1/accounts/${accountId}/kyc`, { key: ctx.keys.kyc, body: { status } });

t.test('a real receiver gets signed events that standardwebhooks verifies; tampering or an old timestamp fails', async (t) => {
  const ctx = await world(t);
  const hook = await receiver(t);
  const account = (await ctx.call('POST', '/v1/accounts', { body: { name: 'A', email: 'a@example.com', country: 'IN' } })).body;
  const { secret } = await endpoint(ctx, account.id, hook.url, ['kyc.status_changed']);
  await kyc(ctx, account.id, 'submitted');
  await until('the delivery', () => hook.received.length === 1);
  const [got] = hook.received;
  const headers = { 'webhook-id': String(got!.headers['webhook-id']), 'webhook-timestamp': String(got!.headers['webhook-timestamp']), 'webhook-signature': String(got!.headers['webhook-signature']) };
  const verified = new Webhook(secret).verify(got!.body, headers) as { type: string; data: { to: string } };
  t.equal(verified.type, 'kyc.status_changed');
  t.equal(verified.data.to, 'submitted');
  t.match(headers['webhook-id'], /^evt_/, 'the event id');
  t.throws(() => new Webhook(secret).verify(got!.body.replace('submitted', 'approved'), headers), 'a tampered body fails');
  const hourAgo = new Date(Date.now() - 3600_000);
  const old = { ...headers, 'webhook-timestamp': String(Math.floor(hourAgo.getTime() / 1000)), 'webhook-signature': new Webhook(secret).sign(headers['webhook-id'], hourAgo, got!.body) };
  t.throws(() => new Webhook(secret).verify(got!.body, old), /too old/, 'a correctly signed but hour-old message fails on its timestamp');
  t.equal(hook.received.length, 1, 'account.created was filtered out by the event types');

  const events = await ctx.call('GET', `/v1/events?accountId=${account.id}`, { key: ctx.keys.read });
  t.same(events.body.data.map((e: any) => e.type), ['kyc.status_changed', 'account.created'], 'the event log to catch up from');
});

t.test('a receiver that fails 4 times then succeeds: the same webhook-id each time, one success recorded', async (t) => {
  const ctx = await world(t);
  const hook = await receiver(t, (n) => (n <= 4 ? 503 : 200));
  const account = (await ctx.call('POST', '/v1/accounts', { body: { name: 'B', email: 'b@example.com', country: 'IN' } })).body;
  const { id } = await endpoint(ctx, account.id, hook.url, ['kyc.status_changed']);
  await kyc(ctx, account.id, 'submitted');
  await until('five attempts', () => hook.received.length === 5);
  t.equal(new Set(hook.received.map((r) => r.headers['webhook-id'])).size, 1, 'the same webhook-id on every retry');
  await until('the success recorded', async () => (await ctx.call('GET', `/v1/webhook-endpoints/${id}/deliveries`)).body.data[0].status === 'succeeded');
  const [delivery] = (await ctx.call('GET', `/v1/webhook-endpoints/${id}/deliveries`)).body.data;
  t.same(delivery.attempts.map((a: any) => a.statusCode), [503, 503, 503, 503, 200]);
  t.ok(delivery.attempts.slice(0, 4).every((a: any) => a.nextAttemptAt), 'each failure records when the next attempt is');
  t.equal(delivery.attempts.filter((a: any) => a.statusCode === 200).length, 1);
});

t.test('410 disables the endpoint; a guaranteed delivery given up on is parked and can be redelivered', async (t) => {
  const ctx = await world(t);
  const gone = await receiver(t, () => 410);
  const a = (await ctx.call('POST', '/v1/accounts', { body: { name: 'C', email: 'c@example.com', country: 'IN' } })).body;
  const first = await endpoint(ctx, a.id, gone.url, ['kyc.status_changed']);
  await kyc(ctx, a.id, 'submitted');
  await until('the 410', async () => (await ctx.call('GET', `/v1/accounts/${a.id}/webhook-endpoints`)).body.data[0].status === 'disabled');
  t.equal(gone.received.length, 1, 'no retries after 410');
  t.equal((await ctx.call('GET', `/v1/accounts/${a.id}/webhook-endpoints`)).body.data[0].id, first.id);

  // An Enterprise account: guaranteed delivery, retried until its window, then parked.
  let healthy = false;
  const flaky = await receiver(t, () => (healthy ? 200 : 500));
  const ent = await readyAccount(ctx, { country: 'US' });
  await ctx.call('POST', `/v1/accounts/${ent.id}/upgrade`, {
    body: { planId: 'plan_enterprise_v1', billingCycle: 'annual', initialCredits: 20000, paymentMethod: { type: 'card', token: 'tok_visa' } },
    headers: { 'idempotency-key': 'ent' },
  });
  const { id } = await endpoint(ctx, ent.id, flaky.url, ['credits.adjusted']);
  await ctx.call('POST', `/v1/accounts/${ent.id}/credits/adjustments`, { body: { amount: 100, reason: 'a test event' }, headers: { 'idempotency-key': 'adj' } });
  // 72 h x 0.0001 = about 26 s of retries; pull the give-up time in so the test need not wait.
  await until('a first attempt', () => flaky.received.length >= 1);
  await ctx.query("update webhook_deliveries set give_up_at = now() where endpoint_id = $1", [id]);
  await until('parked', async () => (await ctx.call('GET', `/v1/webhook-endpoints/${id}/deliveries`)).body.data[0].status === 'failed');
  const [parked] = (await ctx.call('GET', `/v1/webhook-endpoints/${id}/deliveries`)).body.data;
  t.equal(parked.deliveryClass, 'guaranteed');
  t.equal((await ctx.query("select count(*)::int as n from outbox where type = 'webhook.delivery_failed'")).rows[0].n, 1, 'an alert event for ops');
  healthy = true;
  t.equal((await ctx.call('POST', `/v1/webhook-endpoints/${id}/deliveries/${parked.id}/redeliver`)).status, 202);
  await until('redelivered', async () => (await ctx.call('GET', `/v1/webhook-endpoints/${id}/deliveries`)).body.data[0].status === 'succeeded');
  const ids = new Set(flaky.received.map((r) => r.headers['webhook-id']));
  t.equal(ids.size, 1, 'redelivery keeps the webhook-id');
});

t.test('secret rotation: old and new both sign during the grace period', async (t) => {
  const ctx = await world(t);
  const hook = await receiver(t);
  const account = (await ctx.call('POST', '/v1/accounts', { body: { name: 'D', email: 'd@example.com', country: 'IN' } })).body;
  const created = await endpoint(ctx, account.id, hook.url, ['kyc.status_changed']);
  const rotated = await ctx.call('POST', `/v1/webhook-endpoints/${created.id}/rotate-secret`, { key: ctx.keys.write });
  t.not(rotated.body.secret, created.secret);
  t.notOk((await ctx.call('GET', `/v1/accounts/${account.id}/webhook-endpoints`)).body.data[0].secret, 'never shown again');
  await kyc(ctx, account.id, 'submitted');
  await until('the delivery', () => hook.received.length === 1);
  const [got] = hook.received;
  const headers = { 'webhook-id': String(got!.headers['webhook-id']), 'webhook-timestamp': String(got!.headers['webhook-timestamp']), 'webhook-signature': String(got!.headers['webhook-signature']) };
  t.ok(new Webhook(created.secret).verify(got!.body, headers), 'the old secret still verifies');
  t.ok(new Webhook(rotated.body.secret).verify(got!.body, headers), 'and so does the new one');
});

t.test('the SSRF guard and who may see an endpoint', async (t) => {
  const ctx = await setup(t);
  const account = (await ctx.call('POST', '/v1/accounts', { body: { name: 'E', email: 'e@example.com', country: 'IN' } })).body;
  for (const url of ['http://127.0.0.1:9/x', 'http://10.0.0.5/x', 'http://169.254.169.254/latest/meta-data', 'http://[::1]/x', 'http://localhost/x', 'ftp://example.com/x', 'https://user:pw@example.com/x']) {
    const res = await ctx.call('POST', `/v1/accounts/${account.id}/webhook-endpoints`, { body: { url } });
    t.equal(res.body.code, 'invalid_webhook_url', url);
  }
  t.equal(urlProblem('http://hooks.example.com', { production: true }), 'must use https');
  t.equal(urlProblem('https://hooks.example.com', { production: true }), null);
  t.same(['127.0.0.1', '10.1.2.3', '172.20.0.1', '192.168.1.1', '169.254.1.1', '100.64.0.1', '::1', 'fe80::1', 'fd00::1', '::ffff:10.0.0.1'].map(isNonPublicAddress), Array(10).fill(true));
  t.same(['8.8.8.8', '1.1.1.1', '2606:4700::1111'].map(isNonPublicAddress), [false, false, false]);
  t.same(['64:ff9b::7f00:1', '2002:7f00:1::', '::7f00:1', '::ffff:0:7f00:1', 'fec0::1', '::ffff:7f00:1'].map(isNonPublicAddress), Array(6).fill(true), 'NAT64, 6to4, IPv4-compatible and -mapped, site-local');
  t.ok(nextDelayMs(1, 1) >= 4500 && nextDelayMs(1, 1) <= 5500, 'first retry after about 5 s, jittered');
  t.ok(nextDelayMs(20, 1) <= 11 * 3600_000, 'the pause stops growing at 10 hours');

  const other = await ctx.call('POST', '/v1/accounts', { body: { name: 'F', email: 'f@example.com', country: 'IN' } });
  await ctx.query("insert into webhook_endpoints (id, account_id, url, event_types, status, secret, created_at, updated_at) values ('we_00000000000000000000000000', $1, 'https://example.com', '{}', 'enabled', 'whsec_x', now(), now())", [other.body.id]);
  const stranger = await ctx.key(['read', 'write'], account.id);
  t.equal((await ctx.call('GET', '/v1/webhook-endpoints/we_00000000000000000000000000/deliveries', { key: stranger })).status, 404, "another account's endpoint is invisible");
  t.equal((await ctx.call('GET', `/v1/events?accountId=${other.body.id}`, { key: stranger })).status, 404);
});

t.test('with 5,000 standard deliveries queued, a growth account\'s event is delivered first', async (t) => {
  const ctx = await world(t);
  const slow = await receiver(t, () => 200, 1000);
  const fast = await receiver(t);
  const trial = (await ctx.call('POST', '/v1/accounts', { body: { name: 'T', email: 't@example.com', country: 'IN' } })).body;
  const standard = await endpoint(ctx, trial.id, slow.url, ['credits.adjusted']);
  // 5,000 standard deliveries due now, straight into Postgres.
  await ctx.query(
    `insert into outbox (event_id, type, account_id, payload, created_at, relayed_at)
       select 'evt_backlog' || g, 'credits.adjusted', $1, '{}'::jsonb, now(), now() from generate_series(1, 5000) g`,
    [trial.id],
  );
  await ctx.query(
    `insert into webhook_deliveries (id, endpoint_id, account_id, event_id, event_created_at, event_type, delivery_class, status, attempts, next_attempt_at, give_up_at, created_at)
       select 'whd_' || o.event_id, $1, $2, o.event_id, date_trunc('milliseconds', o.created_at), 'credits.adjusted', 'standard', 'pending', 0, now() - interval '1 minute', now() + interval '1 day', now()
       from outbox o where o.event_id like 'evt_backlog%'`,
    [standard.id, trial.id],
  );
  const t0 = Date.now();
  await until('the backlog to start', () => slow.received.length > 0);
  t.comment(`backlog started after ${Date.now() - t0} ms`);

  const growth = await readyAccount(ctx);
  await ctx.call('POST', `/v1/accounts/${growth.id}/upgrade`, {
    body: { planId: 'plan_growth_v1', billingCycle: 'monthly', initialCredits: 500000, paymentMethod: { type: 'card', token: 'tok_visa' } },
    headers: { 'idempotency-key': 'g' },
  });
  await endpoint(ctx, growth.id, fast.url, ['credits.adjusted']);
  await ctx.call('POST', `/v1/accounts/${growth.id}/credits/adjustments`, { body: { amount: 100, reason: 'priority test' }, headers: { 'idempotency-key': 'p' } });
  const t1 = Date.now();
  await until('the growth delivery', () => fast.received.length === 1, 10_000);
  t.comment(`growth delivered after ${Date.now() - t1} ms`);
  const backlogDone = (await ctx.query("select count(*)::int as n from webhook_deliveries where delivery_class = 'standard' and status = 'succeeded'")).rows[0].n;
  // Sharing the standard queue, it would wait behind thousands of 1 s deliveries (minutes).
  t.ok(backlogDone < 500, `delivered while ${5000 - backlogDone} standard deliveries still waited`);
  await ctx.query("update webhook_deliveries set status = 'failed', next_attempt_at = null where status = 'pending'"); // no need to drain it
});

t.test('Redis flushed right after the relay: the deliveries were already in Postgres', async (t) => {
  const { scanKeys } = await import('./helper.js');
  const { createOutboxRelay } = await import('../src/jobs/outbox-relay.js');
  const ctx = await setup(t, env);
  const hook = await receiver(t);
  const ent = await readyAccount(ctx, { country: 'US' });
  await ctx.call('POST', `/v1/accounts/${ent.id}/upgrade`, {
    body: { planId: 'plan_enterprise_v1', billingCycle: 'annual', initialCredits: 20000, paymentMethod: { type: 'card', token: 'tok_visa' } },
    headers: { 'idempotency-key': 'e' },
  });
  await endpoint(ctx, ent.id, hook.url, ['credits.adjusted']);
  for (let i = 0; i < 5; i++) {
    await ctx.call('POST', `/v1/accounts/${ent.id}/credits/adjustments`, { body: { amount: 1, reason: `early ${i}` }, headers: { 'idempotency-key': `early${i}` } });
  }
  // No workers yet: relay the events (the jobs land in Redis), then lose every Redis key.
  const relay = createOutboxRelay({
    db: ctx.database.db,
    queues: ctx.queues,
    logger: createLogger({ LOG_LEVEL: 'silent' }),
    pollMs: 1000,
    onRelay: async (tx, rows) => {
      for (const row of rows) await ctx.services.webhooks.fanOut(row, tx);
    },
  });
  t.ok((await relay.drain()) > 0);
  const lost = await scanKeys(ctx.redis, `${ctx.config.QUEUE_PREFIX}:*`);
  if (lost.length) await ctx.redis.del(...lost);
  const workers = await startWorkers(
    { config: ctx.config, logger: createLogger({ LOG_LEVEL: 'silent' }), database: ctx.database, redis: ctx.redis, queues: ctx.queues, clock: ctx.clock },
    { mailer: { send: async () => {}, close: () => {} } },
  );
  t.teardown(() => workers.close());
  await until('the 5 early deliveries', () => new Set(hook.received.map((r) => r.headers['webhook-id'])).size === 5);
  t.pass('events relayed before the flush were still delivered');
});

t.test('Redis flushed mid-run: guaranteed deliveries still arrive', async (t) => {
  const { scanKeys } = await import('./helper.js');
  const ctx = await world(t);
  const hook = await receiver(t, () => 200, 20);
  const ent = await readyAccount(ctx, { country: 'US' });
  await ctx.call('POST', `/v1/accounts/${ent.id}/upgrade`, {
    body: { planId: 'plan_enterprise_v1', billingCycle: 'annual', initialCredits: 20000, paymentMethod: { type: 'card', token: 'tok_visa' } },
    headers: { 'idempotency-key': 'e' },
  });
  await endpoint(ctx, ent.id, hook.url, ['credits.adjusted']);
  for (let i = 0; i < 30; i++) {
    await ctx.call('POST', `/v1/accounts/${ent.id}/credits/adjustments`, { body: { amount: 1, reason: `flush ${i}` }, headers: { 'idempotency-key': `f${i}` } });
  }
  await until('some deliveries', () => hook.received.length > 0);
  const keys = await scanKeys(ctx.redis, `${ctx.config.QUEUE_PREFIX}:*`);
  if (keys.length) await ctx.redis.del(...keys);
  const succeeded = async () => (await ctx.query("select count(*)::int as n from webhook_deliveries where delivery_class = 'guaranteed' and status = 'succeeded'")).rows[0].n;
  await until('all 30 recorded', async () => (await succeeded()) === 30, 20_000);
  t.equal(new Set(hook.received.map((r) => r.headers['webhook-id'])).size, 30, 'every guaranteed delivery arrived');
});

t.test('the connection itself refuses private addresses (no DNS rebinding), and a redelivery waits for an attempt in flight', async (t) => {
  const { guardedAgent } = await import('../src/modules/webhooks/ssrf.js');
  const { fetch: undiciFetch } = await import('undici');
  const hook = await receiver(t);
  const port = new URL(hook.url).port;
  await t.rejects(undiciFetch(`http://localhost:${port}/x`, { dispatcher: guardedAgent([]) }), 'localhost resolves to loopback: refused at connect time');
  const allowed = await undiciFetch(`http://localhost:${port}/x`, { dispatcher: guardedAgent(['localhost']) });
  t.equal(allowed.status, 200, 'unless allowed');

  const ctx = await world(t);
  const held = await receiver(t);
  const account = (await ctx.call('POST', '/v1/accounts', { body: { name: 'H', email: 'h@example.com', country: 'IN' } })).body;
  const { id } = await endpoint(ctx, account.id, held.url, ['kyc.status_changed']);
  await kyc(ctx, account.id, 'submitted');
  await until('delivered', async () => (await ctx.call('GET', `/v1/webhook-endpoints/${id}/deliveries`)).body.data[0]?.status === 'succeeded');
  const [delivery] = (await ctx.call('GET', `/v1/webhook-endpoints/${id}/deliveries`)).body.data;
  await ctx.query("update webhook_deliveries set leased_until = now() + interval '1 minute' where id = $1", [delivery.id]);
  const busy = await ctx.call('POST', `/v1/webhook-endpoints/${id}/deliveries/${delivery.id}/redeliver`);
  t.equal(busy.status, 409, 'not while an attempt holds the lease');
  t.equal(busy.body.code, 'webhook_delivery_in_flight');
});

t.test('PATCH changes only the fields it is given: the event filter stays', async (t) => {
  const ctx = await setup(t, { WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' });
  const account = await readyAccount(ctx);
  const created = await endpoint(ctx, account.id, 'http://127.0.0.1:9/hooks', ['invoice.paid']);
  const read = async () => {
    const res = await ctx.call('GET', `/v1/accounts/${account.id}/webhook-endpoints`, { key: ctx.keys.read });
    const { url, description, eventTypes, status } = res.body.data.find((e: { id: string }) => e.id === created.id);
    return { url, description, eventTypes, status };
  };
  t.same(await read(), { url: 'http://127.0.0.1:9/hooks', description: '', eventTypes: ['invoice.paid'], status: 'enabled' });

  const patch = (body: Record<string, unknown>) => ctx.call('PATCH', `/v1/webhook-endpoints/${created.id}`, { key: ctx.keys.write, body });
  t.equal((await patch({ description: 'to the CRM' })).status, 200);
  t.same(await read(), { url: 'http://127.0.0.1:9/hooks', description: 'to the CRM', eventTypes: ['invoice.paid'], status: 'enabled' }, 'only description changed');
  t.equal((await patch({ enabled: false })).status, 200);
  t.same(await read(), { url: 'http://127.0.0.1:9/hooks', description: 'to the CRM', eventTypes: ['invoice.paid'], status: 'disabled' }, 'only the status changed');
  t.equal((await patch({ url: 'http://127.0.0.1:9/other' })).status, 200);
  t.same(await read(), { url: 'http://127.0.0.1:9/other', description: 'to the CRM', eventTypes: ['invoice.paid'], status: 'disabled' }, 'only url changed');
  t.equal((await patch({ eventTypes: [] })).status, 200);
  t.same((await read()).eventTypes, [], 'an explicit empty filter still means every event');
});

t.test('an attempt the receiver took is recorded even when its connection drops at that moment: no second send, the log shows it', async (t) => {
  const { createOutboxRelay } = await import('../src/jobs/outbox-relay.js');
  const { createWebhookService } = await import('../src/modules/webhooks/service.js');
  const { createSecretBox } = await import('../src/lib/secret-box.js');
  const { secretsKeysOf } = await import('../src/config.js');
  const ctx = await setup(t, env);
  // Each request the receiver takes drops the next transaction's connection, as a killed backend would.
  let dropNext = false;
  let dropped = 0;
  const hook = await receiver(t, () => ((dropNext = true), 200));
  const db = new Proxy(ctx.database.db, {
    get(target, prop, receiver) {
      if (prop === 'transaction' && dropNext) {
        return async () => {
          dropNext = false;
          dropped++;
          throw Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' });
        };
      }
      return Reflect.get(target, prop, receiver);
    },
  });
  const webhooks = createWebhookService({
    db,
    clock: { now: () => new Date() },
    logger: createLogger({ LOG_LEVEL: 'silent' }),
    production: false,
    allowedHosts: ctx.config.WEBHOOK_ALLOWED_HOSTS,
    retryScale: 1,
    secretGraceHours: ctx.config.WEBHOOK_SECRET_GRACE_HOURS,
    secrets: createSecretBox(secretsKeysOf(ctx.config)),
  });

  const account = await readyAccount(ctx);
  const { id: endpointId } = await endpoint(ctx, account.id, hook.url, ['credits.adjusted']);
  await ctx.call('POST', `/v1/accounts/${account.id}/credits/adjustments`, { body: { amount: 100, reason: 'dropped record' }, headers: { 'idempotency-key': 'drop' } });
  const relay = createOutboxRelay({ db: ctx.database.db, queues: ctx.queues, logger: createLogger({ LOG_LEVEL: 'silent' }), pollMs: 1000, onRelay: async (tx, rows) => { for (const row of rows) await ctx.services.webhooks.fanOut(row, tx); } });
  await relay.drain();
  const { rows } = await ctx.query("select id from webhook_deliveries where endpoint_id = $1 and event_type = 'credits.adjusted'", [endpointId]);
  t.equal(rows.length, 1);

  t.equal(await webhooks.deliver(rows[0].id, 1), 'succeeded', 'recorded on a fresh connection');
  t.equal(dropped, 1, 'the first try of the record lost its connection');
  t.equal(hook.received.length, 1, 'sent once');
  const [delivery] = (await ctx.call('GET', `/v1/webhook-endpoints/${endpointId}/deliveries`)).body.data;
  t.equal(delivery.status, 'succeeded', 'not left in flight, to be sent again when its lease ran out');
  t.equal(delivery.attempts.length, 1, 'the delivery log shows the attempt');
  t.equal(delivery.attempts[0].statusCode, 200);
  t.equal(await webhooks.deliver(rows[0].id, 1), 'skipped', 'the same job run again sends nothing');
  t.equal(hook.received.length, 1);
});
