/**
 * Done when (C): a FLUSHALL during a renewal wave loses no email or webhook: one email per
 * event that should send one.
 *
 * One api and two workers on their own database and Redis, test clocks on. FAULT_WAVE_SIZE
 * (default 64: 15 to 22 event jobs wait in Redis at the FLUSHALL, as with 160, whose setup
 * alone took 50 to 70 s) Indian Starter subscriptions (monthly, card) live on one test clock, so their
 * periods end at one instant; some accounts have a webhook endpoint on a receiver run here
 * (all events, or a filter). The clock is advanced past the period end: the workers renew
 * every subscription (with PRE_DEBIT_NOTICE_HOURS=0 the e-mandate notice goes out with the
 * charge), which writes per subscription invoice.created, subscription.renewed,
 * subscription.renewal_notice, payment.succeeded and invoice.paid, two of which email. While
 * the wave is being processed (the relay has handed some of its events to Redis, and at
 * least 10 of their jobs wait there for a worker) the test runs FLUSHALL. Then, within
 * FAULT_FLUSH_RECOVERY_MS (default 60 s, the outbox-lag alert threshold of
 * docs/operations.md): every event that should email has exactly one sent email_deliveries
 * row and exactly one .eml; every wave event of an account with a matching endpoint reached
 * the receiver and its delivery succeeded; every subscription renewed once.
 *
 * Which events email is the service's own rule (renderEmail, plus the upgrade confirmation).
 */
import t from 'tap';
import {
  countByType,
  describeAnswer,
  emailLedger,
  mapLimit,
  paidIndianAccount,
  shouldEmail,
  startCluster,
  startRedis,
  until,
  webhookReceiver,
  type Answer,
} from './fault-harness.js';

const WAVE = Number(process.env.FAULT_WAVE_SIZE ?? 64);
const RECOVERY_MS = Number(process.env.FAULT_FLUSH_RECOVERY_MS ?? 60_000);
/** Event jobs waiting in Redis when the FLUSHALL runs: what it must not lose. */
const MIN_WAITING = 10;
const START = '2026-11-26T10:00:00.000Z';
const AFTER_PERIOD_END = '2026-12-26T10:05:00.000Z';
/** The events a renewal writes; which of them email is decided by shouldEmail. */
const WAVE_TYPES = ['invoice.created', 'subscription.renewed', 'subscription.renewal_notice', 'payment.succeeded', 'invoice.paid'];

// 25 s when it passes idle; up to 90 s when emails are lost (the 60 s recovery wait runs out).
t.setTimeout(240_000);

t.test(`FLUSHALL during a renewal wave of ${WAVE} subscriptions loses no email or webhook`, async (t) => {
  const started = Date.now();
  const redis = await startRedis(t);
  const hooks = await webhookReceiver(t);
  const cluster = await startCluster(t, {
    apis: 1,
    workers: 2,
    redis,
    env: { TEST_CLOCKS_ENABLED: 'true', PRE_DEBIT_NOTICE_HOURS: '0', WEBHOOK_RETRY_SCALE: '0.001' },
  });
  t.teardown(() => t.comment(`log summary:\n${cluster.logSummary()}`));
  const api = cluster.api(0);
  t.comment(`cluster up in ${Date.now() - started} ms`);

  const clock = await api.call('POST', '/v1/test-clocks', { body: { name: 'renewal wave', frozenTime: START } });
  if (clock.status !== 201) throw new Error(`test clock: ${describeAnswer(clock)}`);
  const clockId = clock.body.id as string;

  // The subscriptions, and an endpoint on every 8th account: all events, or only two types.
  const endpoints = new Map<string, { accountId: string; eventTypes: string[]; name: string }>();
  const accounts = await mapLimit(Array.from({ length: WAVE }, (_, i) => i), 6, async (i) => {
    const account = await paidIndianAccount(api, { tag: `wave${i}`, testClockId: clockId });
    if (i % 8 === 0) {
      const eventTypes = i % 16 === 0 ? [] : ['subscription.renewed', 'invoice.paid'];
      const name = `acct-${i}`;
      const res = await api.call('POST', `/v1/accounts/${account.id}/webhook-endpoints`, { body: { url: hooks.urlFor(name), eventTypes } });
      if (res.status !== 201) throw new Error(`webhook endpoint: ${describeAnswer(res)}`);
      endpoints.set(res.body.id, { accountId: account.id, eventTypes, name });
    }
    return account;
  });
  t.comment(`${WAVE} subscriptions and ${endpoints.size} webhook endpoints made in ${Date.now() - started} ms`);

  // Before the wave, the setup's emails are all out (so the workers work, and the count below is the wave's).
  await until(async () => (await emailLedger(cluster)).events.every((e) => e.sent === 1), 'the setup emails (KYC approvals, upgrade confirmations)', 90_000);
  const before = (await cluster.sql<{ before: number }>('select coalesce(max(id), 0)::int as before from outbox'))[0]!.before;
  const emailingWaveTypes = WAVE_TYPES.filter((type) => shouldEmail({ type, payload: {}, accountId: 'x' }));
  t.comment(`setup done in ${Date.now() - started} ms; wave types that email: ${emailingWaveTypes.join(', ')}`);

  // The wave: advance past the period end (the call waits for the workers, up to 30 s).
  const waveStart = Date.now();
  const advance = api.call('POST', `/v1/test-clocks/${clockId}/advance`, { body: { frozenTime: AFTER_PERIOD_END }, timeoutMs: 60_000 });
  // FLUSHALL while relayed wave events still owe their email.
  const progress = async () =>
    (
      await cluster.sql<{ events: number; relayed: number; owed: number; sent: number }>(
        `select count(*)::int as events,
                count(*) filter (where o.relayed_at is not null)::int as relayed,
                count(*) filter (where o.relayed_at is not null and o.type = any($2) and d.sent_at is null)::int as owed,
                count(d.sent_at)::int as sent
           from outbox o left join email_deliveries d on d.event_id = o.event_id
          where o.id > $1`,
        [before, emailingWaveTypes],
      )
    )[0]!;
  // The moment: wave events relayed, and at least MIN_WAITING of their jobs waiting in Redis
  // (not yet taken by a worker): what a FLUSHALL loses.
  const atFlush = await until(
    async () => {
      const p = await progress();
      if (p.relayed === 0 || p.owed === 0) return null;
      const jobs = await redis.jobCounts(cluster.prefix, 'events');
      const waiting = jobs.waiting! + jobs.prioritized! + jobs.delayed!;
      return waiting >= MIN_WAITING ? { ...p, waitingJobs: waiting, activeJobs: jobs.active! } : null;
    },
    `at least ${MIN_WAITING} wave email jobs waiting in Redis`,
    60_000,
    10,
  );
  const renewalJobs = await redis.jobCounts(cluster.prefix, 'renewals');
  await redis.client().flushall();
  t.comment(
    `FLUSHALL ${Date.now() - waveStart} ms into the wave: ${JSON.stringify(atFlush)} (wave events so far, relayed, relayed and owing an email, ` +
      `emails sent, event jobs waiting, event jobs active); renewal jobs then: ${JSON.stringify(renewalJobs)}`,
  );
  t.ok(atFlush.owed > 0 && atFlush.waitingJobs > 0, `the FLUSHALL hit the wave in flight (${atFlush.owed} relayed events owed their email, ${atFlush.waitingJobs} event jobs waiting)`);

  // The renewals themselves are found in Postgres again.
  const advanced: Answer = await advance;
  t.equal(advanced.status, 200, `the advance call answered: ${describeAnswer(advanced)}`);
  await until(async () => (await api.call('GET', `/v1/test-clocks/${clockId}`)).body?.status === 'ready', 'the test clock to be ready (every renewal done)', 60_000).catch(
    (err: Error) => t.fail(err.message),
  );
  const renewals = await cluster.sql<{ subscription_id: string; n: number }>(
    "select s.id as subscription_id, count(i.id)::int as n from subscriptions s left join invoices i on i.subscription_id = s.id and i.kind = 'renewal' group by 1",
  );
  t.same(
    renewals.filter((r) => r.n !== 1).slice(0, 10),
    [],
    `every subscription renewed exactly once (${renewals.filter((r) => r.n === 1).length} of ${renewals.length})`,
  );

  // Emails: everything owed, exactly once. Waited for by condition, up to RECOVERY_MS.
  const recoveryStart = Date.now();
  let ledger = await emailLedger(cluster);
  const done = await until(async () => (ledger = await emailLedger(cluster)).events.every((e) => e.sent >= 1 && e.files >= 1), 'every email owed', RECOVERY_MS, 250).then(
    () => true,
    () => false,
  );
  t.comment(`emails ${done ? 'complete' : 'still incomplete'} ${Date.now() - recoveryStart} ms after the advance answered`);
  const waveEvents = await cluster.sql<{ event_id: string }>('select event_id from outbox where id > $1', [before]);
  const inWave = new Set(waveEvents.map((e) => e.event_id));
  const missing = ledger.events.filter((e) => e.sent === 0 || e.files === 0);
  const waveOwed = ledger.events.filter((e) => inWave.has(e.eventId));
  t.same(
    missing.slice(0, 10),
    [],
    `every event that should email did: ${missing.length} of ${ledger.events.length} emails missing ` +
      `(${missing.filter((e) => inWave.has(e.eventId)).length} of the wave's ${waveOwed.length}${missing.length ? `: ${countByType(missing)}` : ''})`,
  );
  const doubled = ledger.events.filter((e) => e.sent > 1 || e.deliveries > 1 || e.files > 1);
  t.same(doubled.slice(0, 10), [], `no event emailed twice (${doubled.length} were)`);
  t.same(ledger.stray.slice(0, 10), [], 'no email that no delivery row accounts for');

  // Webhooks: every wave event of an account with a matching endpoint was delivered.
  const owedHooks = await cluster.sql<{ endpoint_id: string; event_id: string; type: string }>(
    `select e.id as endpoint_id, o.event_id, o.type
       from outbox o join webhook_endpoints e on e.account_id = o.account_id
      where o.id > $1 and (cardinality(e.event_types) = 0 or o.type = any(e.event_types))`,
    [before],
  );
  const hookState = async () => {
    const rows = await cluster.sql<{ endpoint_id: string; event_id: string; status: string }>(
      'select endpoint_id, event_id, status from webhook_deliveries d where exists (select 1 from outbox o where o.event_id = d.event_id and o.id > $1)',
      [before],
    );
    const status = new Map(rows.map((r) => [`${r.endpoint_id}/${r.event_id}`, r.status]));
    const received = new Set(hooks.received.map((h) => `${h.path}/${h.webhookId}`));
    const undelivered = owedHooks.filter((h) => {
      const path = `/hooks/${endpoints.get(h.endpoint_id)!.name}`;
      return status.get(`${h.endpoint_id}/${h.event_id}`) !== 'succeeded' || !received.has(`${path}/${h.event_id}`);
    });
    return { undelivered, rows };
  };
  let hooksNow = await hookState();
  await until(async () => (hooksNow = await hookState()).undelivered.length === 0, 'every webhook owed', 30_000, 250).catch(() => {});
  t.ok(owedHooks.length > 0, `the wave owed webhooks (${owedHooks.length} to ${endpoints.size} endpoints)`);
  t.same(
    hooksNow.undelivered.slice(0, 10),
    [],
    `every wave event reached the endpoints subscribed to it: ${hooksNow.undelivered.length} of ${owedHooks.length} not delivered${hooksNow.undelivered.length ? ` (${countByType(hooksNow.undelivered)})` : ''}`,
  );
  const unsettled = hooksNow.rows.filter((r) => r.status !== 'succeeded');
  t.same(unsettled.slice(0, 10), [], 'every wave webhook delivery succeeded');

  for (const p of cluster.all) t.ok(p.alive(), `${p.name} is still running${p.alive() ? '' : ` (${p.ended()})`}`);
  t.same(cluster.fatalLines().slice(0, 20), [], 'no process logged an uncaught error or is exiting');
  t.comment(`${accounts.length} accounts; scenario took ${Date.now() - started} ms`);
});
