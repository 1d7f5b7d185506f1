/**
 * Errors that mean "the connection to Postgres broke or could not be made", not "this
 * statement was wrong": a failover, a PgBouncer restart, an idle timeout, a killed backend.
 * The request or job in flight fails and is retried; the pool makes new connections.
 */
const connectionSqlStates = new Set([
  '57P01', // admin_shutdown (pg_terminate_backend)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down)
  '08000', // connection_exception
  '08001', // sqlclient_unable_to_establish_sqlconnection
  '08003', // connection_does_not_exist
  '08004', // sqlserver_rejected_establishment_of_sqlconnection
  '08006', // connection_failure
  '53300', // too_many_connections
]);

const socketCodes = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

const connectionMessages =
  /Connection terminated|connection error and is not queryable|Client was closed and is not queryable|timeout exceeded when trying to connect|terminating connection|Client has already been connected|Cannot use a pool after calling end/i;

export function isConnectionError(err: unknown): boolean {
  // drizzle wraps driver errors: the driver's is the cause.
  for (let e = err as { code?: unknown; message?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && (connectionSqlStates.has(e.code) || socketCodes.has(e.code))) return true;
    if (typeof e.message === 'string' && connectionMessages.test(e.message)) return true;
  }
  return false;
}

/**
 * Runs a short write again when its connection was lost (the pool hands out a fresh one):
 * for bookkeeping that must not be lost with the request it follows (an idempotency record,
 * an audit event, an email marked sent). Other errors, and the last attempt's, are thrown.
 */
export async function retryOnConnectionError<T>(write: () => Promise<T>, pausesMs: readonly number[] = [50, 250, 1000]): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await write();
    } catch (err) {
      if (attempt >= pausesMs.length || !isConnectionError(err)) throw err;
      await new Promise((r) => setTimeout(r, pausesMs[attempt]));
    }
  }
}
