import type { Entitlements } from '../catalog/entitlements.js';

export interface EntitlementChange {
  entitlement: string;
  from: unknown;
  to: unknown;
}

export interface Conflict {
  code: 'exophone_limit_exceeded' | 'retention_reduced' | 'feature_removed';
  detail: string;
}

/** Every entitlement whose value differs between two plans, by dotted path. */
export function entitlementChanges(from: Entitlements, to: Entitlements): EntitlementChange[] {
  const changes: EntitlementChange[] = [];
  const walk = (a: unknown, b: unknown, path: string) => {
    if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a)) {
      for (const key of Object.keys(a as object)) walk((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key], path ? `${path}.${key}` : key);
      return;
    }
    if (JSON.stringify(a) !== JSON.stringify(b)) changes.push({ entitlement: path, from: a, to: b });
  };
  walk(from, to, '');
  return changes;
}

const levels: Record<string, string[]> = {
  whatsapp: ['not_available', 'add_on', 'included'],
  campaigns: ['not_available', 'basic', 'advanced', 'full_suite'],
  contactCenter: ['not_available', 'basic', 'full'],
  analytics: ['standard', 'advanced', 'custom_dashboards'],
};

/**
 * What a downgrade takes away from an account as it is now: more ExoPhones in use than the
 * new limit, shorter recording retention, features that go down a level. Accepted, reported.
 */
export function downgradeConflicts(from: Entitlements, to: Entitlements, usage: { exophonesInUse: number }): Conflict[] {
  const conflicts: Conflict[] = [];
  if (to.exophones.limit !== null && usage.exophonesInUse > to.exophones.limit) {
    conflicts.push({
      code: 'exophone_limit_exceeded',
      detail: `${usage.exophonesInUse} ExoPhones in use, the new limit is ${to.exophones.limit}: no new purchases until below it`,
    });
  }
  if (to.callRecording.retentionDays < from.callRecording.retentionDays) {
    conflicts.push({
      code: 'retention_reduced',
      detail: `Call-recording retention goes from ${from.callRecording.retentionDays} to ${to.callRecording.retentionDays} days`,
    });
  }
  for (const [feature, order] of Object.entries(levels)) {
    const a = order.indexOf(String(from[feature as keyof Entitlements]));
    const b = order.indexOf(String(to[feature as keyof Entitlements]));
    if (b < a) conflicts.push({ code: 'feature_removed', detail: `${feature}: ${order[a]} becomes ${order[b]}` });
  }
  return conflicts;
}
