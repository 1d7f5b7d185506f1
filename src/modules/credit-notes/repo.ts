import { and, asc, eq, inArray, lt, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { creditNotes, invoices, payments, refunds } from '../../db/schema/index.js';

export type CreditNoteRow = typeof creditNotes.$inferSelect;
export type RefundRow = typeof refunds.$inferSelect;

export async function insertCreditNote(db: Db, row: typeof creditNotes.$inferInsert): Promise<CreditNoteRow> {
  const [inserted] = await db.insert(creditNotes).values(row).returning();
  return inserted!;
}

export async function findCreditNote(db: Db, id: string): Promise<CreditNoteRow | undefined> {
  const [row] = await db.select().from(creditNotes).where(eq(creditNotes.id, id));
  return row;
}

/** The credit note a request (by `apiKeyId:Idempotency-Key`) issued, if any. */
export async function findByRequestKey(db: Db, requestKey: string): Promise<CreditNoteRow | undefined> {
  const [row] = await db.select().from(creditNotes).where(eq(creditNotes.requestKey, requestKey));
  return row;
}

/** An invoice's credit notes, oldest first. */
export async function listForInvoice(db: Db, invoiceId: string): Promise<CreditNoteRow[]> {
  return db.select().from(creditNotes).where(eq(creditNotes.invoiceId, invoiceId)).orderBy(asc(creditNotes.issuedAt), asc(creditNotes.id));
}

/** What credit notes took off an invoice: its credited total, kept on the invoice row. */
export async function addCredited(db: Db, invoiceId: string, total: number): Promise<typeof invoices.$inferSelect> {
  const [row] = await db
    .update(invoices)
    .set({ creditedTotal: sql`${invoices.creditedTotal} + ${total}` })
    .where(eq(invoices.id, invoiceId))
    .returning();
  return row!;
}

/** A credit note's amount due to the customer on an open invoice settled by it: paid (nothing is left to pay). */
export async function settleByCredit(db: Db, invoiceId: string, at: Date): Promise<void> {
  await db.update(invoices).set({ status: 'paid', paidAt: at, nextAttemptAt: null, actionRequired: null }).where(eq(invoices.id, invoiceId));
}

/** Payments of an invoice awaiting offline money: they now await what is still due. */
export async function setAwaitingAmount(db: Db, invoiceId: string, amount: number, at: Date): Promise<void> {
  await db
    .update(payments)
    .set({ amount, updatedAt: at, touchedAt: sql`now()` })
    .where(and(eq(payments.invoiceId, invoiceId), eq(payments.status, 'awaiting_confirmation')));
}

/** Payments of an invoice awaiting offline money that will not come (the invoice is settled or void). */
export async function failAwaiting(db: Db, invoiceId: string, code: string, message: string, at: Date): Promise<void> {
  await db
    .update(payments)
    .set({ status: 'failed', failureCode: code, failureMessage: message, updatedAt: at, touchedAt: sql`now()` })
    .where(and(eq(payments.invoiceId, invoiceId), eq(payments.status, 'awaiting_confirmation')));
}

/** The gateway payment that paid an invoice (card, UPI, net banking), if any: where a refund goes. */
export async function findRefundablePayment(db: Db, invoiceId: string) {
  const [row] = await db
    .select()
    .from(payments)
    .where(and(eq(payments.invoiceId, invoiceId), eq(payments.status, 'succeeded'), sql`${payments.providerReference} is not null`, sql`${payments.offlineReference} is null`))
    .orderBy(asc(payments.createdAt))
    .limit(1);
  return row;
}

export async function insertRefund(db: Db, row: typeof refunds.$inferInsert): Promise<RefundRow> {
  const [inserted] = await db.insert(refunds).values(row).returning();
  return inserted!;
}

export async function findRefund(db: Db, id: string, opts: { forUpdate?: boolean } = {}): Promise<RefundRow | undefined> {
  const query = db.select().from(refunds).where(eq(refunds.id, id));
  const [row] = opts.forUpdate ? await query.for('update') : await query;
  return row;
}

export async function findRefundOf(db: Db, creditNoteId: string): Promise<RefundRow | undefined> {
  const [row] = await db.select().from(refunds).where(eq(refunds.creditNoteId, creditNoteId));
  return row;
}

export async function refundsOf(db: Db, creditNoteIds: string[]): Promise<RefundRow[]> {
  if (creditNoteIds.length === 0) return [];
  return db.select().from(refunds).where(inArray(refunds.creditNoteId, creditNoteIds));
}

export async function updateRefund(db: Db, id: string, set: Partial<typeof refunds.$inferInsert>): Promise<RefundRow> {
  const [row] = await db.update(refunds).set({ ...set, touchedAt: sql`now()` }).where(eq(refunds.id, id)).returning();
  return row!;
}

/** Refunds the gateway has not answered for `staleMs` of real time (lost answers, crashes): the sweep's work. */
export async function listUnresolvedRefunds(db: Db, staleMs: number, limit: number): Promise<RefundRow[]> {
  return db
    .select()
    .from(refunds)
    .where(and(inArray(refunds.status, ['processing', 'unknown']), lt(refunds.touchedAt, sql`now() - make_interval(secs => ${staleMs / 1000})`)))
    .orderBy(asc(refunds.touchedAt))
    .limit(limit);
}
