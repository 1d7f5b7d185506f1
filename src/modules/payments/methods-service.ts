import type { Db } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import { formatAmount } from '../../lib/format.js';
import { newId } from '../../lib/ids.js';
import type { Logger } from '../../lib/logger.js';
import * as accountsRepo from '../accounts/repo.js';
import * as creditsRepo from '../credits/repo.js';
import * as subscriptionsRepo from '../subscriptions/repo.js';
import { nowForAccount } from '../test-clocks/time.js';
import { mandateApplies, type MandateRules } from './mandate.js';
import { chargeableUnattended } from './methods.js';
import type { PaymentProvider } from './provider.js';
import * as repo from './repo.js';
import { saveWithProvider } from './saving.js';
import type { AddPaymentMethodBody, SavedPaymentMethodDto } from './schemas.js';

/**
 * An account's saved payment methods: add (saved with the gateway, kept as its reusable
 * reference), list, choose the default that renewals and auto-recharge charge, remove. Indian
 * card and UPI methods carry their e-mandate: the most one unattended charge may take and
 * when it ends.
 */
export function createPaymentMethodsService(deps: { db: Db; clock: Clock; provider: PaymentProvider; logger: Logger; mandate: MandateRules }) {
  const { db, clock, provider, logger } = deps;

  const toDto = (row: repo.PaymentMethodRow, currency: string): SavedPaymentMethodDto => ({
    id: row.id,
    accountId: row.accountId,
    type: row.type,
    label: row.label,
    last4: row.last4,
    isDefault: row.isDefault,
    mandate: mandateApplies(currency as 'INR', row.type) ? { maxAmount: row.mandateMaxAmount ?? deps.mandate.capInr, validUntil: row.mandateValidUntil } : null,
    createdAt: row.createdAt,
  });

  async function mustFindAccount(tx: Db, accountId: string, lock = false) {
    const account = await accountsRepo.findAccount(tx, accountId, { forUpdate: lock });
    if (!account) throw new AppError('account_not_found', `No account ${accountId}`);
    return account;
  }

  async function mustFindMethod(tx: Db, accountId: string, methodId: string) {
    const method = await repo.findPaymentMethod(tx, methodId);
    if (!method || method.accountId !== accountId || method.status !== 'active') throw new AppError('payment_method_not_found', `No payment method ${methodId}`);
    return method;
  }

  async function list(accountId: string) {
    const account = await mustFindAccount(db, accountId);
    return { data: (await repo.listActiveMethods(db, accountId)).map((m) => toDto(m, account.currency)), nextCursor: null };
  }

  /** The e-mandate a new method carries, by the rules: at most the cap unless the customer authenticated more. */
  function mandateOf(account: accountsRepo.AccountRow, input: AddPaymentMethodBody, now: Date) {
    const applies = mandateApplies(account.currency, input.paymentMethod.type);
    if (!input.mandate) return { mandateMaxAmount: null, mandateValidUntil: null };
    if (!applies) throw new AppError('mandate_not_applicable', `E-mandates apply to card and UPI methods of accounts billed in INR; this is ${input.paymentMethod.type} in ${account.currency}`);
    const { maxAmount, validUntil, authenticated } = input.mandate;
    if (maxAmount !== undefined && maxAmount > deps.mandate.capInr && !authenticated) {
      throw new AppError('mandate_above_cap', `Above ${formatAmount(deps.mandate.capInr, 'INR')} an e-mandate needs the customer's additional authentication (authenticated: true)`);
    }
    const until = validUntil === undefined ? null : new Date(validUntil);
    if (until && until <= now) throw new AppError('validation_failed', 'mandate.validUntil must be in the future', { errors: [{ path: 'body.mandate.validUntil', message: 'in the past' }] });
    return { mandateMaxAmount: maxAmount ?? null, mandateValidUntil: until };
  }

  /**
   * Saves a method with the gateway (outside any transaction), then records it; the account's
   * first method is its default. `id`: the id a retried request gives again (see idFromKey),
   * so the same request saves the method once.
   */
  async function add(accountId: string, input: AddPaymentMethodBody, opts: { id?: string } = {}): Promise<SavedPaymentMethodDto> {
    const account = await mustFindAccount(db, accountId);
    const existing = opts.id ? await repo.findPaymentMethod(db, opts.id) : undefined;
    if (existing && existing.accountId === accountId) return toDto(existing, account.currency);
    if (input.paymentMethod.type !== 'card' && account.country !== 'IN') {
      throw new AppError('payment_method_not_allowed', `${input.paymentMethod.type === 'upi' ? 'UPI' : 'Net banking'} is available to accounts in India only`);
    }
    const mandate = mandateOf(account, input, await nowForAccount(db, account, clock));
    const id = opts.id ?? newId('pm', clock.now());
    const stored = await saveWithProvider(provider, input.paymentMethod, id, logger);
    return db.transaction(async (tx) => {
      const locked = await mustFindAccount(tx, accountId, true);
      const now = await nowForAccount(tx, locked, clock);
      const row = await repo.insertPaymentMethod(tx, { id, accountId, ...stored, ...mandate, createdAt: now });
      if (input.makeDefault || !(await repo.findDefaultMethod(tx, accountId))) await makeDefaultIn(tx, accountId, row, now);
      return toDto((await repo.findPaymentMethod(tx, id))!, locked.currency);
    });
  }

  /**
   * The default from now on: the live subscription charges it at its next renewal or retry,
   * and auto-recharge too when it can be charged unattended (card, UPI).
   */
  async function makeDefaultIn(tx: Db, accountId: string, method: repo.PaymentMethodRow, now: Date) {
    await repo.setDefaultMethod(tx, accountId, method.id);
    await subscriptionsRepo.setPaymentMethodOfLive(tx, accountId, method.id, now);
    if (chargeableUnattended(method.type)) await creditsRepo.setAutoRechargeMethod(tx, accountId, method.id, now);
  }

  async function makeDefault(accountId: string, methodId: string): Promise<SavedPaymentMethodDto> {
    return db.transaction(async (tx) => {
      const account = await mustFindAccount(tx, accountId, true);
      const method = await mustFindMethod(tx, accountId, methodId);
      await makeDefaultIn(tx, accountId, method, await nowForAccount(tx, account, clock));
      return toDto((await repo.findPaymentMethod(tx, methodId))!, account.currency);
    });
  }

  /**
   * Removes a method. Not the default while others exist (choose another first), not the
   * last one while a subscription charges it, and not the one auto-recharge charges.
   */
  async function remove(accountId: string, methodId: string): Promise<void> {
    await db.transaction(async (tx) => {
      const account = await mustFindAccount(tx, accountId, true);
      const method = await mustFindMethod(tx, accountId, methodId);
      const active = await repo.listActiveMethods(tx, accountId);
      const live = await subscriptionsRepo.findLiveSubscription(tx, accountId);
      if (active.length === 1 && live) throw new AppError('payment_method_in_use', 'The subscription charges this method, the only one: add another first');
      if (method.isDefault && active.length > 1) throw new AppError('payment_method_is_default', 'Make another method the default first');
      if (await repo.methodHasOpenPayments(tx, methodId)) throw new AppError('payment_method_in_use', 'A payment of this method is in flight or awaiting money');
      const autoRecharge = await creditsRepo.findAutoRecharge(tx, accountId);
      if (autoRecharge?.enabled && autoRecharge.paymentMethodId === methodId) {
        throw new AppError('payment_method_in_use', 'Auto-recharge charges this method: switch it to another method or off first');
      }
      await repo.removeMethod(tx, methodId, await nowForAccount(tx, account, clock));
    });
  }

  return { list, add, makeDefault, remove };
}

export type PaymentMethodsService = ReturnType<typeof createPaymentMethodsService>;
