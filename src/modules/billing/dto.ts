import { amountInWords } from '../../lib/words.js';
import type { InvoiceLineRow, InvoiceRow } from './repo.js';
import type { InvoiceDto } from './schemas.js';

export function toInvoiceDto(row: InvoiceRow, lines: InvoiceLineRow[]): InvoiceDto {
  return {
    id: row.id,
    number: row.number,
    accountId: row.accountId,
    subscriptionId: row.subscriptionId,
    status: row.status === 'open' && row.actionRequired ? 'requires_action' : row.status,
    actionRequired: row.status === 'open' && row.actionRequired ? { reason: row.actionRequired, payBy: row.nextAttemptAt ?? row.dueAt } : null,
    currency: row.currency,
    planId: row.planId,
    billingCycle: row.billingCycle,
    period: { start: row.periodStart, end: row.periodEnd },
    lines: lines.map((l) => ({
      kind: l.kind,
      description: l.description,
      quantity: l.quantity,
      unitAmount: l.unitAmount,
      grossAmount: l.grossAmount,
      discountAmount: l.discountAmount,
      amount: l.amount,
    })),
    subtotal: row.subtotal,
    discountTotal: row.discountTotal,
    tax: {
      label: row.taxLabel,
      rateBps: row.taxRateBps,
      amount: row.taxAmount,
      components: row.taxComponents ?? [{ name: row.currency === 'INR' ? 'IGST' : 'Tax', rateBps: row.taxRateBps, amount: row.taxAmount }],
    },
    supply: row.supply,
    total: row.total,
    creditedTotal: row.creditedTotal,
    amountDue: row.status === 'open' ? row.total - row.creditedTotal : 0,
    amountInWords: amountInWords(row.total, row.currency),
    issuedAt: row.issuedAt,
    dueAt: row.dueAt,
    paidAt: row.paidAt,
  };
}
