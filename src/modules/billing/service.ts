import type { Db } from '../../db/client.js';
import { AppError } from '../../lib/errors.js';
import { page } from '../../lib/pagination.js';
import * as accountsRepo from '../accounts/repo.js';
import * as catalogRepo from '../catalog/repo.js';
import * as paymentsRepo from '../payments/repo.js';
import { toSubscriptionDto } from '../subscriptions/dto.js';
import * as subscriptionsRepo from '../subscriptions/repo.js';
import { toInvoiceDto } from './dto.js';
import { createInvoiceDocuments } from './documents.js';
import type { Taxation } from './tax.js';
import type { Clock } from '../../lib/clock.js';
import * as repo from './repo.js';

export function createBillingService(deps: { db: Db; clock: Clock; taxation: Taxation }) {
  const { db } = deps;
  const documents = createInvoiceDocuments(deps);

  async function getInvoice(id: string, viewer: { accountId: string | null }) {
    const row = await repo.findInvoice(db, id);
    if (!row || (viewer.accountId && viewer.accountId !== row.accountId)) throw new AppError('invoice_not_found', `No invoice ${id}`);
    return toInvoiceDto(row, await repo.linesOf(db, id));
  }

  async function listInvoices(accountId: string, opts: { before?: string; limit: number }) {
    if (!(await accountsRepo.findAccount(db, accountId))) throw new AppError('account_not_found', `No account ${accountId}`);
    const rows = await repo.listInvoices(db, accountId, { ...opts, limit: opts.limit + 1 });
    const result = page(rows, opts.limit, (r) => r.id);
    return { data: await Promise.all(result.data.map(async (r) => toInvoiceDto(r, await repo.linesOf(db, r.id)))), nextCursor: result.nextCursor };
  }

  /** The invoice's PDF as kept (rendered on first need): the same bytes every time. */
  async function invoicePdf(id: string, viewer: { accountId: string | null }) {
    const row = await repo.findInvoice(db, id);
    if (!row || (viewer.accountId && viewer.accountId !== row.accountId)) throw new AppError('invoice_not_found', `No invoice ${id}`);
    return documents.pdfOf(row);
  }

  async function getSubscription(accountId: string) {
    if (!(await accountsRepo.findAccount(db, accountId))) throw new AppError('account_not_found', `No account ${accountId}`);
    // After one ended (cancelled, or dunning exhausted), the account's subscription is that one, with its endedAt.
    const row = await subscriptionsRepo.findLatestSubscription(db, accountId);
    if (!row) throw new AppError('subscription_not_found', `Account ${accountId} has no subscription`);
    const plan = (await catalogRepo.findPlan(db, row.planId))!;
    return toSubscriptionDto(row, plan, await paymentsRepo.findPaymentMethod(db, row.paymentMethodId));
  }

  return { getInvoice, listInvoices, invoicePdf, getSubscription };
}

export type BillingService = ReturnType<typeof createBillingService>;
