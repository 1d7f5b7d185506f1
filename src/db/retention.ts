/** Which history tables are partitioned by month, and how many months of each are kept (no database code: config reads it). */
// The outbox comes before the deliveries it feeds: a delivery month is dropped after the outbox's (src/db/history.ts).
export const HISTORY_TABLES = ['usage_events', 'credit_ledger', 'audit_events', 'outbox', 'webhook_deliveries', 'webhook_attempts', 'email_deliveries'] as const;
export type HistoryTable = (typeof HISTORY_TABLES)[number];

/** Months kept per table; null keeps every month. */
export type Retention = Record<HistoryTable, number | null>;

/**
 * Usage events: the dedup window of event ids, 13 months (a year of invoices and disputes).
 * The ledger is the financial record (GST law keeps books six years after the annual return):
 * kept unless configured. Audit: 8 years. Events (the outbox, listed by GET /v1/events), webhook
 * deliveries and their attempts: a quarter of debugging history. Emails sent: 13 months (did
 * the customer get that invoice?).
 */
export const DEFAULT_RETENTION: Retention = {
  usage_events: 13,
  credit_ledger: null,
  audit_events: 96,
  outbox: 3,
  webhook_deliveries: 3,
  webhook_attempts: 3,
  email_deliveries: 13,
};

/** Tables whose rows say an event was already delivered: kept at least as long as the outbox, or a re-dispatched event would deliver again. */
export const DELIVERY_TABLES = ['webhook_deliveries', 'email_deliveries'] as const satisfies readonly HistoryTable[];

/** Parses `usage_events=13,webhook_attempts=3,credit_ledger=keep` over the defaults. */
export function parseRetention(text: string | undefined): Retention {
  const retention = { ...DEFAULT_RETENTION };
  const named = new Set<string>();
  for (const part of (text ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const [table, value] = part.split('=').map((s) => s.trim());
    if (!HISTORY_TABLES.includes(table as HistoryTable)) throw new Error(`unknown history table "${table}" (one of ${HISTORY_TABLES.join(', ')})`);
    // Which of two values was meant cannot be told: say so rather than keep the last.
    if (named.has(table!)) throw new Error(`${table} is given twice`);
    named.add(table!);
    if (value === 'keep') retention[table as HistoryTable] = null;
    else if (value && /^\d+$/.test(value) && Number(value) >= 1 && Number(value) <= 1200) retention[table as HistoryTable] = Number(value);
    else throw new Error(`retention of ${table} must be a number of months (1-1200) or "keep", not "${value ?? ''}"`);
  }
  const months = (n: number | null) => n ?? Infinity;
  for (const table of DELIVERY_TABLES) {
    if (months(retention[table]) < months(retention.outbox)) {
      throw new Error(`${table} (${retention[table]} months) must be kept at least as long as outbox (${retention.outbox ?? 'keep'}): an event still in the outbox could be delivered again`);
    }
  }
  return retention;
}
