// Runs: newest first, filtered by status, workflow, time and run-id
// prefix, paged with listRuns' keyset cursor (every page costs the same
// however deep), kept current by the broadcast events.

import { fill, h, throttle, uid } from "../dom";
import { duration, isTerminal, RUN_STATUSES, shortId, statusBadge, statusLabel, timeEl } from "../format";
import type { RunRow } from "../live";
import { link, navigate, setQuery } from "../nav";
import { describeError, rpc } from "../rpc";
import type { Workflow } from "../session";
import { button, emptyState, errorState, loading, scopeNeeded } from "../ui";
import type { View } from "./view";

const PAGE = 50;

const SINCE: Record<string, [string, number]> = {
  "1h": ["Last hour", 3600e3],
  "24h": ["Last 24 hours", 86400e3],
  "7d": ["Last 7 days", 7 * 86400e3],
  "30d": ["Last 30 days", 30 * 86400e3],
};

interface PageState {
  /** Cursors of the pages before this one ("" = the first page). */
  stack: string[];
}

function parseCursor(s: string | null): { createdAtMs: number; runId: string } | null {
  if (!s) return null;
  const i = s.indexOf(".");
  const at = Number(s.slice(0, i));
  const runId = s.slice(i + 1);
  if (i < 1 || !Number.isInteger(at) || !runId) return null;
  return { createdAtMs: at, runId };
}

export const runsView: View = (root, ctx) => {
  const { session } = ctx;
  ctx.setTitle("Runs");
  if (!session.can("listRuns")) {
    fill(root, h("h1", null, "Runs"), scopeNeeded("runs", session.required("listRuns")));
    return;
  }
  const q = ctx.query;
  const filters = {
    status: q.get("status") ?? "",
    workflow: q.get("workflow") ?? "",
    q: q.get("q") ?? "",
    since: q.get("since") ?? "",
  };
  let cursorText = q.get("after") ?? "";
  let cursor = parseCursor(cursorText);
  const stack: string[] = (history.state as PageState | null)?.stack ?? [];
  let workflows: Workflow[] | null = null;
  let rows: RunRow[] = [];
  let hasMore = false;
  let loaded = false;
  let seen = new Set<string>();
  let disposed = false;

  const statusSel = h(
    "select",
    { id: uid("status"), name: "status" },
    h("option", { value: "" }, "All statuses"),
    RUN_STATUSES.map((s) => h("option", { value: s, selected: filters.status === s }, statusLabel(s))),
  );
  const wfSel = h("select", { id: uid("wf"), name: "workflow" }, h("option", { value: "" }, "All workflows"));
  if (filters.workflow) wfSel.append(h("option", { value: filters.workflow, selected: true }, filters.workflow));
  const sinceSel = h(
    "select",
    { id: uid("since"), name: "since" },
    h("option", { value: "" }, "Any time"),
    Object.entries(SINCE).map(([k, [label]]) => h("option", { value: k, selected: filters.since === k }, label)),
  );
  const search = h("input", {
    id: uid("q"),
    type: "search",
    name: "q",
    value: filters.q,
    placeholder: "Run id starts with…",
    autocomplete: "off",
    spellcheck: "false",
    "data-search": "",
    "aria-keyshortcuts": "/",
  });
  const field = (label: string, el: HTMLElement) => h("div", { class: "field" }, h("label", { for: el.id }, label), el);
  const filterBar = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter runs" },
    field("Status", statusSel),
    field("Workflow", wfSel),
    field("Created", sinceSel),
    field("Run id", search),
  );
  filterBar.addEventListener("submit", (e) => e.preventDefault());

  const body = h("div", { class: "runs-body" }, loading("Loading runs"));
  const pager = h("div", { class: "pager" });
  const count = h("p", { class: "muted small", "aria-live": "polite" });

  fill(
    root,
    h("div", { class: "page-head" }, h("h1", null, "Runs"), link("/launch", { class: "btn btn-primary" }, "Launch a run")),
    filterBar,
    count,
    body,
    pager,
  );

  const applyFilters = () => {
    filters.status = statusSel.value;
    filters.workflow = wfSel.value;
    filters.since = sinceSel.value;
    filters.q = search.value.trim();
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(filters)) if (v) p.set(k, v);
    // A new filter starts again from the newest run.
    navigate(`/runs${p.toString() ? `?${p}` : ""}`, { replace: true, state: { stack: [] } });
  };
  statusSel.addEventListener("change", applyFilters);
  wfSel.addEventListener("change", applyFilters);
  sinceSel.addEventListener("change", applyFilters);
  let searchTimer: number | undefined;
  search.addEventListener("input", () => {
    window.clearTimeout(searchTimer);
    searchTimer = window.setTimeout(() => {
      filters.q = search.value.trim();
      const p = new URLSearchParams(location.search);
      if (filters.q) p.set("q", filters.q);
      else p.delete("q");
      p.delete("after");
      setQuery(p);
      history.replaceState({ stack: [] }, "");
      stack.length = 0;
      cursor = null;
      cursorText = "";
      void load(true);
    }, 250);
  });

  session
    .listWorkflows()
    .then((list) => {
      workflows = list;
      wfSel.replaceChildren(
        h("option", { value: "" }, "All workflows"),
        ...list.map((w) => h("option", { value: w.key, selected: filters.workflow === w.key }, w.readableName ? `${w.readableName} (${w.key})` : w.key)),
      );
      if (loaded) render();
    })
    .catch(() => {
      /* the filter keeps the keys; the table shows keys */
    });

  const params = () => {
    const p: Record<string, unknown> = { limit: PAGE + 1 };
    if (filters.status) p.status = filters.status;
    if (filters.workflow) p.workflow = filters.workflow;
    if (filters.q) p.runIdPrefix = filters.q;
    if (filters.since && SINCE[filters.since]) p.createdFromMs = Date.now() - SINCE[filters.since][1];
    if (cursor) p.cursor = cursor;
    return p;
  };

  async function load(showSpinner: boolean): Promise<void> {
    if (showSpinner && !loaded) fill(body, loading("Loading runs"));
    try {
      const list = await rpc<RunRow[]>("listRuns", params());
      if (disposed) return;
      hasMore = list.length > PAGE;
      const next = list.slice(0, PAGE);
      const fresh = loaded ? new Set(next.filter((r) => !seen.has(r.runId)).map((r) => r.runId)) : new Set<string>();
      rows = next;
      seen = new Set(rows.map((r) => r.runId));
      loaded = true;
      render(fresh);
    } catch (e) {
      if (disposed) return;
      if (!loaded) fill(body, errorState(e, () => void load(true)));
      else count.textContent = `Could not refresh: ${describeError(e)}`;
    }
  }

  function render(fresh = new Set<string>()): void {
    const focusedRun = (document.activeElement as HTMLElement | null)?.closest?.("tr")?.getAttribute("data-run") ?? null;
    const filtered = Boolean(filters.status || filters.workflow || filters.q || filters.since);
    if (rows.length === 0) {
      count.textContent = "";
      fill(
        body,
        filtered
          ? emptyState(
              "No runs match these filters",
              "Widen the time range, pick another status or workflow, or clear the run id search.",
              button("Clear filters", () => navigate("/runs", { state: { stack: [] } })),
            )
          : cursor
            ? emptyState("No older runs", "This is the end of the list.", link("/runs", { class: "btn" }, "Back to the newest runs"))
            : emptyState(
                "No runs yet",
                "Runs appear here as soon as they start: launch one from the Launch page, with POST /v1/rpc/launchRun, from a cron or from a webhook.",
                link("/launch", { class: "btn btn-primary" }, "Launch a run"),
              ),
      );
      renderPager();
      return;
    }
    count.textContent = `${rows.length}${hasMore ? "+" : ""} run${rows.length === 1 ? "" : "s"}${cursor ? " (older page)" : ""}, newest first`;
    const tbody = h(
      "tbody",
      null,
      rows.map((r) => {
        const live = !isTerminal(r.status);
        const end = r.finishedAtMs ?? (live ? Date.now() : null);
        const start = r.startedAtMs ?? r.createdAtMs;
        return h(
          "tr",
          { "data-run": r.runId, class: fresh.has(r.runId) ? "fresh" : "" },
          h("td", { class: "c-status", "data-label": "Status" }, statusBadge(r.status)),
          h("td", { class: "c-run", "data-label": "Run" }, link(`/runs/${encodeURIComponent(r.runId)}`, { class: "mono run-link", title: r.runId }, shortId(r.runId))),
          h(
            "td",
            { class: "c-wf", "data-label": "Workflow" },
            session.workflowName(r.workflowKey, workflows),
            workflows?.some((w) => w.key === r.workflowKey && w.readableName) ? h("span", { class: "muted mono small" }, ` ${r.workflowKey}`) : null,
          ),
          h("td", { class: "c-time", "data-label": "Created" }, timeEl(r.createdAtMs)),
          h(
            "td",
            { class: "c-dur", "data-label": "Duration" },
            end ? h("span", { class: live ? "muted" : "", title: live ? "so far" : null }, duration(end - start), live ? " so far" : "") : h("span", { class: "muted" }, "—"),
          ),
        );
      }),
    );
    const table = h(
      "table",
      { class: "runs-table" },
      h("caption", { class: "sr-only" }, "Runs, newest first"),
      h(
        "thead",
        null,
        h("tr", null, h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Run"), h("th", { scope: "col" }, "Workflow"), h("th", { scope: "col" }, "Created"), h("th", { scope: "col" }, "Duration")),
      ),
      tbody,
    );
    fill(body, table);
    if (focusedRun) {
      body.querySelector<HTMLElement>(`tr[data-run="${CSS.escape(focusedRun)}"] a`)?.focus();
    }
    renderPager();
  }

  function renderPager(): void {
    const newer =
      cursor || stack.length
        ? button("← Newer", () => {
            const prev = stack.slice(0, -1);
            const target = stack[stack.length - 1] ?? "";
            const p = new URLSearchParams(location.search);
            if (target) p.set("after", target);
            else p.delete("after");
            navigate(`/runs${p.toString() ? `?${p}` : ""}`, { state: { stack: prev } });
          })
        : null;
    const last = rows[rows.length - 1];
    const older =
      hasMore && last
        ? button("Older →", () => {
            const p = new URLSearchParams(location.search);
            p.set("after", `${last.createdAtMs}.${last.runId}`);
            navigate(`/runs?${p}`, { state: { stack: [...stack, cursorText] } });
          })
        : null;
    fill(pager, newer, older);
  }

  // Live: a run event refreshes the page (new runs appear on the first
  // page; rows further down change status), at most once a second.
  const refresh = throttle(() => void load(false), 1000);
  const offEvents = session.events.on((f) => {
    const runId = f.payload?.runId;
    if (typeof runId !== "string") return;
    if (!cursor || seen.has(runId)) {
      refresh();
      // The run's status becomes waiting-* in a commit of its own, after
      // the wait's events: look once more a little later.
      if (typeof f.payload?.state === "string" && f.payload.state.startsWith("waiting")) {
        window.setTimeout(() => !disposed && refresh(), 1500);
      }
    }
  });
  const offReconnect = session.reconnected.on(() => refresh());
  void load(true);
  return () => {
    disposed = true;
    refresh.cancel();
    offEvents();
    offReconnect();
    window.clearTimeout(searchTimer);
  };
};
