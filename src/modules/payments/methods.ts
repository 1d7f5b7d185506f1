/** The brief's payment-method table as rules. */
export type PaymentMethodType = 'card' | 'upi' | 'netbanking' | 'wire_transfer' | 'cheque';

export function allowedPaymentMethods(country: string, planTier: string, cycle: string): PaymentMethodType[] {
  const allowed: PaymentMethodType[] = ['card'];
  if (country === 'IN') allowed.push('netbanking', 'upi');
  if (planTier === 'enterprise' && cycle === 'annual') allowed.push('wire_transfer', 'cheque');
  return allowed;
}

/** Only card and UPI (with a mandate) can be charged without the customer present. */
export const chargeableUnattended = (type: PaymentMethodType): boolean => type === 'card' || type === 'upi';

export const isOffline = (type: PaymentMethodType): boolean => type === 'wire_transfer' || type === 'cheque';

const cardBrands: Record<string, string> = { tok_visa: 'visa', tok_mastercard: 'mastercard', tok_rupay: 'rupay' };

export const cardBrandOf = (token: string): string => cardBrands[token] ?? 'card';

/** A VPA fit to show: at most two characters of the name (never half of it) and the handle, `ra***@okhdfc`. */
export function maskVpa(vpa: string): string {
  const at = vpa.lastIndexOf('@');
  const name = vpa.slice(0, Math.max(at, 0));
  return `${name.slice(0, Math.min(2, Math.floor(name.length / 2)))}***${at >= 0 ? vpa.slice(at) : ''}`;
}
