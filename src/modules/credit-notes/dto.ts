import { amountInWords } from '../../lib/words.js';
import type { InvoiceRow } from '../billing/repo.js';
import type { CreditNoteRow, RefundRow } from './repo.js';
import type { CreditNoteDto } from './schemas.js';

export function toCreditNoteDto({ note, invoice, refund }: { note: CreditNoteRow; invoice: InvoiceRow; refund?: RefundRow }): CreditNoteDto {
  return {
    id: note.id,
    number: note.number,
    accountId: note.accountId,
    invoiceId: note.invoiceId,
    invoiceNumber: invoice.number,
    reason: note.reason,
    settlement: note.settlement,
    currency: note.currency,
    lines: note.lines.map((l) => ({ position: l.position, description: l.description, amount: l.amount })),
    subtotal: note.subtotal,
    tax: { amount: note.taxAmount, components: note.taxComponents },
    total: note.total,
    amountInWords: amountInWords(note.total, note.currency),
    issuedAt: note.issuedAt,
    refund: refund
      ? { id: refund.id, status: refund.status, amount: refund.amount, currency: refund.currency, paymentId: refund.paymentId, failureCode: refund.failureCode, failureMessage: refund.failureMessage }
      : null,
  };
}
