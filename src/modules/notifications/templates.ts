/**
 * Which events email the account, and what the email says. Pure: an event in, an email
 * (or nothing) out.
 */
export interface EventForEmail {
  type: string;
  payload: Record<string, unknown>;
}

export interface AccountForEmail {
  name: string;
  email: string;
}

export interface RenderedEmail {
  template: string;
  subject: string;
  text: string;
}

export function renderEmail(event: EventForEmail, account: AccountForEmail): RenderedEmail | null {
  if (event.type === 'kyc.status_changed') {
    if (event.payload.to === 'approved') {
      return {
        template: 'kyc_approved',
        subject: 'Your KYC is approved',
        text:
          `Hello ${account.name},\n\nYour KYC verification is approved. You can now upgrade to a paid plan ` +
          'and purchase production ExoPhones.\n',
      };
    }
    if (event.payload.to === 'rejected') {
      return {
        template: 'kyc_rejected',
        subject: 'Your KYC needs another look',
        text:
          `Hello ${account.name},\n\nYour KYC verification was not approved: ${String(event.payload.reason ?? 'no reason given')}.\n` +
          'Please correct the documents and submit them again.\n',
      };
    }
  }
  return null;
}
