import t from 'tap';
import { pdfText, readyAccount, setup, type TestContext } from './helper.js';

/** GSTINs published in GST rulings (Maharashtra, Gujarat), and the example seller's state: Karnataka (29). */
const MAHARASHTRA_GSTIN = '27AAJCP8025A1ZL';

const profile = (state: string | null, gstin: string | null, legalName = 'Bharat Telecom Private Limited') => ({
  legalName,
  address: { line1: '12, Nariman Point', city: 'Mumbai', postalCode: '400021' },
  state,
  gstin,
});

const upgrade = (ctx: TestContext, accountId: string) =>
  ctx.call('POST', `/v1/accounts/${accountId}/upgrade`, {
    body: { planId: 'plan_starter_v1', billingCycle: 'monthly', initialCredits: 100000, paymentMethod: { type: 'card', token: 'tok_visa' } },
    headers: { 'idempotency-key': `up-${accountId}` },
  });

t.test('a billing profile: a valid GSTIN of its state is kept, and says how invoices will be taxed', async (t) => {
  const ctx = await setup(t);
  const account = await readyAccount(ctx);
  t.equal((await ctx.call('GET', `/v1/accounts/${account.id}/billing-profile`)).body.code, 'billing_profile_not_found');
  const set = await ctx.call('PUT', `/v1/accounts/${account.id}/billing-profile`, { key: ctx.keys.write, body: profile('27', MAHARASHTRA_GSTIN.toLowerCase()) });
  t.equal(set.status, 200, JSON.stringify(set.body));
  t.match(set.body, {
    legalName: 'Bharat Telecom Private Limited',
    state: { code: '27', name: 'Maharashtra' },
    gstin: MAHARASHTRA_GSTIN,
    taxTreatment: { supplyType: 'inter_state', placeOfSupply: { code: '27', name: 'Maharashtra' }, label: 'IGST 18%' },
  });
  t.same((await ctx.call('GET', `/v1/accounts/${account.id}/billing-profile`, { key: ctx.keys.read })).body, set.body, 'read back');
  ctx.clock.advance(60_000);
  const again = await ctx.call('PUT', `/v1/accounts/${account.id}/billing-profile`, { body: profile('27', MAHARASHTRA_GSTIN) });
  t.equal(again.body.updatedAt, set.body.updatedAt, 'the same profile again is a no-op');
});

t.test('a wrong GSTIN is 422 invalid_gstin naming what is wrong, and nothing is written', async (t) => {
  const ctx = await setup(t);
  const account = await readyAccount(ctx);
  const refuse = async (body: object, code: string, detail: RegExp, why: string) => {
    const res = await ctx.call('PUT', `/v1/accounts/${account.id}/billing-profile`, { body });
    t.equal(res.status, 422, why);
    t.equal(res.body.code, code, why);
    t.match(res.body.detail, detail, why);
    t.match(res.headers['content-type'], /application\/problem\+json/);
  };
  await refuse(profile('27', '27AAJCP8025A1ZM'), 'invalid_gstin', /check character is L, expected|expected L/, 'a wrong check character');
  await refuse(profile('27', '27AAJCP8025A1Z'), 'invalid_gstin', /15 characters/, 'too short');
  await refuse(profile('29', MAHARASHTRA_GSTIN), 'invalid_gstin', /registered in state 27 \(Maharashtra\), not in the profile's state 29 \(Karnataka\)/, 'another state');
  await refuse(profile('99x', null), 'invalid_billing_profile', /Unknown GST state code/, 'an unknown state');
  await refuse(profile(null, null), 'invalid_billing_profile', /GST state code/, 'an Indian profile without its state');
  await refuse({ ...profile('27', null), address: { line1: 'x', city: 'Mumbai', postalCode: 'ABC' } }, 'invalid_billing_profile', /PIN/, 'not a PIN code');
  t.equal((await ctx.query('select billing_profile from accounts where id = $1', [account.id])).rows[0].billing_profile, null, 'nothing written');

  const us = await readyAccount(ctx, { country: 'US', email: 'ap@acme.example' });
  const res = await ctx.call('PUT', `/v1/accounts/${us.id}/billing-profile`, { body: { ...profile('CA', MAHARASHTRA_GSTIN), address: { line1: '1 Market St', city: 'San Francisco', postalCode: '94105' } } });
  t.equal(res.body.code, 'invalid_gstin', 'a GSTIN is Indian');
  const bad = await ctx.call('PUT', `/v1/accounts/${account.id}/billing-profile`, { body: { legalName: 7 } });
  t.equal(bad.status, 400, 'a body of the wrong shape is 400');
  t.equal(bad.body.code, 'validation_failed');
});

t.test('invoices are taxed by place of supply: CGST + SGST in the seller\'s state, IGST in another, an export abroad', async (t) => {
  const ctx = await setup(t);
  const karnataka = await readyAccount(ctx, { email: 'ka@buyer.example' });
  const gstinKa = await gstinFor(ctx, '29');
  t.equal((await ctx.call('PUT', `/v1/accounts/${karnataka.id}/billing-profile`, { body: { ...profile('29', gstinKa, 'Iyer Cloud Communications LLP'), address: { line1: '22, 80 Feet Road', city: 'Bengaluru', postalCode: '560034' } } })).status, 200);
  const ka = (await upgrade(ctx, karnataka.id)).body.invoice;
  t.same(ka.tax.components.map((c: any) => [c.name, c.rateBps]), [['CGST', 900], ['SGST', 900]]);
  t.equal(ka.tax.components[0].amount + ka.tax.components[1].amount, ka.tax.amount, 'the split adds up to the paise');
  t.match(ka.supply, { type: 'intra_state', placeOfSupply: { code: '29', name: 'Karnataka' }, reverseCharge: false, sac: '998419', buyer: { legalName: 'Iyer Cloud Communications LLP', gstin: gstinKa } });
  t.match(ka.number, /^INV\/\d{4}\/\d{7}$/);
  t.ok(ka.number.length <= 16, 'at most 16 characters');
  t.match(ka.amountInWords, /^Indian Rupees .* Only$/);

  const maharashtra = await readyAccount(ctx, { email: 'mh@buyer.example' });
  t.equal((await ctx.call('PUT', `/v1/accounts/${maharashtra.id}/billing-profile`, { body: profile('27', MAHARASHTRA_GSTIN) })).status, 200);
  const mh = (await upgrade(ctx, maharashtra.id)).body.invoice;
  t.same(mh.tax.components.map((c: any) => [c.name, c.rateBps, c.amount]), [['IGST', 1800, mh.tax.amount]]);
  t.match(mh.supply, { type: 'inter_state', placeOfSupply: { code: '27', name: 'Maharashtra' }, buyer: { gstin: MAHARASHTRA_GSTIN } });

  const us = await readyAccount(ctx, { country: 'US', email: 'us@buyer.example' });
  const usd = (await upgrade(ctx, us.id)).body.invoice;
  t.equal(usd.tax.amount, 0);
  t.match(usd.supply, { type: 'export', placeOfSupply: { code: '96' }, exportTerms: /Letter of Undertaking/ });
  t.match(usd.amountInWords, /^US Dollars .* Only$/);

  // The profile changes later: the issued invoice keeps what it was issued with.
  await ctx.call('PUT', `/v1/accounts/${maharashtra.id}/billing-profile`, { body: profile('27', null, 'Renamed Private Limited') });
  const again = (await ctx.call('GET', `/v1/invoices/${mh.id}`)).body;
  t.equal(again.supply.buyer.legalName, 'Bharat Telecom Private Limited', 'an issued invoice does not change');
});

/** A valid GSTIN of a state (a made-up PAN with its right check character), from the API's own check. */
async function gstinFor(_ctx: TestContext, state: string): Promise<string> {
  const { gstinCheckChar } = await import('../src/lib/gstin.js');
  const first14 = `${state}AAJCI1234K1Z`;
  return first14 + gstinCheckChar(first14);
}

const getPdf = (ctx: TestContext, invoiceId: string, headers: Record<string, string> = {}) =>
  ctx.app.inject({ method: 'GET', url: `/v1/invoices/${invoiceId}/pdf`, headers: { authorization: `Bearer ${ctx.keys.read}`, ...headers } });

t.test('the tax invoice PDF carries every Rule 46 field, for a Karnataka, a Maharashtra and a US buyer; a Devanagari name survives; the bytes never change', async (t) => {
  const ctx = await setup(t);
  const devanagari = 'भारत टेलीकॉम प्राइवेट लिमिटेड';
  const ka = await readyAccount(ctx, { email: 'ka@buyer.example' });
  const gstinKa = await gstinFor(ctx, '29');
  await ctx.call('PUT', `/v1/accounts/${ka.id}/billing-profile`, { body: { ...profile('29', gstinKa, devanagari), address: { line1: '22, 80 Feet Road, Koramangala', city: 'Bengaluru', postalCode: '560034' } } });
  const kaInvoice = (await upgrade(ctx, ka.id)).body.invoice;

  const first = await getPdf(ctx, kaInvoice.id);
  t.equal(first.statusCode, 200);
  const text = await pdfText(first.rawPayload);
  const fields: Array<[string, RegExp]> = [
    ['the title', /TAX INVOICE/],
    ['the seller\'s legal name', /Example Cloud Telephony Private Limited/],
    ['the seller\'s address', /100 Residency Road, Bengaluru/],
    ['the seller\'s GSTIN', /GSTIN: 29AABCE1234F1Z1/],
    ['a serial number of at most 16 characters', new RegExp(`Invoice number: ${kaInvoice.number.replaceAll('/', '\\/')}`)],
    ['the date', /Date: \d{1,2} [A-Z][a-z]{2} \d{4}/],
    ['the recipient\'s name, in Devanagari', new RegExp(devanagari)],
    ['the recipient\'s address', /22, 80 Feet Road, Koramangala, Bengaluru 560034/],
    ['the recipient\'s GSTIN', new RegExp(`GSTIN: ${gstinKa}`)],
    ['the place of supply with its state', /Place of supply: Karnataka \(29\)/],
    ['reverse charge', /Reverse charge: No/],
    ['the SAC', /998419/],
    ['the taxable value (Starter monthly INR 2,500 + INR 1,000 of credits)', /Taxable value\s*₹3,500\.00/],
    ['CGST with its rate', /CGST @ 9%\s*₹315\.00/],
    ['SGST with its rate', /SGST @ 9%\s*₹315\.00/],
    ['the total', /Invoice total\s*₹4,130\.00/],
    ['the amount in words', /Amount in words: Indian Rupees Four Thousand One Hundred Thirty Only/],
    ['the digital statement', /digitally generated/],
  ];
  for (const [what, pattern] of fields) t.match(text, pattern, what);
  t.notMatch(text, /minor units|IGST/, 'no minor units; no IGST within the state');

  const again = await getPdf(ctx, kaInvoice.id);
  t.ok(again.rawPayload.equals(first.rawPayload), 'two GETs, the same bytes');
  t.equal(again.headers.etag, first.headers.etag);
  t.match(first.headers.etag, /^"[0-9a-f]{64}"$/);
  t.equal((await getPdf(ctx, kaInvoice.id, { 'if-none-match': String(first.headers.etag) })).statusCode, 304, 'If-None-Match: 304');
  t.equal((await getPdf(ctx, kaInvoice.id, { 'if-none-match': `W/${String(first.headers.etag)}` })).statusCode, 304, 'a weak tag compares weakly');
  t.equal((await getPdf(ctx, kaInvoice.id, { 'if-none-match': '*' })).statusCode, 304, '* matches');
  t.equal((await getPdf(ctx, kaInvoice.id, { 'if-none-match': '"other"' })).statusCode, 200);
  // Rendering itself is deterministic: two processes rendering at once keep the same bytes.
  const { renderInvoicePdf } = await import('../src/modules/billing/pdf.js');
  const dto = (await ctx.call('GET', `/v1/invoices/${kaInvoice.id}`)).body;
  const revive = { ...dto, issuedAt: new Date(dto.issuedAt), dueAt: new Date(dto.dueAt), period: { start: new Date(dto.period.start), end: new Date(dto.period.end) } };
  const render = () => renderInvoicePdf({ invoice: revive, planName: 'Starter', timeZone: 'Asia/Kolkata' });
  t.ok((await render()).equals(await render()), 'the same invoice renders to the same bytes');

  const mh = await readyAccount(ctx, { email: 'mh@buyer.example' });
  await ctx.call('PUT', `/v1/accounts/${mh.id}/billing-profile`, { body: profile('27', MAHARASHTRA_GSTIN) });
  const mhText = await pdfText((await getPdf(ctx, (await upgrade(ctx, mh.id)).body.invoice.id)).rawPayload);
  t.match(mhText, /Place of supply: Maharashtra \(27\)/);
  t.match(mhText, /IGST @ 18%\s*₹630\.00/);
  t.notMatch(mhText, /CGST|SGST/);
  t.match(mhText, /GSTIN: 27AAJCP8025A1ZL/);

  const us = await readyAccount(ctx, { country: 'US', email: 'us@buyer.example' });
  await ctx.call('PUT', `/v1/accounts/${us.id}/billing-profile`, { body: { legalName: 'Acme Communications Inc', address: { line1: '1 Market St', city: 'San Francisco', postalCode: '94105' }, state: 'CA' } });
  const usText = await pdfText((await getPdf(ctx, (await upgrade(ctx, us.id)).body.invoice.id)).rawPayload);
  t.match(usText, /TAX INVOICE \(EXPORT OF SERVICES\)/);
  t.match(usText, /Supply meant for export of services under Letter of Undertaking without payment of integrated tax/);
  t.match(usText, /IGST @ 0%\s*\$0\.00/);
  t.match(usText, /Country: US, CA/);
  t.match(usText, /Amount in words: US Dollars .* Only/);
});
