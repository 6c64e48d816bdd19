// The operator console: sign-in, the app frame (navigation, who is signed
// in, connection state) and the router.

import "./styles/base.css";
import "./styles/controls.css";
import "./styles/pages.css";
import "./styles/signin-narrow.css";
import { base, tokenless } from "./boot";
import { fill, h } from "./dom";
import { tickTimes } from "./format";
import { link, navigate, routePath, setNavigateHandler } from "./nav";
import { Session, TOKEN_KEY } from "./session";
import { button, toastHost } from "./ui";
import { approvalsView } from "./views/approvals";
import { cronsView } from "./views/crons";
import { launchView } from "./views/launch";
import { runView } from "./views/run";
import { runsView } from "./views/runs";
import { signInView } from "./views/signin";
import type { View } from "./views/view";

const root = document.getElementById("root") ?? document.body.appendChild(h("div", { id: "root" }));

interface Route {
  match: RegExp;
  view: View;
  nav: string;
}

const routes: Route[] = [
  { match: /^\/(?:runs\/?)?$/, view: runsView, nav: "runs" },
  { match: /^\/runs\/([^/]+)\/?$/, view: runView, nav: "runs" },
  { match: /^\/approvals\/?$/, view: approvalsView, nav: "approvals" },
  { match: /^\/launch\/?$/, view: launchView, nav: "launch" },
  { match: /^\/crons\/?$/, view: cronsView, nav: "crons" },
];

let session: Session | null = null;
let disposeView: (() => void) | null = null;
let disposeFrame: (() => void)[] = [];

function setTitle(t: string): void {
  document.title = t ? `${t} · Smithers` : "Smithers Operator Console";
}

function showSignIn(message: string): void {
  disposeView?.();
  disposeView = null;
  for (const d of disposeFrame) d();
  disposeFrame = [];
  session = null;
  setTitle("Sign in");
  fill(root, signInView(message, signIn), toastHost());
}

async function signIn(token: string): Promise<string | null> {
  try {
    const s = await Session.open(token, (message) => showSignIn(message || "You were signed out."));
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    session = s;
    renderFrame(s);
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

let main: HTMLElement;
let navLinks: Record<string, HTMLAnchorElement>;

function renderFrame(s: Session): void {
  const count = h("span", { class: "count", "aria-label": "pending" });
  navLinks = {
    runs: link("/runs", { class: "nav-link" }, "Runs"),
    approvals: link("/approvals", { class: "nav-link" }, "Approvals", count),
    launch: link("/launch", { class: "nav-link" }, "Launch"),
    crons: link("/crons", { class: "nav-link" }, "Crons"),
  };
  const setCount = () => {
    const n = s.approvals.length;
    count.textContent = n ? String(n) : "";
    count.hidden = n === 0;
    count.setAttribute("aria-label", `${n} pending`);
  };
  setCount();
  const conn = h("span", { class: "conn", role: "status" });
  const setConn = () => {
    const live = s.status === "live";
    conn.className = `conn ${live ? "conn-live" : "conn-down"}`;
    conn.textContent = live ? "Live" : s.status === "closed" ? "Offline" : "Reconnecting…";
    conn.title = live ? "Receiving live updates" : "The live connection dropped; reconnecting";
  };
  setConn();
  const id = s.identity;
  const who = id.userId ?? (id.tokenId ? `token ${id.tokenId.slice(0, 8)}` : "anonymous");
  const identity = h(
    "details",
    { class: "identity" },
    h("summary", { "aria-label": `Signed in as ${who}, role ${id.role}` }, h("span", { class: "who" }, who), h("span", { class: "role" }, id.role)),
    h(
      "div",
      { class: "identity-panel" },
      h("p", null, "Signed in as ", h("strong", null, who), " (role ", h("code", null, id.role), ")"),
      id.tokenId ? h("p", { class: "muted" }, "Token id ", h("code", null, id.tokenId)) : null,
      h("p", { class: "label" }, "Scopes"),
      h(
        "ul",
        { class: "scopes" },
        id.scopes.length ? id.scopes.map((sc) => h("li", null, h("code", null, sc))) : h("li", { class: "muted" }, "none"),
      ),
      tokenless ? null : button("Sign out", () => s.signOut("You signed out."), "default"),
    ),
  );
  main = h("main", { id: "main", tabindex: "-1" });
  const header = h(
    "header",
    { class: "top" },
    h("a", { class: "skip", href: "#main" }, "Skip to content"),
    link("/runs", { class: "brand", "aria-label": "Smithers console home" }, h("span", { class: "logo", "aria-hidden": "true" }, "S"), h("span", null, "Smithers")),
    h("nav", { "aria-label": "Main" }, Object.values(navLinks)),
    h("div", { class: "top-right" }, conn, identity),
  );
  fill(root, header, main, toastHost());
  disposeFrame = [s.approvalsChanged.on(setCount), s.statusChanged.on(setConn)];
  if (s.can("listWorkflows")) s.listWorkflows().catch(() => {});
  route(false);
}

function route(focus = true): void {
  if (!session) return;
  disposeView?.();
  disposeView = null;
  const path = routePath();
  let matched: Route | null = null;
  let params: string[] = [];
  for (const r of routes) {
    const m = r.match.exec(path);
    if (m) {
      matched = r;
      params = m.slice(1).map(decodeURIComponent);
      break;
    }
  }
  for (const [k, a] of Object.entries(navLinks)) {
    if (matched?.nav === k) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  main.replaceChildren();
  if (!matched) {
    setTitle("Not found");
    main.append(
      h(
        "div",
        { class: "state empty" },
        h("h1", null, "There is no page here"),
        h("p", null, "The address ", h("code", null, location.pathname), " is not a page of the console."),
        link("/runs", { class: "btn" }, "Go to runs"),
      ),
    );
    return;
  }
  const ctx = { session, params, query: new URLSearchParams(location.search), setTitle };
  disposeView = matched.view(main, ctx) ?? null;
  if (focus) main.focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

setNavigateHandler(() => route(true));
window.setInterval(tickTimes, 10000);

// "/" focuses the page's search field, as in most consoles.
document.addEventListener("keydown", (ev) => {
  if (ev.key !== "/" || ev.metaKey || ev.ctrlKey || ev.altKey) return;
  const t = ev.target as HTMLElement | null;
  if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
  const search = document.querySelector<HTMLInputElement>("[data-search]");
  if (search) {
    ev.preventDefault();
    search.focus();
  }
});

async function start(): Promise<void> {
  if (!location.pathname.startsWith(base || "/")) navigate("/runs", { replace: true });
  const stored = sessionStorage.getItem(TOKEN_KEY);
  if (stored !== null || tokenless) {
    fill(root, h("div", { class: "state loading boot", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), "Connecting…"));
    const err = await signIn(stored ?? "");
    if (err === null) return;
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn(stored !== null || tokenless ? err : "");
    return;
  }
  showSignIn("");
}

void start();
