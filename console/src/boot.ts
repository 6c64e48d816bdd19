// The boot object the gateway writes into the page (globalThis
// .__SMITHERS_GATEWAY_UI__), with defaults for a page opened without it.

export const boot: SmithersBoot = (() => {
  const b = globalThis.__SMITHERS_GATEWAY_UI__;
  const mount = b?.mountPath ?? "/console";
  return {
    apiVersion: "v1",
    kind: b?.kind ?? "operator",
    workflowKey: b?.workflowKey ?? null,
    mountPath: mount,
    rpcPath: b?.rpcPath ?? "/v1/rpc",
    wsPath: b?.wsPath ?? "/",
    assetBasePath: b?.assetBasePath ?? `${mount === "/" ? "" : mount}/__smithers_ui/`,
    props: b?.props ?? {},
  };
})();

/** The console's base for its own routes: "" at the root mount. */
export const base = boot.mountPath === "/" ? "" : boot.mountPath;

/** Whether the gateway identifies callers without a token (a trusted
 * proxy's headers, or no auth at all). */
export const tokenless = boot.props.authMode === "trusted-proxy" || boot.props.authMode === "none";
