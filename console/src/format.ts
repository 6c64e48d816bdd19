// Times, durations and statuses as people read them. Every time is shown
// relative ("3 min ago") with the absolute local time beside or in its
// title, and relative times tick (see tickTimes).

import { h } from "./dom";

const pad = (n: number) => String(n).padStart(2, "0");

/** 2026-03-04 12:34:56 in local time. */
export function absolute(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function relative(ms: number, now = Date.now()): string {
  const diff = now - ms;
  const future = diff < 0;
  const s = Math.abs(diff) / 1000;
  let text: string;
  if (s < 5) return future ? "in a moment" : "just now";
  if (s < 60) text = `${Math.floor(s)} s`;
  else if (s < 3600) text = `${Math.floor(s / 60)} min`;
  else if (s < 86400) text = `${Math.floor(s / 3600)} h`;
  else if (s < 86400 * 30) text = `${Math.floor(s / 86400)} d`;
  else return absolute(ms).slice(0, 10);
  return future ? `in ${text}` : `${text} ago`;
}

/** A <time> showing the relative time, the absolute one in its title;
 * with withAbsolute, the absolute time is shown too. */
export function timeEl(ms: number | null | undefined, withAbsolute = false): HTMLElement {
  if (!ms) return h("span", { class: "muted" }, "—");
  const t = h("time", { datetime: new Date(ms).toISOString(), title: absolute(ms), "data-rel": String(ms) }, relative(ms));
  if (!withAbsolute) return t;
  return h("span", { class: "when" }, h("span", { class: "abs" }, absolute(ms)), " ", h("span", { class: "muted" }, "(", t, ")"));
}

/** Refreshes every relative time on the page. */
export function tickTimes(): void {
  const now = Date.now();
  for (const el of document.querySelectorAll<HTMLElement>("time[data-rel]")) {
    const text = relative(Number(el.dataset.rel), now);
    if (el.textContent !== text) el.textContent = text;
  }
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || ms < 0) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr} h ${m % 60} min`;
  return `${Math.floor(hr / 24)} d ${hr % 24} h`;
}

export const RUN_STATUSES = [
  "running",
  "waiting-approval",
  "waiting-event",
  "waiting-timer",
  "finished",
  "failed",
  "cancelled",
  "continued",
] as const;

const LABELS: Record<string, string> = {
  running: "Running",
  "waiting-approval": "Waiting for approval",
  "waiting-event": "Waiting for a signal",
  "waiting-timer": "Waiting on a timer",
  finished: "Finished",
  failed: "Failed",
  cancelled: "Cancelled",
  continued: "Continued",
  pending: "Pending",
  "in-progress": "In progress",
  skipped: "Skipped",
  approved: "Approved",
  denied: "Denied",
};

export function statusLabel(s: string): string {
  return LABELS[s] ?? s;
}

/** The tone of a status: ok, bad, wait, active or idle. */
export function statusTone(s: string): string {
  switch (s) {
    case "finished":
    case "approved":
    case "continued":
      return "ok";
    case "failed":
    case "denied":
      return "bad";
    case "waiting-approval":
    case "waiting-event":
    case "waiting-timer":
      return "wait";
    case "running":
    case "in-progress":
      return "active";
    default:
      return "idle";
  }
}

export function isTerminal(status: string): boolean {
  return status === "finished" || status === "failed" || status === "cancelled" || status === "continued";
}

export function statusBadge(s: string): HTMLElement {
  return h("span", { class: `badge tone-${statusTone(s)}` }, h("span", { class: "dot", "aria-hidden": "true" }), statusLabel(s));
}

/** A short form of a run id for narrow places (the full id is the title). */
export function shortId(id: string): string {
  return id.length > 13 ? `${id.slice(0, 8)}…${id.slice(-4)}` : id;
}

/** The message of a stored error JSON ({code, message, ...}), or the text. */
export function errorMessage(errorJson: unknown): string {
  if (errorJson === null || errorJson === undefined || errorJson === "") return "";
  let v: any = errorJson;
  if (typeof v === "string") {
    try {
      v = JSON.parse(v);
    } catch {
      return v;
    }
  }
  if (v && typeof v === "object") {
    const msg = v.message ?? v.summary ?? "";
    return v.code ? `${v.code}: ${msg}` : String(msg || JSON.stringify(v));
  }
  return String(v);
}
