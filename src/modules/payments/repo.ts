import { and, asc, desc, eq, inArray, lt, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { accounts, paymentMethods, payments } from '../../db/schema/index.js';

export type PaymentRow = typeof payments.$inferSelect;
export type PaymentMethodRow = typeof paymentMethods.$inferSelect;

export async function insertPaymentMethod(db: Db, row: typeof paymentMethods.$inferInsert): Promise<PaymentMethodRow> {
  const [inserted] = await db.insert(paymentMethods).values(row).returning();
  return inserted!;
}

export async function findPaymentMethod(db: Db, id: string): Promise<PaymentMethodRow | undefined> {
  const [row] = await db.select().from(paymentMethods).where(eq(paymentMethods.id, id));
  return row;
}

/** An account's saved methods that are not removed, oldest first. */
export async function listActiveMethods(db: Db, accountId: string): Promise<PaymentMethodRow[]> {
  return db
    .select()
    .from(paymentMethods)
    .where(and(eq(paymentMethods.accountId, accountId), eq(paymentMethods.status, 'active')))
    .orderBy(asc(paymentMethods.createdAt), asc(paymentMethods.id));
}

export async function findDefaultMethod(db: Db, accountId: string): Promise<PaymentMethodRow | undefined> {
  const [row] = await db
    .select()
    .from(paymentMethods)
    .where(and(eq(paymentMethods.accountId, accountId), eq(paymentMethods.isDefault, true), eq(paymentMethods.status, 'active')));
  return row;
}

/** Makes a method its account's only default (call with the account locked). */
export async function setDefaultMethod(db: Db, accountId: string, methodId: string): Promise<void> {
  await db
    .update(paymentMethods)
    .set({ isDefault: false })
    .where(and(eq(paymentMethods.accountId, accountId), eq(paymentMethods.isDefault, true), sql`${paymentMethods.id} <> ${methodId}`));
  await db.update(paymentMethods).set({ isDefault: true }).where(eq(paymentMethods.id, methodId));
}

/** Whether a payment of this method is still open: in flight, or awaiting offline money. */
export async function methodHasOpenPayments(db: Db, methodId: string): Promise<boolean> {
  const [row] = await db
    .select({ id: payments.id })
    .from(payments)
    .where(and(eq(payments.paymentMethodId, methodId), inArray(payments.status, ['processing', 'unknown', 'awaiting_confirmation'])))
    .limit(1);
  return row !== undefined;
}

export async function removeMethod(db: Db, methodId: string, at: Date): Promise<void> {
  await db.update(paymentMethods).set({ status: 'removed', isDefault: false, removedAt: at }).where(eq(paymentMethods.id, methodId));
}

export async function insertPayment(db: Db, row: typeof payments.$inferInsert): Promise<PaymentRow> {
  const [inserted] = await db.insert(payments).values(row).returning();
  return inserted!;
}

/** Many payments in one statement, a column per array (unnest): cheap to build however many rows. */
export async function insertPayments(db: Db, rows: (typeof payments.$inferInsert)[]): Promise<void> {
  if (rows.length === 0) return;
  const col = <T>(values: T[]) => sql.param(values);
  const at = (values: Date[]) => sql.param(values.map((d) => d.toISOString()));
  await db.execute(sql`
    insert into payments (id, account_id, purpose, status, amount, currency, method_type, payment_method_id, invoice_id, request, created_at, updated_at)
    select * from unnest(
      ${col(rows.map((r) => r.id))}::text[], ${col(rows.map((r) => r.accountId))}::text[], ${col(rows.map((r) => r.purpose))}::text[],
      ${col(rows.map((r) => r.status))}::payment_status[], ${col(rows.map((r) => r.amount))}::bigint[], ${col(rows.map((r) => r.currency))}::currency[],
      ${col(rows.map((r) => r.methodType))}::payment_method_type[], ${col(rows.map((r) => r.paymentMethodId))}::text[],
      ${col(rows.map((r) => r.invoiceId ?? null))}::text[], ${col(rows.map((r) => JSON.stringify(r.request)))}::jsonb[],
      ${at(rows.map((r) => r.createdAt))}::timestamptz[], ${at(rows.map((r) => r.updatedAt))}::timestamptz[])`);
}

export async function findPayment(db: Db, id: string, opts: { forUpdate?: boolean } = {}): Promise<PaymentRow | undefined> {
  const query = db.select().from(payments).where(eq(payments.id, id));
  const [row] = opts.forUpdate ? await query.for('update') : await query;
  return row;
}

export async function updatePayment(db: Db, id: string, set: Partial<typeof payments.$inferInsert>): Promise<PaymentRow> {
  const [row] = await db
    .update(payments)
    .set({ ...set, touchedAt: sql`now()` })
    .where(eq(payments.id, id))
    .returning();
  return row!;
}

/** The upgrade payment of an account that has not reached a final state, if any. */
export async function findOpenUpgradePayment(db: Db, accountId: string): Promise<PaymentRow | undefined> {
  const [row] = await db
    .select()
    .from(payments)
    .where(
      and(
        eq(payments.accountId, accountId),
        eq(payments.purpose, 'upgrade'),
        inArray(payments.status, ['processing', 'unknown', 'awaiting_confirmation']),
      ),
    );
  return row;
}

/**
 * Payments of any purpose whose result nobody knows (a crashed request or a lost provider
 * answer) and that have been so for `staleMs` of real time. Real time, not the account's
 * clock: a charge cut off by a crash on a test clock that stands still must still be settled.
 */
export async function listUnresolvedPayments(db: Db, staleMs: number, limit: number): Promise<PaymentRow[]> {
  return db
    .select()
    .from(payments)
    .where(and(inArray(payments.status, ['processing', 'unknown']), lt(payments.touchedAt, sql`now() - ${`${staleMs} milliseconds`}::interval`)))
    .orderBy(asc(payments.touchedAt))
    .limit(limit);
}

/** The charge of an invoice in flight, if any (at most one: payments_one_in_flight_per_invoice). */
export async function findInFlightForInvoice(db: Db, invoiceId: string): Promise<PaymentRow | undefined> {
  const [row] = await db
    .select()
    .from(payments)
    .where(and(eq(payments.invoiceId, invoiceId), inArray(payments.status, ['processing', 'unknown'])));
  return row;
}

/** Offline money recorded for an invoice, if any (to answer the same recording again). */
export async function findSucceededOfflineForInvoice(db: Db, invoiceId: string): Promise<PaymentRow | undefined> {
  const [row] = await db
    .select()
    .from(payments)
    .where(and(eq(payments.invoiceId, invoiceId), eq(payments.status, 'succeeded'), sql`${payments.offlineReference} is not null`));
  return row;
}

/** The payment of an invoice awaiting a wire transfer or cheque, if any. */
export async function findAwaitingForInvoice(db: Db, invoiceId: string): Promise<PaymentRow | undefined> {
  const [row] = await db.select().from(payments).where(and(eq(payments.invoiceId, invoiceId), eq(payments.status, 'awaiting_confirmation')));
  return row;
}

/** Payments of an invoice still awaiting offline money, when it was paid another way: they will not be. */
export async function supersedeAwaiting(db: Db, invoiceId: string, paidBy: string, at: Date): Promise<void> {
  await db
    .update(payments)
    .set({ status: 'failed', failureCode: 'superseded', failureMessage: `The invoice was paid by ${paidBy}`, updatedAt: at, touchedAt: sql`now()` })
    .where(and(eq(payments.invoiceId, invoiceId), eq(payments.status, 'awaiting_confirmation'), sql`${payments.id} <> ${paidBy}`));
}

/** An auto-recharge charge of the account still in flight (at most one: a unique index). */
export async function hasRechargeInFlight(db: Db, accountId: string): Promise<boolean> {
  const [row] = await db
    .select({ id: payments.id })
    .from(payments)
    .where(and(eq(payments.accountId, accountId), eq(payments.purpose, 'recharge'), inArray(payments.status, ['processing', 'unknown'])))
    .limit(1);
  return row !== undefined;
}

/** An invoice written off: the offline money it awaited will not come. */
export async function failAwaitingForInvoice(db: Db, invoiceId: string, at: Date): Promise<void> {
  await db
    .update(payments)
    .set({ status: 'failed', failureCode: 'invoice_overdue', failureMessage: 'The invoice was not paid', updatedAt: at, touchedAt: sql`now()` })
    .where(and(eq(payments.invoiceId, invoiceId), eq(payments.status, 'awaiting_confirmation')));
}

export async function findPayments(db: Db, ids: string[]): Promise<PaymentRow[]> {
  if (ids.length === 0) return [];
  return db.select().from(payments).where(sql`${payments.id} = any(${sql.param(ids)}::text[])`);
}

/** Locks accounts in id order: the first lock every writer of an account's payments takes. */
export async function lockAccounts(db: Db, accountIds: string[]): Promise<void> {
  if (accountIds.length === 0) return;
  await db
    .select({ id: accounts.id })
    .from(accounts)
    .where(sql`${accounts.id} = any(${sql.param([...new Set(accountIds)])}::text[])`)
    .orderBy(asc(accounts.id))
    .for('update');
}

/** Many payments that went through, in one statement. */
export async function markSucceededMany(db: Db, rows: Array<{ paymentId: string; reference: string }>, now: Date): Promise<void> {
  if (rows.length === 0) return;
  await db.execute(sql`
    update payments p set status = 'succeeded', provider_reference = v.reference, offline_reference = null, updated_at = ${now.toISOString()}::timestamptz, touched_at = now()
    from unnest(${sql.param(rows.map((r) => r.paymentId))}::text[], ${sql.param(rows.map((r) => r.reference))}::text[]) as v(id, reference)
    where p.id = v.id`);
}

/** An account's payments, newest first; `before`: the last id of the previous page. */
export async function listPaymentsOfAccount(db: Db, accountId: string, opts: { before?: string; limit: number }): Promise<PaymentRow[]> {
  return db
    .select()
    .from(payments)
    .where(and(eq(payments.accountId, accountId), opts.before ? lt(payments.id, opts.before) : undefined))
    .orderBy(desc(payments.id))
    .limit(opts.limit);
}

/** The payment an upgrade request with this Idempotency-Key created, if any. */
export async function findPaymentByIdempotency(db: Db, accountId: string, idempotency: { apiKeyId: string; key: string }): Promise<PaymentRow | undefined> {
  const [row] = await db
    .select()
    .from(payments)
    .where(
      and(
        eq(payments.accountId, accountId),
        sql`${payments.request} -> 'idempotency' = ${JSON.stringify({ apiKeyId: idempotency.apiKeyId, key: idempotency.key })}::jsonb`,
      ),
    );
  return row;
}
