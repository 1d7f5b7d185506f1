/** Rating: what one usage event costs at a plan's rates. Pure. */
export interface Rates {
  pulseSeconds: number;
  perPulseRate: number;
  perSmsRate: number;
}

export type UsageInput = { type: 'voice_call'; durationSeconds: number } | { type: 'sms'; segments: number };

export function rate(event: UsageInput, rates: Rates): { units: number; amount: number } {
  if (event.type === 'voice_call') {
    // Every started pulse is charged: 61 s at 60 s pulses is 2 pulses; an unanswered call (0 s) is free.
    const units = Math.ceil(event.durationSeconds / rates.pulseSeconds);
    return { units, amount: units * rates.perPulseRate };
  }
  return { units: event.segments, amount: event.segments * rates.perSmsRate };
}

export interface ForecastInput {
  available: number;
  /** Debited by usage in the hour and the day before `now`. */
  spentLastHour: number;
  spentLastDay: number;
  now: Date;
  horizonHours: number;
  /** Auto-recharge when on: its threshold and amount, the pre-debit notice it must wait (0 without an e-mandate), and a notice already out. */
  autoRecharge: { threshold: number; amount: number; noticeHours: number; noticeSentAt: Date | null } | null;
}

export interface Forecast {
  ratePerHour: number;
  hoursLeft: number;
  runsOutAt: Date;
  autoRecharge: { threshold: number; amount: number; expectedAt: Date; noticeHours: number; landsAt: Date; landsBeforeDepletion: boolean } | null;
}

const HOUR_MS = 3_600_000;

/**
 * When credits run out at the current rate of use: the faster of the last hour's spend and
 * the last day's hourly average (a burst counts at once, a quiet hour does not hide a busy
 * day). null when nothing is being spent or the credits outlast the horizon. With
 * auto-recharge, when the recharge lands: once available reaches its threshold, plus the
 * pre-debit notice an Indian e-mandate requires before the charge.
 */
export function depletionForecast(input: ForecastInput): Forecast | null {
  const ratePerHour = Math.max(input.spentLastHour, Math.ceil(input.spentLastDay / 24));
  if (ratePerHour <= 0) return null;
  const hoursLeft = Math.max(input.available, 0) / ratePerHour;
  if (hoursLeft >= input.horizonHours) return null;
  const now = input.now.getTime();
  const runsOutAt = new Date(now + hoursLeft * HOUR_MS);
  const ar = input.autoRecharge;
  let autoRecharge: Forecast['autoRecharge'] = null;
  if (ar) {
    const expectedAt = new Date(input.available <= ar.threshold ? now : now + ((input.available - ar.threshold) / ratePerHour) * HOUR_MS);
    const noticeFrom = ar.noticeSentAt && ar.noticeHours > 0 ? Math.min(ar.noticeSentAt.getTime(), expectedAt.getTime()) : expectedAt.getTime();
    const landsAt = new Date(Math.max(noticeFrom + ar.noticeHours * HOUR_MS, expectedAt.getTime()));
    autoRecharge = { threshold: ar.threshold, amount: ar.amount, expectedAt, noticeHours: ar.noticeHours, landsAt, landsBeforeDepletion: landsAt < runsOutAt };
  }
  return { ratePerHour, hoursLeft, runsOutAt, autoRecharge };
}

/** "about 4 days", "about 5 hours", "less than an hour": how long credits last, in words. */
export function durationWords(hours: number): string {
  if (hours < 1) return 'less than an hour';
  if (hours < 36) {
    const h = Math.round(hours);
    return `about ${h} hour${h === 1 ? '' : 's'}`;
  }
  const d = Math.round(hours / 24);
  return `about ${d} days`;
}
