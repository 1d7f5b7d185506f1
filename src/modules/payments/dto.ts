import type { PaymentRow } from './repo.js';
import type { PaymentDto } from './schemas.js';

export function toPaymentDto(row: PaymentRow): PaymentDto {
  return {
    id: row.id,
    accountId: row.accountId,
    purpose: row.purpose,
    status: row.status,
    amount: row.amount,
    currency: row.currency,
    methodType: row.methodType,
    invoiceId: row.invoiceId,
    failureCode: row.failureCode,
    failureMessage: row.failureMessage,
    offlineReference: row.offlineReference,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}
