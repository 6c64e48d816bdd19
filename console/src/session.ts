// The signed-in session: the token, who it belongs to (from the connect
// hello), the broadcast socket and its events, and the pending approvals
// (kept current for the nav badge and the inbox).

import { throttle } from "./dom";
import { Socket, type ApprovalSummary, type EventFrame, type Identity, type SocketStatus } from "./live";
import { configureRpc, rpc, RpcError, NETWORK_MESSAGE } from "./rpc";
import { allows, requiredScope } from "./scopes";
import type { Gate } from "./ui";

// A decision this console made, kept for the inbox's "decided here" list.
export interface Decided {
  approval: ApprovalSummary;
  approved: boolean;
  note: string;
  at: number;
}

export const TOKEN_KEY = "smithers.gateway.console.token";

export interface Workflow {
  key: string;
  readableName?: string;
  description?: string;
}

type Listener<T> = (v: T) => void;

class Emitter<T> {
  private fns = new Set<Listener<T>>();
  on(fn: Listener<T>): () => void {
    this.fns.add(fn);
    return () => this.fns.delete(fn);
  }
  emit(v: T): void {
    for (const fn of [...this.fns]) fn(v);
  }
}

export class Session implements Gate {
  identity!: Identity;
  approvals: ApprovalSummary[] = [];
  status: SocketStatus = "connecting";
  readonly events = new Emitter<EventFrame>();
  readonly statusChanged = new Emitter<SocketStatus>();
  /** After a reconnect: views reload what they may have missed. */
  readonly reconnected = new Emitter<void>();
  readonly approvalsChanged = new Emitter<ApprovalSummary[]>();
  private socket: Socket;
  private workflows: Promise<Workflow[]> | null = null;
  /** The workflow list once loaded (for names shown synchronously). */
  workflowList: Workflow[] | null = null;
  /** Approvals decided in this tab, newest first (the inbox follows their
   * runs). */
  decided: Decided[] = [];
  // A failed refresh keeps the last known list (the inbox shows its own
  // error when it loads).
  private refreshApprovals = throttle(() => void this.loadApprovals().catch(() => {}), 400);
  private ended = false;

  private constructor(
    readonly token: string,
    private readonly onSignedOut: (message: string) => void,
    ready: (err: string | null) => void,
  ) {
    configureRpc(token, (message) => this.signOut(message));
    let first = true;
    this.socket = new Socket({
      token,
      onHello: (hello, again) => {
        this.identity = { role: hello.auth.role, scopes: hello.auth.scopes ?? [], userId: hello.auth.userId, tokenId: hello.auth.tokenId };
        this.setApprovals(hello.snapshot?.approvals ?? []);
        if (first) {
          first = false;
          ready(null);
        }
        if (again) {
          this.reconnected.emit();
          this.refreshApprovals();
        }
      },
      onEvent: (f) => {
        if (f.event.startsWith("approval.") || f.event === "node.waiting_approval" || f.event === "run.completed") {
          this.refreshApprovals();
        }
        this.events.emit(f);
      },
      onStatus: (s) => {
        this.status = s;
        this.statusChanged.emit(s);
      },
      onAuthFailed: (message) => {
        if (first) {
          first = false;
          this.end();
          ready(message);
        } else {
          this.signOut(message);
        }
      },
      onUnreachable: () => {
        if (first) {
          first = false;
          this.end();
          ready(NETWORK_MESSAGE);
        }
      },
    });
    this.socket.start();
  }

  /** Connects with token; resolves once the gateway accepted it. */
  static open(token: string, onSignedOut: (message: string) => void): Promise<Session> {
    return new Promise((resolve, reject) => {
      const s: Session = new Session(token, onSignedOut, (err) => (err === null ? resolve(s) : reject(new Error(err))));
    });
  }

  /**
   * Calls a read method over the live socket: a refusal comes back as a
   * frame, not as an HTTP error status the browser would log (used where a
   * 404 is an expected answer, such as a timer's output). Falls back to
   * HTTP while the socket is down.
   */
  async read<T = unknown>(method: string, params: Record<string, unknown>): Promise<T> {
    if (this.status !== "live") return rpc<T>(method, params);
    try {
      return await this.socket.request<T>(method, params);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === undefined) return rpc<T>(method, params); // the socket dropped meanwhile
      throw new RpcError(code, (e as Error).message, 0);
    }
  }

  can(method: string): boolean {
    return allows(this.identity.scopes, method);
  }

  required(method: string): string {
    return requiredScope(method);
  }

  listWorkflows(): Promise<Workflow[]> {
    if (!this.workflows) {
      this.workflows = rpc<Workflow[]>("listWorkflows").then(
        (list) => (this.workflowList = list),
        (e) => {
          this.workflows = null;
          throw e;
        },
      );
    }
    return this.workflows;
  }

  /** The readable name of a workflow key (the key until the list loads). */
  workflowName(key: string, list: Workflow[] | null = this.workflowList): string {
    return list?.find((w) => w.key === key)?.readableName ?? key;
  }

  async loadApprovals(): Promise<ApprovalSummary[]> {
    if (this.ended || !this.can("listApprovals")) return this.approvals;
    this.setApprovals(await rpc<ApprovalSummary[]>("listApprovals"));
    return this.approvals;
  }

  private setApprovals(list: ApprovalSummary[]): void {
    this.approvals = list;
    this.approvalsChanged.emit(list);
  }

  /** Ends the session and returns to sign-in with message. */
  signOut(message = ""): void {
    if (this.ended) return;
    this.end();
    sessionStorage.removeItem(TOKEN_KEY);
    this.onSignedOut(message);
  }

  private end(): void {
    this.ended = true;
    this.refreshApprovals.cancel();
    configureRpc("", null);
    this.socket.close();
  }
}
