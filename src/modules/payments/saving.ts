import { AppError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import { CHARGE_DEADLINE_MS } from './charging.js';
import type { InstrumentMethod, PaymentProvider, SavedMethod } from './provider.js';
import type { PaymentMethodInput } from './schemas.js';

/** The columns of a payment_methods row: what we keep of a method. */
export interface StoredMethod {
  type: PaymentMethodInput['type'];
  reference: string | null;
  label: string | null;
  last4: string | null;
}

/**
 * What we keep of the method a customer gave. Card, UPI and net banking are saved with the
 * provider first, outside any transaction, under `id` (the payment_methods row to be) as its
 * idempotency key, and kept only as the provider's reusable reference and a label safe to
 * show; the card token or VPA never reaches our tables. Wire transfer and cheque keep nothing.
 */
export async function saveWithProvider(provider: PaymentProvider, method: PaymentMethodInput, id: string, logger: Logger): Promise<StoredMethod> {
  const instrument: InstrumentMethod | null =
    method.type === 'card'
      ? { type: 'card', token: method.token }
      : method.type === 'upi'
        ? { type: 'upi', vpa: method.vpa }
        : method.type === 'netbanking'
          ? { type: 'netbanking', bankCode: method.bankCode }
          : null;
  if (!instrument) return { type: method.type, reference: null, label: null, last4: null };
  let timer: NodeJS.Timeout | undefined;
  try {
    const saved = await Promise.race([
      provider.saveMethod({ idempotencyKey: id, method: instrument }),
      new Promise<SavedMethod>((_, reject) => {
        timer = setTimeout(() => reject(new Error('the provider did not answer in time')), CHARGE_DEADLINE_MS);
      }),
    ]);
    return { type: method.type, reference: saved.reference, label: saved.label, last4: saved.last4 ?? null };
  } catch (err) {
    logger.warn({ err, paymentMethodId: id }, 'the payment provider could not save a method');
    throw new AppError('service_unavailable', 'The payment gateway could not save the payment method; retry shortly');
  } finally {
    clearTimeout(timer);
  }
}
