import type { Db } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import { idFromKey } from '../../lib/ids.js';
import * as accountsRepo from '../accounts/repo.js';
import { amountDue } from '../billing/domain.js';
import * as billingRepo from '../billing/repo.js';
import { complete as completeIdempotency, type IdempotencyHandle } from '../idempotency/repo.js';
import { nowForAccount } from '../test-clocks/time.js';
import type { PaymentMethodsService } from './methods-service.js';
import type { ChargeResult } from './provider.js';
import * as repo from './repo.js';
import type { PaymentResult } from './result.js';
import type { AddPaymentMethodBody } from './schemas.js';
import { invoicePurpose } from './invoice-purpose.js';
import { declinedError, type PaymentsService } from './service.js';

export interface PayInvoiceInput {
  /** One of the account's saved methods; without it (and without paymentMethod), the default. */
  paymentMethodId?: string;
  /** A new method, saved (the default only when the account has none) and charged. */
  paymentMethod?: AddPaymentMethodBody['paymentMethod'];
}

/**
 * A customer pays an open invoice themselves (Stripe's invoice `pay`): a renewal declined in
 * dunning, a renewal or an auto-recharge waiting for them (above the e-mandate, the mandate
 * ended, no method), an upgrade awaiting a wire. The charge is the invoice's purpose's (see
 * invoicePurpose), attended: never charged as unattended, and a decline is the customer's to see, not a
 * dunning step. One charge of an invoice at a time: a concurrent pay or dunning retry waits.
 */
export function createInvoicePayments(deps: { db: Db; clock: Clock; payments: PaymentsService; methods: PaymentMethodsService }) {
  const { db, clock, payments } = deps;

  async function pay(invoiceId: string, viewer: { accountId: string | null }, input: PayInvoiceInput, idempotency: IdempotencyHandle | null): Promise<PaymentResult> {
    const invoice = await billingRepo.findInvoice(db, invoiceId);
    if (!invoice || (viewer.accountId && viewer.accountId !== invoice.accountId)) throw new AppError('invoice_not_found', `No invoice ${invoiceId}`);
    // The same request retried: answer with the payment it made for this invoice (reconciled if its answer was lost).
    const mine = idempotency ? await repo.findPaymentByIdempotency(db, invoice.accountId, idempotency) : undefined;
    if (mine && mine.invoiceId === invoiceId) return answered(await payments.reconcile(mine, { within: (tx, settled) => answer(tx, settled, idempotency) }));
    await invoicePurpose(db, invoice);
    const method = await methodFor(invoice.accountId, input, idempotency);
    const payment = await db.transaction(async (tx) => {
      const account = (await accountsRepo.findAccount(tx, invoice.accountId, { forUpdate: true }))!;
      const current = (await billingRepo.findInvoice(tx, invoiceId))!;
      const { purpose, request } = await invoicePurpose(tx, current);
      const inFlight = await repo.findInFlightForInvoice(tx, invoiceId);
      if (inFlight) throw new AppError('invoice_payment_in_progress', `Payment ${inFlight.id} of invoice ${current.number} is in flight; retry shortly`, { paymentId: inFlight.id });
      return payments.open(tx, {
        accountId: account.id,
        purpose,
        amount: amountDue(current),
        currency: current.currency,
        method,
        invoiceId,
        attended: true,
        request: { ...request, invoiceId, idempotency: idempotency ? { apiKeyId: idempotency.apiKeyId, key: idempotency.key } : null },
        now: await nowForAccount(tx, account, clock),
      });
    });
    return settle(payment.id, await payments.charge(payment, method), idempotency);
  }

  /** The method to charge: a new one (saved first, outside any transaction), a saved one, or the default. */
  async function methodFor(accountId: string, input: PayInvoiceInput, idempotency: IdempotencyHandle | null): Promise<repo.PaymentMethodRow> {
    let id = input.paymentMethodId;
    // A new method, saved once however often the request is retried (under its Idempotency-Key).
    const savedAs = idempotency ? idFromKey('pm', `${accountId}:${idempotency.apiKeyId}:${idempotency.key}`) : undefined;
    if (input.paymentMethod) id = (await deps.methods.add(accountId, { paymentMethod: input.paymentMethod }, { id: savedAs })).id;
    const method = id ? await repo.findPaymentMethod(db, id) : await repo.findDefaultMethod(db, accountId);
    if (id && (!method || method.accountId !== accountId || method.status !== 'active')) throw new AppError('payment_method_not_found', `No payment method ${id}`);
    if (!method) throw new AppError('payment_method_required', 'The account has no default payment method: give paymentMethod or paymentMethodId');
    if (method.type === 'wire_transfer' || method.type === 'cheque') {
      throw new AppError('payment_method_not_allowed', 'Pay by card, UPI or net banking; a wire transfer or cheque is recorded by ops when it arrives');
    }
    return method;
  }

  /** Settles and answers (see answer); a decline throws. */
  const settle = async (paymentId: string, result: ChargeResult, idempotency: IdempotencyHandle | null): Promise<PaymentResult> =>
    answered(await payments.settle(paymentId, result, { within: (tx, settled) => answer(tx, settled, idempotency) }));

  function answered({ payment, value }: { payment: repo.PaymentRow; value: PaymentResult | null }): PaymentResult {
    if (payment.status === 'failed') throw declinedError(payment);
    return value!;
  }

  /** The answer, read in the settling transaction; a success is recorded for the Idempotency-Key with the change. */
  async function answer(tx: Db, settled: repo.PaymentRow, idempotency: IdempotencyHandle | null): Promise<PaymentResult | null> {
    if (settled.status === 'failed') return null;
    const result = await payments.resultIn(tx, settled.id);
    if (settled.status === 'succeeded' && idempotency) {
      await completeIdempotency(tx, idempotency, 201, JSON.parse(JSON.stringify(result)));
      idempotency.completed = true;
    }
    return result;
  }

  return { pay };
}

export type InvoicePayments = ReturnType<typeof createInvoicePayments>;
