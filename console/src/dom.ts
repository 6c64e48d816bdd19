// A small DOM builder: h(tag, props, ...children). Text is always set as
// text (never parsed as HTML), so values from the gateway cannot inject
// markup. Style attributes are not used (the page's CSP forbids inline
// styles); layout that depends on data goes through CSSOM (el.style).

export type Child = Node | string | number | null | undefined | false | Child[];
export type Props = Record<string, unknown>;

const PROPERTY_KEYS = new Set(["value", "checked", "disabled", "hidden", "selected", "open", "indeterminate"]);

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props?: Props | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, v] of Object.entries(props)) {
      if (v === undefined || v === null || v === false) {
        if (PROPERTY_KEYS.has(key)) (el as unknown as Record<string, unknown>)[key] = false;
        continue;
      }
      if (key.startsWith("on") && typeof v === "function") {
        el.addEventListener(key.slice(2).toLowerCase(), v as EventListener);
      } else if (key === "class") {
        el.className = String(v);
      } else if (PROPERTY_KEYS.has(key)) {
        (el as unknown as Record<string, unknown>)[key] = v;
      } else {
        el.setAttribute(key, v === true ? "" : String(v));
      }
    }
  }
  append(el, children);
  return el;
}

export function append(parent: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(parent, c);
    else if (c instanceof Node) parent.appendChild(c);
    else parent.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces el's children. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

/** Returns a function that runs fn at most once per wait ms, trailing. */
export function throttle(fn: () => void, wait: number): (() => void) & { cancel(): void } {
  let timer: number | undefined;
  let last = 0;
  const run = () => {
    timer = undefined;
    last = Date.now();
    fn();
  };
  const t = () => {
    if (timer !== undefined) return;
    const due = Math.max(0, last + wait - Date.now());
    timer = window.setTimeout(run, due);
  };
  t.cancel = () => {
    if (timer !== undefined) window.clearTimeout(timer);
    timer = undefined;
  };
  return t;
}

let idCounter = 0;
/** A document-unique id for label/aria wiring. */
export function uid(prefix: string): string {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}
