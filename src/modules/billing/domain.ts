import { mulDivHalfUp, type Currency } from '../../lib/money.js';
import { taxOn, type Supply, type TaxAmounts, type TaxRegime } from './tax.js';

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
  tax: TaxAmounts;
  /** The tax invoice's parties, place of supply and terms (null only on invoices issued before they were kept). */
  supply: Supply | null;
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
  tax: TaxRegime;
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
  return priced(input.currency, lines, input.tax);
}

/** Lines with their tax (per line, half-up, once) and totals; the regime's supply goes with them. */
export function priced(currency: Currency, lines: LineDraft[], regime: TaxRegime): PricedInvoice {
  const subtotal = lines.reduce((sum, l) => sum + l.amount, 0);
  const discountTotal = lines.reduce((sum, l) => sum + l.discountAmount, 0);
  const tax = taxOn(lines.map((l) => l.amount), regime);
  return { currency, lines, subtotal, discountTotal, tax, supply: regime.supply, total: subtotal + tax.amount };
}

/** Prepaid credits bought (a top-up or an auto-recharge), with their tax. */
export function priceCredits(currency: Currency, credits: number, description: string, regime: TaxRegime): PricedInvoice {
  return priced(currency, [{ kind: 'credits', description, quantity: 1, unitAmount: credits, grossAmount: credits, discountAmount: 0, amount: credits }], regime);
}

const IST_OFFSET_MS = 330 * 60_000;

/** The Indian financial year (April to March, in IST) of an instant: "2026-27". */
export function financialYearOf(at: Date): string {
  const ist = new Date(at.getTime() + IST_OFFSET_MS);
  const year = ist.getUTCMonth() >= 3 ? ist.getUTCFullYear() : ist.getUTCFullYear() - 1;
  return `${year}-${String((year + 1) % 100).padStart(2, '0')}`;
}

/**
 * INV/2627/0000001: at most 16 characters (GST Rule 46), consecutive per financial year
 * ("2026-27" is 2627), up to 9,999,999 invoices a year.
 */
export const invoiceNumber = (financialYear: string, sequence: number): string => `INV/${fyCode(financialYear)}/${String(sequence).padStart(7, '0')}`;

/** What an open invoice still asks for: its total less what credit notes took off it. */
export const amountDue = (invoice: { total: number; creditedTotal: number }): number => invoice.total - invoice.creditedTotal;

/** A document number as a file name: INV/2627/0000001 -> INV-2627-0000001.pdf. */
export const pdfFileName = (number: string): string => `${number.replaceAll('/', '-')}.pdf`;

/** "2026-27" -> "2627". */
export const fyCode = (financialYear: string): string => `${financialYear.slice(2, 4)}${financialYear.slice(5, 7)}`;
