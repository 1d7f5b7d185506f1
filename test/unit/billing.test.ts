import t from 'tap';
import { financialYearOf, invoiceNumber, priceCredits, priceUpgrade } from '../../src/modules/billing/domain.js';
import { taxRegime, type BillingProfile, type Taxation } from '../../src/modules/billing/tax.js';
import { allowedPaymentMethods, chargeableUnattended } from '../../src/modules/payments/methods.js';
import { sandboxOutcome } from '../../src/modules/payments/sandbox.js';
import { addMonthsClamped, periodAt } from '../../src/modules/subscriptions/periods.js';
import { bpsOf, formatMoney, mulDivHalfUp } from '../../src/lib/money.js';

t.test('money: half-up rounding in exact integers', async (t) => {
  t.equal(mulDivHalfUp(5, 1, 2), 3, '2.5 -> 3');
  t.equal(mulDivHalfUp(3, 1, 2), 2, '1.5 -> 2');
  t.equal(mulDivHalfUp(1, 1, 3), 0, '0.33 -> 0');
  t.equal(bpsOf(912500, 1800), 164250);
  t.equal(bpsOf(333, 1800), 60, '59.94 -> 60');
  t.equal(bpsOf(9_007_199_254_740, 1800), 1_621_295_865_853, 'no float overflow on large amounts');
  t.equal(formatMoney(1076750, 'INR'), 'INR 10,767.50');
  t.equal(formatMoney(1234567, 'USD'), 'USD 12,345.67');
});

const taxation: Taxation = {
  rates: { IN: 1800 },
  seller: { legalName: 'Seller Pvt Ltd', address: 'Bengaluru', gstin: '29AABCE1234F1Z1', stateCode: '29', sac: '998419', exportTerms: 'Supply meant for export under LUT' },
};
const profile = (state: string | null, gstin: string | null = null): BillingProfile => ({
  legalName: 'Buyer Pvt Ltd',
  address: { line1: '1 MG Road', line2: null, city: 'City', postalCode: '400001' },
  state,
  gstin,
});
const buyer = (country: string, billingProfile: BillingProfile | null) => ({ name: 'Buyer', email: 'ap@buyer.example', country, billingProfile });
const gst = (country: string, billingProfile: BillingProfile | null = null) => taxRegime(taxation, buyer(country, billingProfile));

t.test('upgrade pricing: plan fee x months less the cycle discount, add-on, credits, tax', async (t) => {
  const priced = priceUpgrade({
    currency: 'INR',
    planName: 'Starter',
    cycle: { name: 'Quarterly', months: 3, discountBps: 500 },
    monthlyMinimum: 250000,
    whatsappAddonMonthly: 100000,
    initialCredits: 200000,
    tax: gst('IN', profile('27')),
  });
  t.same(
    priced.lines.map((l) => [l.kind, l.grossAmount, l.discountAmount, l.amount]),
    [
      ['plan_fee', 750000, 37500, 712500],
      ['whatsapp_addon', 300000, 15000, 285000],
      ['credits', 200000, 0, 200000],
    ],
  );
  t.equal(priced.subtotal, 1197500);
  t.equal(priced.discountTotal, 52500);
  t.same(priced.tax, { label: 'IGST 18%', rateBps: 1800, amount: 215550, components: [{ name: 'IGST', rateBps: 1800, amount: 215550 }] });
  t.equal(priced.total, 1413050);

  const annual = priceUpgrade({
    currency: 'USD',
    planName: 'Growth',
    cycle: { name: 'Annual', months: 12, discountBps: 1500 },
    monthlyMinimum: 19999,
    whatsappAddonMonthly: null,
    initialCredits: 0,
    tax: gst('US'),
  });
  t.equal(annual.lines.length, 1, 'no credits line for zero credits');
  t.equal(annual.lines[0]!.amount, 203990, '239988 x 0.85 = 203989.8 -> 203990, rounded once');
  t.equal(annual.total, 203990);
});

t.test('GST as the law reads: the place of supply is the buyer\'s state; the seller\'s own state splits CGST + SGST, another IGST; abroad an export at zero rate', async (t) => {
  const karnataka = gst('IN', profile('29', '29AAACR5055K1Z7'));
  t.equal(karnataka.supply.type, 'intra_state');
  t.same(karnataka.components, [{ name: 'CGST', rateBps: 900 }, { name: 'SGST', rateBps: 900 }]);
  t.same(karnataka.supply.placeOfSupply, { code: '29', name: 'Karnataka' });
  t.equal(karnataka.label, 'CGST 9% + SGST 9%');
  const maharashtra = gst('IN', profile('27'));
  t.equal(maharashtra.supply.type, 'inter_state');
  t.same(maharashtra.components, [{ name: 'IGST', rateBps: 1800 }]);
  t.same(maharashtra.supply.placeOfSupply, { code: '27', name: 'Maharashtra' });
  const unknown = gst('IN');
  t.equal(unknown.supply.type, 'intra_state', 'no address on record: the supplier\'s location (IGST Act s.12(2)(b))');
  t.equal(unknown.supply.buyer.legalName, 'Buyer', 'the account name stands in for the legal name');
  const us = gst('US', { ...profile('CA'), legalName: 'Acme Inc' });
  t.equal(us.supply.type, 'export');
  t.equal(us.rateBps, 0);
  t.equal(us.supply.exportTerms, 'Supply meant for export under LUT');
  t.same(us.supply.placeOfSupply.code, '96', 'Other Countries');
  const taxedAbroad = taxRegime({ ...taxation, rates: { IN: 1800, GB: 2000 } }, buyer('GB', null));
  t.equal(taxedAbroad.supply.type, 'foreign', 'a country with a configured rate keeps it');
  t.equal(taxedAbroad.label, 'Tax 20%');
  t.equal(karnataka.supply.reverseCharge, false);
  t.equal(karnataka.supply.sac, '998419');
});

t.test('tax is rounded per line, half-up, once, and the components add up to the paise', async (t) => {
  // 3 x 333 paise: 18% of each line is 59.94 -> 60 (180 in all); on the sum it would be 179.82 -> 180 too, but
  // 9% of each is 29.97 -> 30, so CGST 90 + SGST 90 = 180 and IGST 60 x 3 = 180.
  const lines = (regime: ReturnType<typeof gst>) =>
    priceUpgrade({ currency: 'INR', planName: 'P', cycle: { name: 'Monthly', months: 1, discountBps: 0 }, monthlyMinimum: 333, whatsappAddonMonthly: 333, initialCredits: 333, tax: regime });
  const intra = lines(gst('IN', profile('29')));
  t.same(intra.tax.components.map((c) => [c.name, c.amount]), [['CGST', 90], ['SGST', 90]]);
  t.equal(intra.tax.amount, 180);
  t.equal(intra.total, 999 + 180);
  const credits = priceCredits('INR', 100001, 'Prepaid credits', gst('IN', profile('29')));
  t.same(credits.tax.components.map((c) => c.amount), [9000, 9000], '9% of 1000.01 = 90.0009 -> 90.00 each');
  t.equal(credits.total, 100001 + 18000);
});

t.test('financial years run April to March in India', async (t) => {
  t.equal(financialYearOf(new Date('2026-11-26T10:00:00Z')), '2026-27');
  t.equal(financialYearOf(new Date('2027-03-31T18:29:59Z')), '2026-27', '23:59:59 IST on 31 March');
  t.equal(financialYearOf(new Date('2027-03-31T18:30:00Z')), '2027-28', 'midnight IST on 1 April');
  t.equal(financialYearOf(new Date('2026-01-15T00:00:00Z')), '2025-26');
  t.equal(financialYearOf(new Date('2099-06-01T00:00:00Z')), '2099-00');
  t.equal(invoiceNumber('2026-27', 42), 'INV/2627/0000042');
  t.ok(invoiceNumber('2026-27', 9_999_999).length <= 16, 'at most 16 characters (GST Rule 46)');
});

t.test('periods keep the anchor day and clamp to the month end', async (t) => {
  const jan31 = new Date('2026-01-31T09:30:00Z');
  t.equal(addMonthsClamped(jan31, 1).toISOString(), '2026-02-28T09:30:00.000Z');
  t.equal(addMonthsClamped(jan31, 2).toISOString(), '2026-03-31T09:30:00.000Z', 'back to the 31st, not the 28th');
  t.equal(addMonthsClamped(new Date('2028-01-31T00:00:00Z'), 1).toISOString(), '2028-02-29T00:00:00.000Z', 'leap year');
  t.equal(addMonthsClamped(new Date('2026-11-30T00:00:00Z'), 3).toISOString(), '2027-02-28T00:00:00.000Z');
  t.equal(addMonthsClamped(new Date('2026-03-15T00:00:00Z'), 12).toISOString(), '2027-03-15T00:00:00.000Z');
  const table: Array<[string, number, string]> = [
    ['2026-08-31T00:00:00Z', 3, '2026-11-30T00:00:00.000Z'],
    ['2026-11-30T00:00:00Z', 3, '2027-02-28T00:00:00.000Z'],
    ['2027-11-30T00:00:00Z', 3, '2028-02-29T00:00:00.000Z'],
    ['2028-02-29T00:00:00Z', 12, '2029-02-28T00:00:00.000Z'],
    ['2028-02-29T00:00:00Z', 48, '2032-02-29T00:00:00.000Z'],
    ['2026-12-31T23:59:59Z', 1, '2027-01-31T23:59:59.000Z'],
    ['2026-10-31T12:00:00Z', 1, '2026-11-30T12:00:00.000Z'],
  ];
  for (const [from, months, expected] of table) t.equal(addMonthsClamped(new Date(from), months).toISOString(), expected, `${from} + ${months} months`);
  const second = periodAt(jan31, 1, 1);
  t.same([second.start.toISOString(), second.end.toISOString()], ['2026-02-28T09:30:00.000Z', '2026-03-31T09:30:00.000Z']);
});

t.test('payment methods: the brief\'s table', async (t) => {
  t.same(allowedPaymentMethods('IN', 'starter', 'monthly'), ['card', 'netbanking', 'upi']);
  t.same(allowedPaymentMethods('US', 'growth', 'annual'), ['card']);
  t.same(allowedPaymentMethods('US', 'enterprise', 'annual'), ['card', 'wire_transfer', 'cheque']);
  t.same(allowedPaymentMethods('IN', 'enterprise', 'quarterly'), ['card', 'netbanking', 'upi'], 'wire and cheque need annual');
  t.same(['card', 'upi', 'netbanking', 'wire_transfer', 'cheque'].map((m) => chargeableUnattended(m as never)), [true, true, false, false, false]);
});

t.test('sandbox test values', async (t) => {
  const o = (m: Parameters<typeof sandboxOutcome>[0]) => {
    const r = sandboxOutcome(m);
    return r.outcome === 'failed' ? r.code : r.answerLost ? 'lost' : 'ok';
  };
  t.same(['tok_visa', 'tok_mastercard', 'tok_rupay'].map((token) => o({ type: 'card', token })), ['ok', 'ok', 'ok']);
  t.equal(o({ type: 'card', token: 'tok_chargeDeclined' }), 'card_declined');
  t.equal(o({ type: 'card', token: 'tok_chargeDeclinedInsufficientFunds' }), 'insufficient_funds');
  t.equal(o({ type: 'card', token: 'tok_timeout' }), 'lost');
  t.equal(o({ type: 'upi', vpa: 'success@upi' }), 'ok');
  t.equal(o({ type: 'upi', vpa: 'failure@upi' }), 'upi_declined');
  t.equal(o({ type: 'netbanking', bankCode: 'HDFC' }), 'ok');
  t.equal(o({ type: 'netbanking', bankCode: 'FAIL' }), 'bank_declined');
});
