// WebSocket transport: one socket that sends connect with the token,
// delivers event frames, answers requests, and reconnects with backoff
// (250 ms doubling to 10 s, with jitter) until closed. A socket closed with
// 1008 (failed connect, revoked or expired token) does not reconnect: it
// reports the sign-in failure instead.

import { boot } from "./boot";

export interface Identity {
  role: string;
  scopes: string[];
  userId: string | null;
  tokenId: string | null;
}

export interface Hello {
  protocol: number;
  features: string[];
  auth: Identity & { sessionToken: string };
  snapshot: { runs: RunRow[]; approvals: ApprovalSummary[]; stateVersion: number };
}

export interface EventFrame {
  type: "event";
  event: string;
  payload: any;
  seq: number;
  stateVersion: number;
}

export interface RunRow {
  runId: string;
  workflowKey: string;
  workflowName: string;
  status: string;
  createdAtMs: number;
  startedAtMs: number | null;
  finishedAtMs: number | null;
  heartbeatAtMs: number | null;
  errorJson: string | null;
  configJson: string | null;
  cancelRequestedAtMs: number | null;
}

export interface ApprovalSummary {
  runId: string;
  nodeId: string;
  workflowKey: string;
  iteration: number;
  requestTitle: string;
  requestSummary: string | null;
  requestedAtMs: number | null;
  approvalMode: "gate" | "decision" | "select" | "rank";
  options: { key: string; label: string; summary?: string }[];
  allowedScopes: string[];
  allowedUsers: string[];
  autoApprove: unknown;
}

export type SocketStatus = "connecting" | "live" | "reconnecting" | "closed";

export interface SocketOptions {
  token: string;
  /** Run ids to filter broadcasts to; absent: every run's events. */
  subscribe?: string[];
  onHello(hello: Hello, reconnected: boolean): void;
  onEvent(frame: EventFrame): void;
  onStatus?(status: SocketStatus): void;
  /** The gateway refused the credentials (connect failed, or the socket was
   * closed with 1008). The socket is closed for good. */
  onAuthFailed(message: string): void;
  /** The first connection could not be made at all. */
  onUnreachable?(): void;
}

const AUTH_CODES = new Set(["UNAUTHORIZED", "Unauthorized", "FORBIDDEN", "Forbidden"]);

function socketURL(): string {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${location.host}${boot.wsPath}`;
}

export class Socket {
  private ws: WebSocket | null = null;
  private closed = false;
  private attempt = 0;
  private everConnected = false;
  private connectError: { code: string; message: string } | null = null;
  private nextId = 0;
  private pending = new Map<string, { resolve(v: unknown): void; reject(e: Error): void }>();
  private retryTimer: number | undefined;
  status: SocketStatus = "connecting";

  constructor(private readonly opts: SocketOptions) {}

  start(): void {
    this.open();
  }

  close(): void {
    this.closed = true;
    window.clearTimeout(this.retryTimer);
    this.setStatus("closed");
    this.failPending("The connection was closed.");
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      if (ws.readyState === WebSocket.CONNECTING) {
        // Closing a socket that is still connecting makes browsers log an
        // error; let it open, then close it.
        ws.onopen = () => ws.close(1000);
      } else {
        ws.close(1000);
      }
      ws.onmessage = null;
      ws.onclose = null;
      ws.onerror = null;
    }
  }

  /** Sends a request on the connected socket. */
  request<T = unknown>(method: string, params: Record<string, unknown>): Promise<T> {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || this.status !== "live") {
      return Promise.reject(new Error("not connected"));
    }
    this.nextId += 1;
    const id = `c${this.nextId}`;
    ws.send(JSON.stringify({ type: "req", id, method, params }));
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    });
  }

  private setStatus(s: SocketStatus): void {
    if (this.status === s) return;
    this.status = s;
    this.opts.onStatus?.(s);
  }

  private failPending(message: string): void {
    for (const p of this.pending.values()) p.reject(new Error(message));
    this.pending.clear();
  }

  private open(): void {
    this.connectError = null;
    let ws: WebSocket;
    try {
      ws = new WebSocket(socketURL());
    } catch {
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      const params: Record<string, unknown> = {
        minProtocol: 1,
        maxProtocol: 1,
        client: { id: "smithers-console", version: "1", platform: "browser" },
        auth: { token: this.opts.token },
      };
      if (this.opts.subscribe) params.subscribe = this.opts.subscribe;
      ws.send(JSON.stringify({ type: "req", id: "connect", method: "connect", params }));
    };
    ws.onmessage = (m) => this.onMessage(m);
    ws.onclose = (e) => this.onClose(e);
  }

  private onMessage(m: MessageEvent): void {
    let frame: any;
    try {
      frame = JSON.parse(String(m.data));
    } catch {
      return;
    }
    if (frame.type === "res") {
      if (frame.id === "connect") {
        if (frame.ok) {
          const reconnected = this.everConnected;
          this.everConnected = true;
          this.attempt = 0;
          this.setStatus("live");
          this.opts.onHello(frame.payload as Hello, reconnected);
        } else {
          this.connectError = { code: frame.error?.code ?? "", message: frame.error?.message ?? "connect failed" };
        }
        return;
      }
      const p = this.pending.get(frame.id);
      if (!p) return;
      this.pending.delete(frame.id);
      if (frame.ok) p.resolve(frame.payload);
      else p.reject(Object.assign(new Error(frame.error?.message ?? "request failed"), { code: frame.error?.code }));
      return;
    }
    if (frame.type === "event" && this.status === "live") this.opts.onEvent(frame as EventFrame);
  }

  private onClose(e: CloseEvent): void {
    this.ws = null;
    this.failPending("The connection was lost.");
    if (this.closed) return;
    const refused = this.connectError;
    if (e.code === 1008 && (!refused || AUTH_CODES.has(refused.code))) {
      this.closed = true;
      this.setStatus("closed");
      this.opts.onAuthFailed(refused?.message ?? closeReason(e.reason));
      return;
    }
    if (!this.everConnected && this.attempt >= 2) this.opts.onUnreachable?.();
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.closed) return;
    this.setStatus(this.everConnected ? "reconnecting" : "connecting");
    const raw = Math.min(10000, 250 * 2 ** this.attempt);
    const delay = Math.max(0, Math.round(raw + (2 * Math.random() - 1) * 0.5 * raw));
    this.attempt += 1;
    this.retryTimer = window.setTimeout(() => this.open(), delay);
  }
}

function closeReason(reason: string): string {
  switch (reason) {
    case "token revoked":
      return "Your token was revoked.";
    case "token expired":
      return "Your token expired.";
    case "":
      return "The gateway closed the connection.";
    default:
      return `The gateway closed the connection: ${reason}.`;
  }
}

/** One frame of a run's event stream, as the run page consumes it. */
export type RunStreamFrame =
  | { kind: "event"; seq: number; event: string; payload: any; live: boolean }
  | { kind: "gap"; fromSeq: number; toSeq: number; snapshot: any };

/**
 * RunStream follows one run's events with streamRunEvents on a socket of
 * its own (subscribed to that run only), from the start of the run, and
 * after a dropped socket resumes with afterSeq = the last seq it
 * delivered, so nothing is lost or repeated.
 */
export class RunStream {
  private socket: Socket;
  private lastSeq = 0;
  private streamId: string | null = null;
  private buffered: EventFrame[] = [];
  /** Frames of the replay are those with seq <= the response's currentSeq. */
  private replayUntil = 0;

  constructor(
    readonly runId: string,
    token: string,
    private readonly onFrame: (f: RunStreamFrame) => void,
    onAuthFailed: (message: string) => void,
    onStatus: (s: SocketStatus) => void,
  ) {
    this.socket = new Socket({
      token,
      subscribe: [runId],
      onHello: () => void this.subscribe(),
      onEvent: (f) => this.onEvent(f),
      onStatus,
      onAuthFailed,
    });
    this.socket.start();
  }

  close(): void {
    this.socket.close();
  }

  private async subscribe(): Promise<void> {
    this.streamId = null;
    this.buffered = [];
    try {
      const res = await this.socket.request<{ streamId: string; currentSeq: number }>("streamRunEvents", {
        runId: this.runId,
        afterSeq: this.lastSeq,
      });
      this.streamId = res.streamId;
      this.replayUntil = res.currentSeq;
      const early = this.buffered;
      this.buffered = [];
      for (const f of early) this.onEvent(f);
    } catch {
      // The socket dropped (it reconnects and subscribes again) or the run
      // is gone (the run page shows getRun's error).
    }
  }

  private onEvent(f: EventFrame): void {
    if (f.event !== "run.event" && f.event !== "run.gap_resync") return;
    const p = f.payload;
    if (!p || p.runId !== this.runId) return;
    if (this.streamId === null) {
      // Replay frames may come before the response: keep them.
      this.buffered.push(f);
      return;
    }
    if (p.streamId !== this.streamId) return;
    if (f.event === "run.gap_resync") {
      this.lastSeq = Math.max(this.lastSeq, p.toSeq);
      this.onFrame({ kind: "gap", fromSeq: p.fromSeq, toSeq: p.toSeq, snapshot: p.snapshot });
      return;
    }
    if (typeof p.seq !== "number" || p.seq <= this.lastSeq) return;
    this.lastSeq = p.seq;
    this.onFrame({ kind: "event", seq: p.seq, event: p.event, payload: p.payload, live: p.seq > this.replayUntil });
  }
}
