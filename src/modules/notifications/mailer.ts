import { createTransport } from 'nodemailer';
import type { Logger } from '../../lib/logger.js';

export interface Email {
  to: string;
  subject: string;
  text: string;
  /** Stable per email, sent as Message-ID so a receiving system can spot a duplicate. */
  messageId: string;
}

export interface Mailer {
  send(email: Email): Promise<void>;
  close(): void;
}

export function createSmtpMailer(url: string, from: string): Mailer {
  const transport = createTransport(url, { from });
  return {
    send: async (email) => {
      await transport.sendMail({ to: email.to, subject: email.subject, text: email.text, messageId: email.messageId });
    },
    close: () => transport.close(),
  };
}

/** Development without SMTP_URL: the email goes to the log instead of a mail server. */
export function createLogMailer(logger: Logger): Mailer {
  return {
    send: async (email) => {
      logger.info({ email: { to: email.to, subject: email.subject, messageId: email.messageId }, body: email.text }, 'email (no SMTP_URL set)');
    },
    close: () => {},
  };
}
