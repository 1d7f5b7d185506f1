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
