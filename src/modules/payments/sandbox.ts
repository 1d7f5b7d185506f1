import { eq, inArray, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { sandboxCharges, sandboxPaymentMethods, sandboxRefunds } from '../../db/schema/index.js';
import type { Clock } from '../../lib/clock.js';
import { newId } from '../../lib/ids.js';
import { cardBrandOf, maskVpa } from './methods.js';
import type { ChargeMethod, ChargeRequest, ChargeResult, InstrumentMethod, LookupResult, PaymentProvider, RefundLookup, RefundResult, SavedMethod } from './provider.js';

type Outcome = { outcome: 'succeeded' } | { outcome: 'failed'; code: string; message: string };

/**
 * Test values, Stripe style. Cards: tok_visa, tok_mastercard, tok_rupay succeed;
 * tok_chargeDeclined is declined; tok_chargeDeclinedInsufficientFunds lacks funds;
 * tok_timeout charges but the answer is lost (unknown; lookup finds it succeeded);
 * tok_chargeCustomerFail pays the upgrade, then declines every unattended charge (renewals).
 * tok_refundDeclined charges, but its refunds fail (refund_declined); a refund above what is
 * left of its charge fails (refund_exceeds_charge).
 * UPI: success@upi succeeds, failure@upi fails. Net banking: every bank code but FAIL succeeds.
 * A saved method answers as the instrument it was saved from.
 */
export function sandboxOutcome(method: InstrumentMethod, unattended = false): Outcome & { answerLost: boolean } {
  const ok = { outcome: 'succeeded' as const, answerLost: false };
  const fail = (code: string, message: string) => ({ outcome: 'failed' as const, code, message, answerLost: false });
  switch (method.type) {
    case 'card':
      if (['tok_visa', 'tok_mastercard', 'tok_rupay', 'tok_refundDeclined'].includes(method.token)) return ok;
      if (method.token === 'tok_timeout') return { ...ok, answerLost: true };
      // Stripe's "attaches, then fails": the upgrade succeeds, later unattended charges are declined.
      if (method.token === 'tok_chargeCustomerFail') return unattended ? fail('card_declined', 'Your card was declined.') : ok;
      if (method.token === 'tok_chargeDeclined') return fail('card_declined', 'Your card was declined.');
      if (method.token === 'tok_chargeDeclinedInsufficientFunds') return fail('insufficient_funds', 'Your card has insufficient funds.');
      return fail('invalid_card_token', 'No such card token.');
    case 'upi':
      if (method.vpa === 'success@upi') return ok;
      if (method.vpa === 'failure@upi') return fail('upi_declined', 'The UPI payment was declined by the payer.');
      return fail('upi_vpa_not_found', 'The sandbox knows only success@upi and failure@upi.');
    case 'netbanking':
      return method.bankCode === 'FAIL' ? fail('bank_declined', 'The bank declined the payment.') : ok;
  }
}

type VaultRow = typeof sandboxPaymentMethods.$inferSelect;

const instrumentOf = (row: Pick<VaultRow, 'type' | 'instrument'>): InstrumentMethod =>
  row.type === 'card' ? { type: 'card', token: row.instrument } : row.type === 'upi' ? { type: 'upi', vpa: row.instrument } : { type: 'netbanking', bankCode: row.instrument };

const labelOf = (method: InstrumentMethod): string =>
  method.type === 'card' ? cardBrandOf(method.token) : method.type === 'upi' ? maskVpa(method.vpa) : method.bankCode;

/** The last four digits of the sandbox's test cards (Stripe's, where it has one). */
const testCardDigits: Record<string, string> = {
  tok_visa: '4242',
  tok_mastercard: '4444',
  tok_rupay: '6075',
  tok_chargeDeclined: '0002',
  tok_chargeDeclinedInsufficientFunds: '9995',
  tok_timeout: '0077',
  tok_chargeCustomerFail: '0341',
  tok_refundDeclined: '5126',
};
const last4Of = (token: string): string => testCardDigits[token] ?? '0000';

const unknownSaved = { outcome: 'failed' as const, code: 'payment_method_not_found', message: 'No such saved payment method.', answerLost: false };

/**
 * The sandbox gateway. It keeps its charges in a table of its own, as a real gateway keeps
 * them on its side, keyed by our idempotency key: a repeated charge returns the first result
 * and moves no money twice. Saved methods live in its vault (sandbox_payment_methods), and a
 * charge by their reference answers as the instrument would.
 */
export function createSandboxProvider(deps: { db: Db; clock: Clock }): PaymentProvider {
  const { db, clock } = deps;

  /** Each method as an instrument (a saved one from the vault, in one query), or null when unknown. */
  async function instrumentsOf(methods: ChargeMethod[]): Promise<Array<InstrumentMethod | null>> {
    const references = methods.flatMap((m) => (m.type === 'saved' ? [m.reference] : []));
    const vault = references.length ? await db.select().from(sandboxPaymentMethods).where(inArray(sandboxPaymentMethods.reference, [...new Set(references)])) : [];
    const byReference = new Map(vault.map((row) => [row.reference, instrumentOf(row)]));
    return methods.map((m) => (m.type === 'saved' ? (byReference.get(m.reference) ?? null) : m));
  }

  const decide = (method: InstrumentMethod | null, unattended?: boolean) => (method ? sandboxOutcome(method, unattended) : unknownSaved);

  const toResult = (row: typeof sandboxCharges.$inferSelect): LookupResult =>
    row.outcome === 'succeeded'
      ? { status: 'succeeded', reference: row.id }
      : { status: 'failed', reference: row.id, code: row.failureCode ?? 'failed', message: failureMessage(row.failureCode) };

  async function lookup(idempotencyKey: string): Promise<LookupResult> {
    const [row] = await db.select().from(sandboxCharges).where(eq(sandboxCharges.idempotencyKey, idempotencyKey));
    return row ? toResult(row) : { status: 'not_found' };
  }

  const chargeRow = (request: ChargeRequest, decided: Outcome, method: InstrumentMethod | null) => ({
    idempotencyKey: request.idempotencyKey,
    id: newId('ch', clock.now()),
    amount: request.amount,
    currency: request.currency,
    method: method?.type ?? request.method.type,
    outcome: decided.outcome,
    failureCode: decided.outcome === 'failed' ? decided.code : null,
    createdAt: clock.now(),
    instrument: method ? instrumentText(method) : null,
  });

  return {
    async charge(request): Promise<ChargeResult> {
      const method = (await instrumentsOf([request.method]))[0] ?? null;
      const decided = decide(method, request.unattended);
      const inserted = await db.insert(sandboxCharges).values(chargeRow(request, decided, method)).onConflictDoNothing().returning();
      if (inserted.length > 0 && decided.answerLost) return { status: 'unknown' };
      return (await lookup(request.idempotencyKey)) as ChargeResult;
    },
    /** One insert for all: a key charged before keeps its first row, and its first result is answered. */
    async chargeMany(requests): Promise<ChargeResult[]> {
      if (requests.length === 0) return [];
      const methods = await instrumentsOf(requests.map((r) => r.method));
      const decided = requests.map((r, i) => decide(methods[i] ?? null, r.unattended));
      const rows = requests.map((r, i) => chargeRow(r, decided[i]!, methods[i] ?? null));
      const col = <T>(values: T[]) => sql.param(values);
      // A column per array (unnest): a batch of charges is one small statement to build.
      const inserted = await db.execute<{ idempotency_key: string }>(sql`
        insert into sandbox_charges (idempotency_key, id, amount, currency, method, outcome, failure_code, created_at, instrument)
        select * from unnest(
          ${col(rows.map((r) => r.idempotencyKey))}::text[], ${col(rows.map((r) => r.id))}::text[], ${col(rows.map((r) => r.amount))}::bigint[],
          ${col(rows.map((r) => r.currency))}::text[], ${col(rows.map((r) => r.method))}::text[], ${col(rows.map((r) => r.outcome))}::text[],
          ${col(rows.map((r) => r.failureCode))}::text[], ${col(rows.map((r) => r.createdAt.toISOString()))}::timestamptz[],
          ${col(rows.map((r) => r.instrument))}::text[])
        on conflict do nothing
        returning idempotency_key`);
      const fresh = new Set((inserted as unknown as { rows: Array<{ idempotency_key: string }> }).rows.map((r) => r.idempotency_key));
      const keys = requests.map((r) => r.idempotencyKey);
      const found = await db.select().from(sandboxCharges).where(sql`${sandboxCharges.idempotencyKey} = any(${sql.param(keys)}::text[])`);
      const byKey = new Map(found.map((r) => [r.idempotencyKey, r]));
      return requests.map((r, i): ChargeResult => {
        if (fresh.has(r.idempotencyKey) && decided[i]!.answerLost) return { status: 'unknown' };
        const row = byKey.get(r.idempotencyKey);
        return row ? (toResult(row) as ChargeResult) : { status: 'unknown' };
      });
    },
    lookup,
    async saveMethod(request): Promise<SavedMethod> {
      const { method } = request;
      const instrument = method.type === 'card' ? method.token : method.type === 'upi' ? method.vpa : method.bankCode;
      const row = { reference: newId('spm', clock.now()), idempotencyKey: request.idempotencyKey, type: method.type, instrument, createdAt: clock.now() };
      await db.insert(sandboxPaymentMethods).values(row).onConflictDoNothing({ target: sandboxPaymentMethods.idempotencyKey });
      const [saved] = await db.select().from(sandboxPaymentMethods).where(eq(sandboxPaymentMethods.idempotencyKey, request.idempotencyKey));
      const kept = instrumentOf(saved!);
      return { reference: saved!.reference, label: labelOf(kept), ...(kept.type === 'card' ? { last4: last4Of(kept.token) } : {}) };
    },
    lookupRefund,
    /** A refund of a succeeded charge, once per key; never more than is left of the charge. */
    async refund(request): Promise<RefundResult> {
      const kept = await lookupRefund(request.idempotencyKey);
      if (kept.status !== 'not_found') return kept;
      const [charge] = await db.select().from(sandboxCharges).where(eq(sandboxCharges.id, request.chargeReference));
      if (!charge || charge.outcome !== 'succeeded') return { status: 'failed', reference: null, code: 'charge_not_found', message: 'No succeeded charge with this reference.' };
      const [sums] = await db
        .select({ refunded: sql<string>`coalesce(sum(${sandboxRefunds.amount}) filter (where ${sandboxRefunds.outcome} = 'succeeded'), 0)` })
        .from(sandboxRefunds)
        .where(eq(sandboxRefunds.chargeId, charge.id));
      const outcome =
        charge.instrument === 'tok_refundDeclined'
          ? { outcome: 'failed' as const, code: 'refund_declined' }
          : request.amount > charge.amount - Number(sums?.refunded ?? 0)
            ? { outcome: 'failed' as const, code: 'refund_exceeds_charge' }
            : { outcome: 'succeeded' as const, code: null };
      await db
        .insert(sandboxRefunds)
        .values({ idempotencyKey: request.idempotencyKey, id: newId('rf', clock.now()), chargeId: charge.id, amount: request.amount, outcome: outcome.outcome, failureCode: outcome.code, createdAt: clock.now() })
        .onConflictDoNothing();
      return (await lookupRefund(request.idempotencyKey)) as RefundResult;
    },
  };

  async function lookupRefund(idempotencyKey: string): Promise<RefundLookup> {
    const [row] = await db.select().from(sandboxRefunds).where(eq(sandboxRefunds.idempotencyKey, idempotencyKey));
    if (!row) return { status: 'not_found' };
    return row.outcome === 'succeeded'
      ? { status: 'succeeded', reference: row.id }
      : { status: 'failed', reference: row.id, code: row.failureCode ?? 'refund_failed', message: refundMessages[row.failureCode ?? ''] ?? 'The refund failed.' };
  }
}

const refundMessages: Record<string, string> = {
  refund_declined: 'The card network declined the refund.',
  refund_exceeds_charge: 'The refund is more than is left of the charge.',
};

const instrumentText = (method: InstrumentMethod): string => (method.type === 'card' ? method.token : method.type === 'upi' ? method.vpa : method.bankCode);

const messages: Record<string, string> = {
  card_declined: 'Your card was declined.',
  insufficient_funds: 'Your card has insufficient funds.',
  upi_declined: 'The UPI payment was declined by the payer.',
  upi_vpa_not_found: 'The sandbox knows only success@upi and failure@upi.',
  bank_declined: 'The bank declined the payment.',
  invalid_card_token: 'No such card token.',
  payment_method_not_found: 'No such saved payment method.',
};

const failureMessage = (code: string | null) => messages[code ?? ''] ?? 'The payment failed.';
