import PDFDocument from 'pdfkit';
import { formatAmount, formatDate } from '../../lib/format.js';
import type { InvoiceDto } from './schemas.js';
import { textWriter } from './pdf-text.js';

const LEFT = 40;
const RIGHT = 555;
const WIDTH = RIGHT - LEFT;

/** What a tax invoice shows besides the invoice itself. */
export interface InvoiceDocument {
  invoice: InvoiceDto & { supply: NonNullable<InvoiceDto['supply']> };
  planName: string;
  /** The buyer's time zone: dates as the customer reads them (India: IST). */
  timeZone: string;
}

const stateText = (s: { code: string; name: string } | null) => (s ? `${s.name} (${s.code})` : '-');

/** A GST document: a tax invoice, or a credit note against one. */
interface TaxDocument {
  title: string;
  numberLabel: string;
  number: string;
  issuedAt: Date;
  currency: 'INR' | 'USD';
  supply: NonNullable<InvoiceDto['supply']>;
  /** Below the number: the due date, or the invoice a credit note is against. */
  facts: Array<[string, string]>;
  lines: Array<{ description: string; quantity: number | null; gross: number | null; discount: number | null; amount: number }>;
  subtotal: number;
  components: InvoiceDto['tax']['components'];
  taxAmount: number;
  total: number;
  totalLabel: string;
  amountInWords: string;
  /** Above the digital statement: what it is for, the reason. */
  notes: string[];
  timeZone: string;
}

/**
 * A tax invoice as CGST Rule 46 asks: the seller's name, address and GSTIN; a consecutive
 * number of at most 16 characters and the date; the recipient's name, address, state and
 * GSTIN if registered; SAC, taxable value, the tax split into CGST + SGST or IGST with rates,
 * the place of supply with its state, reverse charge, and a statement that it is digitally
 * generated. Deterministic: the same invoice gives the same bytes (its date is the issue date).
 */
export function renderInvoicePdf(input: InvoiceDocument): Promise<Buffer> {
  const { invoice, planName, timeZone } = input;
  const period =
    invoice.period.start.getTime() === invoice.period.end.getTime()
      ? formatDate(invoice.period.start, timeZone)
      : `${formatDate(invoice.period.start, timeZone)} to ${formatDate(invoice.period.end, timeZone)}`;
  return renderTaxDocument({
    title: `${invoice.supply.type === 'export' ? 'TAX INVOICE (EXPORT OF SERVICES)' : 'TAX INVOICE'}${invoice.status === 'void' ? ' - CANCELLED' : ''}`,
    numberLabel: 'Invoice number',
    number: invoice.number,
    issuedAt: invoice.issuedAt,
    currency: invoice.currency,
    supply: invoice.supply,
    facts: [['Due date', formatDate(invoice.dueAt, timeZone)]],
    lines: invoice.lines.map((l) => ({ description: l.description, quantity: l.quantity, gross: l.grossAmount, discount: l.discountAmount, amount: l.amount })),
    subtotal: invoice.subtotal,
    components: invoice.tax.components,
    taxAmount: invoice.tax.amount,
    total: invoice.total,
    totalLabel: 'Invoice total',
    amountInWords: invoice.amountInWords,
    notes: [
      invoice.lines.every((l) => l.kind === 'credits') ? `Prepaid credits, ${period}` : `${planName} plan, ${invoice.billingCycle} billing, service period ${period}`,
      ...(invoice.status === 'void' ? ['This invoice was cancelled: nothing is due on it.'] : []),
    ],
    timeZone,
  });
}

/**
 * A credit note (CGST Act s.34, Rule 53): the same parties and place of supply as its
 * invoice, the invoice's number and date, the taxable value credited and the tax reversed.
 */
export function renderCreditNotePdf(input: {
  note: { number: string; issuedAt: Date; currency: 'INR' | 'USD'; reason: string; lines: Array<{ description: string; amount: number }>; subtotal: number; taxAmount: number; total: number; components: InvoiceDto['tax']['components']; amountInWords: string };
  invoice: { number: string; issuedAt: Date };
  supply: NonNullable<InvoiceDto['supply']>;
  timeZone: string;
}): Promise<Buffer> {
  const { note, invoice, timeZone } = input;
  return renderTaxDocument({
    title: 'CREDIT NOTE',
    numberLabel: 'Credit note number',
    number: note.number,
    issuedAt: note.issuedAt,
    currency: note.currency,
    supply: input.supply,
    facts: [['Against invoice', `${invoice.number} of ${formatDate(invoice.issuedAt, timeZone)}`]],
    lines: note.lines.map((l) => ({ description: l.description, quantity: null, gross: null, discount: null, amount: l.amount })),
    subtotal: note.subtotal,
    components: note.components,
    taxAmount: note.taxAmount,
    total: note.total,
    totalLabel: 'Credit note total',
    amountInWords: note.amountInWords,
    notes: [`Reason: ${note.reason}`],
    timeZone,
  });
}

function renderTaxDocument(d: TaxDocument): Promise<Buffer> {
  const { supply, timeZone } = d;
  const doc = new PDFDocument({
    size: 'A4',
    margin: LEFT,
    info: { Title: `${d.title} ${d.number}`, Author: supply.seller.legalName, Subject: `${d.title} to ${supply.buyer.legalName}`, CreationDate: d.issuedAt },
  });
  const chunks: Buffer[] = [];
  doc.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });
  const w = textWriter(doc);
  const money = (n: number) => formatAmount(n, d.currency);
  let y = LEFT;
  const row = (text: string, opts: { x?: number; gap?: number; width?: number; align?: 'left' | 'right' } = {}) => {
    w.line(text, opts.x ?? LEFT, y, { width: opts.width, align: opts.align });
    y += opts.gap ?? 14;
  };
  const rule = (gap = 8) => {
    doc.moveTo(LEFT, y).lineTo(RIGHT, y).lineWidth(0.5).stroke();
    y += gap;
  };

  // Title and seller
  w.use('bold', 16);
  row(d.title, { gap: 22 });
  w.use('bold', 11);
  row(supply.seller.legalName);
  w.use('regular', 9);
  row(supply.seller.address, { gap: 12 });
  row(`GSTIN: ${supply.seller.gstin}    State: ${stateText(supply.seller.state)}`, { gap: 16 });
  rule();

  // The document
  const half = LEFT + WIDTH / 2;
  const pair = (a: string, b: string) => {
    w.line(a, LEFT, y);
    w.line(b, half, y);
    y += 13;
  };
  const [first, ...more] = d.facts;
  pair(`${d.numberLabel}: ${d.number}`, `Date: ${formatDate(d.issuedAt, timeZone)}`);
  pair(`Place of supply: ${stateText(supply.placeOfSupply)}`, first ? `${first[0]}: ${first[1]}` : '');
  pair(`Reverse charge: ${supply.reverseCharge ? 'Yes' : 'No'}`, `Currency: ${d.currency}`);
  for (const [label, value] of more) pair(`${label}: ${value}`, '');
  y += 4;
  rule();

  // The recipient
  w.use('bold', 10);
  row('Bill to', { gap: 14 });
  w.use('regular', 10);
  row(supply.buyer.legalName);
  w.use('regular', 9);
  if (supply.buyer.address) row(supply.buyer.address, { gap: 12 });
  row(supply.buyer.gstin ? `GSTIN: ${supply.buyer.gstin}` : 'GSTIN: Unregistered', { gap: 12 });
  row(supply.buyer.country === 'IN' ? `State: ${supply.buyer.state ? stateText(supply.buyer.state) : 'not on record'}` : `Country: ${supply.buyer.country}${supply.buyer.state ? `, ${supply.buyer.state.name}` : ''}`, { gap: 12 });
  row(`Email: ${supply.buyer.email}`, { gap: 16 });
  rule();

  // Lines
  const cols = { no: LEFT, desc: LEFT + 18, sac: 290, qty: 340, gross: 372, discount: 432, taxable: 492 };
  const numWidth = 56;
  w.use('bold', 8.5);
  w.line('#', cols.no, y);
  w.line('Description', cols.desc, y);
  w.line('SAC', cols.sac, y);
  w.line('Qty', cols.qty, y);
  w.line('Amount', cols.gross, y, { width: numWidth, align: 'right' });
  w.line('Discount', cols.discount, y, { width: numWidth, align: 'right' });
  w.line('Taxable value', cols.taxable, y, { width: RIGHT - cols.taxable, align: 'right' });
  y += 13;
  rule(6);
  w.use('regular', 8.5);
  d.lines.forEach((line, i) => {
    w.line(String(i + 1), cols.no, y);
    w.line(line.description, cols.desc, y);
    w.line(supply.sac, cols.sac, y);
    w.line(line.quantity === null ? '-' : String(line.quantity), cols.qty, y);
    w.line(line.gross === null ? '-' : money(line.gross), cols.gross, y, { width: numWidth, align: 'right' });
    w.line(line.discount ? `-${money(line.discount)}` : '-', cols.discount, y, { width: numWidth, align: 'right' });
    w.line(money(line.amount), cols.taxable, y, { width: RIGHT - cols.taxable, align: 'right' });
    y += 13;
  });
  rule(6);

  // Totals
  const total = (label: string, amount: string, bold = false) => {
    w.use(bold ? 'bold' : 'regular', bold ? 10 : 9);
    w.line(label, 330, y);
    w.line(amount, 430, y, { width: RIGHT - 430, align: 'right' });
    y += bold ? 15 : 13;
  };
  total('Taxable value', money(d.subtotal));
  for (const c of d.components) total(`${c.name} @ ${c.rateBps / 100}%`, money(c.amount));
  total('Total tax', money(d.taxAmount));
  total(d.totalLabel, money(d.total), true);
  y += 4;
  rule();

  // Words, terms, what it is for
  w.use('regular', 9);
  row(`Amount in words: ${d.amountInWords}`, { gap: 14 });
  if (supply.exportTerms) row(supply.exportTerms, { gap: 14 });
  for (const note of d.notes) row(note, { gap: 14 });
  y += 6;
  w.use('regular', 8);
  row(`This is a digitally generated ${d.title === 'CREDIT NOTE' ? 'credit note' : 'invoice'} and does not require a signature.`, { gap: 12 });
  doc.end();
  return done;
}
