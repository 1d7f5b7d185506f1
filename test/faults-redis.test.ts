/**
 * Done when (B): with Redis stopped for 20 s, authorize and usage answer within their
 * normal latency; after Redis returns, queued work completes without a restart.
 *
 * One api and one worker on their own database and Redis. Authorize and usage latency is
 * measured with Redis up (sequential calls, so it is the service's latency and not a queue
 * in the client); then redis-server is killed (SIGKILL: a crash, its data gone) for
 * FAULT_REDIS_OUTAGE_MS (default 20 s), during which authorize and usage keep being called
 * and an upgrade is made (it needs only Postgres; its confirmation email is owed through the
 * outbox). redis-server comes back empty on the same port; without restarting any service
 * process, the upgrade's email must arrive, and new work must flow again.
 *
 * The latency bound during the outage: p99 <= max(5 x the p99 measured with Redis up,
 * 250 ms), and no single call over twice the slowest with Redis up (1 s at least, under 1.9 s). Five times the normal p99 leaves room for a busy
 * 2-core machine; the 250 ms floor keeps a tiny baseline from making the bound absurd; a
 * call that waits for Redis (a command queued until it reconnects) blows through both.
 */
import t from 'tap';
import {
  describeAnswer,
  latencySummary,
  ok,
  paidIndianAccount,
  percentile,
  readMails,
  readyIndianAccount,
  startCluster,
  startRedis,
  STARTER_MONTHLY,
  until,
  type Answer,
} from './fault-harness.js';

const OUTAGE_MS = Number(process.env.FAULT_REDIS_OUTAGE_MS ?? 20_000);
const BASELINE_CALLS = 200;
/** A hung call is cut off here, recorded as a failure, and the loop goes on. */
const CALL_TIMEOUT_MS = 3_000;


// About 40 s when it passes; when calls hang it waits out its timeouts (about 95 s measured).
t.setTimeout(180_000);

t.test(`Redis down for ${OUTAGE_MS / 1000} s: authorize and usage keep their latency; queued work completes after it returns`, async (t) => {
  const started = Date.now();
  const redis = await startRedis(t);
  const cluster = await startCluster(t, { apis: 1, workers: 1, redis });
  t.teardown(() => t.comment(`log summary:\n${cluster.logSummary()}`));
  const api = cluster.api(0);
  t.comment(`cluster up in ${Date.now() - started} ms`);

  const paid: Array<Awaited<ReturnType<typeof paidIndianAccount>>> = [];
  for (let i = 0; i < 3; i++) paid.push(await paidIndianAccount(api, { tag: `paid${i}`, initialCredits: 500_000 }));
  // Ready to upgrade: one during the outage, one after it.
  const duringOutage = await readyIndianAccount(api, { tag: 'outage' });
  const afterOutage = await readyIndianAccount(api, { tag: 'after' });
  // The worker works (the setup's emails are out) before anything is broken.
  await until(() => readMails(cluster.mailDir).length >= 3 + 5, 'the setup emails (3 confirmations, 5 KYC approvals)', 30_000);

  let seq = 0;
  const authorize = (i: number) =>
    api.call('POST', `/v1/accounts/${paid[i % paid.length]!.id}/authorize`, {
      body: { action: 'outbound_call', destination: `+9198${String(20000000 + i).slice(-8)}` },
      timeoutMs: CALL_TIMEOUT_MS,
    });
  const usage = (i: number) =>
    api.call('POST', '/v1/usage', {
      body: { events: [{ id: `call-${++seq}`, accountId: paid[i % paid.length]!.id, type: 'voice_call', durationSeconds: 1 + (i % 180) }] },
      timeoutMs: CALL_TIMEOUT_MS,
    });

  // Normal latency, Redis up (after a warm-up: caches filled, statements prepared).
  for (let i = 0; i < 30; i++) await authorize(i), await usage(i);
  const before = { authorize: [] as Answer[], usage: [] as Answer[] };
  for (let i = 0; i < BASELINE_CALLS; i++) before.authorize.push(await authorize(i)), before.usage.push(await usage(i));
  const failedBefore = [...before.authorize, ...before.usage].filter((a) => !ok(a));
  t.same(failedBefore.slice(0, 5).map(describeAnswer), [], 'with Redis up, every call answers 2xx');
  const p99 = { authorize: percentile(before.authorize.map((a) => a.ms), 99), usage: percentile(before.usage.map((a) => a.ms), 99) };
  t.comment(`Redis up: authorize ${latencySummary(before.authorize.map((a) => a.ms))}; usage ${latencySummary(before.usage.map((a) => a.ms))}`);

  // The outage.
  await redis.stop('SIGKILL');
  const outageStart = Date.now();
  const during = { authorize: [] as Answer[], usage: [] as Answer[] };
  const upgrade = api.call('POST', `/v1/accounts/${duringOutage.id}/upgrade`, {
    body: STARTER_MONTHLY(100_000),
    headers: { 'idempotency-key': `up-${duringOutage.id}` },
    timeoutMs: 15_000,
  });
  let readyz: Answer | null = null;
  for (let i = 0; Date.now() - outageStart < OUTAGE_MS; i++) {
    during.authorize.push(await authorize(i));
    during.usage.push(await usage(i));
    if (!readyz && Date.now() - outageStart > 2_000) readyz = await api.call('GET', '/readyz', { timeoutMs: CALL_TIMEOUT_MS });
  }
  const upgraded = await upgrade;
  await redis.start();
  const returnedAt = Date.now();
  const outageMs = Date.now() - outageStart;
  t.comment(`Redis down for ${outageMs} ms`);
  t.comment(`GET /readyz during the outage: ${readyz ? `${describeAnswer(readyz)} ${JSON.stringify(readyz.body)}` : 'not called'}`);

  // During the outage: every call answered 2xx, within the normal latency.
  for (const kind of ['authorize', 'usage'] as const) {
    const answers = during[kind];
    const ms = answers.map((a) => a.ms);
    t.comment(`Redis down: ${kind} ${latencySummary(ms)}`);
    const failed = answers.filter((a) => !ok(a));
    t.same(failed.slice(0, 10).map(describeAnswer), [], `${kind}: every call during the outage answered 2xx (${failed.length} of ${answers.length} did not)`);
    const bound = Math.max(5 * p99[kind], 250);
    t.ok(percentile(ms, 99) <= bound, `${kind}: p99 during the outage ${percentile(ms, 99).toFixed(1)} ms <= ${bound.toFixed(1)} ms (5 x p99 with Redis up, or 250 ms)`);
    // A call that waited on Redis takes its 2 s command timeout or more: the bound stays under
    // that, and over what a busy machine alone makes of the slowest call with Redis up.
    const maxUp = Math.max(...before[kind].map((a) => a.ms));
    const limit = Math.min(1_900, Math.max(1_000, 2 * maxUp));
    const slow = answers.filter((a) => a.ms > limit);
    t.same(slow.slice(0, 10).map(describeAnswer), [], `${kind}: no call over ${(limit / 1000).toFixed(2)} s during the outage (twice the slowest with Redis up, 1 s at least; ${slow.length} were)`);
    t.ok(answers.length >= 20, `${kind}: the platform kept calling during the outage (${answers.length} calls)`);
  }
  t.equal(upgraded.status, 201, `the upgrade made during the outage answered 201: ${describeAnswer(upgraded)}`);

  // After Redis returns, with no process restarted: the work owed is done. The email is
  // found by recipient (and invoice number when the upgrade answered), so it is checked even
  // when the client never heard the upgrade's answer.
  const invoiceNumber = upgraded.body?.invoice?.number as string | undefined;
  const confirmation = () =>
    readMails(cluster.mailDir).filter((m) => m.to === duringOutage.email && m.subject.startsWith('Welcome to') && (!invoiceNumber || m.subject.includes(invoiceNumber)));
  const emailed = await until(() => confirmation().length > 0, "the outage upgrade's confirmation email", 45_000).then(
    () => true,
    () => false,
  );
  const emailedAfter = Date.now() - returnedAt;
  t.comment(`the outage upgrade's email ${emailedAfter} ms after Redis returned`);
  const account = await api.call('GET', `/v1/accounts/${duringOutage.id}`);
  t.ok(
    emailed,
    `the upgrade made during the outage got its confirmation email after Redis returned ` +
      `(account now ${account.body?.status}, ${invoiceNumber ?? 'no invoice in the answer'}; ${readMails(cluster.mailDir).length} emails in all)`,
  );
  t.ok(confirmation().length <= 1, 'and only one');

  // New work flows too: an upgrade now, its email, and the hot paths.
  const after = await api.call('POST', `/v1/accounts/${afterOutage.id}/upgrade`, { body: STARTER_MONTHLY(100_000), headers: { 'idempotency-key': `up-${afterOutage.id}` } });
  t.equal(after.status, 201, `an upgrade after the outage: ${describeAnswer(after)}`);
  const afterEmailed = await until(
    () => readMails(cluster.mailDir).some((m) => m.to === afterOutage.email && m.subject.includes(String(after.body?.invoice?.number))),
    'the confirmation email of the upgrade made after the outage',
    30_000,
  ).then(
    () => true,
    () => false,
  );
  t.ok(afterEmailed, 'the upgrade made after the outage got its confirmation email');
  const hot = [await authorize(1), await usage(1)];
  t.same(hot.filter((a) => !ok(a)).map(describeAnswer), [], 'authorize and usage answer after the outage');

  for (const p of cluster.all) t.ok(p.alive(), `${p.name} was never restarted and is still running${p.alive() ? '' : ` (${p.ended()})`}`);
  t.same(cluster.fatalLines().slice(0, 20), [], 'no process logged an uncaught error or is exiting');
  t.comment(`scenario took ${Date.now() - started} ms`);
});
