import { and, asc, desc, eq, lt, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { documents, invoiceLines, invoiceNumberSequences, invoices } from '../../db/schema/index.js';
import { fyCode } from './domain.js';

export type InvoiceRow = typeof invoices.$inferSelect;
export type InvoiceLineRow = typeof invoiceLines.$inferSelect;

/**
 * The next number of a financial year. The row lock taken by the upsert is held until the
 * invoice's transaction ends, and a rollback gives the number back: no gaps, no repeats.
 */
export async function nextInvoiceSequence(db: Db, financialYear: string): Promise<number> {
  const [row] = await db
    .insert(invoiceNumberSequences)
    .values({ financialYear, lastSequence: 1 })
    .onConflictDoUpdate({ target: invoiceNumberSequences.financialYear, set: { lastSequence: sql`${invoiceNumberSequences.lastSequence} + 1` } })
    .returning({ sequence: invoiceNumberSequences.lastSequence });
  return row!.sequence;
}

/**
 * The batch form of nextInvoiceSequence + insertInvoice, in ONE statement: takes
 * `rows.length` consecutive numbers of the year (rows numbered in order, formatted as
 * invoiceNumber does), inserts the invoices, their lines, and an event per invoice whose
 * payload gets its number. One statement keeps the counter row's lock to that statement and
 * the commit. Each column goes as one array (unnest): a few parameters for any batch size.
 */
export async function insertNumberedInvoices(
  db: Db,
  financialYear: string,
  rows: Array<{ invoice: NewInvoice; lines: Omit<typeof invoiceLines.$inferInsert, 'invoiceId'>[] }>,
  events: Array<{ outboxId: number; eventId: string; type: string; accountId: string; payload: Record<string, unknown>; createdAt: Date }>,
): Promise<Array<{ id: string; number: string }>> {
  const inv = rows.map((r) => r.invoice);
  const lines = rows.flatMap((r) => r.lines.map((l) => ({ ...l, invoiceId: r.invoice.id! })));
  const col = <T>(values: T[]) => sql.param(values);
  const at = (values: Array<Date | null | undefined>) => sql.param(values.map((d) => d?.toISOString() ?? null));
  const result = await db.execute<{ id: string; number: string }>(sql`
    with counter as (
      insert into invoice_number_sequences as c (financial_year, last_sequence) values (${financialYear}, ${inv.length})
      on conflict (financial_year) do update set last_sequence = c.last_sequence + ${inv.length}
      returning last_sequence - ${inv.length} as before
    ), numbered as (
      select v.*, counter.before + v.n as seq
      from unnest(
        ${col(inv.map((i) => i.id))}::text[], ${col(inv.map((i) => i.accountId))}::text[], ${col(inv.map((i) => i.subscriptionId ?? null))}::text[],
        ${col(inv.map((i) => i.status))}::invoice_status[], ${col(inv.map((i) => i.kind ?? 'upgrade'))}::text[], ${col(inv.map((i) => i.currency))}::currency[],
        ${col(inv.map((i) => i.subtotal))}::bigint[], ${col(inv.map((i) => i.discountTotal))}::bigint[], ${col(inv.map((i) => i.taxLabel))}::text[],
        ${col(inv.map((i) => i.taxRateBps))}::int[], ${col(inv.map((i) => i.taxAmount))}::bigint[], ${col(inv.map((i) => i.total))}::bigint[],
        ${col(inv.map((i) => i.planId))}::text[], ${col(inv.map((i) => i.billingCycle))}::text[], ${at(inv.map((i) => i.periodStart))}::timestamptz[],
        ${at(inv.map((i) => i.periodEnd))}::timestamptz[], ${at(inv.map((i) => i.issuedAt))}::timestamptz[], ${at(inv.map((i) => i.dueAt))}::timestamptz[],
        ${at(inv.map((i) => i.paidAt))}::timestamptz[], ${col(inv.map((i) => i.attemptCount ?? 0))}::int[], ${at(inv.map((i) => i.nextAttemptAt))}::timestamptz[],
        ${col(inv.map((i) => (i.taxComponents ? JSON.stringify(i.taxComponents) : null)))}::jsonb[], ${col(inv.map((i) => (i.supply ? JSON.stringify(i.supply) : null)))}::jsonb[]
      ) with ordinality as v(id, account_id, subscription_id, status, kind, currency, subtotal, discount_total, tax_label, tax_rate_bps, tax_amount,
        total, plan_id, billing_cycle, period_start, period_end, issued_at, due_at, paid_at, attempt_count, next_attempt_at, tax_components, supply, n)
      cross join counter
    ), inserted as (
      insert into invoices (id, account_id, subscription_id, number, financial_year, sequence, status, kind, currency, subtotal,
        discount_total, tax_label, tax_rate_bps, tax_amount, total, plan_id, billing_cycle, period_start, period_end, issued_at,
        due_at, paid_at, attempt_count, next_attempt_at, tax_components, supply)
      select id, account_id, subscription_id,
        -- invoiceNumber(): INV/<2627>/<sequence, 7 digits>
        'INV/' || ${fyCode(financialYear)}::text || '/' || lpad(seq::text, greatest(7, length(seq::text)), '0'), ${financialYear}::text, seq,
        status, kind, currency, subtotal, discount_total, tax_label, tax_rate_bps, tax_amount, total, plan_id, billing_cycle,
        period_start, period_end, issued_at, due_at, paid_at, attempt_count, next_attempt_at, tax_components, supply
      from numbered
      returning id, number
    ), with_lines as (
      insert into invoice_lines (invoice_id, position, kind, description, quantity, unit_amount, gross_amount, discount_amount, amount)
      select * from unnest(
        ${col(lines.map((l) => l.invoiceId))}::text[], ${col(lines.map((l) => l.position))}::int[], ${col(lines.map((l) => l.kind))}::text[],
        ${col(lines.map((l) => l.description))}::text[], ${col(lines.map((l) => l.quantity))}::int[], ${col(lines.map((l) => l.unitAmount))}::bigint[],
        ${col(lines.map((l) => l.grossAmount))}::bigint[], ${col(lines.map((l) => l.discountAmount))}::bigint[], ${col(lines.map((l) => l.amount))}::bigint[])
    ), with_events as (
      insert into outbox (id, event_id, type, account_id, payload, created_at)
      select e.id, e.event_id, e.type, e.account_id, e.payload || jsonb_build_object('number', inserted.number), e.created_at
      from unnest(
        ${col(events.map((e) => e.outboxId))}::bigint[], ${col(events.map((e) => e.eventId))}::text[], ${col(events.map((e) => e.type))}::text[],
        ${col(events.map((e) => e.accountId))}::text[], ${col(events.map((e) => JSON.stringify(e.payload)))}::jsonb[],
        ${at(events.map((e) => e.createdAt))}::timestamptz[], ${col(events.map((_, i) => inv[i]!.id))}::text[]
      ) as e(id, event_id, type, account_id, payload, created_at, invoice_id)
      join inserted on inserted.id = e.invoice_id
    )
    select id, number from inserted`);
  const numbers = new Map((result as unknown as { rows: Array<{ id: string; number: string }> }).rows.map((r) => [r.id, r.number]));
  return inv.map((i) => ({ id: i.id!, number: numbers.get(i.id!)! }));
}

type NewInvoice = typeof invoices.$inferInsert;

export async function insertInvoice(db: Db, invoice: typeof invoices.$inferInsert, lines: Omit<typeof invoiceLines.$inferInsert, 'invoiceId'>[]) {
  const [row] = await db.insert(invoices).values(invoice).returning();
  if (lines.length) await db.insert(invoiceLines).values(lines.map((l) => ({ ...l, invoiceId: invoice.id })));
  return row!;
}

export async function markInvoicePaid(db: Db, id: string, at: Date, subscriptionId: string, period?: { start: Date; end: Date }): Promise<InvoiceRow> {
  const [row] = await db
    .update(invoices)
    .set({ status: 'paid', paidAt: at, subscriptionId, ...(period ? { periodStart: period.start, periodEnd: period.end } : {}) })
    .where(eq(invoices.id, id))
    .returning();
  return row!;
}

/** Many open invoices paid at once (a renewal wave's settle). */
export async function markInvoicesPaid(db: Db, ids: string[], at: Date): Promise<void> {
  if (ids.length === 0) return;
  await db
    .update(invoices)
    .set({ status: 'paid', paidAt: at, nextAttemptAt: null, actionRequired: null })
    .where(sql`${invoices.id} = any(${sql.param(ids)}::text[])`);
}

export async function findInvoice(db: Db, id: string, opts: { forUpdate?: boolean } = {}): Promise<InvoiceRow | undefined> {
  const query = db.select().from(invoices).where(eq(invoices.id, id));
  const [row] = opts.forUpdate ? await query.for('update') : await query;
  return row;
}

/** An open invoice's dunning schedule: attempts counted, when it is looked at next, whether it waits for the customer. */
export async function setInvoiceSchedule(db: Db, id: string, set: Partial<Pick<InvoiceRow, 'attemptCount' | 'nextAttemptAt' | 'actionRequired'>>): Promise<void> {
  await db.update(invoices).set(set).where(eq(invoices.id, id));
}

/** The open credits invoice waiting for the customer (an auto-recharge the e-mandate did not cover), if any. */
export async function findCreditsAwaitingCustomer(db: Db, accountId: string): Promise<InvoiceRow | undefined> {
  const [row] = await db
    .select()
    .from(invoices)
    .where(and(eq(invoices.accountId, accountId), eq(invoices.kind, 'credits'), eq(invoices.status, 'open'), sql`${invoices.actionRequired} is not null`))
    .limit(1);
  return row;
}

/** Written off: nothing more is collected for it. */
export async function voidInvoice(db: Db, id: string): Promise<void> {
  await db.update(invoices).set({ status: 'void', nextAttemptAt: null }).where(eq(invoices.id, id));
}

export async function linesOf(db: Db, invoiceId: string): Promise<InvoiceLineRow[]> {
  return db.select().from(invoiceLines).where(eq(invoiceLines.invoiceId, invoiceId)).orderBy(asc(invoiceLines.position));
}

/** Newest first. */
export async function listInvoices(db: Db, accountId: string, opts: { before?: string; limit: number }): Promise<InvoiceRow[]> {
  return db
    .select()
    .from(invoices)
    .where(and(eq(invoices.accountId, accountId), opts.before ? lt(invoices.id, opts.before) : undefined))
    .orderBy(desc(invoices.id))
    .limit(opts.limit);
}

export type DocumentRow = typeof documents.$inferSelect;

export async function findDocument(db: Db, id: string): Promise<DocumentRow | undefined> {
  const [row] = await db.select().from(documents).where(eq(documents.id, id));
  return row;
}

/** Keeps a rendered document; one already kept (another process rendered it first) stays as it is. */
export async function keepDocument(db: Db, row: DocumentRow): Promise<void> {
  await db.insert(documents).values(row).onConflictDoNothing({ target: documents.id });
}

/** A document that no longer says what its subject is (a voided invoice): rendered again on next need. */
export async function dropDocument(db: Db, id: string): Promise<void> {
  await db.delete(documents).where(eq(documents.id, id));
}
