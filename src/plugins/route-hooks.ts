/** A route's hooks of one kind as a list, to add a route-level hook to in an onRoute hook. */
export const hooksOf = <T>(hooks: T | T[] | undefined): T[] => (hooks === undefined ? [] : Array.isArray(hooks) ? hooks : [hooks]);
