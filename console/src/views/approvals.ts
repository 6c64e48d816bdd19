// The approvals inbox: every pending approval across runs, live; decide
// in place, then follow the decided runs as they continue.

import { fill, h } from "../dom";
import { isTerminal, statusBadge, timeEl } from "../format";
import type { ApprovalSummary } from "../live";
import { link } from "../nav";
import { rpc } from "../rpc";
import type { Decided } from "../session";
import { emptyState, errorState, loading, scopeNeeded, toast } from "../ui";
import { approvalCard } from "./approvalCard";
import type { View } from "./view";

const key = (a: ApprovalSummary) => `${a.runId}\u0000${a.nodeId}\u0000${a.iteration}`;

export const approvalsView: View = (root, ctx) => {
  const { session } = ctx;
  ctx.setTitle("Approvals");
  if (!session.can("listApprovals")) {
    fill(root, h("h1", null, "Approvals"), scopeNeeded("approvals", session.required("listApprovals")));
    return;
  }
  const sub = h("p", { class: "muted", "aria-live": "polite" });
  const list = h("div", { class: "cards" }, loading("Loading approvals"));
  const decidedList = h("div", { class: "decided" });
  fill(
    root,
    h("div", { class: "page-head" }, h("h1", null, "Approvals")),
    sub,
    list,
    decidedList,
  );
  const cards = new Map<string, HTMLElement>();
  let loaded = false;
  // Cards that arrive after the first render are highlighted.
  let shown = false;

  const onDecided = (d: Decided) => {
    session.decided.unshift(d);
    session.decided.length = Math.min(session.decided.length, 20);
    toast(
      [d.approved ? "Approved " : "Denied ", h("strong", null, d.approval.requestTitle), ". ", link(`/runs/${encodeURIComponent(d.approval.runId)}`, {}, "Follow the run")],
      d.approved ? "ok" : "info",
    );
    cards.get(key(d.approval))?.remove();
    cards.delete(key(d.approval));
    renderPending(session.approvals.filter((a) => key(a) !== key(d.approval)));
    renderDecided();
    // The run may already have moved on before the decision's answer came.
    void follow(d.approval.runId);
    void session.loadApprovals().catch(() => {});
  };

  function renderPending(items: ApprovalSummary[]): void {
    if (items.length === 0) {
      cards.clear();
      sub.textContent = "";
      fill(
        list,
        emptyState(
          "Nothing waits for a decision",
          "Runs that reach ctx.approval(...) show up here at once; this page updates live.",
        ),
      );
      return;
    }
    sub.textContent = `${items.length} waiting for a decision, oldest first`;
    list.querySelector(".state")?.remove();
    const keep = new Set(items.map(key));
    for (const [k, el] of cards) {
      if (!keep.has(k)) {
        el.remove();
        cards.delete(k);
      }
    }
    // Keep cards already shown (a note being typed survives), add new ones
    // in order.
    let prev: HTMLElement | null = null;
    for (const a of items) {
      const k = key(a);
      let el = cards.get(k);
      if (!el) {
        el = approvalCard(a, session, onDecided);
        if (shown) el.classList.add("fresh");
        cards.set(k, el);
      }
      if (prev) prev.after(el);
      else if (list.firstChild !== el) list.prepend(el);
      prev = el;
    }
    shown = true;
  }

  // Runs decided in this tab, followed live until they end.
  const runStatus = new Map<string, string>();
  function renderDecided(): void {
    if (session.decided.length === 0) {
      decidedList.replaceChildren();
      return;
    }
    fill(
      decidedList,
      h("h2", null, "Decided here"),
      h(
        "ul",
        { class: "decided-list" },
        session.decided.map((d) => {
          const st = runStatus.get(d.approval.runId);
          return h(
            "li",
            { "data-run": d.approval.runId },
            h("span", { class: `badge tone-${d.approved ? "ok" : "bad"}` }, d.approved ? "Approved" : "Denied"),
            " ",
            h("strong", null, d.approval.requestTitle),
            " · ",
            link(`/runs/${encodeURIComponent(d.approval.runId)}`, { class: "mono" }, d.approval.runId),
            " · run ",
            st ? statusBadge(st) : h("span", { class: "muted" }, "…"),
            " · ",
            timeEl(d.at),
          );
        }),
      ),
    );
  }
  const follow = async (runId: string) => {
    try {
      const r = await rpc<{ status: string }>("getRun", { runId });
      // The answer may come after the run's run.completed event did: a
      // status read before the run ended must not replace its end.
      const prev = runStatus.get(runId);
      if (prev && isTerminal(prev) && !isTerminal(r.status)) return;
      runStatus.set(runId, r.status);
      renderDecided();
    } catch {
      /* the link still works */
    }
  };
  for (const d of session.decided) void follow(d.approval.runId);
  const offEvents = session.events.on((f) => {
    const runId = f.payload?.runId;
    if (typeof runId !== "string" || !session.decided.some((d) => d.approval.runId === runId)) return;
    const prev = runStatus.get(runId);
    if (f.event === "run.completed") runStatus.set(runId, f.payload.status);
    else if (!prev || !isTerminal(prev)) {
      if (f.event === "node.started" || f.event === "node.pending" || f.event === "approval.decided") runStatus.set(runId, "running");
      else if (f.event === "node.waiting_approval" || f.event === "approval.requested") runStatus.set(runId, "waiting-approval");
    }
    if (runStatus.get(runId) !== prev) renderDecided();
  });

  const offApprovals = session.approvalsChanged.on((items) => {
    loaded = true;
    renderPending(items);
  });
  renderDecided();
  session.loadApprovals().then(
    (items) => {
      loaded = true;
      renderPending(items);
    },
    (e) => {
      if (!loaded) fill(list, errorState(e, () => void session.loadApprovals().catch(() => {})));
    },
  );
  return () => {
    offApprovals();
    offEvents();
  };
};
