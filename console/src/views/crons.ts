// Crons: the schedules, enable or disable each (cronCreate re-posted with
// enabled), trigger one now, add or remove one.

import { fill, h, uid } from "../dom";
import { errorMessage, timeEl } from "../format";
import { link } from "../nav";
import { describeError, rpc } from "../rpc";
import { actionButton, emptyState, errorState, loading, scopeNeeded, toast } from "../ui";
import type { View } from "./view";

interface Cron {
  cronId: string;
  pattern: string;
  workflow: string | null;
  enabled: boolean;
  createdAtMs: number | null;
  lastRunAtMs: number | null;
  nextRunAtMs: number | null;
  errorJson: string | null;
}

export const cronsView: View = (root, ctx) => {
  const { session } = ctx;
  ctx.setTitle("Crons");
  if (!session.can("cronList")) {
    fill(root, h("h1", null, "Crons"), scopeNeeded("schedules", session.required("cronList")));
    return;
  }
  const body = h("div", null, loading("Loading schedules"));
  const formHost = h("div");
  fill(root, h("div", { class: "page-head" }, h("h1", null, "Crons")), body, formHost);
  let disposed = false;

  const act = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
      await load();
    } catch (e) {
      toast(`${what} failed: ${describeError(e)}`, "bad", 10000);
    }
  };

  function row(c: Cron): HTMLElement {
    const wf = c.workflow ?? "";
    const toggle = actionButton({
      label: c.enabled ? "Disable" : "Enable",
      method: "cronCreate",
      gate: session,
      onClick: () =>
        void act(c.enabled ? "Disable" : "Enable", () => rpc("cronCreate", { cronId: c.cronId, workflow: wf, pattern: c.pattern, enabled: !c.enabled })),
    });
    const trigger = actionButton({
      label: "Trigger now",
      method: "cronRun",
      gate: session,
      onClick: () =>
        void act("Trigger", async () => {
          const res = await rpc<{ runId: string }>("cronRun", { cronId: c.cronId });
          toast(["Started ", link(`/runs/${encodeURIComponent(res.runId)}`, { class: "mono" }, res.runId)], "ok");
        }),
    });
    let confirming = false;
    const del = actionButton({
      label: "Delete",
      method: "cronDelete",
      gate: session,
      kind: "danger",
      onClick: (ev) => {
        const b = ev.currentTarget as HTMLButtonElement;
        if (!confirming) {
          confirming = true;
          b.textContent = "Confirm delete";
          window.setTimeout(() => {
            confirming = false;
            b.textContent = "Delete";
          }, 4000);
          return;
        }
        void act("Delete", () => rpc("cronDelete", { cronId: c.cronId }));
      },
    });
    const err = errorMessage(c.errorJson);
    return h(
      "tr",
      { "data-cron": c.cronId },
      h("td", { "data-label": "Schedule" }, h("code", null, c.pattern), h("div", { class: "muted mono small" }, c.cronId)),
      h("td", { "data-label": "Workflow" }, wf ? session.workflowName(wf) : h("span", { class: "muted" }, "—")),
      h("td", { "data-label": "State" }, h("span", { class: `badge tone-${c.enabled ? "ok" : "idle"}` }, c.enabled ? "Enabled" : "Disabled"), err ? h("div", { class: "error-text small" }, err) : null),
      h("td", { "data-label": "Last run" }, timeEl(c.lastRunAtMs)),
      h("td", { "data-label": "Next run" }, c.enabled ? timeEl(c.nextRunAtMs) : h("span", { class: "muted" }, "—")),
      h("td", { class: "c-actions", "data-label": "Actions" }, h("div", { class: "actions" }, toggle, trigger, del)),
    );
  }

  async function load(): Promise<void> {
    try {
      const crons = await rpc<Cron[]>("cronList");
      if (disposed) return;
      if (crons.length === 0) {
        fill(
          body,
          emptyState(
            "No schedules yet",
            ["Register a workflow with ", h("code", null, 'schedule: "0 8 * * 1-5"'), " in the module, or add a schedule below."],
          ),
        );
        return;
      }
      fill(
        body,
        h(
          "table",
          { class: "crons-table" },
          h("caption", { class: "sr-only" }, "Schedules"),
          h(
            "thead",
            null,
            h("tr", null, ["Schedule", "Workflow", "State", "Last run", "Next run", "Actions"].map((t) => h("th", { scope: "col" }, t))),
          ),
          h("tbody", null, crons.map(row)),
        ),
      );
    } catch (e) {
      if (!disposed) fill(body, errorState(e, () => void load()));
    }
  }

  // Add a schedule.
  if (session.can("cronCreate")) {
    session.listWorkflows().then(
      (list) => {
        if (disposed || list.length === 0) return;
        const wfId = uid("cwf");
        const patId = uid("pat");
        const idId = uid("cid");
        const wf = h("select", { id: wfId }, list.map((w) => h("option", { value: w.key }, w.readableName ? `${w.readableName} (${w.key})` : w.key)));
        const pattern = h("input", { id: patId, type: "text", class: "mono", required: true, placeholder: "*/5 * * * *", spellcheck: "false", autocomplete: "off" });
        const cronId = h("input", { id: idId, type: "text", class: "mono", placeholder: "generated when empty", spellcheck: "false", autocomplete: "off" });
        const err = h("p", { class: "form-error", role: "alert" });
        err.hidden = true;
        const form = h(
          "form",
          { class: "card cron-form", novalidate: true },
          h("h2", null, "Add a schedule"),
          h(
            "div",
            { class: "grid-3" },
            h("div", { class: "field" }, h("label", { for: wfId }, "Workflow"), wf),
            h("div", { class: "field" }, h("label", { for: patId }, "Cron pattern"), pattern),
            h("div", { class: "field" }, h("label", { for: idId }, "Cron id ", h("span", { class: "muted" }, "(optional)")), cronId),
          ),
          h("p", { class: "form-hint" }, "Five fields (minute hour day month weekday), or six with seconds first."),
          err,
          h("div", { class: "actions" }, h("button", { type: "submit", class: "btn btn-primary" }, "Add schedule")),
        );
        form.addEventListener("submit", async (ev) => {
          ev.preventDefault();
          err.hidden = true;
          if (!pattern.value.trim()) {
            err.textContent = "Write a cron pattern, such as */5 * * * * (every five minutes).";
            err.hidden = false;
            pattern.focus();
            return;
          }
          const params: Record<string, unknown> = { workflow: wf.value, pattern: pattern.value.trim(), enabled: true };
          if (cronId.value.trim()) params.cronId = cronId.value.trim();
          try {
            await rpc("cronCreate", params);
            pattern.value = "";
            cronId.value = "";
            toast("Schedule added.", "ok");
            await load();
          } catch (e) {
            err.textContent = describeError(e);
            err.hidden = false;
          }
        });
        fill(formHost, form);
      },
      () => {},
    );
  } else {
    fill(formHost, h("p", { class: "muted" }, "Adding, enabling, disabling or triggering schedules requires ", h("code", null, session.required("cronCreate")), "."));
  }

  const offEvents = session.events.on((f) => {
    if (f.event === "cron.triggered") void load();
  });
  void load();
  return () => {
    disposed = true;
    offEvents();
  };
};
