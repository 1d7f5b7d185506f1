import PDFDocument from 'pdfkit';
import { formatMoney } from '../../lib/money.js';
import type { InvoiceDto } from './schemas.js';

const day = (d: Date) => d.toISOString().slice(0, 10);

/** The invoice as a PDF: number, parties, period, lines, discount, tax and total. */
export function renderInvoicePdf(invoice: InvoiceDto, account: { name: string; email: string; country: string }, planName: string): Promise<Buffer> {
  const doc = new PDFDocument({ size: 'A4', margin: 50, info: { Title: `Invoice ${invoice.number}`, Author: 'billing-service' } });
  const chunks: Buffer[] = [];
  doc.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });
  const money = (n: number) => formatMoney(n, invoice.currency);

  doc.fontSize(20).text(`Invoice ${invoice.number}`);
  doc.moveDown(0.5).fontSize(10);
  doc.text(`Status: ${invoice.status.toUpperCase()}`);
  doc.text(`Issued: ${day(invoice.issuedAt)}    Due: ${day(invoice.dueAt)}${invoice.paidAt ? `    Paid: ${day(invoice.paidAt)}` : ''}`);
  doc.moveDown();
  doc.text(`Billed to: ${account.name} <${account.email}>, ${account.country}`);
  doc.text(`Plan: ${planName}, ${invoice.billingCycle} billing`);
  doc.text(`Period: ${day(invoice.period.start)} to ${day(invoice.period.end)}`);
  doc.moveDown();

  doc.fontSize(11).text('Description', 50, doc.y, { continued: true, width: 330 }).text('Amount', { align: 'right' });
  doc.moveTo(50, doc.y + 2).lineTo(545, doc.y + 2).stroke();
  doc.moveDown(0.5).fontSize(10);
  for (const line of invoice.lines) {
    doc.text(line.description, 50, doc.y, { continued: true, width: 330 }).text(money(line.grossAmount), { align: 'right' });
    if (line.discountAmount > 0) {
      doc.text('  Billing-cycle discount', 50, doc.y, { continued: true, width: 330 }).text(`-${money(line.discountAmount)}`, { align: 'right' });
    }
  }
  doc.moveDown(0.5);
  doc.text('Subtotal', 50, doc.y, { continued: true, width: 330 }).text(money(invoice.subtotal), { align: 'right' });
  doc.text(invoice.tax.label, 50, doc.y, { continued: true, width: 330 }).text(money(invoice.tax.amount), { align: 'right' });
  doc.fontSize(12).text('Total', 50, doc.y, { continued: true, width: 330 }).text(money(invoice.total), { align: 'right' });
  doc.end();
  return done;
}
