/**
 * The renewal wave: `count` paid subscriptions due at one instant, renewed by the real
 * worker process (scheduler, batch drains, sandbox gateway), timed until every one has its
 * paid invoice for the new period, its sandbox charge, its succeeded payment and its outbox
 * rows; then checked: no renewal missed or doubled, invoice numbers gapless, ledger untouched.
 *
 *   tsx bench/renewals.ts [count]      (BENCH_DATABASE_ADMIN_URL, REDIS_URL as for npm run bench)
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { migratePostgres } from '../src/db/client.js';
import { query } from './pg.js';
import { isMainModule } from '../src/runtime.js';
import { addMonthsClamped } from '../src/modules/subscriptions/periods.js';

const root = new URL('..', import.meta.url).pathname;
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const DAY_MS = 86_400_000;


/**
 * Half the accounts in India (INR, Starter at 2,950.00 with GST; card or UPI, the pre-debit
 * notice already sent two days before the period end), half in the US (USD card). All
 * periods end at one instant a few days ago, so the next ends a month from now.
 */
async function seed(url: string, count: number, periodStart: Date, periodEnd: Date) {
  const id = (prefix: string) => `'${prefix}' || lpad(g::text, 20, '0')`;
  const india = 'g % 2 = 0';
  await query(
    url,
    `insert into accounts (id, name, email, country, currency, status, kyc_status, plan_id, created_at, updated_at)
       select ${id('acc_wave')}, 'Wave ' || g, 'w' || g || '@wave.example', case when ${india} then 'IN' else 'US' end,
              (case when ${india} then 'INR' else 'USD' end)::currency, 'active', 'approved', 'plan_starter_v1', $2, $2
       from generate_series(1, $1) g`,
    [count, periodStart],
  );
  // Saved as the gateway keeps them: its vault holds the token or VPA, our row its reference.
  await query(
    url,
    `insert into sandbox_payment_methods (reference, idempotency_key, type, instrument, created_at)
       select ${id('spm_wave')}, ${id('pm_wave')}, case when g % 4 = 0 then 'upi' else 'card' end,
              case when g % 4 = 0 then 'success@upi' else 'tok_visa' end, $2
       from generate_series(1, $1) g`,
    [count, periodStart],
  );
  await query(
    url,
    `insert into payment_methods (id, account_id, type, reference, label, last4, is_default, created_at)
       select ${id('pm_wave')}, ${id('acc_wave')},
              (case when g % 4 = 0 then 'upi' else 'card' end)::payment_method_type, ${id('spm_wave')},
              case when g % 4 = 0 then 'su***@upi' else 'visa' end, case when g % 4 = 0 then null else '4242' end, true, $2
       from generate_series(1, $1) g`,
    [count, periodStart],
  );
  await query(
    url,
    `insert into subscriptions (id, account_id, plan_id, billing_cycle, status, anchor_at, current_period_start, current_period_end,
                                months_elapsed, payment_method_id, renewal_notice_for, renewal_notice_at, created_at, updated_at)
       select ${id('sub_wave')}, ${id('acc_wave')}, 'plan_starter_v1', 'monthly', 'active', $2, $2, $3, 1, ${id('pm_wave')},
              case when ${india} then $3::timestamptz end, case when ${india} then $3::timestamptz - interval '2 days' end, $2, $2
       from generate_series(1, $1) g`,
    [count, periodStart, periodEnd],
  );
  await query(url, `insert into credit_balances (account_id, currency, balance, updated_at) select id, currency, 100000, $1 from accounts`, [periodStart]);
  await query(
    url,
    `insert into credit_ledger (account_id, kind, amount, currency, balance_after, source_key, description, created_at)
       select id, 'adjustment', 100000, currency, 100000, 'wave:' || id, 'bench seed', $1 from accounts`,
    [periodStart],
  );
  await query(url, 'vacuum analyze');
}

const ledgerSummary = async (url: string) =>
  (await query(url, 'select (select coalesce(sum(balance), 0)::text from credit_balances) as balances, (select count(*)::int from credit_ledger) as entries, (select coalesce(sum(amount), 0)::text from credit_ledger) as ledger')).rows[0] as Record<string, unknown>;

/** What must hold after the wave; each line that fails is a broken run. */
async function check(url: string, count: number, periodEnd: Date, ledgerBefore: Record<string, unknown>): Promise<string[]> {
  const { rows: [r] } = await query(
    url,
    `select
       (select count(*)::int from subscriptions where status = 'active' and current_period_start = $1 and months_elapsed = 2) as renewed_subscriptions,
       (select count(*)::int from invoices where kind = 'renewal' and status = 'paid' and period_start = $1) as paid_invoices,
       (select count(*)::int from invoices where kind = 'renewal') as renewal_invoices,
       (select count(*)::int from (select 1 from invoices where kind = 'renewal' group by subscription_id, period_start having count(*) > 1) d) as doubled_periods,
       (select count(*)::int from payments where purpose = 'renewal') as payments,
       (select count(*)::int from payments where purpose = 'renewal' and status = 'succeeded') as succeeded_payments,
       (select count(*)::int from sandbox_charges) as charges,
       (select count(*)::int from (select 1 from payments p join sandbox_charges c on c.idempotency_key = p.id group by p.id having count(*) = 1) c) as payments_charged_once,
       (select count(*)::int from invoices i join payments p on p.invoice_id = i.id and p.amount = i.total) as invoices_with_payment,
       (select count(*)::int from invoices where kind = 'renewal' and status = 'paid' and (select count(*) from invoices) = (select max(sequence) from invoices)) as gapless_numbers,
       (select count(*)::int from accounts where status = 'active') as active_accounts,
       (select count(*)::int from outbox where type = 'invoice.created') as invoice_created,
       (select count(*)::int from outbox where type = 'subscription.renewed') as subscription_renewed,
       (select count(*)::int from outbox where type = 'payment.succeeded') as payment_succeeded,
       (select count(*)::int from outbox where type = 'invoice.paid') as invoice_paid,
       (select count(*)::int from outbox) as events`,
    [periodEnd],
  );
  const failures = Object.entries(r as Record<string, number>)
    .filter(([name, n]) => (name === 'doubled_periods' ? n !== 0 : name === 'events' ? n !== 4 * count : n !== count))
    .map(([name, n]) => `${name} = ${n}`);
  const ledgerAfter = await ledgerSummary(url);
  if (JSON.stringify(ledgerAfter) !== JSON.stringify(ledgerBefore)) failures.push(`ledger changed: ${JSON.stringify(ledgerBefore)} -> ${JSON.stringify(ledgerAfter)}`);
  return failures;
}

async function deleteKeys(prefix: string) {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

export interface WaveResult {
  seconds: number;
  correct: boolean;
  detail: string;
}

/** A database of its own, migrated and seeded with `count` due subscriptions; dropped after `run`. */
async function withWaveDatabase<T>(
  adminUrl: string,
  count: number,
  run: (wave: { url: string; dbName: string; periodEnd: Date; seeded: number; ledgerBefore: Record<string, unknown> }) => Promise<T>,
): Promise<T> {
  const dbName = `billing_wave_${randomBytes(4).toString('hex')}`;
  const url = adminUrl.replace(/\/[^/?]*(\?|$)/, `/${dbName}$1`);
  await query(adminUrl, `create database ${dbName}`);
  try {
    await migratePostgres(url);
    // Whole seconds, so Postgres and the worker agree on every instant to the millisecond.
    const periodStart = new Date(Math.floor((Date.now() - 33 * DAY_MS) / 1000) * 1000);
    const periodEnd = addMonthsClamped(periodStart, 1);
    const seeding = Date.now();
    await seed(url, count, periodStart, periodEnd);
    const seeded = (Date.now() - seeding) / 1000;
    return await run({ url, dbName, periodEnd, seeded, ledgerBefore: await ledgerSummary(url) });
  } finally {
    await query(adminUrl, `drop database if exists ${dbName} with (force)`);
  }
}

const verdict = (failures: string[]) =>
  failures.length === 0 ? 'each renewed once: one paid invoice, one charge, one succeeded payment, four events; numbers gapless; ledger untouched' : `BROKEN: ${failures.join('; ')}`;

export async function renewalWave(opts: { adminUrl: string; count: number }): Promise<WaveResult> {
  const { adminUrl, count } = opts;
  return withWaveDatabase(adminUrl, count, async ({ url, dbName, periodEnd, seeded, ledgerBefore }) => {
    const prefix = `bench-wave-${dbName}`;
    const mailDir = `/tmp/${prefix}-mail`;
    let worker: ReturnType<typeof spawn> | undefined;
    try {
      // The worker as it runs in production, on its own: BENCH_PROFILE=dir writes its CPU profile.
      const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROFILE] : [];
      const spawned = Date.now();
      worker = spawn(process.execPath, [...profile, '--import', 'tsx', 'src/worker.ts'], {
        cwd: root,
        env: { ...process.env, DATABASE_URL: url, REDIS_URL: redisUrl, QUEUE_PREFIX: prefix, LOG_LEVEL: 'info', SCHEDULER_INTERVAL_MS: '100', MAIL_DIR: mailDir, NODE_ENV: 'development' },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const child = worker;
      // Timed from the moment the worker is up (its boot is noted apart): the wave meets a running worker.
      await new Promise<void>((resolve, reject) => {
        const lines = createInterface({ input: child.stdout! });
        lines.on('line', (line) => {
          if (line.includes('workers started')) resolve();
          else if (/"level":(50|60)/.test(line)) process.stderr.write(`${line}\n`);
        });
        child.once('exit', (code) => reject(new Error(`worker exited with ${code} before starting`)));
      });
      const started = Date.now();
      const booted = (started - spawned) / 1000;
      const deadline = started + Math.max(120_000, count * 2);
      const paid = async () => (await query(url, "select count(*)::int as n from invoices where kind = 'renewal' and status = 'paid'")).rows[0].n as number;
      let done = 0;
      while ((done = await paid()) < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      const seconds = (Date.now() - started) / 1000;
      child.kill('SIGTERM');
      await once(child, 'exit');
      worker = undefined;

      const failures = done < count ? [`timed out with ${done} of ${count} renewed`] : [];
      failures.push(...(await check(url, count, periodEnd, ledgerBefore)));
      const rate = Math.round(count / seconds);
      const detail = `${count} renewals in ${seconds.toFixed(1)} s (${rate}/s; seeding ${seeded.toFixed(1)} s, worker boot ${booted.toFixed(1)} s not counted); ${verdict(failures)}`;
      return { seconds, correct: failures.length === 0, detail };
    } finally {
      if (worker && worker.exitCode === null) {
        worker.kill('SIGKILL');
        await once(worker, 'exit').catch(() => {});
      }
      await deleteKeys(prefix);
      rmSync(mailDir, { recursive: true, force: true });
    }
  });
}

if (isMainModule(import.meta.url)) {
  const count = Number(process.argv[2] ?? 10_000);
  const adminUrl = process.env.BENCH_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const result = await renewalWave({ adminUrl, count });
  console.log(result.detail);
  if (!result.correct) process.exitCode = 1;
}
