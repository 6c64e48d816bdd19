// The prelude runs in every runtime before the workflow module. It defines what the virtual module
// "smithers-orchestrator" re-exports, on a non-enumerable global that module code never names.
(function () {
  "use strict";

  class SmithersError extends Error {
    constructor(code, message, options) {
      if (typeof code !== "string" || code === "") {
        throw new TypeError("SmithersError: code must be a non-empty string, got " +
          (typeof code === "string" ? "an empty string" : typeof code));
      }
      if (options !== undefined && options !== null && typeof options !== "object") {
        throw new TypeError("SmithersError: options must be an object, got " + typeof options);
      }
      super(message === undefined ? code : String(message));
      const opts = options || {};
      Object.defineProperty(this, "code", { value: code, writable: true, enumerable: true, configurable: true });
      Object.defineProperty(this, "details", { value: opts.details, writable: true, enumerable: true, configurable: true });
      Object.defineProperty(this, "retryable", { value: opts.retryable, writable: true, enumerable: true, configurable: true });
      if ("cause" in opts) {
        Object.defineProperty(this, "cause", { value: opts.cause, writable: true, enumerable: false, configurable: true });
      }
    }
  }
  Object.defineProperty(SmithersError.prototype, "name", {
    value: "SmithersError", writable: true, enumerable: false, configurable: true,
  });

  Object.defineProperty(globalThis, "__smithers_orchestrator", {
    value: Object.freeze({ SmithersError: SmithersError }),
    writable: false, enumerable: false, configurable: false,
  });
})();
