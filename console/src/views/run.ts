// A run: its state and facts, the actions an operator takes (cancel,
// resume, retry from the failed step, send a signal, decide its pending
// approval), its input and output, the node timeline with attempts, the
// task output streamed live, and its events followed with streamRunEvents
// (resuming after a dropped socket from the last seq seen).

import { fill, h, throttle, uid } from "../dom";
import { absolute, duration, errorMessage, isTerminal, statusBadge, statusLabel, timeEl } from "../format";
import { jsonView } from "../json";
import { RunStream, type RunRow, type RunStreamFrame, type SocketStatus } from "../live";
import { link } from "../nav";
import { describeError, rpc, RpcError } from "../rpc";
import { actionButton, copyButton, emptyState, errorState, loading, toast } from "../ui";
import { approvalCard } from "./approvalCard";
import { parseInput } from "./launch";
import type { View } from "./view";

interface RunDetail extends RunRow {
  summary: Record<string, number>;
  runState?: { state: string; blocked?: { kind: string; nodeId?: string; wakeAt?: string; correlationKey?: string; requestedAt?: string } };
  output: unknown;
  input: unknown;
}

interface Attempt {
  nodeId: string;
  iteration: number;
  attempt: number;
  state: string;
  startedAtMs: number | null;
  finishedAtMs: number | null;
  errorJson: string | null;
}

interface NodeInfo {
  nodeId: string;
  state: string;
  order: number;
  approval: boolean;
  error: string;
  retries: number;
  decision: boolean | null;
}

interface EventRow {
  seq: number;
  event: string;
  payload: any;
  at: number | null;
}

const MAX_LOG_LINES = 5000;
const MAX_EVENT_ROWS = 1000;

export const runView: View = (root, ctx) => {
  const { session } = ctx;
  const runId = ctx.params[0];
  ctx.setTitle(`Run ${runId}`);
  let run: RunDetail | null = null;
  let attempts: Attempt[] = [];
  const nodes = new Map<string, NodeInfo>();
  const events: EventRow[] = [];
  let disposed = false;
  let stream: RunStream | null = null;
  const openNodes = new Set<string>();
  const outputs = new Map<string, HTMLElement>();

  // Page skeleton: each part re-renders on its own.
  const head = h("div", { class: "run-head" });
  const banner = h("div", { class: "banner-host" });
  const facts = h("div", { class: "facts-host" });
  const approvalsHost = h("div", { class: "run-approvals" });
  const signalHost = h("div");
  const io = h("div", { class: "grid-2" });
  const timeline = h("div", { class: "timeline-host" });
  const logs = h("pre", { class: "logs", tabindex: "0", "aria-label": "Task output", "aria-live": "off" });
  const logsEmpty = h("p", { class: "muted" }, "No output yet. Task bodies write here with t.emit(...) and t.exec(...).");
  const eventsBody = h("tbody");
  const eventsNote = h("p", { class: "muted small" });
  const streamNote = h("span", { class: "stream-status muted small", role: "status" });
  const showOutputEvents = h("input", { type: "checkbox", id: uid("toe") });
  const section = (title: string, ...children: (HTMLElement | null)[]) =>
    h("section", { class: "panel", "aria-label": title }, h("h2", null, title), ...children);

  fill(
    root,
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, link("/runs", {}, "Runs"), h("span", { "aria-hidden": "true" }, " / "), h("span", { class: "mono" }, runId)),
    head,
    h("div", { class: "run-body" }, loading("Loading the run")),
  );

  function mountBody(): void {
    const logsWrap = h("div", { class: "logs-wrap" }, logsEmpty, logs);
    const eventsTable = h(
      "div",
      { class: "events-wrap", tabindex: "0", role: "region", "aria-label": "Run events" },
      h(
        "table",
        { class: "events-table" },
        h("thead", null, h("tr", null, ["Seq", "Event", "Step", "Detail", "Received"].map((t) => h("th", { scope: "col" }, t)))),
        eventsBody,
      ),
    );
    showOutputEvents.addEventListener("change", renderEvents);
    root.querySelector(".run-body")!.replaceWith(
      h(
        "div",
        { class: "run-body" },
        banner,
        facts,
        approvalsHost,
        signalHost,
        io,
        section("Timeline", timeline),
        section("Logs", logsWrap),
        h(
          "section",
          { class: "panel", "aria-label": "Events" },
          h(
            "div",
            { class: "panel-head" },
            h("h2", null, "Events"),
            h("label", { class: "check", for: showOutputEvents.id }, showOutputEvents, " Show task output events"),
            streamNote,
          ),
          eventsNote,
          eventsTable,
        ),
      ),
    );
    logs.hidden = true;
  }

  // ---- Header, facts, banner, actions ----

  function renderHead(): void {
    if (!run) return;
    const r = run;
    ctx.setTitle(`${session.workflowName(r.workflowKey)} ${runId.slice(0, 8)}`);
    const terminal = isTerminal(r.status);
    const actions: HTMLElement[] = [];
    if (!terminal) {
      let confirming = false;
      actions.push(
        actionButton({
          label: r.cancelRequestedAtMs ? "Cancelling…" : "Cancel run",
          method: "cancelRun",
          gate: session,
          kind: "danger",
          blocked: r.cancelRequestedAtMs ? "Cancellation was requested" : null,
          onClick: (ev) => {
            const b = ev.currentTarget as HTMLButtonElement;
            if (!confirming) {
              confirming = true;
              b.textContent = "Confirm cancel";
              window.setTimeout(() => {
                confirming = false;
                if (b.isConnected) b.textContent = "Cancel run";
              }, 4000);
              return;
            }
            void act("Cancel", async () => {
              await rpc("cancelRun", { runId });
              toast("Cancelling the run.", "info");
            });
          },
        }),
      );
      actions.push(
        actionButton({
          label: "Resume",
          method: "resumeRun",
          gate: session,
          onClick: () =>
            void act("Resume", async () => {
              const res = await rpc<{ status: string }>("resumeRun", { runId });
              toast(`Resume: ${res.status}.`, "info");
            }),
        }),
      );
      actions.push(actionButton({ label: "Send signal", method: "submitSignal", gate: session, onClick: () => toggleSignalForm() }));
    }
    if (r.status === "failed") {
      actions.push(
        actionButton({
          label: "Retry from failed step",
          method: "resumeRun",
          gate: session,
          kind: "primary",
          onClick: () =>
            void act("Retry", async () => {
              const res = await rpc<{ status: string }>("resumeRun", { runId, options: { retryFailed: true } });
              toast(`Retrying from the failed step (${res.status}).`, "ok");
            }),
        }),
      );
    }
    if (terminal && r.input && typeof r.input === "object") {
      const q = new URLSearchParams({ workflow: r.workflowKey, input: JSON.stringify(r.input, null, 2) });
      actions.push(link(`/launch?${q}`, { class: "btn" }, "Launch again"));
    }
    fill(
      head,
      h(
        "div",
        { class: "run-title" },
        h("h1", null, session.workflowName(r.workflowKey), " ", statusBadge(r.status)),
        h("div", { class: "run-id" }, h("span", { class: "mono" }, runId), copyButton(() => runId, "Copy id")),
      ),
      h("div", { class: "actions" }, actions),
    );
  }

  function renderBanner(): void {
    if (!run) return;
    const b = run.runState?.blocked;
    let text: (string | HTMLElement)[] | null = null;
    if (run.status === "waiting-approval") {
      text = ["Waiting for a decision on ", h("code", null, b?.nodeId ?? "an approval"), session.can("submitApproval") ? ": decide below." : "."];
    } else if (run.status === "waiting-event") {
      text = ["Waiting for a signal", b?.nodeId ? [" at ", h("code", null, b.nodeId)] : "", b?.correlationKey ? [" (", h("code", null, b.correlationKey), ")"] : "", ". Send one with Send signal."].flat();
    } else if (run.status === "waiting-timer") {
      const at = b?.wakeAt ? Date.parse(b.wakeAt) : NaN;
      text = ["Sleeping", b?.nodeId ? [" at ", h("code", null, b.nodeId)] : "", Number.isFinite(at) ? [" until ", timeEl(at, true)] : "", "."].flat();
    } else if (run.runState && (run.runState.state === "stale" || run.runState.state === "orphaned")) {
      text = ["The run's engine has not reported for a while (", run.runState.state, "). Resume restarts it."];
    }
    fill(banner, text ? h("div", { class: `banner tone-${run.status.startsWith("waiting") ? "wait" : "bad"}` }, text) : null);
  }

  function renderFacts(): void {
    if (!run) return;
    const r = run;
    const end = r.finishedAtMs ?? (isTerminal(r.status) ? null : Date.now());
    const start = r.startedAtMs ?? r.createdAtMs;
    let triggeredBy = "";
    try {
      const cfg = r.configJson ? JSON.parse(r.configJson) : null;
      triggeredBy = cfg?.gatewayTriggeredBy ?? cfg?.auth?.triggeredBy ?? "";
    } catch {
      /* not JSON: leave it out */
    }
    const summary = Object.entries(r.summary ?? {})
      .filter(([, n]) => n > 0)
      .map(([s, n]) => `${n} ${statusLabel(s).toLowerCase()}`)
      .join(", ");
    const err = errorMessage(r.errorJson);
    fill(
      facts,
      h(
        "dl",
        { class: "facts facts-grid" },
        h("div", null, h("dt", null, "Workflow"), h("dd", null, session.workflowName(r.workflowKey), " ", h("span", { class: "mono muted small" }, r.workflowKey))),
        h("div", null, h("dt", null, "Created"), h("dd", null, timeEl(r.createdAtMs, true))),
        h("div", null, h("dt", null, "Started"), h("dd", null, timeEl(r.startedAtMs, true))),
        h("div", null, h("dt", null, "Finished"), h("dd", null, timeEl(r.finishedAtMs, true))),
        h("div", null, h("dt", null, "Duration"), h("dd", null, end ? duration(end - start) : "—", isTerminal(r.status) ? "" : " so far")),
        h("div", null, h("dt", null, "Steps"), h("dd", null, summary || "none yet")),
        triggeredBy ? h("div", null, h("dt", null, "Triggered by"), h("dd", null, triggeredBy)) : null,
      ),
      err ? h("div", { class: "error-box", role: "note" }, h("strong", null, "Error: "), err) : null,
    );
  }

  function renderIO(): void {
    if (!run) return;
    const out = isTerminal(run.status)
      ? jsonView(run.output, { label: "output", empty: "The workflow returned nothing." })
      : h("p", { class: "muted" }, "The output appears when the run finishes.");
    fill(
      io,
      h("section", { class: "panel", "aria-label": "Input" }, h("h2", null, "Input"), jsonView(run.input, { label: "input", empty: "No input." })),
      h("section", { class: "panel", "aria-label": "Output" }, h("h2", null, "Output"), out),
    );
  }

  function renderApprovals(): void {
    const mine = session.approvals.filter((a) => a.runId === runId);
    fill(
      approvalsHost,
      mine.map((a) =>
        approvalCard(
          a,
          session,
          (d) => {
            toast(d.approved ? "Approved: the run continues." : "Denied.", d.approved ? "ok" : "info");
            session.approvals = session.approvals.filter((x) => !(x.runId === a.runId && x.nodeId === a.nodeId && x.iteration === a.iteration));
            renderApprovals();
            void session.loadApprovals().catch(() => {});
            refreshRun();
          },
          { showRun: false },
        ),
      ),
    );
  }

  let signalOpen = false;
  function toggleSignalForm(): void {
    signalOpen = !signalOpen;
    if (!signalOpen) {
      signalHost.replaceChildren();
      return;
    }
    const nameId = uid("sig");
    const corrId = uid("corr");
    const dataId = uid("data");
    const name = h("input", { id: nameId, type: "text", required: true, autocomplete: "off", spellcheck: "false", class: "mono" });
    const corr = h("input", { id: corrId, type: "text", autocomplete: "off", spellcheck: "false", class: "mono" });
    const data = h("textarea", { id: dataId, rows: 4, class: "mono", spellcheck: "false" });
    data.value = "{}";
    const err = h("p", { class: "form-error", role: "alert" });
    err.hidden = true;
    const key = run?.runState?.blocked?.correlationKey;
    if (key) name.value = key;
    const form = h(
      "form",
      { class: "card signal-form", novalidate: true },
      h("h2", null, "Send a signal"),
      h(
        "div",
        { class: "grid-2" },
        h("div", { class: "field" }, h("label", { for: nameId }, "Signal name"), name),
        h("div", { class: "field" }, h("label", { for: corrId }, "Correlation id ", h("span", { class: "muted" }, "(optional)")), corr),
      ),
      h("div", { class: "field" }, h("label", { for: dataId }, "Payload (JSON)"), data),
      err,
      h("div", { class: "actions" }, h("button", { type: "submit", class: "btn btn-primary" }, "Send"), h("button", { type: "button", class: "btn", onclick: () => toggleSignalForm() }, "Close")),
    );
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      err.hidden = true;
      if (!name.value.trim()) {
        err.textContent = "Name the signal the run waits for (the event of its ctx.waitForEvent or ctx.signal).";
        err.hidden = false;
        name.focus();
        return;
      }
      let payload: unknown = {};
      if (data.value.trim()) {
        try {
          payload = JSON.parse(data.value);
        } catch (e) {
          const r = parseInput(data.value);
          err.textContent = "error" in r ? r.error : `Not valid JSON: ${String(e)}`;
          err.hidden = false;
          data.focus();
          return;
        }
      }
      const params: Record<string, unknown> = { runId, signalName: name.value.trim(), data: payload };
      if (corr.value.trim()) params.correlationId = corr.value.trim();
      try {
        const res = await rpc<{ seq: number }>("submitSignal", params);
        toast(`Signal ${name.value.trim()} delivered (#${res.seq}).`, "ok");
        toggleSignalForm();
        refreshRun();
      } catch (e) {
        err.textContent = describeError(e);
        err.hidden = false;
      }
    });
    fill(signalHost, form);
    name.focus();
  }

  async function act(what: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
      refreshRun();
    } catch (e) {
      toast(`${what} failed: ${describeError(e)}`, "bad", 10000);
    }
  }

  // ---- Timeline ----

  function nodeOf(nodeId: string, seq: number): NodeInfo {
    let n = nodes.get(nodeId);
    if (!n) {
      n = { nodeId, state: "pending", order: seq, approval: false, error: "", retries: 0, decision: null };
      nodes.set(nodeId, n);
    }
    return n;
  }

  function renderTimeline(): void {
    const order = [...nodes.values()];
    // Nodes known only from attempts (events trimmed from the window).
    for (const a of attempts) {
      if (!nodes.has(a.nodeId)) order.push({ nodeId: a.nodeId, state: a.state, order: Number.MAX_SAFE_INTEGER, approval: false, error: "", retries: 0, decision: null });
    }
    order.sort((x, y) => x.order - y.order);
    if (order.length === 0) {
      fill(timeline, h("p", { class: "muted" }, run && isTerminal(run.status) ? "This run has no steps." : "No steps yet."));
      return;
    }
    const focused = (document.activeElement as HTMLElement | null)?.closest?.("li[data-node]")?.getAttribute("data-node") ?? null;
    const spanStart = run ? (run.startedAtMs ?? run.createdAtMs) : Date.now();
    const spanEnd = run?.finishedAtMs ?? Date.now();
    const span = Math.max(1, spanEnd - spanStart);
    const byNode = new Map<string, Attempt[]>();
    for (const a of attempts) {
      const list = byNode.get(a.nodeId) ?? [];
      list.push(a);
      byNode.set(a.nodeId, list);
    }
    const items = order.map((n) => {
      const at = (byNode.get(n.nodeId) ?? []).slice().sort((a, b) => a.attempt - b.attempt);
      const kind = at.length ? "task" : n.approval ? "approval" : run?.runState?.blocked?.nodeId === n.nodeId ? run.runState.blocked.kind : "step";
      const starts = at.map((a) => a.startedAtMs ?? 0).filter(Boolean);
      const s = starts.length ? Math.min(...starts) : null;
      const last = at[at.length - 1];
      const e = last ? (last.finishedAtMs ?? (last.state === "in-progress" ? Date.now() : null)) : null;
      const bar = h("span", { class: `bar tone-bar-${n.state}` });
      if (s !== null) {
        bar.style.left = `${Math.min(99.5, ((s - spanStart) / span) * 100)}%`;
        bar.style.width = `${Math.max(0.5, (((e ?? s) - s) / span) * 100)}%`;
      } else {
        bar.hidden = true;
      }
      const lastErr = n.error || errorMessage(last?.errorJson);
      const details = h(
        "details",
        { open: openNodes.has(n.nodeId) },
        h(
          "summary",
          null,
          h("span", { class: "node-state" }, statusBadge(n.state)),
          h(
            "span",
            { class: "node-main" },
            h("span", { class: "node-id mono" }, n.nodeId),
            h("span", { class: "tag" }, kind),
            at.length > 1 ? h("span", { class: "muted small" }, `${at.length} attempts`) : null,
            n.decision !== null ? h("span", { class: `small tone-text-${n.decision ? "ok" : "bad"}` }, n.decision ? "approved" : "denied") : null,
          ),
          h("span", { class: "node-time muted small" }, s ? [timeEl(s), ` · ${duration((e ?? Date.now()) - s)}`] : null),
          h("span", { class: "track", "aria-hidden": "true" }, bar),
        ),
        lastErr ? h("p", { class: "error-text" }, lastErr) : null,
        at.length
          ? h(
              "div",
              { class: "table-scroll" },
              h(
                "table",
                { class: "attempts" },
                h("caption", { class: "sr-only" }, `Attempts of ${n.nodeId}`),
                h("thead", null, h("tr", null, ["Attempt", "State", "Started", "Duration", "Error"].map((t) => h("th", { scope: "col" }, t)))),
                h(
                  "tbody",
                  null,
                  at.map((a) =>
                    h(
                      "tr",
                      null,
                      h("td", null, `#${a.attempt}`, a.iteration ? ` (iteration ${a.iteration})` : ""),
                      h("td", null, statusBadge(a.state)),
                      h("td", null, a.startedAtMs ? h("span", { title: absolute(a.startedAtMs) }, absolute(a.startedAtMs).slice(11)) : "—"),
                      h("td", null, a.startedAtMs ? duration((a.finishedAtMs ?? Date.now()) - a.startedAtMs) : "—"),
                      h("td", { class: "error-text" }, errorMessage(a.errorJson)),
                    ),
                  ),
                ),
              ),
            )
          : null,
        h("div", { class: "node-output" }, outputs.get(n.nodeId) ?? null),
      );
      details.addEventListener("toggle", () => {
        if (details.open) {
          openNodes.add(n.nodeId);
          void loadOutput(n.nodeId, details.querySelector(".node-output")!);
        } else {
          openNodes.delete(n.nodeId);
        }
      });
      return h("li", { "data-node": n.nodeId, class: `node state-${n.state}` }, details);
    });
    fill(timeline, h("ol", { class: "timeline" }, items));
    if (focused) timeline.querySelector<HTMLElement>(`li[data-node="${CSS.escape(focused)}"] summary`)?.focus();
  }

  async function loadOutput(nodeId: string, host: HTMLElement): Promise<void> {
    const n = nodes.get(nodeId);
    const settled = n && (n.state === "finished" || n.state === "failed" || n.state === "skipped");
    if (outputs.has(nodeId) && settled) return;
    if (!settled) {
      fill(host, h("p", { class: "muted small" }, "The step's output appears when it finishes."));
      return;
    }
    fill(host, loading("Loading output"));
    try {
      const res = await session.read<{ status: string; row: unknown }>("getNodeOutput", { runId, nodeId, iteration: 0 });
      const el = h("div", null, h("h3", null, "Output"), jsonView(res.row, { label: `output of ${nodeId}`, empty: res.status === "produced" ? "null" : "No output." }));
      outputs.set(nodeId, el);
      fill(host, el);
    } catch (e) {
      const none = e instanceof RpcError && e.code === "NodeHasNoOutput";
      const el = h("p", { class: "muted small" }, none ? "This step settles without a value (a timer)." : describeError(e));
      if (none) outputs.set(nodeId, el);
      fill(host, el);
    }
  }

  // ---- Logs and events ----

  let logLines = 0;
  function appendLog(nodeId: string, text: string, streamName: string): void {
    const atBottom = logs.scrollHeight - logs.scrollTop - logs.clientHeight < 40;
    logs.hidden = false;
    logsEmpty.hidden = true;
    const frag = document.createDocumentFragment();
    const lines = text.split("\n");
    if (lines[lines.length - 1] === "") lines.pop();
    for (const line of lines) {
      frag.append(h("span", { class: `log-line ${streamName === "stderr" ? "log-err" : ""}` }, h("span", { class: "log-node" }, `${nodeId} `), line, "\n"));
      logLines += 1;
    }
    logs.append(frag);
    while (logLines > MAX_LOG_LINES && logs.firstChild) {
      logs.firstChild.remove();
      logLines -= 1;
    }
    if (atBottom) logs.scrollTop = logs.scrollHeight;
  }

  function eventDetail(e: EventRow): string {
    const p = e.payload ?? {};
    switch (e.event) {
      case "node.failed":
      case "node.retrying":
        return errorMessage(p.error) + (p.attempt ? ` (attempt ${p.attempt})` : "");
      case "approval.decided":
        return p.approved ? "approved" : "denied";
      case "run.completed":
        return p.status + (p.error ? `: ${errorMessage(p.error)}` : "");
      case "task.output":
        return `${p.stream}: ${String(p.output).slice(0, 120)}`;
      default:
        return p.state ?? "";
    }
  }

  function renderEvents(): void {
    const withOutput = showOutputEvents.checked;
    const shown = events.filter((e) => withOutput || e.event !== "task.output");
    const tail = shown.slice(-MAX_EVENT_ROWS);
    eventsNote.textContent =
      events.length === 0
        ? "No events yet."
        : `${shown.length} event${shown.length === 1 ? "" : "s"}${shown.length > tail.length ? `, the last ${tail.length} shown` : ""}${withOutput ? "" : " (task output hidden)"}.`;
    eventsBody.replaceChildren(...tail.map(eventRow));
  }

  function eventRow(e: EventRow): HTMLElement {
    return h(
      "tr",
      null,
      h("td", { class: "mono" }, String(e.seq)),
      h("td", { class: "mono" }, e.event),
      h("td", { class: "mono" }, e.payload?.nodeId ?? ""),
      h("td", { class: "ev-detail" }, eventDetail(e)),
      h("td", null, e.at ? timeEl(e.at) : h("span", { class: "muted small" }, "earlier")),
    );
  }

  const renderTimelineSoon = throttle(renderTimeline, 250);
  const renderEventsSoon = throttle(renderEvents, 250);
  const refreshRunSoon = throttle(() => void loadRun(), 500);
  const refreshAttemptsSoon = throttle(() => void loadAttempts(), 700);
  function refreshRun(): void {
    refreshRunSoon();
    refreshAttemptsSoon();
  }

  function onFrame(f: RunStreamFrame): void {
    if (f.kind === "gap") {
      events.push({ seq: f.toSeq, event: "run.gap_resync", payload: { state: `events ${f.fromSeq}–${f.toSeq} were trimmed from the gateway's window` }, at: null });
      renderEventsSoon();
      refreshRun();
      return;
    }
    const e: EventRow = { seq: f.seq, event: f.event, payload: f.payload, at: f.live ? Date.now() : null };
    events.push(e);
    if (events.length > MAX_EVENT_ROWS * 4) events.splice(0, events.length - MAX_EVENT_ROWS * 2);
    const p = f.payload ?? {};
    if (f.event === "task.output") {
      appendLog(String(p.nodeId ?? ""), String(p.output ?? ""), String(p.stream ?? "stdout"));
      if (showOutputEvents.checked) renderEventsSoon();
      return;
    }
    if (typeof p.nodeId === "string") {
      const n = nodeOf(p.nodeId, f.seq);
      switch (f.event) {
        case "node.failed":
          n.error = errorMessage(p.error);
          n.state = p.state ?? "failed";
          break;
        case "node.retrying":
          n.retries += 1;
          n.error = `${errorMessage(p.error)} (attempt ${p.attempt}; retrying)`;
          break;
        case "approval.requested":
        case "approval.auto_approved":
          n.approval = true;
          break;
        case "approval.decided":
          n.approval = true;
          n.decision = Boolean(p.approved);
          break;
        case "node.waiting_approval":
          n.approval = true;
          n.state = p.state ?? "waiting-approval";
          break;
        default:
          if (typeof p.state === "string") {
            n.state = p.state;
            if (p.state === "finished") n.error = "";
          }
      }
      if (n.state === "finished" || n.state === "failed") outputs.delete(n.nodeId);
      renderTimelineSoon();
      if (f.live) refreshAttemptsSoon();
    }
    renderEventsSoon();
    if (f.live) {
      if (f.event === "run.completed") void loadRun();
      else refreshRunSoon();
      // A run parks (its status becomes waiting-*) in a commit of its own,
      // just after the wait's events: read the status again until it says
      // so, rather than show "Running" until the next event.
      if (typeof p.state === "string" && p.state.startsWith("waiting")) followParking(5);
    }
  }

  function followParking(tries: number): void {
    window.setTimeout(async () => {
      if (disposed || tries <= 0) return;
      await loadRun();
      const waiting = [...nodes.values()].some((n) => n.state.startsWith("waiting"));
      if (run && run.status === "running" && waiting) followParking(tries - 1);
    }, 400);
  }

  function setStreamStatus(s: SocketStatus): void {
    streamNote.textContent =
      s === "live" ? "Following live" : s === "reconnecting" ? `Reconnecting… (resumes after the last event seen)` : s === "closed" ? "Stopped" : "Connecting…";
    streamNote.className = `stream-status small ${s === "live" ? "tone-text-ok" : "muted"}`;
  }

  // ---- Loading ----

  async function loadRun(): Promise<void> {
    try {
      const r = await rpc<RunDetail>("getRun", { runId });
      if (disposed) return;
      const first = run === null;
      run = r;
      if (first) {
        mountBody();
        startStream();
        renderApprovals();
        void loadAttempts();
      }
      renderHead();
      renderBanner();
      renderFacts();
      renderIO();
      renderTimelineSoon();
    } catch (e) {
      if (disposed) return;
      if (run === null) {
        const notFound = e instanceof RpcError && (e.status === 404 || e.code === "NOT_FOUND");
        fill(
          root.querySelector(".run-body") ?? root,
          notFound
            ? emptyState("There is no such run", ["No run has the id ", h("code", null, runId), ". It may have been deleted by the retention policy."], link("/runs", { class: "btn" }, "Back to runs"))
            : errorState(e, () => void loadRun()),
        );
      } else {
        toast(`Could not refresh the run: ${describeError(e)}`, "bad");
      }
    }
  }

  async function loadAttempts(): Promise<void> {
    if (!session.can("attempts.list")) return;
    try {
      const list = await rpc<Attempt[]>("attempts.list", { runId });
      if (disposed) return;
      attempts = list;
      renderTimelineSoon();
    } catch {
      /* the timeline shows what the events say */
    }
  }

  function startStream(): void {
    if (!session.can("streamRunEvents")) return;
    setStreamStatus("connecting");
    stream = new RunStream(runId, session.token, onFrame, (message) => session.signOut(message), setStreamStatus);
  }

  const offApprovals = session.approvalsChanged.on(() => renderApprovals());
  const offReconnect = session.reconnected.on(() => refreshRun());
  // Durations of running steps and the run grow while nothing happens.
  const ticker = window.setInterval(() => {
    if (run && !isTerminal(run.status)) {
      renderFacts();
      renderTimelineSoon();
    }
  }, 5000);
  void loadRun();
  return () => {
    disposed = true;
    stream?.close();
    offApprovals();
    offReconnect();
    window.clearInterval(ticker);
    for (const t of [renderTimelineSoon, renderEventsSoon, refreshRunSoon, refreshAttemptsSoon]) t.cancel();
  };
};
