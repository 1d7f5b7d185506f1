import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTransport } from 'nodemailer';

/** How long an SMTP send may take at each step: under 60 s in all. */
export const SEND_TIMEOUTS_MS = { connection: 10_000, greeting: 10_000, socket: 30_000 };

export interface Email {
  to: string;
  subject: string;
  text: string;
  html?: string;
  attachments?: Array<{ filename: string; content: Buffer; contentType: string }>;
  /** Stable per email, sent as Message-ID so a receiving system can spot a duplicate. */
  messageId: string;
}

export interface Mailer {
  send(email: Email): Promise<void>;
  close(): void;
}

const toMail = (email: Email) => ({
  to: email.to,
  subject: email.subject,
  text: email.text,
  html: email.html,
  attachments: email.attachments,
  messageId: email.messageId,
});

export function createSmtpMailer(url: string, from: string): Mailer {
  // Every send ends (sent or failed) well within the delivery lease (service.ts), so a run
  // that takes over a lapsed lease never races a send still under way.
  const parsed = new URL(url);
  const transport = createTransport(
    {
      host: parsed.hostname,
      port: parsed.port ? Number(parsed.port) : parsed.protocol === 'smtps:' ? 465 : 587,
      secure: parsed.protocol === 'smtps:',
      ...(parsed.username ? { auth: { user: decodeURIComponent(parsed.username), pass: decodeURIComponent(parsed.password) } } : {}),
      connectionTimeout: SEND_TIMEOUTS_MS.connection,
      greetingTimeout: SEND_TIMEOUTS_MS.greeting,
      socketTimeout: SEND_TIMEOUTS_MS.socket,
    },
    { from },
  );
  return {
    send: async (email) => {
      await transport.sendMail(toMail(email));
    },
    close: () => transport.close(),
  };
}

/**
 * Development without SMTP_URL: each email is written as an .eml file (open it in any mail
 * client), named after its Message-ID so a re-send overwrites rather than duplicates.
 */
export function createFileMailer(dir: string, from: string): Mailer {
  const transport = createTransport({ streamTransport: true, buffer: true, newline: 'unix' }, { from });
  return {
    send: async (email) => {
      const info = await transport.sendMail(toMail(email));
      mkdirSync(dir, { recursive: true });
      const name = email.messageId.replace(/[<>]/g, '').replace(/[^\w.@-]/g, '_');
      writeFileSync(join(dir, `${name}.eml`), info.message as Buffer);
    },
    close: () => transport.close(),
  };
}
