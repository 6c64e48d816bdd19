// Which actions the signed-in token may take. The table comes from the
// gateway's own scope rules at build time (console/build), so a button is
// disabled exactly when the gateway would answer 403.

import { approvalScopes, methodScopes } from "smithers:scopes";

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

/**
 * Whether grants satisfy an approval's allowedScopes: true or false when
 * the console can tell, null when an entry is a name only the gateway can
 * resolve (it then decides when the approval is submitted).
 */
export function approvalAllows(grants: readonly string[], allowedScopes: readonly string[]): boolean | null {
  if (allowedScopes.length === 0) return true;
  let unknown = false;
  for (const name of allowedScopes) {
    const ok = approvalScopes[name];
    if (!ok) {
      unknown = true;
      continue;
    }
    if (grants.some((g) => ok.includes(g.trim()))) return true;
  }
  return unknown ? null : false;
}
