import type { RedisClient } from '../lib/redis.js';

/** Where workers count their jobs (a Redis hash), so any api process can report them on /metrics. */
export const jobStatsKey = (prefix: string) => `${prefix}:metrics:jobs`;

/** Called by workers when a job ends: completed count and seconds, or a failure, per queue. */
export async function recordJob(redis: RedisClient, prefix: string, queue: string, outcome: { ok: boolean; seconds: number }): Promise<void> {
  const key = jobStatsKey(prefix);
  if (outcome.ok) await redis.multi().hincrby(key, `${queue}:completed`, 1).hincrbyfloat(key, `${queue}:seconds`, outcome.seconds).exec();
  else await redis.hincrby(key, `${queue}:failed`, 1);
}
