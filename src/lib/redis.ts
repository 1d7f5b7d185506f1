import type { Cluster, Redis } from 'ioredis';

/**
 * What the service talks to Redis through: one server (`redis://`) or a Redis Cluster
 * (`redis+cluster://`). Both run the same commands; the few places where they differ
 * (scans, CONFIG, health) go through the helpers below.
 */
export type RedisClient = Redis | Cluster;

export interface ClusterUrl {
  tls: boolean;
  nodes: Array<{ host: string; port: number }>;
  username?: string;
  password?: string;
}

const clusterScheme = /^(rediss?)\+cluster:\/\//;

export const isClusterUrl = (url: string): boolean => clusterScheme.test(url);

/**
 * `redis+cluster://[user:password@]host:port,host:port[/]` (rediss+cluster:// for TLS):
 * the nodes ioredis asks for the cluster's layout. Answers a problem as text when the URL
 * is not of that form.
 */
export function parseClusterUrl(url: string): ClusterUrl | string {
  const match = /^(rediss?)\+cluster:\/\/(?:([^@/]*)@)?([^/?#@]+)\/?(0)?$/.exec(url);
  if (!match) return 'must be redis+cluster://[user:password@]host:port,host:port (a cluster has only database 0, and no options in the URL)';
  const [, scheme, auth, hosts] = match;
  const nodes: ClusterUrl['nodes'] = [];
  for (const node of hosts!.split(',')) {
    const hostPort = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):(\d{1,5})$/.exec(node.trim());
    if (!hostPort || Number(hostPort[2]) < 1 || Number(hostPort[2]) > 65535) return `must name each cluster node as host:port (got ${JSON.stringify(node)})`;
    nodes.push({ host: hostPort[1]!.replace(/^\[(.*)\]$/, '$1'), port: Number(hostPort[2]) });
  }
  const colon = auth?.indexOf(':') ?? -1;
  const username = auth ? decodeURIComponent(colon < 0 ? auth : auth.slice(0, colon)) : '';
  const password = auth && colon >= 0 ? decodeURIComponent(auth.slice(colon + 1)) : '';
  return {
    tls: scheme === 'rediss',
    nodes,
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
  };
}

/**
 * Redis Cluster runs a Lua script or MULTI only on keys of one hash slot, and BullMQ's scripts
 * touch many keys of a queue: every key of the service carries one hash tag, the QUEUE_PREFIX's
 * `{...}`. A prefix without one is wrapped whole (`billing` becomes `{billing}`).
 */
export function withHashTag(prefix: string): string {
  return hashTagOf(prefix) ? prefix : `{${prefix}}`;
}

/** The part of a key Redis Cluster hashes, as Redis finds it: between the first `{` and the next `}`, when not empty. */
export function hashTagOf(key: string): string | null {
  const open = key.indexOf('{');
  if (open < 0) return null;
  const close = key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : null;
}

export const isCluster = (redis: RedisClient): redis is Cluster => 'isCluster' in redis && redis.isCluster === true;

/** The servers that hold keys: every master of a cluster, or the one server. */
export const mastersOf = (redis: RedisClient): Redis[] => (isCluster(redis) ? redis.nodes('master') : [redis]);

/**
 * Whether Redis can take the service's commands: PONG from one server; on a cluster
 * `cluster_state:ok`, which a cluster reports only while every hash slot has a master that
 * answers (a cluster whose state is fail refuses commands on every node).
 */
export async function redisAnswers(redis: RedisClient): Promise<void> {
  if (!isCluster(redis)) {
    await redis.ping();
    return;
  }
  const info = String(await redis.cluster('INFO'));
  const state = /cluster_state:(\w+)/.exec(info)?.[1] ?? 'unknown';
  if (state !== 'ok') throw new Error(`Redis Cluster state is ${state}`);
}
