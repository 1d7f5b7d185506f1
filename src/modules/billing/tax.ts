import { GST_STATES } from '../../lib/gstin.js';
import { bpsOf } from '../../lib/money.js';

/** Who issues the invoices: from config (SELLER_*), printed on every tax invoice. */
export interface Seller {
  legalName: string;
  address: string;
  gstin: string;
  /** GST state code, the GSTIN's first two digits: "29" (Karnataka). */
  stateCode: string;
  /** Services Accounting Code of what is sold (telecommunication services: 9984xx). */
  sac: string;
  /** Printed on an export of services at zero rate (a Letter of Undertaking, usually). */
  exportTerms: string;
}

/** What tax is charged by: the seller and the configured rate per buyer country (IN: GST). */
export interface Taxation {
  seller: Seller;
  rates: Record<string, number>;
}

/** A customer's details for their tax invoices (PUT /v1/accounts/{id}/billing-profile). */
export interface BillingProfile {
  legalName: string;
  address: { line1: string; line2: string | null; city: string; postalCode: string };
  /** India: the GST state code ("27"); elsewhere the state or region, if any. */
  state: string | null;
  /** Registered Indian businesses: their GSTIN (validated, its state the profile's). */
  gstin: string | null;
}

/**
 * How the supply is taxed: within the seller's state (CGST + SGST), to another Indian state
 * (IGST), an export of services (zero rate, under the export terms), or abroad at a rate
 * configured for that country.
 */
export type SupplyType = 'intra_state' | 'inter_state' | 'export' | 'foreign';

export interface TaxComponent {
  name: 'CGST' | 'SGST' | 'IGST' | 'Tax';
  rateBps: number;
}

/** The facts of a tax invoice besides its lines, fixed when it is issued (CGST Rules, Rule 46). */
export interface Supply {
  type: SupplyType;
  /** The state (code and name) the supply is made in; for an export, the buyer's country. */
  placeOfSupply: { code: string; name: string };
  reverseCharge: false;
  sac: string;
  seller: { legalName: string; address: string; gstin: string; state: { code: string; name: string } };
  buyer: { legalName: string; address: string | null; gstin: string | null; state: { code: string; name: string } | null; country: string; email: string };
  exportTerms: string | null;
}

/** What tax a buyer's invoices carry: the rate, how it splits, and the supply it describes. */
export interface TaxRegime {
  label: string;
  rateBps: number;
  components: TaxComponent[];
  supply: Supply;
}

/** An export is place-of-supply code 96 ("Other Countries") in GST returns. */
const OTHER_COUNTRIES = '96';

const stateOf = (code: string) => ({ code, name: GST_STATES[code] ?? code });
const percent = (bps: number) => `${bps / 100}%`;

/** One line of a postal address, for the invoice. */
export const addressLine = (p: BillingProfile): string =>
  [p.address.line1, p.address.line2, `${p.address.city} ${p.address.postalCode}`].filter(Boolean).join(', ');

/**
 * The tax regime of a buyer, as the law reads. India: the place of supply is the buyer's
 * state (the seller's own when no address is on record, IGST Act s.12(2)(b)); the seller's
 * state: CGST + SGST at half the rate each; another state: IGST. Outside India: an export of
 * services at zero rate, unless a rate is configured for that country.
 */
export function taxRegime(taxation: Taxation, account: { name: string; email: string; country: string; billingProfile: BillingProfile | null }): TaxRegime {
  const { seller } = taxation;
  const profile = account.billingProfile;
  const buyerState = account.country === 'IN' && profile?.state ? stateOf(profile.state) : null;
  const supplyBase = {
    reverseCharge: false as const,
    sac: seller.sac,
    seller: { legalName: seller.legalName, address: seller.address, gstin: seller.gstin, state: stateOf(seller.stateCode) },
    buyer: {
      legalName: profile?.legalName ?? account.name,
      address: profile ? addressLine(profile) : null,
      gstin: profile?.gstin ?? null,
      state: buyerState ?? (profile?.state ? { code: profile.state, name: profile.state } : null),
      country: account.country,
      email: account.email,
    },
    exportTerms: null,
  };
  const rateBps = taxation.rates[account.country] ?? 0;
  if (account.country === 'IN') {
    const placeOfSupply = buyerState ?? stateOf(seller.stateCode);
    if (placeOfSupply.code === seller.stateCode) {
      const half = rateBps / 2;
      return {
        label: `CGST ${percent(half)} + SGST ${percent(half)}`,
        rateBps,
        components: [
          { name: 'CGST', rateBps: half },
          { name: 'SGST', rateBps: half },
        ],
        supply: { ...supplyBase, type: 'intra_state', placeOfSupply },
      };
    }
    return { label: `IGST ${percent(rateBps)}`, rateBps, components: [{ name: 'IGST', rateBps }], supply: { ...supplyBase, type: 'inter_state', placeOfSupply } };
  }
  const placeOfSupply = { code: OTHER_COUNTRIES, name: `Other Countries (${account.country})` };
  if (rateBps > 0) return { label: `Tax ${percent(rateBps)}`, rateBps, components: [{ name: 'Tax', rateBps }], supply: { ...supplyBase, type: 'foreign', placeOfSupply } };
  return {
    label: 'IGST 0% (export of services)',
    rateBps: 0,
    components: [{ name: 'IGST', rateBps: 0 }],
    supply: { ...supplyBase, type: 'export', placeOfSupply, exportTerms: seller.exportTerms },
  };
}

export type TaxAmounts = { label: string; rateBps: number; amount: number; components: Array<TaxComponent & { amount: number }> };

/**
 * Tax on taxable line values: each component of each line rounded half-up once, then summed,
 * so the components add up to the total to the paise.
 */
export function taxOn(lineAmounts: number[], regime: Pick<TaxRegime, 'label' | 'rateBps' | 'components'>): TaxAmounts {
  const components = regime.components.map((c) => ({ ...c, amount: lineAmounts.reduce((sum, amount) => sum + bpsOf(amount, c.rateBps), 0) }));
  return { label: regime.label, rateBps: regime.rateBps, amount: components.reduce((sum, c) => sum + c.amount, 0), components };
}
