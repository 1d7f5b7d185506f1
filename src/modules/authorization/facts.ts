import { sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { executePrepared } from '../../db/prepared.js';
import type { AccountStatus, KycStatus } from '../accounts/domain.js';
import type { Entitlements } from '../catalog/entitlements.js';

/** Everything authorize reads about an account but the clock and the ExoPhone count. */
export interface AccountFacts {
  accountId: string;
  status: AccountStatus;
  kycStatus: KycStatus;
  pastDueSince: Date | null;
  planId: string;
  entitlements: Entitlements;
  whatsappAddon: boolean;
  dltRegistered: boolean;
  /** Available credits: the balance less active holds. */
  balance: number;
  rates: { perPulseRate: number; perSmsRate: number } | null;
  /** The whitelisted numbers, when the plan requires whitelisting (trial); null otherwise. */
  whitelist: ReadonlySet<string> | null;
  testClockId: string | null;
  /** The test clock's frozen time, for an account on one. */
  frozenTime: Date | null;
}

interface Row extends Record<string, unknown> {
  id: string;
  status: AccountStatus;
  kyc_status: KycStatus;
  past_due_since: string | Date | null;
  plan_id: string;
  entitlements: Entitlements | string;
  whatsapp_addon: boolean;
  dlt_entity_id: string | null;
  balance: string | number;
  per_pulse_rate: string | number | null;
  per_sms_rate: string | number | null;
  whitelist: string[] | null;
  test_clock_id: string | null;
  frozen_time: string | Date | null;
}

const asDate = (v: string | Date | null) => (v === null ? null : v instanceof Date ? v : new Date(v));

/** One round trip: the account, its plan, rates, balance, live subscription and whitelist. */
export async function loadFacts(db: Db, accountId: string): Promise<AccountFacts | null> {
  const [row] = await executePrepared<Row>(db, 'authorize_load_facts', sql`
    select a.id, a.status, a.kyc_status, a.past_due_since, a.plan_id, a.dlt_entity_id, a.test_clock_id,
      p.entitlements, pp.per_pulse_rate, pp.per_sms_rate, coalesce(b.balance - b.held, 0) as balance, c.frozen_time,
      coalesce((select s.whatsapp_addon from subscriptions s where s.account_id = a.id and s.status <> 'cancelled' limit 1), false) as whatsapp_addon,
      case when (p.entitlements -> 'numberWhitelisting' ->> 'required')::boolean
        then array(select w.number from whitelisted_numbers w where w.account_id = a.id) end as whitelist
    from accounts a
    join plans p on p.id = a.plan_id
    left join plan_prices pp on pp.plan_id = a.plan_id and pp.currency = a.currency
    left join credit_balances b on b.account_id = a.id
    left join test_clocks c on c.id = a.test_clock_id
    where a.id = ${accountId}`);
  if (!row) return null;
  return {
    accountId: row.id,
    status: row.status,
    kycStatus: row.kyc_status,
    pastDueSince: asDate(row.past_due_since),
    planId: row.plan_id,
    entitlements: typeof row.entitlements === 'string' ? (JSON.parse(row.entitlements) as Entitlements) : row.entitlements,
    whatsappAddon: row.whatsapp_addon,
    dltRegistered: row.dlt_entity_id !== null,
    balance: Number(row.balance),
    rates: row.per_pulse_rate === null || row.per_sms_rate === null ? null : { perPulseRate: Number(row.per_pulse_rate), perSmsRate: Number(row.per_sms_rate) },
    whitelist: row.whitelist ? new Set(row.whitelist) : null,
    testClockId: row.test_clock_id,
    frozenTime: asDate(row.frozen_time),
  };
}
