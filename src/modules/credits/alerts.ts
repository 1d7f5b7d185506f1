import { sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import type { Currency } from '../../lib/money.js';
import { appendEvents } from '../events/repo.js';
import { mandateApplies, type MandateRules } from '../payments/mandate.js';
import type { PaymentMethodType } from '../payments/methods.js';
import { depletionForecast } from './domain.js';

interface Candidate {
  account_id: string;
  currency: Currency;
  available: string | number;
  now: string | Date;
  horizon_hours: number | null;
  spent_hour: string | number;
  spent_day: string | number;
  ar_threshold: string | number | null;
  ar_amount: string | number | null;
  ar_notice_sent_at: string | Date | null;
  method_type: PaymentMethodType | null;
}

const asDate = (v: string | Date) => (v instanceof Date ? v : new Date(v));

/**
 * The depletion forecast: a sweep any worker may run. It looks at accounts whose credits
 * moved in the last hour and whose forecast is not out, reads what their usage debited in
 * the last hour and day, and sends `credits.depletion_forecast` once to each that would run
 * out within its horizon. The forecast is marked out in the same transaction as its event, so
 * two workers sweeping at once send it once; the next purchase or recharge arms it again.
 */
export function createDepletionForecasts(deps: { db: Db; clock: Clock; horizonHours: number; mandate: MandateRules; batch?: number }) {
  const { db, clock } = deps;

  async function sweep(): Promise<number> {
    let sent = 0;
    // Page through every candidate in account order, so a busy hour's later accounts are not starved by its first.
    for (let after = ''; ; ) {
      const page = await candidates(after);
      for (const r of page) if (await forecastOne(r)) sent++;
      if (page.length < (deps.batch ?? 5000)) return sent;
      after = page[page.length - 1]!.account_id;
    }
  }

  async function candidates(after: string): Promise<Candidate[]> {
    const now = clock.now().toISOString();
    return (
      (await db.execute(sql`
        with c as (
          select b.account_id, b.currency, b.balance - b.held as available, coalesce(tc.frozen_time, ${now}::timestamptz) as now,
            al.forecast_horizon_hours as horizon_hours
          from credit_balances b
          join accounts a on a.id = b.account_id
          left join test_clocks tc on tc.id = a.test_clock_id
          left join credit_alerts al on al.account_id = b.account_id
          where b.updated_at > coalesce(tc.frozen_time, ${now}::timestamptz) - interval '1 hour'
            and al.forecast_alerted_at is null
            and a.status <> 'limited'
            and b.account_id > ${after}
          order by b.account_id
          limit ${deps.batch ?? 5000}
        )
        select c.*, s.spent_hour, s.spent_day,
          ar.threshold as ar_threshold, ar.amount as ar_amount, ar.notice_sent_at as ar_notice_sent_at, pm.type as method_type
        from c
        cross join lateral (
          select coalesce(sum(u.amount) filter (where u.created_at > c.now - interval '1 hour'), 0) as spent_hour, coalesce(sum(u.amount), 0) as spent_day
          from usage_events u
          where u.account_id = c.account_id and u.status = 'debited' and u.created_at > c.now - interval '1 day' and u.created_at <= c.now
        ) s
        left join auto_recharge_settings ar on ar.account_id = c.account_id and ar.enabled
        left join payment_methods pm on pm.id = ar.payment_method_id
        order by c.account_id`)) as unknown as { rows: Candidate[] }
    ).rows;
  }

  /** Sends the account's forecast if it runs out within its horizon and none is out; true when sent. */
  async function forecastOne(r: Candidate): Promise<boolean> {
    const at = asDate(r.now);
    const horizonHours = r.horizon_hours ?? deps.horizonHours;
    const available = Number(r.available);
    const forecast = depletionForecast({
      available,
      spentLastHour: Number(r.spent_hour),
      spentLastDay: Number(r.spent_day),
      now: at,
      horizonHours,
      autoRecharge:
        r.ar_threshold === null
          ? null
          : {
              threshold: Number(r.ar_threshold),
              amount: Number(r.ar_amount),
              noticeHours: r.method_type && mandateApplies(r.currency, r.method_type) ? deps.mandate.noticeHours : 0,
              noticeSentAt: r.ar_notice_sent_at === null ? null : asDate(r.ar_notice_sent_at),
            },
    });
    if (!forecast) return false;
    return db.transaction(async (tx) => {
      const result = (await tx.execute(sql`
        insert into credit_alerts (account_id, forecast_alerted_at, updated_at) values (${r.account_id}, ${at.toISOString()}, ${at.toISOString()})
        on conflict (account_id) do update set forecast_alerted_at = excluded.forecast_alerted_at, updated_at = excluded.updated_at
          where credit_alerts.forecast_alerted_at is null
        returning account_id`)) as unknown as { rows: unknown[] };
      if (result.rows.length === 0) return false;
      const ar = forecast.autoRecharge;
      await appendEvents(tx, at, [
        {
          type: 'credits.depletion_forecast',
          accountId: r.account_id,
          payload: {
            accountId: r.account_id,
            currency: r.currency,
            available,
            spentLastHour: Number(r.spent_hour),
            spentLastDay: Number(r.spent_day),
            ratePerHour: forecast.ratePerHour,
            hoursLeft: Math.round(forecast.hoursLeft * 100) / 100,
            runsOutAt: forecast.runsOutAt.toISOString(),
            horizonHours,
            autoRecharge: ar && { ...ar, expectedAt: ar.expectedAt.toISOString(), landsAt: ar.landsAt.toISOString() },
          },
        },
      ]);
      return true;
    });
  }

  return { sweep };
}

export type DepletionForecasts = ReturnType<typeof createDepletionForecasts>;
