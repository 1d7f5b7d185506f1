/**
 * The renewal wave: `count` paid subscriptions due at one instant, renewed by the real
 * worker process (scheduler, batch drains, sandbox gateway), timed until every one has its
 * paid invoice for the new period, its sandbox charge, its succeeded payment and its outbox
 * rows; then checked: no renewal missed or doubled, invoice numbers gapless, ledger untouched.
 *
 *   tsx bench/renewals.ts [count] [--raw]      (BENCH_DATABASE_ADMIN_URL, REDIS_URL as for npm run bench)
 *
 * --raw times the baseline instead: the same rows written by a few set-based statements (rawRenewalWave).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import pg from 'pg';
import { loadConfig, taxationOf } from '../src/config.js';
import { migratePostgres } from '../src/db/client.js';
import { newId } from '../src/lib/ids.js';
import type { Currency } from '../src/lib/money.js';
import { financialYearOf, fyCode, priceUpgrade } from '../src/modules/billing/domain.js';
import { taxRegime } from '../src/modules/billing/tax.js';
import { query } from './pg.js';
import { isMainModule } from '../src/runtime.js';
import { addMonthsClamped } from '../src/modules/subscriptions/periods.js';

/**
 * The flags production runs node with (the Dockerfile's NODE_OPTIONS, `npm start`): V8 grows
 * its young generation to 64 MB a semi-space under load, half an api's RSS; 8 MB measured the
 * same throughput.
 */
export const NODE_FLAGS = ['--max-semi-space-size=8'];

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

/** Deletes the queue keys under `prefix` (the bench's api and workers leave their queues' meta keys behind). */
export async function deleteKeys(prefix: string) {
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
      worker = spawn(process.execPath, [...profile, ...NODE_FLAGS, '--import', 'tsx', 'src/worker.ts'], {
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

/**
 * The same wave written by hand, set-based: the baseline the worker's wave is compared with.
 * The rows one renewal writes (as the batch path writes them: src/modules/renewals/batch.ts)
 * for every due subscription at once, in three statements, each its own transaction as the
 * batch path commits them: (1) issue: the year's counter moved once, the invoices numbered in
 * order with their lines, the payments opened, the periods moved, the accounts' plan set, and
 * invoice.created and subscription.renewed in the outbox; (2) the gateway's side: a sandbox
 * charge per payment; (3) settle: the payments succeeded, the invoices paid, payment.succeeded
 * and invoice.paid in the outbox. Priced as the service prices (priceUpgrade, with the tax
 * regime of each plan, cycle and country), the buyer's name and email filled in per invoice.
 * What it leaves out, being the worker's and not the rows': claiming in batches with SKIP
 * LOCKED, the per-row plan, the reads back, BullMQ and Redis. The seed's subscriptions are
 * all the plain case (active, real time, card or UPI, notice already sent, no add-on or
 * scheduled change), so nothing here needs the single path; the same checks as the worker's
 * wave then say the rows are the same.
 */
export async function rawRenewalWave(opts: { adminUrl: string; count: number }): Promise<WaveResult> {
  const { adminUrl, count } = opts;
  return withWaveDatabase(adminUrl, count, async ({ url, periodEnd, seeded, ledgerBefore }) => {
    const config = loadConfig({ ...process.env, DATABASE_URL: url, NODE_ENV: 'development' });
    const taxation = taxationOf(config);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const now = new Date();
      const financialYear = financialYearOf(now);
      // The time part of an id made now (newId: 10 characters of time, 16 of randomness).
      const head = newId('x', now).slice(2, 12);
      const started = Date.now();
      // What each kind of due renewal costs: a handful of catalog rows, priced in JS as the service does.
      const kinds = (
        await client.query(
          `select k.plan_id, k.billing_cycle, k.country, k.currency, p.name as plan_name, pp.monthly_minimum, c.name as cycle_name, c.months, c.discount_bps
             from (select distinct s.plan_id, s.billing_cycle, a.country, a.currency from subscriptions s join accounts a on a.id = s.account_id
                   where s.status = 'active' and s.current_period_end <= $1) k
             join plans p on p.id = k.plan_id
             join plan_prices pp on pp.plan_id = k.plan_id and pp.currency = k.currency
             join billing_cycles c on c.code = k.billing_cycle`,
          [now],
        )
      ).rows as Array<{ plan_id: string; billing_cycle: string; country: string; currency: Currency; plan_name: string; monthly_minimum: string; cycle_name: string; months: number; discount_bps: number }>;
      const priced = kinds.map((k) => {
        // The buyer's name and email are the template's: the statement puts each account's in.
        const p = priceUpgrade({
          currency: k.currency,
          planName: k.plan_name,
          cycle: { name: k.cycle_name, months: k.months, discountBps: k.discount_bps },
          monthlyMinimum: Number(k.monthly_minimum),
          whatsappAddonMonthly: null,
          initialCredits: 0,
          tax: taxRegime(taxation, { name: '', email: '', country: k.country, billingProfile: null }),
        });
        return {
          plan_id: k.plan_id,
          billing_cycle: k.billing_cycle,
          country: k.country,
          subtotal: p.subtotal,
          discount_total: p.discountTotal,
          tax_label: p.tax.label,
          tax_rate_bps: p.tax.rateBps,
          tax_amount: p.tax.amount,
          total: p.total,
          tax_components: p.tax.components,
          supply: p.supply,
          lines: p.lines.map((l, position) => ({ position, kind: l.kind, description: l.description, quantity: l.quantity, unit_amount: l.unitAmount, gross_amount: l.grossAmount, discount_amount: l.discountAmount, amount: l.amount })),
          months: k.months,
        };
      });
      const iso = (column: string) => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
      // An id of newId's shape: its prefix, the time part (the parameter `head`), 16 random characters.
      const id = (prefix: string, head: string) => `'${prefix}_' || ${head}::text || substr(md5(random()::text), 1, 16)`;
      const outboxId = `nextval(pg_get_serial_sequence('outbox', 'id'))`;
      // 1. Issue, one transaction: as issueLocked + issueInvoices do for a batch, for all of them.
      const issued = await client.query(
        `with due as materialized (
           select s.id as subscription_id, s.account_id, s.plan_id, s.billing_cycle, s.payment_method_id, m.type as method_type,
                  a.name, a.email, a.country, a.currency, s.current_period_end as period_start,
                  -- addMonthsClamped(anchor, months): Postgres clamps a month-end day the same way, in UTC.
                  ((s.anchor_at at time zone 'UTC') + make_interval(months => s.months_elapsed + p.months)) at time zone 'UTC' as period_end,
                  s.months_elapsed + p.months as months_elapsed,
                  -- An Indian e-mandate charges once its notice has been out long enough: the invoice is due then.
                  case when a.currency = 'INR' then s.renewal_notice_at + make_interval(hours => $4) else $1 end as due_at,
                  ${id('inv', '$3')} as invoice_id, ${id('pay', '$3')} as payment_id,
                  row_number() over (order by s.current_period_end, s.id) as n,
                  p.subtotal, p.discount_total, p.tax_label, p.tax_rate_bps, p.tax_amount, p.total, p.tax_components, p.lines,
                  p.supply || jsonb_build_object('buyer', (p.supply -> 'buyer') || jsonb_build_object('legalName', a.name, 'email', a.email)) as supply
           from subscriptions s
           join accounts a on a.id = s.account_id
           join payment_methods m on m.id = s.payment_method_id
           join jsonb_to_recordset($5::jsonb) as p(plan_id text, billing_cycle text, country text, subtotal bigint, discount_total bigint, tax_label text,
                  tax_rate_bps int, tax_amount bigint, total bigint, tax_components jsonb, supply jsonb, lines jsonb, months int)
             on p.plan_id = s.plan_id and p.billing_cycle = s.billing_cycle and p.country = a.country
           where s.status = 'active' and s.current_period_end <= $1 and a.test_clock_id is null and m.type in ('card', 'upi')
         ), counter as (
           insert into invoice_number_sequences as c (financial_year, last_sequence) values ($2, (select count(*) from due))
           on conflict (financial_year) do update set last_sequence = c.last_sequence + excluded.last_sequence
           returning last_sequence - (select count(*) from due) as before
         ), numbered as materialized (
           -- Numbered here, not joined back to the insert's returning rows: a join of two CTEs is a nested loop, quadratic over a wave.
           select d.*, c.before + d.n as sequence, 'INV/' || $6::text || '/' || lpad((c.before + d.n)::text, greatest(7, length((c.before + d.n)::text)), '0') as number
           from due d cross join counter c
         ), invoiced as (
           insert into invoices (id, account_id, subscription_id, number, financial_year, sequence, status, kind, currency, subtotal,
             discount_total, tax_label, tax_rate_bps, tax_amount, total, plan_id, billing_cycle, period_start, period_end, issued_at,
             due_at, paid_at, attempt_count, next_attempt_at, tax_components, supply)
           select d.invoice_id, d.account_id, d.subscription_id, d.number, $2, d.sequence,
             'open', 'renewal', d.currency, d.subtotal, d.discount_total, d.tax_label, d.tax_rate_bps, d.tax_amount, d.total, d.plan_id, d.billing_cycle,
             d.period_start, d.period_end, $1, d.due_at, null, 1, null, d.tax_components, d.supply
           from numbered d
           returning id, number
         ), lines as (
           insert into invoice_lines (invoice_id, position, kind, description, quantity, unit_amount, gross_amount, discount_amount, amount)
           select d.invoice_id, l.position, l.kind, l.description, l.quantity, l.unit_amount, l.gross_amount, l.discount_amount, l.amount
           from due d cross join jsonb_to_recordset(d.lines) as l(position int, kind text, description text, quantity int, unit_amount bigint,
             gross_amount bigint, discount_amount bigint, amount bigint)
         ), opened as (
           insert into payments (id, account_id, purpose, status, amount, currency, method_type, payment_method_id, invoice_id, request, created_at, updated_at)
           select d.payment_id, d.account_id, 'renewal', 'processing', d.total, d.currency, d.method_type, d.payment_method_id, d.invoice_id,
             jsonb_build_object('invoiceId', d.invoice_id), $1, $1
           from due d
         ), periods as (
           -- The same columns startNextPeriods sets (whatsapp_addon among them, which fires the change-feed trigger per row).
           update subscriptions s set plan_id = d.plan_id, billing_cycle = d.billing_cycle, whatsapp_addon = s.whatsapp_addon,
             current_period_start = d.period_start, current_period_end = d.period_end, months_elapsed = d.months_elapsed,
             scheduled_plan_id = null, scheduled_billing_cycle = null, renewal_notice_for = s.renewal_notice_for, renewal_notice_at = s.renewal_notice_at,
             updated_at = $1
           from due d where s.id = d.subscription_id
         ), plans as (
           update accounts a set plan_id = d.plan_id, updated_at = $1 from due d where a.id = d.account_id
         ), events as (
           insert into outbox (id, event_id, type, account_id, payload, created_at)
           select ${outboxId}, e.event_id, e.type, e.account_id, e.payload, $1
           from (
             select ${id('evt', '$3')} as event_id, k.type, d.account_id,
               case when k.type = 'invoice.created'
                 then jsonb_build_object('accountId', d.account_id, 'subscriptionId', d.subscription_id, 'invoiceId', d.invoice_id,
                   'number', d.number, 'total', d.total, 'status', 'open')
                 else jsonb_build_object('accountId', d.account_id, 'subscriptionId', d.subscription_id, 'invoiceId', d.invoice_id, 'planId', d.plan_id,
                   'billingCycle', d.billing_cycle, 'periodStart', ${iso('d.period_start')}, 'periodEnd', ${iso('d.period_end')})
               end as payload
             from numbered d
             cross join (values (1, 'invoice.created'), (2, 'subscription.renewed')) as k(position, type)
             order by d.n, k.position
           ) e
         )
         select count(*)::int as n from invoiced`,
        [now, financialYear, head, config.PRE_DEBIT_NOTICE_HOURS, JSON.stringify(priced), fyCode(financialYear)],
      );
      // 2. The gateway's side, as chargeMany inserts it: a charge per payment. The seed's instruments (tok_visa, success@upi) all succeed.
      await client.query(
        `insert into sandbox_charges (idempotency_key, id, amount, currency, method, outcome, failure_code, created_at, instrument)
         select p.id, ${id('ch', '$2')}, p.amount, p.currency::text, v.type, 'succeeded', null, $1, v.instrument
         from payments p
         join payment_methods m on m.id = p.payment_method_id
         join sandbox_payment_methods v on v.reference = m.reference
         where p.purpose = 'renewal' and p.status = 'processing'`,
        [now, head],
      );
      // 3. Settle, one transaction: as settleSucceededMany and the renewal's succeededMany do. What the events say is read
      // once before the updates (joining the updates' returning rows to each other would be a nested loop over the wave).
      await client.query(
        `with settling as materialized (
           select p.id as payment_id, p.account_id, p.amount, p.method_type, c.id as charge_id,
                  i.id as invoice_id, i.subscription_id, i.number, i.total, i.currency, i.period_start, i.period_end
           from payments p
           join sandbox_charges c on c.idempotency_key = p.id and c.outcome = 'succeeded'
           join invoices i on i.id = p.invoice_id
           where p.purpose = 'renewal' and p.status = 'processing' and i.status = 'open'
         ), paid as (
           update payments p set status = 'succeeded', provider_reference = s.charge_id, offline_reference = null, updated_at = $1, touched_at = now()
           from settling s where p.id = s.payment_id
         ), invoices_paid as (
           update invoices i set status = 'paid', paid_at = $1, next_attempt_at = null, action_required = null
           from settling s where i.id = s.invoice_id
         )
         insert into outbox (id, event_id, type, account_id, payload, created_at)
         select ${outboxId}, e.event_id, e.type, e.account_id, e.payload, $1
         from (
           select ${id('evt', '$2')} as event_id, k.type, s.account_id,
             case when k.type = 'payment.succeeded'
               then jsonb_build_object('accountId', s.account_id, 'paymentId', s.payment_id, 'invoiceId', s.invoice_id, 'amount', s.amount, 'currency', s.currency,
                 'purpose', 'renewal', 'methodType', s.method_type, 'subscriptionId', s.subscription_id)
               else jsonb_build_object('accountId', s.account_id, 'subscriptionId', s.subscription_id, 'invoiceId', s.invoice_id, 'paymentId', s.payment_id,
                 'number', s.number, 'total', s.total, 'amountPaid', s.amount, 'kind', 'renewal', 'currency', s.currency,
                 'periodStart', ${iso('s.period_start')}, 'periodEnd', ${iso('s.period_end')})
             end as payload
           from settling s
           cross join (values (1, 'payment.succeeded'), (2, 'invoice.paid')) as k(position, type)
           order by s.account_id, k.position
         ) e`,
        [now, head],
      );
      const seconds = (Date.now() - started) / 1000;
      const failures = issued.rows[0].n < count ? [`issued ${issued.rows[0].n} of ${count}`] : [];
      failures.push(...(await check(url, count, periodEnd, ledgerBefore)));
      const detail = `${count} renewals in ${seconds.toFixed(2)} s (${Math.round(count / seconds)}/s; seeding ${seeded.toFixed(1)} s not counted); ${verdict(failures)}`;
      return { seconds, correct: failures.length === 0, detail };
    } finally {
      await client.end();
    }
  });
}

if (isMainModule(import.meta.url)) {
  const count = Number(process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 10_000);
  const adminUrl = process.env.BENCH_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const result = await (process.argv.includes('--raw') ? rawRenewalWave : renewalWave)({ adminUrl, count });
  console.log(result.detail);
  if (!result.correct) process.exitCode = 1;
}
