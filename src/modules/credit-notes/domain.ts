import { formatAmount } from '../../lib/format.js';
import { mulDivHalfUp, type Currency } from '../../lib/money.js';
import type { TaxAmounts } from '../billing/tax.js';

/** A line of the invoice being credited: its taxable value, and what earlier credit notes took off it. */
export interface CreditableLine {
  position: number;
  kind: string;
  description: string;
  amount: number;
  credited: number;
}

export interface CreditNoteLine {
  position: number;
  kind: string;
  description: string;
  amount: number;
}

export interface CreditNotePlan {
  lines: CreditNoteLine[];
  subtotal: number;
  tax: Pick<TaxAmounts, 'amount' | 'components'>;
  total: number;
  /** The part that takes back purchased credits (credit lines): debited from the ledger before any refund. */
  credits: number;
}

export type CreditRefusal = { code: 'credit_note_exceeds_invoice' | 'validation_failed'; detail: string; extra?: Record<string, unknown> };

/**
 * What a credit note takes off an invoice, as a pure calculation. `amount`: a taxable value
 * taken from the invoice's lines in their order (each up to what is left of it); `lines`: a
 * taxable value per line position. Never more than the invoice minus earlier credit notes.
 * The tax is reversed in proportion to the taxable value credited, each component rounded
 * half-up once; the note that credits the last of the invoice takes exactly the tax left, so
 * the notes' tax adds up to the invoice's to the paise.
 */
export function planCreditNote(input: {
  lines: CreditableLine[];
  subtotal: number;
  tax: Pick<TaxAmounts, 'components'>;
  /** Tax per component taken by earlier credit notes. */
  taxCredited: Record<string, number>;
  request: { amount?: number; lines?: Array<{ position: number; amount: number }> };
  currency: Currency;
}): CreditNotePlan | { refused: CreditRefusal } {
  const left = (l: CreditableLine) => l.amount - l.credited;
  const money = (n: number) => formatAmount(n, input.currency);
  const remaining = input.lines.reduce((sum, l) => sum + left(l), 0);
  const taken: CreditNoteLine[] = [];
  if (input.request.lines) {
    for (const wanted of input.request.lines) {
      const line = input.lines.find((l) => l.position === wanted.position);
      if (!line) return { refused: { code: 'validation_failed', detail: `The invoice has no line ${wanted.position}` } };
      if (wanted.amount > left(line)) {
        return { refused: { code: 'credit_note_exceeds_invoice', detail: `Line ${wanted.position} has ${money(left(line))} (taxable) left to credit; ${money(wanted.amount)} was asked`, extra: { position: wanted.position, creditable: left(line) } } };
      }
      taken.push({ position: line.position, kind: line.kind, description: line.description, amount: wanted.amount });
    }
    if (new Set(input.request.lines.map((l) => l.position)).size !== input.request.lines.length) {
      return { refused: { code: 'validation_failed', detail: 'Each line position may be given once' } };
    }
  } else {
    let want = input.request.amount ?? 0;
    if (want > remaining) return { refused: { code: 'credit_note_exceeds_invoice', detail: `The invoice has ${money(remaining)} (taxable) left to credit; ${money(want)} was asked`, extra: { creditable: remaining } } };
    for (const line of input.lines) {
      const take = Math.min(want, left(line));
      if (take > 0) taken.push({ position: line.position, kind: line.kind, description: line.description, amount: take });
      want -= take;
    }
  }
  const subtotal = taken.reduce((sum, l) => sum + l.amount, 0);
  const closesOut = subtotal === remaining;
  const components = input.tax.components.map((c) => {
    const leftOfTax = c.amount - (input.taxCredited[c.name] ?? 0);
    const share = input.subtotal > 0 ? mulDivHalfUp(c.amount, subtotal, input.subtotal) : 0;
    return { ...c, amount: closesOut ? leftOfTax : Math.min(share, leftOfTax) };
  });
  const taxAmount = components.reduce((sum, c) => sum + c.amount, 0);
  return {
    lines: taken,
    subtotal,
    tax: { amount: taxAmount, components },
    total: subtotal + taxAmount,
    credits: taken.filter((l) => l.kind === 'credits').reduce((sum, l) => sum + l.amount, 0),
  };
}

/** CN/2627/0000001: the credit notes' own gapless series per financial year, 16 characters at most. */
export const creditNoteNumber = (fyCode: string, sequence: number): string => `CN/${fyCode}/${String(sequence).padStart(7, '0')}`;
