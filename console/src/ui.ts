// Shared pieces: buttons gated by scope, copy, empty/error/loading states
// and toasts.

import { h, uid, type Child } from "./dom";
import { describeError } from "./rpc";

/** What a view needs to know about the signed-in token's permissions. */
export interface Gate {
  can(method: string): boolean;
  required(method: string): string;
}

export interface ActionOptions {
  label: Child;
  method: string;
  gate: Gate;
  onClick: (ev: MouseEvent) => void;
  kind?: "primary" | "danger" | "default" | "ok";
  /** Another reason the action is not possible now (shown as its note). */
  blocked?: string | null;
  type?: "button" | "submit";
}

/**
 * A button that is disabled, with the missing scope named beside it and in
 * its tooltip, when the token may not call method.
 */
export function actionButton(o: ActionOptions): HTMLElement {
  const allowed = o.gate.can(o.method);
  const reason = !allowed ? `Requires ${o.gate.required(o.method)}` : (o.blocked ?? null);
  const noteId = reason ? uid("why") : undefined;
  const btn = h(
    "button",
    {
      type: o.type ?? "button",
      class: `btn ${o.kind ? `btn-${o.kind}` : ""}`,
      disabled: Boolean(reason),
      title: reason ?? undefined,
      "aria-describedby": noteId,
      "data-method": o.method,
      "data-missing-scope": allowed ? undefined : o.gate.required(o.method),
      onclick: (ev: MouseEvent) => {
        if (!reason) o.onClick(ev);
      },
    },
    o.label,
  );
  if (!reason) return btn;
  return h("span", { class: "action-blocked" }, btn, h("span", { class: "why", id: noteId }, reason));
}

export function button(label: Child, onClick: (ev: MouseEvent) => void, kind = "default", extra: Record<string, unknown> = {}): HTMLButtonElement {
  return h("button", { type: "button", class: `btn btn-${kind}`, onclick: onClick, ...extra }, label);
}

async function writeClipboard(text: string): Promise<void> {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Pages served over plain HTTP from another host have no clipboard API.
  const ta = h("textarea", { class: "offscreen", readonly: true }, text);
  document.body.append(ta);
  ta.select();
  const ok = document.execCommand("copy");
  ta.remove();
  if (!ok) throw new Error("copy refused");
}

export function copyButton(text: () => string, label = "Copy"): HTMLButtonElement {
  const b = h("button", { type: "button", class: "btn btn-small", "aria-live": "polite" }, label);
  b.addEventListener("click", async () => {
    try {
      await writeClipboard(text());
      b.textContent = "Copied";
    } catch {
      b.textContent = "Copy failed: select and copy by hand";
    }
    window.setTimeout(() => (b.textContent = label), 1500);
  });
  return b;
}

export function loading(what = "Loading"): HTMLElement {
  return h("div", { class: "state loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), `${what}…`);
}

export function emptyState(title: string, body: Child, action?: Child): HTMLElement {
  return h("div", { class: "state empty" }, h("p", { class: "state-title" }, title), h("p", null, body), action ?? null);
}

export function errorState(e: unknown, retry?: () => void): HTMLElement {
  return h(
    "div",
    { class: "state error", role: "alert" },
    h("p", { class: "state-title" }, "Something went wrong"),
    h("p", null, describeError(e)),
    retry ? button("Retry", retry, "default") : null,
  );
}

/** A panel saying which scope a page needs, instead of calling the gateway
 * for an answer that would be 403. */
export function scopeNeeded(what: string, scope: string): HTMLElement {
  return h(
    "div",
    { class: "state empty" },
    h("p", { class: "state-title" }, `Your token cannot see ${what}`),
    h("p", null, "It needs the ", h("code", null, scope), " scope. Sign in with a token that has it, for example one from ", h("code", null, `smithers token issue --scopes ${scope}`), "."),
  );
}

let toastRegion: HTMLElement | null = null;

export function toastHost(): HTMLElement {
  toastRegion = h("div", { class: "toasts", role: "status", "aria-live": "polite" });
  return toastRegion;
}

export function toast(message: Child, tone: "ok" | "bad" | "info" = "info", ms = 6000): void {
  if (!toastRegion) return;
  const close = h("button", { type: "button", class: "toast-close", "aria-label": "Dismiss" }, "×");
  const t = h("div", { class: `toast tone-${tone}` }, h("div", { class: "toast-body" }, message), close);
  const remove = () => t.remove();
  close.addEventListener("click", remove);
  toastRegion.append(t);
  window.setTimeout(remove, ms);
}
