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

/**
 * A tax invoice as CGST Rule 46 asks: the seller's name, address and GSTIN; a consecutive
 * number of at most 16 characters and the date; the recipient's name, address, state and
 * GSTIN if registered; SAC, taxable value, the tax split into CGST + SGST or IGST with rates,
 * the place of supply with its state, reverse charge, and a statement that it is digitally
 * generated. Deterministic: the same invoice gives the same bytes (its date is the issue date).
 */
export function renderInvoicePdf(input: InvoiceDocument): Promise<Buffer> {
  const { invoice, planName, timeZone } = input;
  const { supply } = invoice;
  const doc = new PDFDocument({
    size: 'A4',
    margin: LEFT,
    info: { Title: `Tax invoice ${invoice.number}`, Author: supply.seller.legalName, Subject: `Invoice to ${supply.buyer.legalName}`, CreationDate: invoice.issuedAt },
  });
  const chunks: Buffer[] = [];
  doc.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });
  const w = textWriter(doc);
  const money = (n: number) => formatAmount(n, invoice.currency);
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
  row(supply.type === 'export' ? 'TAX INVOICE (EXPORT OF SERVICES)' : 'TAX INVOICE', { gap: 22 });
  w.use('bold', 11);
  row(supply.seller.legalName);
  w.use('regular', 9);
  row(supply.seller.address, { gap: 12 });
  row(`GSTIN: ${supply.seller.gstin}    State: ${stateText(supply.seller.state)}`, { gap: 16 });
  rule();

  // The invoice
  const half = LEFT + WIDTH / 2;
  const pair = (a: string, b: string) => {
    w.line(a, LEFT, y);
    w.line(b, half, y);
    y += 13;
  };
  pair(`Invoice number: ${invoice.number}`, `Invoice date: ${formatDate(invoice.issuedAt, timeZone)}`);
  pair(`Place of supply: ${stateText(supply.placeOfSupply)}`, `Due date: ${formatDate(invoice.dueAt, timeZone)}`);
  pair(`Reverse charge: ${supply.reverseCharge ? 'Yes' : 'No'}`, `Currency: ${invoice.currency}`);
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
  row(supply.buyer.country === 'IN' ? `State: ${stateText(supply.buyer.state ?? supply.placeOfSupply)}` : `Country: ${supply.buyer.country}${supply.buyer.state ? `, ${supply.buyer.state.name}` : ''}`, { gap: 12 });
  row(`Email: ${supply.buyer.email}`, { gap: 16 });
  rule();

  // Lines
  const cols = { no: LEFT, desc: LEFT + 18, sac: 290, qty: 340, gross: 372, discount: 432, taxable: 492 };
  const numWidth = 60;
  w.use('bold', 8.5);
  w.line('#', cols.no, y);
  w.line('Description', cols.desc, y);
  w.line('SAC', cols.sac, y);
  w.line('Qty', cols.qty, y);
  w.line('Amount', cols.gross, y, { width: numWidth - 4, align: 'right' });
  w.line('Discount', cols.discount, y, { width: numWidth - 4, align: 'right' });
  w.line('Taxable value', cols.taxable, y, { width: RIGHT - cols.taxable, align: 'right' });
  y += 13;
  rule(6);
  w.use('regular', 8.5);
  invoice.lines.forEach((line, i) => {
    w.line(String(i + 1), cols.no, y);
    w.line(line.description, cols.desc, y);
    w.line(supply.sac, cols.sac, y);
    w.line(String(line.quantity), cols.qty, y);
    w.line(money(line.grossAmount), cols.gross, y, { width: numWidth - 4, align: 'right' });
    w.line(line.discountAmount ? `-${money(line.discountAmount)}` : '-', cols.discount, y, { width: numWidth - 4, align: 'right' });
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
  total('Taxable value', money(invoice.subtotal));
  for (const c of invoice.tax.components) total(`${c.name} @ ${c.rateBps / 100}%`, money(c.amount));
  total('Total tax', money(invoice.tax.amount));
  total('Invoice total', money(invoice.total), true);
  y += 4;
  rule();

  // Words, terms, what it is for
  w.use('regular', 9);
  row(`Amount in words: ${invoice.amountInWords}`, { gap: 14 });
  if (supply.exportTerms) row(supply.exportTerms, { gap: 14 });
  const period = invoice.period.start.getTime() === invoice.period.end.getTime()
    ? formatDate(invoice.period.start, timeZone)
    : `${formatDate(invoice.period.start, timeZone)} to ${formatDate(invoice.period.end, timeZone)}`;
  row(invoice.lines.every((l) => l.kind === 'credits') ? `Prepaid credits, ${period}` : `${planName} plan, ${invoice.billingCycle} billing, service period ${period}`, { gap: 20 });
  w.use('regular', 8);
  row('This is a digitally generated invoice and does not require a signature.', { gap: 12 });
  doc.end();
  return done;
}
