// Client-side routes under the mount path. Links are real <a href>s (so a
// middle click opens a tab); a plain click navigates without a reload.

import { base } from "./boot";
import { h, type Child } from "./dom";

let onNavigate: () => void = () => {};

export function setNavigateHandler(fn: () => void): void {
  onNavigate = fn;
}

/** The current route path relative to the mount ("/runs/abc"). */
export function routePath(): string {
  let p = location.pathname;
  if (base && p.startsWith(base)) p = p.slice(base.length);
  if (!p.startsWith("/")) p = `/${p}`;
  return p;
}

export function href(path: string): string {
  return `${base}${path}`;
}

export function navigate(path: string, opts: { replace?: boolean; state?: unknown } = {}): void {
  const url = href(path);
  if (opts.replace) history.replaceState(opts.state ?? null, "", url);
  else history.pushState(opts.state ?? null, "", url);
  onNavigate();
}

/** Updates the query string of the current page without a new history
 * entry or a re-render. */
export function setQuery(q: URLSearchParams): void {
  const s = q.toString();
  history.replaceState(history.state, "", `${location.pathname}${s ? `?${s}` : ""}`);
}

export function link(path: string, attrs: Record<string, unknown>, ...children: Child[]): HTMLAnchorElement {
  const a = h("a", { ...attrs, href: href(path) }, ...children);
  a.addEventListener("click", (ev) => {
    if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    ev.preventDefault();
    navigate(path);
  });
  return a;
}

window.addEventListener("popstate", () => onNavigate());
