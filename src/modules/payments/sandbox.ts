import { eq } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { sandboxCharges } from '../../db/schema/index.js';
import type { Clock } from '../../lib/clock.js';
import { newId } from '../../lib/ids.js';
import type { ChargeMethod, ChargeResult, LookupResult, PaymentProvider } from './provider.js';

type Outcome = { outcome: 'succeeded' } | { outcome: 'failed'; code: string; message: string };

/**
 * Test values, Stripe style. Cards: tok_visa, tok_mastercard, tok_rupay succeed;
 * tok_chargeDeclined is declined; tok_chargeDeclinedInsufficientFunds lacks funds;
 * tok_timeout charges but the answer is lost (unknown; lookup finds it succeeded);
 * tok_chargeCustomerFail pays the upgrade, then declines every unattended charge (renewals).
 * UPI: success@upi succeeds, failure@upi fails. Net banking: every bank code but FAIL succeeds.
 */
export function sandboxOutcome(method: ChargeMethod, unattended = false): Outcome & { answerLost: boolean } {
  const ok = { outcome: 'succeeded' as const, answerLost: false };
  const fail = (code: string, message: string) => ({ outcome: 'failed' as const, code, message, answerLost: false });
  switch (method.type) {
    case 'card':
      if (['tok_visa', 'tok_mastercard', 'tok_rupay'].includes(method.token)) return ok;
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

/**
 * The sandbox gateway. It keeps its charges in a table of its own, as a real gateway keeps
 * them on its side, keyed by our idempotency key: a repeated charge returns the first result
 * and moves no money twice.
 */
export function createSandboxProvider(deps: { db: Db; clock: Clock }): PaymentProvider {
  const { db, clock } = deps;

  const toResult = (row: typeof sandboxCharges.$inferSelect): LookupResult =>
    row.outcome === 'succeeded'
      ? { status: 'succeeded', reference: row.id }
      : { status: 'failed', reference: row.id, code: row.failureCode ?? 'failed', message: failureMessage(row.failureCode) };

  async function lookup(idempotencyKey: string): Promise<LookupResult> {
    const [row] = await db.select().from(sandboxCharges).where(eq(sandboxCharges.idempotencyKey, idempotencyKey));
    return row ? toResult(row) : { status: 'not_found' };
  }

  return {
    async charge(request): Promise<ChargeResult> {
      const decided = sandboxOutcome(request.method, request.unattended);
      const inserted = await db
        .insert(sandboxCharges)
        .values({
          idempotencyKey: request.idempotencyKey,
          id: newId('ch', clock.now()),
          amount: request.amount,
          currency: request.currency,
          method: request.method.type,
          outcome: decided.outcome,
          failureCode: decided.outcome === 'failed' ? decided.code : null,
          createdAt: clock.now(),
        })
        .onConflictDoNothing()
        .returning();
      if (inserted.length > 0 && decided.answerLost) return { status: 'unknown' };
      return (await lookup(request.idempotencyKey)) as ChargeResult;
    },
    lookup,
  };
}

const messages: Record<string, string> = {
  card_declined: 'Your card was declined.',
  insufficient_funds: 'Your card has insufficient funds.',
  upi_declined: 'The UPI payment was declined by the payer.',
  upi_vpa_not_found: 'The sandbox knows only success@upi and failure@upi.',
  bank_declined: 'The bank declined the payment.',
  invalid_card_token: 'No such card token.',
};

const failureMessage = (code: string | null) => messages[code ?? ''] ?? 'The payment failed.';
