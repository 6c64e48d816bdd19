// A collapsible JSON view (native <details>, so it is keyboard-operable)
// with a copy button for the whole value.

import { h, type Child } from "./dom";
import { copyButton } from "./ui";

const MAX_ITEMS = 200;
const MAX_STRING = 2000;

export function jsonView(value: unknown, opts: { label: string; empty?: string; open?: number } = { label: "JSON" }): HTMLElement {
  if (value === undefined || value === null) {
    return h("div", { class: "json json-empty muted" }, opts.empty ?? "null");
  }
  const text = JSON.stringify(value, null, 2);
  return h(
    "div",
    { class: "json" },
    h("div", { class: "json-tools" }, copyButton(() => text, `Copy ${opts.label}`)),
    h("div", { class: "json-tree", role: "group", "aria-label": opts.label }, node(value, opts.open ?? 2, 0)),
  );
}

function node(v: unknown, openDepth: number, depth: number, key?: Child): HTMLElement {
  const keyEl = key === undefined ? null : h("span", { class: "json-key" }, key, ": ");
  if (v !== null && typeof v === "object") {
    const isArray = Array.isArray(v);
    const entries: [string, unknown][] = isArray ? (v as unknown[]).map((x, i) => [String(i), x]) : Object.entries(v as object);
    const summary = isArray ? `[${entries.length}]` : `{${entries.length}}`;
    if (entries.length === 0) {
      return h("div", { class: "json-leaf" }, keyEl, h("span", { class: "json-punct" }, isArray ? "[]" : "{}"));
    }
    const children: HTMLElement[] = [];
    for (const [k, x] of entries.slice(0, MAX_ITEMS)) {
      children.push(node(x, openDepth, depth + 1, isArray ? h("span", { class: "json-index" }, k) : k));
    }
    if (entries.length > MAX_ITEMS) {
      children.push(h("div", { class: "json-leaf muted" }, `… ${entries.length - MAX_ITEMS} more (copy to see all)`));
    }
    return h(
      "details",
      { class: "json-node", open: depth < openDepth },
      h("summary", null, keyEl, h("span", { class: "json-punct" }, summary)),
      h("div", { class: "json-children" }, children),
    );
  }
  return h("div", { class: "json-leaf" }, keyEl, scalar(v));
}

function scalar(v: unknown): HTMLElement {
  if (typeof v === "string") {
    const s = v.length > MAX_STRING ? `${v.slice(0, MAX_STRING)}… (${v.length} characters; copy to see all)` : v;
    return h("span", { class: "json-string" }, JSON.stringify(s));
  }
  if (typeof v === "number") return h("span", { class: "json-number" }, String(v));
  if (typeof v === "boolean") return h("span", { class: "json-bool" }, String(v));
  return h("span", { class: "json-null" }, "null");
}
