import { bpsOf, mulDivHalfUp, type Currency } from '../../lib/money.js';

export type BillingCycleCode = 'monthly' | 'quarterly' | 'annual';

export interface LineDraft {
  kind: 'plan_fee' | 'whatsapp_addon' | 'credits';
  description: string;
  quantity: number;
  unitAmount: number;
  grossAmount: number;
  discountAmount: number;
  amount: number;
}

export interface PricedInvoice {
  currency: Currency;
  lines: LineDraft[];
  subtotal: number;
  discountTotal: number;
  tax: { label: string; rateBps: number; amount: number };
  total: number;
}

/** A recurring fee for a period: monthly price x months, less the cycle discount (half-up, once). */
function recurringLine(kind: LineDraft['kind'], description: string, monthly: number, months: number, discountBps: number): LineDraft {
  const gross = monthly * months;
  const amount = mulDivHalfUp(gross, 10_000 - discountBps, 10_000);
  return { kind, description, quantity: months, unitAmount: monthly, grossAmount: gross, discountAmount: gross - amount, amount };
}

/**
 * The first invoice of an upgrade: plan fee for the first period, the WhatsApp add-on when
 * chosen, the initial credits, and tax on the subtotal as its own line.
 */
export function priceUpgrade(input: {
  currency: Currency;
  planName: string;
  cycle: { name: string; months: number; discountBps: number };
  monthlyMinimum: number;
  whatsappAddonMonthly: number | null;
  initialCredits: number;
  tax: { label: string; rateBps: number };
}): PricedInvoice {
  const { cycle } = input;
  const lines: LineDraft[] = [
    recurringLine('plan_fee', `${input.planName} plan, ${cycle.name.toLowerCase()} (${cycle.months} month${cycle.months > 1 ? 's' : ''})`, input.monthlyMinimum, cycle.months, cycle.discountBps),
  ];
  if (input.whatsappAddonMonthly !== null) {
    lines.push(recurringLine('whatsapp_addon', 'WhatsApp add-on', input.whatsappAddonMonthly, cycle.months, cycle.discountBps));
  }
  if (input.initialCredits > 0) {
    lines.push({
      kind: 'credits',
      description: 'Prepaid credits for calls and SMS',
      quantity: 1,
      unitAmount: input.initialCredits,
      grossAmount: input.initialCredits,
      discountAmount: 0,
      amount: input.initialCredits,
    });
  }
  const subtotal = lines.reduce((sum, l) => sum + l.amount, 0);
  const discountTotal = lines.reduce((sum, l) => sum + l.discountAmount, 0);
  const taxAmount = bpsOf(subtotal, input.tax.rateBps);
  return {
    currency: input.currency,
    lines,
    subtotal,
    discountTotal,
    tax: { ...input.tax, amount: taxAmount },
    total: subtotal + taxAmount,
  };
}

export function taxFor(country: string, rates: Record<string, number>): { label: string; rateBps: number } {
  const rateBps = rates[country] ?? 0;
  const label = country === 'IN' ? 'GST' : 'Tax';
  return { label: `${label} ${rateBps / 100}%`, rateBps };
}

const IST_OFFSET_MS = 330 * 60_000;

/** The Indian financial year (April to March, in IST) of an instant: "2026-27". */
export function financialYearOf(at: Date): string {
  const ist = new Date(at.getTime() + IST_OFFSET_MS);
  const year = ist.getUTCMonth() >= 3 ? ist.getUTCFullYear() : ist.getUTCFullYear() - 1;
  return `${year}-${String((year + 1) % 100).padStart(2, '0')}`;
}

export const invoiceNumber = (financialYear: string, sequence: number): string =>
  `INV-${financialYear}-${String(sequence).padStart(6, '0')}`;
