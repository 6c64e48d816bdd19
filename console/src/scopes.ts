// Which actions the signed-in token may take. The table comes from the
// gateway's own scope rules at build time (console/build), so a button is
// disabled exactly when the gateway would answer 403.

import { methodScopes } from "smithers:scopes";

export type Method = keyof typeof methodScopes & string;

function entry(method: string) {
  const e = methodScopes[method];
  if (!e) throw new Error(`console bug: ${method} is not in the scope table (console/build consoleMethods)`);
  return e;
}

/** Whether grants authorise method. */
export function allows(grants: readonly string[], method: string): boolean {
  const e = entry(method);
  return grants.some((g) => e.grants.includes(g.trim()));
}

/** The scope the gateway requires for method. */
export function requiredScope(method: string): string {
  return entry(method).requiredScope;
}
