// Launch: pick a workflow, write its input as JSON (checked before it is
// sent), optionally an idempotency key; then go to the new run.

import { fill, h, uid } from "../dom";
import { navigate } from "../nav";
import { describeError, rpc } from "../rpc";
import type { Workflow } from "../session";
import { actionButton, emptyState, errorState, loading, scopeNeeded, toast } from "../ui";
import type { View } from "./view";

/** Parses the input text; the error names the line and column. */
export function parseInput(text: string): { value: Record<string, unknown> } | { error: string } {
  if (!text.trim()) return { value: {} };
  try {
    const v = JSON.parse(text);
    if (v === null || typeof v !== "object" || Array.isArray(v)) {
      return { error: "The input must be a JSON object, such as {\"name\": \"world\"}." };
    }
    return { value: v };
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const m = /position (\d+)/.exec(msg);
    if (m) {
      const pos = Number(m[1]);
      const before = text.slice(0, pos);
      const line = before.split("\n").length;
      const col = pos - before.lastIndexOf("\n");
      return { error: `Not valid JSON at line ${line}, column ${col}: ${msg.replace(/ in JSON at position \d+.*$/, "")}.` };
    }
    return { error: `Not valid JSON: ${msg}.` };
  }
}

export const launchView: View = (root, ctx) => {
  const { session } = ctx;
  ctx.setTitle("Launch");
  if (!session.can("listWorkflows")) {
    fill(root, h("h1", null, "Launch a run"), scopeNeeded("the workflows", session.required("listWorkflows")));
    return;
  }
  const body = h("div", null, loading("Loading workflows"));
  fill(root, h("div", { class: "page-head" }, h("h1", null, "Launch a run")), body);
  let disposed = false;

  const render = (list: Workflow[]) => {
    if (disposed) return;
    if (list.length === 0) {
      fill(
        body,
        emptyState(
          "This gateway has no workflows",
          ["Its module registers none. Add one with ", h("code", null, 'gateway.register("key", async (ctx) => ...)'), " in the module (SMITHERS_GATEWAY_MODULE) and restart the gateway."],
        ),
      );
      return;
    }
    const wanted = ctx.query.get("workflow");
    let selected = list.find((w) => w.key === wanted) ?? list[0];
    const pickName = uid("wf");
    const picker = h(
      "fieldset",
      { class: "wf-picker" },
      h("legend", null, "Workflow"),
      list.map((w) => {
        const input = h("input", { type: "radio", name: pickName, value: w.key, checked: w === selected });
        input.addEventListener("change", () => {
          selected = w;
        });
        return h(
          "label",
          { class: "wf-option" },
          input,
          h(
            "span",
            { class: "wf-text" },
            h("span", { class: "wf-name" }, w.readableName ?? w.key, w.readableName ? h("span", { class: "mono muted small" }, ` ${w.key}`) : null),
            w.description ? h("span", { class: "wf-desc muted" }, w.description) : null,
          ),
        );
      }),
    );
    const inputId = uid("input");
    const inputErrId = uid("inputerr");
    const input = h("textarea", {
      id: inputId,
      class: "mono",
      rows: 8,
      spellcheck: "false",
      "aria-describedby": inputErrId,
      value: "{}",
    });
    input.value = ctx.query.get("input") ?? "{}";
    const inputErr = h("p", { id: inputErrId, class: "form-hint" }, "A JSON object; the workflow reads it as ctx.input.");
    const validate = (): Record<string, unknown> | null => {
      const r = parseInput(input.value);
      if ("error" in r) {
        inputErr.textContent = r.error;
        inputErr.className = "form-error";
        input.setAttribute("aria-invalid", "true");
        return null;
      }
      inputErr.textContent = "Valid JSON object.";
      inputErr.className = "form-hint ok";
      input.removeAttribute("aria-invalid");
      return r.value;
    };
    input.addEventListener("input", validate);
    const keyId = uid("idem");
    const idem = h("input", { id: keyId, type: "text", autocomplete: "off", spellcheck: "false", maxlength: 256, placeholder: "e.g. deploy-2026-03-04" });
    const err = h("p", { class: "form-error", role: "alert" });
    err.hidden = true;
    const form = h(
      "form",
      { class: "launch-form", novalidate: true },
      picker,
      h("div", { class: "field" }, h("label", { for: inputId }, "Input"), input, inputErr),
      h(
        "div",
        { class: "field" },
        h("label", { for: keyId }, "Idempotency key ", h("span", { class: "muted" }, "(optional)")),
        idem,
        h("p", { class: "form-hint" }, "Launching again with the same key returns the run it started instead of a new one."),
      ),
      err,
      h(
        "div",
        { class: "actions" },
        actionButton({ label: "Launch", method: "launchRun", gate: session, kind: "primary", type: "submit", onClick: () => {} }),
      ),
    );
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (!session.can("launchRun")) return;
      err.hidden = true;
      const value = validate();
      if (!value) {
        input.focus();
        return;
      }
      const params: Record<string, unknown> = { workflow: selected.key, input: value };
      const key = idem.value.trim();
      if (key) params.options = { idempotencyKey: key };
      const submit = form.querySelector<HTMLButtonElement>("button[type=submit]")!;
      submit.disabled = true;
      submit.textContent = "Launching…";
      try {
        const res = await rpc<{ runId: string }>("launchRun", params);
        toast(["Launched ", h("span", { class: "mono" }, res.runId)], "ok");
        navigate(`/runs/${encodeURIComponent(res.runId)}`);
      } catch (e) {
        submit.disabled = false;
        submit.textContent = "Launch";
        err.textContent = describeError(e);
        err.hidden = false;
      }
    });
    fill(body, form);
  };
  const load = () =>
    session.listWorkflows().then(render, (e) => {
      if (!disposed) fill(body, errorState(e, () => void load()));
    });
  void load();
  return () => {
    disposed = true;
  };
};
