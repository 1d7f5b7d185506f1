import { isDeepStrictEqual } from 'node:util';
import { eq } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { testClocks } from '../../db/schema/index.js';
import type { Clock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import { currencyForCountry } from '../../lib/money.js';
import { page } from '../../lib/pagination.js';
import { toE164 } from '../../lib/phone.js';
import * as catalogRepo from '../catalog/repo.js';
import * as subscriptionsRepo from '../subscriptions/repo.js';
import { appendEvents } from '../events/repo.js';
import { allowedKycTransitions, kycTransition, outboundOf, type KycStatus } from './domain.js';
import * as repo from './repo.js';
import type { AccountDto, BillingProfileDto } from './schemas.js';
import { checkGstin, GST_STATES } from '../../lib/gstin.js';
import { taxRegime, type BillingProfile, type Taxation } from '../billing/tax.js';

const TRIAL_PLAN_CODE = 'trial';

export function createAccountsService(deps: {
  db: Db;
  clock: Clock;
  taxation: Taxation;
  trialWhitelistLimit: number;
  testClocksEnabled: boolean;
  /** Told once a change to an account (KYC, whitelist) is committed: this process's caches drop it. */
  accountChanged: (accountId: string) => void;
}) {
  const { db, clock } = deps;

  async function mustFind(db: Db, id: string, opts: { forUpdate?: boolean } = {}) {
    const account = await repo.findAccount(db, id, opts);
    if (!account) throw new AppError('account_not_found', `No account ${id}`);
    return account;
  }

  async function createTrialAccount(input: { name: string; email: string; country: string; testClockId?: string }): Promise<AccountDto> {
    const testClockId = input.testClockId ?? null;
    if (testClockId && !deps.testClocksEnabled) throw new AppError('test_clocks_disabled', 'Set TEST_CLOCKS_ENABLED=true (never in production)');
    const [clockRow] = testClockId ? await db.select().from(testClocks).where(eq(testClocks.id, testClockId)) : [];
    if (testClockId && !clockRow) throw new AppError('test_clock_not_found', `No test clock ${testClockId}`);
    const now = clockRow?.frozenTime ?? clock.now();
    const trial = await catalogRepo.findCurrentPlanByCode(db, TRIAL_PLAN_CODE);
    if (!trial) throw new Error('the catalog has no trial plan');
    const account = await db.transaction(async (tx) => {
      const row = await repo.insertAccount(tx, {
        id: newId('acc', now),
        name: input.name,
        email: input.email,
        country: input.country,
        currency: currencyForCountry(input.country),
        status: 'trial',
        kycStatus: 'pending',
        planId: trial.id,
        testClockId,
        createdAt: now,
        updatedAt: now,
      });
      await appendEvents(tx, now, [{ type: 'account.created', accountId: row.id, payload: { accountId: row.id, status: 'trial' } }]);
      return row;
    });
    return toAccountDto(account);
  }

  async function getAccount(id: string): Promise<AccountDto> {
    return toAccountDto(await mustFind(db, id));
  }

  async function listAccounts(opts: { after?: string; limit: number; only: string | null }) {
    const rows = await repo.listAccounts(db, { ...opts, limit: opts.limit + 1 });
    const result = page(rows, opts.limit, (r) => r.id);
    return { data: result.data.map(toAccountDto), nextCursor: result.nextCursor };
  }

  /** pending -> submitted -> approved | rejected; rejected may submit again. */
  async function setKycStatus(id: string, input: { status: KycStatus; reason?: string }): Promise<AccountDto> {
    const now = clock.now();
    const row = await db.transaction(async (tx) => {
      const account = await mustFind(tx, id, { forUpdate: true });
      const transition = kycTransition(account.kycStatus, input.status);
      if (transition === 'unchanged') return account;
      if (transition === 'refused') {
        const allowed = allowedKycTransitions(account.kycStatus);
        throw new AppError(
          'kyc_transition_not_allowed',
          `KYC cannot go from ${account.kycStatus} to ${input.status}` + (allowed.length ? `; allowed: ${allowed.join(', ')}` : ''),
          { currentStatus: account.kycStatus },
        );
      }
      const updated = await repo.updateKyc(tx, id, { kycStatus: input.status, kycReason: input.reason ?? null, kycUpdatedAt: now });
      await appendEvents(tx, now, [
        {
          type: 'kyc.status_changed',
          accountId: id,
          payload: { accountId: id, from: account.kycStatus, to: input.status, reason: input.reason ?? null },
        },
      ]);
      return updated;
    });
    deps.accountChanged(id);
    return toAccountDto(row);
  }

  /**
   * The details printed on the account's tax invoices from now on (issued ones keep theirs).
   * India: the state is a GST state code, and a GSTIN must be valid and of that state.
   * Checked whole before anything is written.
   */
  async function setBillingProfile(id: string, input: { legalName: string; address: { line1: string; line2?: string | null; city: string; postalCode: string }; state?: string | null; gstin?: string | null }): Promise<BillingProfileDto> {
    const row = await db.transaction(async (tx) => {
      const account = await mustFind(tx, id, { forUpdate: true });
      const profile = checkedProfile(account.country, input);
      // The same profile again changes nothing, not even updatedAt.
      if (isDeepStrictEqual(profile, account.billingProfile)) return account;
      return repo.setBillingProfile(tx, id, profile, clock.now());
    });
    return toBillingProfileDto(row)!;
  }

  function checkedProfile(country: string, input: Parameters<typeof setBillingProfile>[1]): BillingProfile {
    const state = input.state ?? null;
    const profile: BillingProfile = { legalName: input.legalName, address: { ...input.address, line2: input.address.line2 ?? null }, state, gstin: null };
    if (country === 'IN') {
      if (!state) throw new AppError('invalid_billing_profile', 'An Indian billing profile needs its GST state code (`state`, e.g. "29" for Karnataka)');
      if (!GST_STATES[state]) throw new AppError('invalid_billing_profile', `Unknown GST state code ${JSON.stringify(state)}: use the two-digit code, e.g. "27" for Maharashtra`);
      if (!/^[1-9][0-9]{5}$/.test(input.address.postalCode)) throw new AppError('invalid_billing_profile', 'An Indian postal code is a 6-digit PIN code');
    }
    if (input.gstin) {
      if (country !== 'IN') throw new AppError('invalid_gstin', 'A GSTIN belongs to an Indian GST registration; this account is not in India');
      const checked = checkGstin(input.gstin);
      if (!checked.ok) throw new AppError('invalid_gstin', `The GSTIN is not valid: ${checked.problem}`);
      if (checked.stateCode !== state) {
        throw new AppError('invalid_gstin', `The GSTIN is registered in state ${checked.stateCode} (${GST_STATES[checked.stateCode]}), not in the profile's state ${state} (${GST_STATES[state!]})`);
      }
      profile.gstin = checked.gstin;
    }
    return profile;
  }

  async function getBillingProfile(id: string): Promise<BillingProfileDto> {
    const dto = toBillingProfileDto(await mustFind(db, id));
    if (!dto) throw new AppError('billing_profile_not_found', `Account ${id} has no billing profile yet: PUT /v1/accounts/${id}/billing-profile`);
    return dto;
  }

  function toBillingProfileDto(row: repo.AccountRow): BillingProfileDto | null {
    const p = row.billingProfile;
    if (!p) return null;
    const regime = taxRegime(deps.taxation, row);
    return {
      accountId: row.id,
      legalName: p.legalName,
      address: p.address,
      state: p.state ? { code: p.state, name: GST_STATES[p.state] ?? p.state } : null,
      gstin: p.gstin,
      taxTreatment: { supplyType: regime.supply.type, placeOfSupply: regime.supply.placeOfSupply, label: regime.label },
      updatedAt: row.updatedAt,
    };
  }

  async function entitlementsOf(id: string) {
    const account = await mustFind(db, id);
    const plan = await catalogRepo.findPlan(db, account.planId);
    if (!plan) throw new Error(`account ${id} points at a missing plan ${account.planId}`);
    return {
      accountId: account.id,
      status: account.status,
      plan: { id: plan.id, code: plan.code, version: plan.version, name: plan.name },
      outbound: outboundOf(account.status, plan.entitlements),
      entitlements: plan.entitlements,
      addOns: { whatsapp: (await subscriptionsRepo.findLiveSubscription(db, id))?.whatsappAddon ?? false },
      whitelist: {
        required: plan.entitlements.numberWhitelisting.required,
        limit: deps.trialWhitelistLimit,
        used: await repo.countWhitelisted(db, id),
      },
    };
  }

  /** Adds a number to a trial's whitelist; adding one already there answers it again. */
  async function addWhitelistedNumber(accountId: string, input: string) {
    const number = toE164(input);
    if (!number) throw new AppError('invalid_phone_number', `${JSON.stringify(input)} is not a valid E.164 number such as +919876543210`);
    const now = clock.now();
    const added = await db.transaction(async (tx) => {
      // The row lock serialises concurrent adds, so two cannot both take the last place.
      const account = await mustFind(tx, accountId, { forUpdate: true });
      const existing = await repo.findWhitelisted(tx, accountId, number);
      if (existing) return { created: false, entry: { number: existing.number, createdAt: existing.createdAt } };
      const plan = await catalogRepo.findPlan(tx, account.planId);
      if (!plan?.entitlements.numberWhitelisting.required) {
        throw new AppError('whitelist_not_applicable', 'This account may call any number; whitelisting applies only to trials');
      }
      const used = await repo.countWhitelisted(tx, accountId);
      if (used >= deps.trialWhitelistLimit) {
        throw new AppError('whitelist_limit_reached', `A trial may whitelist ${deps.trialWhitelistLimit} numbers; remove one first`, {
          limit: deps.trialWhitelistLimit,
        });
      }
      const entry = await repo.insertWhitelisted(tx, { accountId, number, createdAt: now });
      await appendEvents(tx, now, [{ type: 'whitelist.number_added', accountId, payload: { accountId, number } }]);
      return { created: true, entry: { number: entry.number, createdAt: entry.createdAt } };
    });
    if (added.created) deps.accountChanged(accountId);
    return added;
  }

  async function removeWhitelistedNumber(accountId: string, input: string): Promise<void> {
    const number = toE164(input) ?? input;
    const now = clock.now();
    await db.transaction(async (tx) => {
      await mustFind(tx, accountId, { forUpdate: true });
      if (!(await repo.deleteWhitelisted(tx, accountId, number))) {
        throw new AppError('whitelisted_number_not_found', `${number} is not whitelisted`);
      }
      await appendEvents(tx, now, [{ type: 'whitelist.number_removed', accountId, payload: { accountId, number } }]);
    });
    deps.accountChanged(accountId);
  }

  async function listWhitelistedNumbers(accountId: string, opts: { after?: string; limit: number }) {
    await mustFind(db, accountId);
    const rows = await repo.listWhitelisted(db, accountId, { ...opts, limit: opts.limit + 1 });
    return page(rows, opts.limit, (r) => r.number);
  }

  return {
    createTrialAccount,
    getAccount,
    listAccounts,
    setKycStatus,
    entitlementsOf,
    addWhitelistedNumber,
    removeWhitelistedNumber,
    listWhitelistedNumbers,
    setBillingProfile,
    getBillingProfile,
  };
}

export type AccountsService = ReturnType<typeof createAccountsService>;

export function toAccountDto(row: repo.AccountRow): AccountDto {
  return {
    id: row.id,
    name: row.name,
    email: row.email,
    country: row.country,
    currency: row.currency,
    status: row.status,
    kyc: { status: row.kycStatus, reason: row.kycReason, updatedAt: row.kycUpdatedAt },
    planId: row.planId,
    testClockId: row.testClockId,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}
