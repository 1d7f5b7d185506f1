import { Worker } from 'bullmq';
import t from 'tap';
import { createEventDispatcher } from '../src/jobs/dispatch-event.js';
import { createEventRequeuer, createOutboxRelay } from '../src/jobs/outbox-relay.js';
import { superviseWorker } from '../src/jobs/supervise.js';
import { createLogger } from '../src/lib/logger.js';
import { createSmtpMailer } from '../src/modules/notifications/mailer.js';
import { createNotificationsService } from '../src/modules/notifications/service.js';
import { workerConnection } from '../src/infra.js';
import { startWorkers } from '../src/workers.js';
import { approveKyc, createAccount, paidAccount, setup } from './helper.js';
import { until } from './fault-harness.js';
import { smtpReceiver } from './smtp.js';

t.test('relay moves each committed outbox row to the queue once, under its event id', async (t) => {
  const ctx = await setup(t);
  const a = await createAccount(ctx);
  await approveKyc(ctx, a.id);
  const relay = createOutboxRelay({ db: ctx.database.db, queues: ctx.queues, logger: createLogger({ LOG_LEVEL: 'silent' }), pollMs: 50 });
  t.equal(await relay.drain(), 3, 'account.created and two KYC changes');
  t.equal(await relay.drain(), 0, 'nothing twice');
  const jobs = await ctx.queues.events.getJobs(['waiting', 'delayed', 'active']);
  t.equal(jobs.length, 2, 'a job for each event that may email: the KYC changes');
  const { rows } = await ctx.query("select event_id from outbox where type = 'kyc.status_changed' order by id");
  t.same(jobs.map((j) => j.id).sort(), rows.map((r: any) => r.event_id).sort(), 'job id = event id');
  const unrelayed = await ctx.query('select count(*)::int as n from outbox where relayed_at is null');
  t.equal(unrelayed.rows[0].n, 0);
  const handled = await ctx.query('select type, handled_at is not null as handled from outbox order by id');
  t.same(
    handled.rows.map((r: any) => [r.type, r.handled]),
    [['account.created', true], ['kyc.status_changed', false], ['kyc.status_changed', false]],
    'an event with no job is done once relayed; the others wait for their job',
  );
});

t.test('a relayed event whose job Redis lost is queued again and emails once', async (t) => {
  const smtp = await smtpReceiver(t);
  const ctx = await setup(t);
  const a = await createAccount(ctx, { email: 'lost@acme.example' });
  await approveKyc(ctx, a.id);
  const logger = createLogger({ LOG_LEVEL: 'silent' });
  const relay = createOutboxRelay({ db: ctx.database.db, queues: ctx.queues, logger, pollMs: 50 });
  await relay.drain();
  const requeue = createEventRequeuer({ db: ctx.database.db, queues: ctx.queues, graceMs: 30_000 });

  t.equal(await requeue(), 0, 'while the jobs wait in the queue the sweep leaves them');
  // Redis loses everything (FLUSHALL, a restart without persistence).
  await ctx.queues.events.obliterate({ force: true });
  t.equal((await ctx.queues.events.getJobs(['waiting', 'delayed', 'active'])).length, 0);
  t.equal(await requeue(), 0, 'an event younger than the grace is not yet counted lost');
  // Time passes.
  await ctx.query("update outbox set relayed_at = relayed_at - interval '1 minute'");

  t.equal(await requeue(), 2, 'both KYC events are found in Postgres');
  t.equal(await requeue(), 0, 'a second sweep while they wait adds nothing');
  const jobs = await ctx.queues.events.getJobs(['waiting', 'delayed', 'active']);
  t.equal(jobs.length, 2, 'one job per event');

  const mailer = createSmtpMailer(smtp.url, 'Billing <billing@test.example>');
  t.teardown(() => mailer.close());
  const dispatch = createEventDispatcher({ db: ctx.database.db, notifications: createNotificationsService({ db: ctx.database.db, clock: ctx.clock, mailer }) });
  for (const job of jobs) await dispatch(job as any);
  t.equal(smtp.received.length, 1, 'the approval emailed once (the submission sends nothing)');
  t.equal((await ctx.query('select count(*)::int as n from outbox where handled_at is null')).rows[0].n, 0, 'every event handled');
  t.equal(await requeue(), 0, 'nothing left to find');
});

t.test('KYC approval emails the account once, through a real SMTP server, even when the job runs twice', async (t) => {
  const smtp = await smtpReceiver(t);
  const ctx = await setup(t);
  const a = await createAccount(ctx, { email: 'owner@acme.example' });
  await approveKyc(ctx, a.id);

  const mailer = createSmtpMailer(smtp.url, 'Billing <billing@test.example>');
  t.teardown(() => mailer.close());
  const notifications = createNotificationsService({ db: ctx.database.db, clock: ctx.clock, mailer });
  const dispatch = createEventDispatcher({ db: ctx.database.db, notifications });
  const { rows } = await ctx.query(
    "select id, event_id, type from outbox where type = 'kyc.status_changed' and payload->>'to' = 'approved'",
  );
  const job = { data: { outboxId: Number(rows[0].id), eventId: rows[0].event_id, type: rows[0].type } } as any;
  t.match(await dispatch(job), { email: 'sent' });
  t.match(await dispatch(job), { email: 'already_sent' }, 're-run: no second email');

  t.equal(smtp.received.length, 1);
  t.same(smtp.received[0]!.to, ['owner@acme.example']);
  t.match(smtp.received[0]!.raw, /Subject: Your KYC is approved/);
  const deliveries = await ctx.query('select sent_at, message_id from email_deliveries');
  t.equal(deliveries.rows.length, 1);
  t.ok(deliveries.rows[0].sent_at);
  t.match(smtp.received[0]!.raw, deliveries.rows[0].message_id, 'the stored Message-ID is the one sent');

  const submitted = await ctx.query("select id, event_id, type from outbox where payload->>'to' = 'submitted'");
  t.match(
    await dispatch({ data: { outboxId: Number(submitted.rows[0].id), eventId: submitted.rows[0].event_id, type: 'kyc.status_changed' } } as any),
    { email: 'no_email' },
    'a submission sends nothing',
  );
});

t.test('the worker process relays and emails end to end', async (t) => {
  const smtp = await smtpReceiver(t);
  const ctx = await setup(t, { OUTBOX_POLL_MS: '50' });
  const mailer = createSmtpMailer(smtp.url, 'Billing <billing@test.example>');
  const workers = await startWorkers(
    { config: ctx.config, logger: createLogger({ LOG_LEVEL: 'silent' }), database: ctx.database, redis: ctx.redis, queues: ctx.queues, clock: ctx.clock },
    { mailer },
  );
  t.teardown(() => workers.close());
  const a = await createAccount(ctx, { email: 'kyc@acme.example' });
  await ctx.call('PUT', `/v1/accounts/${a.id}/kyc`, { key: ctx.keys.kyc, body: { status: 'submitted' } });
  await ctx.call('PUT', `/v1/accounts/${a.id}/kyc`, { key: ctx.keys.kyc, body: { status: 'rejected', reason: 'Address proof expired' } });
  const deadline = Date.now() + 10_000;
  while (smtp.received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.equal(smtp.received.length, 1);
  t.match(smtp.received[0]!.raw, /Address proof expired/);
});

t.test('the worker process frees a crashed caller\'s expired holds', async (t) => {
  const ctx = await setup(t, { SCHEDULER_INTERVAL_MS: '100' });
  const account = await paidAccount(ctx, 1000);
  const held = await ctx.call('POST', `/v1/accounts/${account.id}/holds`, { key: ctx.keys.write, body: { action: 'outbound_call', destination: '+919876543210', reference: 'crashed', ttlSeconds: 10 } });
  t.equal(held.status, 201);
  const workers = await startWorkers({ config: ctx.config, logger: createLogger({ LOG_LEVEL: 'silent' }), database: ctx.database, redis: ctx.redis, queues: ctx.queues, clock: ctx.clock }, { mailer: { send: async () => {}, close: () => {} } as never });
  t.teardown(() => workers.close());
  ctx.clock.advance(11_000);
  const deadline = Date.now() + 20_000;
  let status = 'active';
  while (status === 'active' && Date.now() < deadline) {
    status = (await ctx.call('GET', `/v1/holds/${held.body.hold.id}`, { key: ctx.keys.read })).body.status;
    if (status === 'active') await new Promise((r) => setTimeout(r, 50));
  }
  t.equal(status, 'expired', 'released by the running worker');
  const credits = await ctx.call('GET', `/v1/accounts/${account.id}/credits`);
  t.same([credits.body.held, credits.body.available], [0, 1000]);
});

t.test('without SMTP_URL, development emails are written as .eml files', async (t) => {
  const { mkdtempSync, readdirSync, readFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { simpleParser } = await import('mailparser');
  const { createFileMailer } = await import('../src/modules/notifications/mailer.js');
  const parent = mkdtempSync(join(tmpdir(), 'billing-mail-'));
  const dir = join(parent, 'mail');
  t.teardown(() => rmSync(parent, { recursive: true, force: true }));
  const mailer = createFileMailer(dir, 'Billing <billing@test.example>');
  const email = {
    to: 'owner@acme.example',
    subject: 'Welcome',
    text: 'plain',
    html: '<p>rich</p>',
    attachments: [{ filename: 'INV-1.pdf', content: Buffer.from('%PDF-1.3'), contentType: 'application/pdf' }],
    messageId: '<eml_123@billing-service>',
  };
  await mailer.send(email);
  await mailer.send(email);
  const files = readdirSync(dir);
  t.same(files, ['eml_123@billing-service.eml'], 'one file per email, a re-send overwrites');
  const parsed = await simpleParser(readFileSync(join(dir, files[0]!)));
  t.equal(parsed.subject, 'Welcome');
  t.equal(parsed.attachments[0]?.filename, 'INV-1.pdf');
});

t.test('two runs of one email job at once send one email', async (t) => {
  const smtp = await smtpReceiver(t);
  const ctx = await setup(t);
  const a = await createAccount(ctx, { email: 'race@acme.example' });
  await approveKyc(ctx, a.id);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const real = createSmtpMailer(smtp.url, 'Billing <billing@test.example>');
  t.teardown(() => real.close());
  const slowMailer = { send: async (e: any) => { await gate; await real.send(e); }, close: () => {} };
  const notifications = createNotificationsService({ db: ctx.database.db, clock: ctx.clock, mailer: slowMailer });
  const { rows } = await ctx.query("select * from outbox where payload->>'to' = 'approved'");
  const event = { ...rows[0], id: Number(rows[0].id), eventId: rows[0].event_id, accountId: rows[0].account_id, createdAt: rows[0].created_at, relayedAt: null };
  const first = notifications.emailForEvent(event);
  await new Promise((r) => setTimeout(r, 50));
  await t.rejects(notifications.emailForEvent(event), /being sent by another run/, 'the second run backs off');
  release();
  t.equal(await first, 'sent');
  t.equal(await notifications.emailForEvent(event), 'already_sent');
  t.equal(smtp.received.length, 1);
});

t.test('a worker that stops taking jobs while they wait is replaced by a new one, and each job runs once', async (t) => {
  const ctx = await setup(t);
  const ran: string[] = [];
  const made: Worker[] = [];
  const connection = workerConnection(ctx.redis);
  connection.on('error', () => {});
  const job = (id: string) => ctx.queues.events.add('account.upgraded', { outboxId: 0, eventId: id, type: 'account.upgraded' }, { jobId: id });
  const supervisor = superviseWorker({
    queue: ctx.queues.events,
    logger: createLogger({ LOG_LEVEL: 'silent' }),
    stuckMs: 1_000,
    pollMs: 100,
    make: () => {
      const worker = new Worker(ctx.queues.events.name, async (job) => void ran.push(job.id!), { connection, prefix: ctx.config.QUEUE_PREFIX, drainDelay: 1 });
      made.push(worker);
      return worker;
    },
  });
  t.teardown(async () => {
    supervisor.stop();
    await Promise.all(made.map((w) => w.close(true)));
    connection.disconnect();
  });

  await job('first');
  await until(() => ran.includes('first'), 'the first job');
  t.equal(supervisor.restarts(), 0, 'a worker that takes its jobs is left alone');
  // Wedged as after the CLUSTERDOWN outage: its next fetch never returns, and it says nothing.
  let wedged = false;
  (made[0] as unknown as { _getNextJob: () => Promise<never> })._getNextJob = () => {
    wedged = true;
    return new Promise<never>(() => {});
  };
  await until(() => wedged, 'the worker to fetch again (and hang)', 10_000, 20);
  await job('second');
  await until(() => ran.includes('second'), 'the second job, run by a new worker', 20_000, 50);
  t.equal(made.length, 2, 'a second worker was made');
  t.equal(supervisor.restarts(), 1, 'one restart');
  t.equal(supervisor.current, made[1], 'the new worker is the current one');
  await until(() => made[0]!.closing !== undefined && made[0]!.closing !== null, 'the stuck worker to be closing', 10_000, 20);
  // Nothing more: more jobs run once each on the new worker, and no further restart.
  for (const id of ['third', 'fourth']) await job(id);
  await until(() => ran.includes('fourth') && ran.includes('third'), 'two more jobs');
  t.equal(await supervisor.check(), false, 'a check now finds nothing stuck');
  t.same(ran, ['first', 'second', 'third', 'fourth'], 'each job ran once');
  t.equal(supervisor.restarts(), 1, 'still one restart');
});
