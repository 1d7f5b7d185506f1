import { and, asc, desc, eq, lt, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { invoiceLines, invoiceNumberSequences, invoices } from '../../db/schema/index.js';

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

export async function findInvoice(db: Db, id: string): Promise<InvoiceRow | undefined> {
  const [row] = await db.select().from(invoices).where(eq(invoices.id, id));
  return row;
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
