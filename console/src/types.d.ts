// Declarations for the console's build-time module and boot object.

declare module "smithers:scopes" {
  /** For each method the console calls: the scope the gateway's gate
   * requires and every single grant string that authorises it. */
  export const methodScopes: Record<string, { requiredScope: string; grants: string[] }>;
  /** For the allowedScopes entries the console judges itself (the typed
   * scopes and "approve"): every single grant that satisfies the entry. */
  export const approvalScopes: Record<string, string[]>;
}

interface SmithersBoot {
  apiVersion: "v1";
  kind: "operator" | "gateway" | "workflow";
  workflowKey: string | null;
  mountPath: string;
  rpcPath: string;
  wsPath: string;
  assetBasePath: string;
  props: { authMode?: string } & Record<string, unknown>;
}

// eslint-disable-next-line no-var
declare var __SMITHERS_GATEWAY_UI__: SmithersBoot | undefined;
