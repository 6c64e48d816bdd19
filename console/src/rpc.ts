// HTTP RPC: POST <rpcPath>/<method> with the bare params as the body and
// the token as a bearer header. Every call goes over HTTP except the
// WebSocket-only streamRunEvents, so the console's sockets are never
// auto-subscribed to the runs it starts (they keep receiving every run's
// events).

import { boot } from "./boot";

export class RpcError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    readonly requiredScope?: string,
  ) {
    super(message);
    this.name = "RpcError";
  }
}

let token = "";
let onUnauthorized: ((message: string) => void) | null = null;

/** Sets the credentials of later calls and what a 401 does. */
export function configureRpc(t: string, unauthorized: ((message: string) => void) | null): void {
  token = t;
  onUnauthorized = unauthorized;
}

export const NETWORK_MESSAGE =
  "The gateway could not be reached. Check that it is running and reachable from this browser, then retry.";

export async function rpc<T = unknown>(method: string, params: Record<string, unknown> = {}): Promise<T> {
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  let res: Response;
  try {
    res = await fetch(`${boot.rpcPath}/${encodeURIComponent(method)}`, {
      method: "POST",
      headers,
      body: JSON.stringify(params),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new RpcError("NETWORK", NETWORK_MESSAGE, 0);
  }
  let frame: { ok?: boolean; payload?: T; error?: { code?: string; message?: string; requiredScope?: string } };
  try {
    frame = await res.json();
  } catch {
    throw new RpcError("BAD_RESPONSE", `The gateway answered ${res.status} without a JSON body.`, res.status);
  }
  if (frame.ok) return frame.payload as T;
  const err = frame.error ?? {};
  const e = new RpcError(err.code ?? "SERVER_ERROR", err.message ?? `HTTP ${res.status}`, res.status, err.requiredScope);
  if (res.status === 401 && onUnauthorized) onUnauthorized(e.message);
  throw e;
}

/** A message for a failed call that says what to do about it. */
export function describeError(e: unknown): string {
  if (e instanceof RpcError) {
    switch (e.code) {
      case "NETWORK":
        return e.message;
      case "FORBIDDEN":
        return e.requiredScope
          ? `Your token lacks ${e.requiredScope}. Sign in with a token that has it.`
          : `${e.message}.`.replace(/\.\.$/, ".");
      case "UNAUTHORIZED":
        return `${e.message} Sign in again.`;
      default:
        return `${e.message} (${e.code})`;
    }
  }
  return e instanceof Error ? e.message : String(e);
}
