// One pending approval with its decision controls: approve or deny with a
// note; select mode picks one option, rank mode orders them. Used by the
// inbox and by the run page.

import { append, h, uid } from "../dom";
import { timeEl } from "../format";
import type { ApprovalSummary } from "../live";
import { link } from "../nav";
import { describeError, rpc } from "../rpc";
import { approvalAllows } from "../scopes";
import type { Decided, Session } from "../session";
import { actionButton } from "../ui";

const MODE_LABEL: Record<string, string> = {
  gate: "Approve or deny",
  decision: "Decision",
  select: "Pick one",
  rank: "Rank the options",
};

export function approvalCard(a: ApprovalSummary, session: Session, onDecided: (d: Decided) => void, opts: { showRun?: boolean } = {}): HTMLElement {
  const titleId = uid("appr");
  const noteId = uid("note");
  const note = h("textarea", { id: noteId, rows: 2, maxlength: 4000, placeholder: "Why (optional; stored with the decision)" });
  const err = h("p", { class: "form-error", role: "alert" });
  err.hidden = true;
  const userId = session.identity.userId;
  const notAllowedUser = a.allowedUsers.length > 0 && (!userId || !a.allowedUsers.includes(userId));
  const blocked = notAllowedUser
    ? `Only ${a.allowedUsers.join(", ")} may decide`
    : approvalAllows(session.identity.scopes, a.allowedScopes) === false
      ? `Requires one of ${a.allowedScopes.join(", ")}`
      : null;

  // Select mode: one radio per option. Rank mode: an ordered list with
  // move buttons (keyboard-operable, no drag and drop needed).
  let choice: (() => { selected?: string; ranked?: string[] } | string) | null = null;
  let optionsEl: HTMLElement | null = null;
  if (a.approvalMode === "select" && a.options.length) {
    const name = uid("sel");
    optionsEl = h(
      "fieldset",
      { class: "options" },
      h("legend", null, "Choose one"),
      a.options.map((o) =>
        h(
          "label",
          { class: "option" },
          h("input", { type: "radio", name, value: o.key }),
          h("span", null, h("strong", null, o.label), o.summary ? h("span", { class: "muted" }, ` — ${o.summary}`) : null),
        ),
      ),
    );
    choice = () => {
      const picked = optionsEl!.querySelector<HTMLInputElement>("input:checked");
      return picked ? { selected: picked.value } : "Pick an option to approve.";
    };
  } else if (a.approvalMode === "rank" && a.options.length) {
    const order = a.options.map((o) => o.key);
    const list = h("ol", { class: "rank" });
    const draw = (focusKey?: string, dir?: string) => {
      list.replaceChildren(
        ...order.map((key, i) => {
          const o = a.options.find((x) => x.key === key)!;
          const up = h("button", { type: "button", class: "btn btn-small", "aria-label": `Move ${o.label} up`, disabled: i === 0, "data-dir": "up" }, "↑");
          const down = h("button", { type: "button", class: "btn btn-small", "aria-label": `Move ${o.label} down`, disabled: i === order.length - 1, "data-dir": "down" }, "↓");
          up.addEventListener("click", () => {
            [order[i - 1], order[i]] = [order[i], order[i - 1]];
            draw(key, "up");
          });
          down.addEventListener("click", () => {
            [order[i + 1], order[i]] = [order[i], order[i + 1]];
            draw(key, "down");
          });
          return h(
            "li",
            { "data-key": key },
            h("span", { class: "rank-label" }, h("strong", null, o.label), o.summary ? h("span", { class: "muted" }, ` — ${o.summary}`) : null),
            h("span", { class: "rank-moves" }, up, down),
          );
        }),
      );
      if (focusKey) {
        const li = list.querySelector<HTMLElement>(`li[data-key="${CSS.escape(focusKey)}"]`);
        const btn = li?.querySelector<HTMLButtonElement>(`button[data-dir="${dir}"]:not([disabled])`) ?? li?.querySelector<HTMLButtonElement>("button:not([disabled])");
        btn?.focus();
      }
    };
    draw();
    optionsEl = h("fieldset", { class: "options" }, h("legend", null, "Order, most preferred first"), list);
    choice = () => ({ ranked: [...order] });
  }

  const card = h("article", { class: "card approval", "aria-labelledby": titleId, "data-run": a.runId, "data-node": a.nodeId });
  const decide = async (approved: boolean) => {
    err.hidden = true;
    const decision: Record<string, unknown> = { approved };
    const n = note.value.trim();
    if (n) decision.note = n;
    if (approved && choice) {
      const c = choice();
      if (typeof c === "string") {
        err.textContent = c;
        err.hidden = false;
        return;
      }
      Object.assign(decision, c);
    }
    for (const b of card.querySelectorAll<HTMLButtonElement>("button")) b.disabled = true;
    try {
      await rpc("submitApproval", { runId: a.runId, nodeId: a.nodeId, iteration: a.iteration, decision });
      onDecided({ approval: a, approved, note: n, at: Date.now() });
    } catch (e) {
      for (const b of card.querySelectorAll<HTMLButtonElement>("button")) b.disabled = false;
      err.textContent = describeError(e);
      err.hidden = false;
    }
  };

  append(card, [
    h(
      "header",
      { class: "card-head" },
      h("h2", { id: titleId, class: "card-title" }, a.requestTitle),
      h("span", { class: "tag" }, MODE_LABEL[a.approvalMode] ?? a.approvalMode),
    ),
    a.requestSummary ? h("p", { class: "summary" }, a.requestSummary) : null,
    h(
      "dl",
      { class: "facts" },
      h("dt", null, "Workflow"),
      h("dd", null, session.workflowName(a.workflowKey)),
      opts.showRun === false ? null : [h("dt", null, "Run"), h("dd", null, link(`/runs/${encodeURIComponent(a.runId)}`, { class: "mono" }, a.runId))],
      h("dt", null, "Step"),
      h("dd", { class: "mono" }, a.nodeId, a.iteration ? ` (iteration ${a.iteration})` : ""),
      h("dt", null, "Requested"),
      h("dd", null, timeEl(a.requestedAtMs, true)),
      a.allowedUsers.length ? [h("dt", null, "Who may decide"), h("dd", null, a.allowedUsers.join(", "))] : null,
      a.allowedScopes.length ? [h("dt", null, "Needs one of"), h("dd", null, a.allowedScopes.map((s) => h("code", null, s)).flatMap((c, i) => (i ? [", ", c] : [c])))] : null,
    ),
    optionsEl,
    h("div", { class: "field" }, h("label", { for: noteId }, "Note"), note),
    err,
    h(
      "div",
      { class: "actions" },
      actionButton({ label: "Approve", method: "submitApproval", gate: session, kind: "ok", blocked, onClick: () => void decide(true) }),
      actionButton({ label: "Deny", method: "submitApproval", gate: session, kind: "danger", blocked, onClick: () => void decide(false) }),
    ),
  ]);
  return card;
}
