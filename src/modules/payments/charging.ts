import type { Logger } from '../../lib/logger.js';
import type { ChargeMethod, ChargeRequest, ChargeResult, PaymentProvider } from './provider.js';
import type { PaymentMethodRow, PaymentRow } from './repo.js';

/** A charge that has not answered by then counts as unknown; reconciliation takes over. */
export const CHARGE_DEADLINE_MS = 20_000;
/** A payment younger than this may still be on its way to the gateway. */
export const IN_FLIGHT_WINDOW_MS = 2 * 60_000;

export async function chargeWithDeadline(provider: PaymentProvider, request: ChargeRequest, logger: Logger): Promise<ChargeResult> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<ChargeResult>((resolve) => {
    timer = setTimeout(() => resolve({ status: 'unknown' }), CHARGE_DEADLINE_MS);
  });
  try {
    return await Promise.race([provider.charge(request), deadline]);
  } catch (err) {
    logger.warn({ err, paymentId: request.idempotencyKey }, 'payment provider call failed; result unknown');
    return { status: 'unknown' };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Many charges under one deadline: the provider's bulk call when it has one, else one by one
 * with at most `concurrency` in flight. Answers in request order; a broken or late call is
 * unknown for every charge it carried, and reconciliation takes over.
 */
export async function chargeAllWithDeadline(provider: PaymentProvider, requests: ChargeRequest[], logger: Logger, concurrency = 16): Promise<ChargeResult[]> {
  if (requests.length === 0) return [];
  if (!provider.chargeMany) {
    const results: ChargeResult[] = new Array(requests.length);
    let next = 0;
    const lane = async () => {
      for (let i = next++; i < requests.length; i = next++) results[i] = await chargeWithDeadline(provider, requests[i]!, logger);
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, requests.length) }, lane));
    return results;
  }
  let timer: NodeJS.Timeout | undefined;
  const unknown = () => requests.map((): ChargeResult => ({ status: 'unknown' }));
  const deadline = new Promise<ChargeResult[]>((resolve) => {
    timer = setTimeout(() => resolve(unknown()), CHARGE_DEADLINE_MS);
  });
  try {
    return await Promise.race([provider.chargeMany(requests), deadline]);
  } catch (err) {
    logger.warn({ err, payments: requests.length }, 'payment provider bulk call failed; results unknown');
    return unknown();
  } finally {
    clearTimeout(timer);
  }
}

/** A saved card, UPI or net-banking method is charged by the provider's reference to it, the only thing of it we keep. */
export function chargeMethodOf(method: Pick<PaymentMethodRow, 'type' | 'reference'>): ChargeMethod {
  if ((method.type === 'card' || method.type === 'upi' || method.type === 'netbanking') && method.reference) return { type: 'saved', reference: method.reference };
  throw new Error(`${method.type} is not charged online`);
}

/**
 * What became of a payment whose answer was lost. The gateway's record decides; when it has
 * none and the payment is past the in-flight window, the charge is asked again under the
 * same idempotency key (`request`, the payment's one charge request), which the gateway
 * answers with the first charge if there was one. A payment is never declared "not charged"
 * while its charge might still land. The window is real time since the payment last changed
 * (a test clock's frozen time says nothing of how long a request to the gateway has been out).
 */
export async function resolveUnknownCharge(
  provider: PaymentProvider,
  payment: Pick<PaymentRow, 'id' | 'touchedAt'>,
  request: ChargeRequest,
  logger: Logger,
): Promise<ChargeResult> {
  const found = await provider.lookup(payment.id);
  if (found.status !== 'not_found') return found;
  if (Date.now() - payment.touchedAt.getTime() < IN_FLIGHT_WINDOW_MS) return { status: 'unknown' };
  return chargeWithDeadline(provider, request, logger);
}
