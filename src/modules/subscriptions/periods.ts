/**
 * Billing periods anchored to the upgrade instant (UTC). Period k ends `k x months` months
 * after the anchor, computed from the anchor each time so a month-end anchor keeps its day:
 * Jan 31 -> Feb 28 -> Mar 31.
 */
export function addMonthsClamped(anchor: Date, months: number): Date {
  const year = anchor.getUTCFullYear();
  const month = anchor.getUTCMonth() + months;
  const targetYear = year + Math.floor(month / 12);
  const targetMonth = ((month % 12) + 12) % 12;
  const lastDay = new Date(Date.UTC(targetYear, targetMonth + 1, 0)).getUTCDate();
  return new Date(
    Date.UTC(
      targetYear,
      targetMonth,
      Math.min(anchor.getUTCDate(), lastDay),
      anchor.getUTCHours(),
      anchor.getUTCMinutes(),
      anchor.getUTCSeconds(),
      anchor.getUTCMilliseconds(),
    ),
  );
}

export interface Period {
  start: Date;
  end: Date;
}

/** The index-th period (0 = the first) of a subscription anchored at `anchor`. */
export function periodAt(anchor: Date, monthsPerPeriod: number, index: number): Period {
  return {
    start: addMonthsClamped(anchor, monthsPerPeriod * index),
    end: addMonthsClamped(anchor, monthsPerPeriod * (index + 1)),
  };
}
