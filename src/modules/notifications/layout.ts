import type { Currency } from '../../lib/money.js';

/**
 * The one shape of every customer email, written out as plain text and as HTML (inline
 * styles, no external assets, every value escaped).
 */
export interface AccountForEmail {
  name: string;
  email: string;
  /** ISO 3166 alpha-2: times are shown in its zone (UTC when not given). */
  country?: string;
  /** For amounts whose event does not say its currency. */
  currency?: Currency;
}

export interface RenderedEmail {
  template: string;
  subject: string;
  text: string;
  html: string;
}

// ---------------------------------------------------------------------------------------
// Layout: one shape for every email, written out as plain text and as HTML.

export interface AmountRow {
  label: string;
  value: string;
  /** A detail of the row above (a discount). */
  indent?: boolean;
  /** The total. */
  strong?: boolean;
}

/** A paragraph, a subheading, a key/value table (amounts), or a bulleted list. */
export type Block = string | { heading: string } | { rows: AmountRow[] } | { list: string[] };

export interface Content {
  subject: string;
  /** The HTML part's title; the subject when not given. */
  heading?: string;
  blocks: Block[];
  /** The delivery's template name, when not the event type. */
  template?: string;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function textBlock(block: Block): string {
  if (typeof block === 'string') return block;
  if ('heading' in block) return `${block.heading}:`;
  if ('list' in block) return block.list.map((item) => `  - ${item}`).join('\n');
  const labelWidth = Math.max(...block.rows.map((r) => r.label.length + (r.indent ? 2 : 0)));
  const valueWidth = Math.max(...block.rows.map((r) => r.value.length));
  return block.rows.map((r) => `  ${`${r.indent ? '  ' : ''}${r.label}`.padEnd(labelWidth)}   ${r.value.padStart(valueWidth)}`).join('\n');
}

function textOf(name: string, blocks: Block[]): string {
  const chunks: string[] = [];
  let underHeading = false;
  for (const block of blocks) {
    // A subheading and what it heads stay together.
    if (underHeading) chunks[chunks.length - 1] += `\n${textBlock(block)}`;
    else chunks.push(textBlock(block));
    underHeading = typeof block === 'object' && 'heading' in block;
  }
  return `Hello ${name},\n\n${chunks.join('\n\n')}\n`;
}

// Inline styles only, no external assets: what mail clients render alike.
const FONT = 'font-family:Arial,Helvetica,sans-serif;font-size:15px;line-height:1.5;color:#1f2933';
const CELL = 'padding:6px 0;border-bottom:1px solid #e4e7eb;vertical-align:top';

function htmlBlock(block: Block): string {
  if (typeof block === 'string') return `<p style="margin:0 0 14px">${escapeHtml(block)}</p>`;
  if ('heading' in block) return `<h2 style="margin:22px 0 8px;font-size:16px">${escapeHtml(block.heading)}</h2>`;
  if ('list' in block) return `<ul style="margin:0 0 14px;padding-left:20px">${block.list.map((item) => `<li>${escapeHtml(item)}</li>`).join('')}</ul>`;
  const rows = block.rows.map((r) => {
    const weight = r.strong ? ';font-weight:bold' : '';
    const label = `${CELL}${r.indent ? ';padding-left:16px;color:#52606d' : ''}${weight}`;
    return `<tr><td style="${label}">${escapeHtml(r.label)}</td><td align="right" style="${CELL};padding-left:24px;white-space:nowrap${weight}">${escapeHtml(r.value)}</td></tr>`;
  });
  return `<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="border-collapse:collapse;margin:0 0 14px">\n${rows.join('\n')}\n</table>`;
}

function htmlOf(name: string, content: Content): string {
  const heading = content.heading ?? content.subject;
  return [
    '<!doctype html>',
    `<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(content.subject)}</title></head>`,
    '<body style="margin:0;padding:0;background:#f5f7fa">',
    '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f5f7fa"><tr><td align="center" style="padding:24px 12px">',
    `<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="max-width:600px;background:#ffffff;border:1px solid #e4e7eb;border-radius:6px;${FONT}"><tr><td style="padding:28px 32px">`,
    `<h1 style="margin:0 0 18px;font-size:20px;line-height:1.3">${escapeHtml(heading)}</h1>`,
    `<p style="margin:0 0 14px">Hello ${escapeHtml(name)},</p>`,
    ...content.blocks.map(htmlBlock),
    '</td></tr></table>',
    '</td></tr></table>',
    '</body></html>',
    '',
  ].join('\n');
}

export function compose(template: string, account: AccountForEmail, content: Content): RenderedEmail {
  return { template: content.template ?? template, subject: content.subject, text: textOf(account.name, content.blocks), html: htmlOf(account.name, content) };
}

// ---------------------------------------------------------------------------------------
// Reading a payload: amounts, times and names as the account reads them.

