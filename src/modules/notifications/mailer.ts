import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTransport } from 'nodemailer';

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
  const transport = createTransport(url, { from });
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
