// Type declarations for workflow modules of the smithers gateway: the "smithers-orchestrator"
// module (gateway.register, ctx, t, SmithersError and their options) and the globals the
// gateway's JavaScript runtime provides.
//
// This is a script file (no top-level import or export): include it in a project and the bare
// import "smithers-orchestrator" resolves to the module declared below. `smithers init` writes
// it with a jsconfig.json (or tsconfig.json) that does so:
//
//   { "compilerOptions": { "checkJs": true, "strict": true, "target": "ES2022", "lib": ["ES2022"],
//                          "module": "ESNext", "moduleResolution": "Bundler", "types": [], "noEmit": true },
//     "include": ["**/*.mjs", "**/*.js", "types/*.d.ts"] }
//
// Use "lib": ["ES2022"] and "types": [], not the DOM or Node.js libraries: workflow code runs in
// neither a browser nor Node.js, and the globals it does have are declared at the end of this
// file. Plain JavaScript modules get the types through JSDoc:
//
//   // @ts-check
//   import { SmithersError } from "smithers-orchestrator";
//   /** @param {import("smithers-orchestrator").Gateway} gateway */
//   export default function register(gateway) {
//     gateway.register("hello", async (ctx) => { ... });   // ctx and t are typed from here on
//   }

declare module "smithers-orchestrator" {
  /** A JSON value: what inputs, task outputs, payloads and run outputs are made of. */
  export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

  /**
   * The function a module exports as its default export (or as `register`). The gateway calls it
   * once per JavaScript worker at start-up; it may be async, but top-level `await` in the module
   * is refused. A throwing `register`, a duplicate workflow key or a bad option stops start-up
   * with the file and line.
   */
  export type RegisterFunction = (gateway: Gateway) => void | Promise<void>;

  /** The object handed to the module's register function. */
  export interface Gateway {
    /**
     * Registers a workflow under `key`.
     *
     * @param key Matches `^[A-Za-z0-9._:-]{1,128}$`; clients launch the workflow by this key
     *   (`launchRun {workflow: key}`). Registering a key twice is an error (start-up stops).
     * @param workflow `async (ctx) => result`. The result becomes the run's `output`; it must be
     *   JSON data (no functions, Symbols, BigInts, cycles, or `undefined` inside arrays), else
     *   the run fails with an error naming the step and the path of the bad value.
     * @param options Name, schedule, webhook, limits and policies of the workflow.
     * @throws TypeError for a bad key, a non-function workflow or an invalid option.
     */
    register<I = any, O = unknown>(key: string, workflow: Workflow<I, O>, options?: WorkflowOptions): void;
  }

  /**
   * A workflow: an async function of its context. It must be deterministic: every effect
   * belongs in a task body, and values that differ between executions come from
   * `ctx.now()`, `ctx.random()` and `ctx.uuid()`. The function is replayed from the run's
   * journal after every park and restart; module-level state is shared by all runs of a worker
   * and is not durable.
   */
  export type Workflow<I = any, O = unknown> = (ctx: Ctx<I>) => Promise<O> | O;

  /** The options of `gateway.register`. */
  export interface WorkflowOptions {
    /** A human-readable name, shown by `listWorkflows`. */
    readableName?: string;
    /** A description, shown by `listWorkflows`. */
    description?: string;
    /**
     * A cron pattern (5 fields, or 6 with leading seconds; month and weekday names and
     * descriptors such as `"@daily"` are accepted). At start the gateway keeps the cron
     * `gateway:<key>` enabled with this pattern, and each due slot starts one run with input `{}`
     * (a slot missed while the gateway was down starts one catch-up run). An invalid pattern
     * stops start-up.
     */
    schedule?: string;
    /** Lets `POST /webhooks/<key>` deliver signed requests to this workflow. */
    webhook?: WebhookOptions;
    /**
     * The most task bodies of one run that execute at once; further tasks wait for a slot
     * (unbounded when absent). A positive integer.
     */
    maxConcurrency?: number;
    /**
     * Caps the task bodies of this workflow that execute at once across all its runs, or, with
     * `key`, per value of that path into the run input. Waiting tasks are served in launch order.
     */
    concurrency?: ConcurrencyOptions;
    /**
     * Bounds the whole run, in milliseconds (a positive whole number, at most 100 years): when it
     * runs out the run fails with code `RUN_TIMEOUT`. No bound when absent.
     */
    timeoutMs?: number;
    /**
     * The environment variables task bodies may read with `t.env(name)`. Names match
     * `^[A-Za-z_][A-Za-z0-9_]*$`; reading any other name throws a TypeError.
     */
    env?: string[];
    /**
     * What happens to a run started under another version of the module (another bundle hash)
     * when it next wakes. `"replay"` (default): it replays under the new code (new step ids are
     * new nodes; a journaled id requested as another kind fails with `NONDETERMINISM`).
     * `"strict"`: it stays parked with `VERSION_MISMATCH` in its `errorJson` until
     * `resumeRun {runId, options: {force: true}}` replays it under the new code.
     */
    versionPolicy?: "replay" | "strict";
  }

  /** The `concurrency` option of `gateway.register`. */
  export interface ConcurrencyOptions {
    /** The most task bodies that execute at once in one pool. A positive integer. */
    limit: number;
    /**
     * A dotted path into the run input (`"tenant"`, `"customer.id"`, `"items.0"`): each value has
     * its own pool of `limit` slots. Runs whose input has no value at the path share one pool.
     * Without a key, all runs of the workflow share one pool.
     */
    key?: string;
  }

  /**
   * The `webhook` option: `POST /webhooks/<key>` checks an HMAC-SHA256 signature of the raw body
   * made with `secret`, then delivers the JSON body as a signal to waiting runs and/or starts a
   * run. A delivery id seen again within 24 hours is answered with the first answer and not
   * delivered twice.
   */
  export interface WebhookOptions {
    /**
     * The shared secret the sender signs its deliveries with. Give it here or with `secretEnv`
     * (one of the two): a blank secret stops start-up.
     */
    secret?: string;
    /**
     * The name of an environment variable of the gateway holding the secret, read at start: keeps
     * the secret out of the module's source. Unset or blank stops start-up, naming it.
     */
    secretEnv?: string;
    /** The header carrying the signature (default `"x-hub-signature-256"`, as GitHub sends). */
    signatureHeader?: string;
    /**
     * What precedes the hex digest in the signature header (default `"sha256="`); `""` for a
     * header that holds the bare hex digest.
     */
    signaturePrefix?: string;
    /** The header carrying the sender's delivery id, used to drop repeats (default `"x-github-delivery"`). */
    deliveryHeader?: string;
    /**
     * Deliver the body as a signal: to the run named at `runIdPath` when it waits for the signal,
     * else to every waiting run whose wait matches the name and correlation id.
     */
    signal?: WebhookSignalOptions;
    /**
     * Start a run when no waiting run took the delivery. Runs start unless `enabled` is false;
     * they run with system auth, triggered by `webhook:<key>`.
     */
    run?: WebhookRunOptions;
  }

  /** How a webhook delivery becomes a signal. Paths are dotted paths into the JSON body. */
  export interface WebhookSignalOptions {
    /** The signal name (the `event` of `ctx.waitForEvent`, the name of `ctx.signal`). */
    name: string;
    /** Where the correlation id is in the body (no correlation id when absent). */
    correlationIdPath?: string;
    /** Where a run id is in the body: the signal goes to that run only. */
    runIdPath?: string;
    /** Where the signal payload is in the body (the whole body when absent). */
    payloadPath?: string;
  }

  /** How a webhook delivery starts a run. */
  export interface WebhookRunOptions {
    /** Whether a delivery that no waiting run took starts a run (default true). */
    enabled?: boolean;
    /**
     * Where the run input is in the body (the whole body when absent); a value that is not an
     * object is wrapped as `{payload: value}`.
     */
    inputPath?: string;
  }

  /** Who started a run: `ctx.auth`. */
  export interface RunAuth {
    /**
     * The caller's user id (`"gateway"` when it had none); `"cron:gateway"` for scheduled runs,
     * `"webhook:<key>"` for runs a webhook started.
     */
    readonly triggeredBy: string;
    /** The caller's role (`"operator"` when it had none; `"system"` for crons and webhooks). */
    readonly role: string;
    /** The caller's scopes. */
    readonly scopes: readonly string[];
    /** The caller's user id, or null. */
    readonly userId: string | null;
    /** The id of the caller's token, or null. */
    readonly tokenId: string | null;
    /** When the run was launched, as an ISO 8601 string. */
    readonly createdAt: string;
  }

  /**
   * The workflow context. Everything on it is deterministic: each step is journaled under an
   * explicit id (`^[A-Za-z0-9:_-]{1,128}$`, unique within a run: a second use of an id rejects with
   * `DUPLICATE_ID`) and, once settled, replays its journaled result without running again.
   * Run `Promise.all` over ctx calls, or `ctx.parallel`, to run steps concurrently.
   */
  export interface Ctx<I = any> {
    /** The run's id. */
    readonly runId: string;
    /** The workflow's key. */
    readonly workflow: string;
    /** The run input: a deep-frozen JSON object (`{}` for cron runs and when none was given). */
    readonly input: Readonly<I>;
    /** Who launched the run (deep-frozen). */
    readonly auth: RunAuth;

    /**
     * Runs `body(t)` as a task: the only place for effects (`t.fetch`, `t.exec`, I/O). Its
     * return value is journaled (it must be JSON data, at most the gateway's output cap,
     * 4 MiB by default) and a finished task never runs again, also not after a crash:
     * tasks run at least once, so key external effects by `t.idempotencyKey`.
     *
     * A failed attempt is retried (`retries`, default 3: at most 4 attempts) after a backoff
     * (`backoffMs`, default 1000, doubling per attempt, capped at 300000). Not retried: a
     * `TypeError`, `ReferenceError` or `SyntaxError` (a bug in the body), an error with
     * `retryable: false`, and a cancelled run. `t.fetch` network failures are retried.
     *
     * @returns The body's result. After the last attempt fails it rejects with a
     *   `SmithersError`: the body's own `SmithersError` code, `TASK_TIMEOUT` when the last
     *   attempt timed out, else `TASK_FAILED`; `details` holds `{attempts, cause}`. With
     *   `continueOnFail: true` it resolves to `undefined` instead (node `failed`, run continues).
     */
    task<R>(id: string, body: (t: TaskContext) => Promise<R> | R, options: TaskOptions & { continueOnFail: true }): Promise<R | undefined>;
    /**
     * Journals a static value as a finished task (a value that is not a function): replays
     * return the journaled value.
     */
    task<R extends Json>(id: string, value: R, options?: TaskOptions): Promise<R>;
    task<R>(id: string, body: (t: TaskContext) => Promise<R> | R, options?: TaskOptions & { continueOnFail?: false }): Promise<R>;
    task<R>(id: string, body: (t: TaskContext) => Promise<R> | R, options?: TaskOptions): Promise<R | undefined>;

    /**
     * Parks the run in `waiting-approval` until someone decides (`submitApproval`, or
     * `smithers runs approve|deny <runId> <id>`), or `timeoutMs` runs out (a denial with note
     * `"timeout"`). A parked run holds no goroutine and, after a short idle time, no JavaScript
     * state.
     *
     * @returns The decision. A denial rejects with `SmithersError` `APPROVAL_DENIED` under
     *   `onDeny: "fail"` (the default), resolves with `approved: false` under `"continue"`, and
     *   resolves to `undefined` (node `skipped`) under `"skip"`.
     */
    approval<V = any>(id: string, options: ApprovalOptions & { onDeny: "skip" }): Promise<ApprovalResult<V> | undefined>;
    approval<V = any>(id: string, options?: ApprovalOptions): Promise<ApprovalResult<V>>;

    /**
     * Parks the run in `waiting-event` until a signal named `options.event` (default: `id`) with
     * the same correlation id arrives (`submitSignal`, a webhook, or `smithers runs signal`).
     * Signals are buffered per run: one sent before the run reaches this wait is consumed by it,
     * oldest first; one signal satisfies at most one wait.
     *
     * @returns The signal's payload (its `data`). When `timeoutMs` runs out it rejects with
     *   `SmithersError` `EVENT_TIMEOUT` under `onTimeout: "fail"` (the default), resolves to
     *   `null` under `"continue"` and to `undefined` (node `skipped`) under `"skip"`.
     */
    waitForEvent<P = any>(id: string, options: WaitForEventOptions & { onTimeout: "continue" }): Promise<P | null>;
    waitForEvent<P = any>(id: string, options: WaitForEventOptions & { onTimeout: "skip" }): Promise<P | undefined>;
    waitForEvent<P = any>(id: string, options?: WaitForEventOptions): Promise<P>;

    /** Waits for the signal `name`: `ctx.waitForEvent(name, {...options, event: name})`. */
    signal<P = any>(name: string, options: SignalOptions & { onTimeout: "continue" }): Promise<P | null>;
    signal<P = any>(name: string, options: SignalOptions & { onTimeout: "skip" }): Promise<P | undefined>;
    signal<P = any>(name: string, options?: SignalOptions): Promise<P>;

    /**
     * A durable timer: parks the run in `waiting-timer` for `ms` milliseconds (a whole number,
     * at most 100 years). It survives restarts and fires late rather than never.
     */
    sleep(id: string, ms: number): Promise<void>;
    /** A durable timer for a duration or until a time (Unix ms; a time past is due at once). */
    timer(id: string, options: TimerOptions): Promise<void>;

    /**
     * Runs the thunks concurrently (at most `maxConcurrency` at once, unbounded by default) and
     * resolves to their results in order; rejects with the first failure. Step identity is by
     * id, so `Promise.all` over ctx calls is equally legal.
     */
    parallel<const Ts extends readonly (() => unknown)[]>(
      thunks: Ts,
      options?: ParallelOptions,
    ): Promise<{ -readonly [K in keyof Ts]: Awaited<ReturnType<Ts[K]>> }>;

    /**
     * The current time in Unix ms, journaled: the same value on every replay. Journaled values
     * are matched by call order within a pass; inside concurrent branches, take them before the
     * branches split or return them from a task.
     */
    now(): number;
    /** A random number in [0, 1), journaled like `now()`. */
    random(): number;
    /** A random UUID (v4), journaled like `now()`. */
    uuid(): string;
    /** Structured logs with the run's id (and node), muted while the run replays. */
    readonly log: Logger;
  }

  /** The options of `ctx.task`. */
  export interface TaskOptions {
    /**
     * Retries after the first attempt: default 3, so at most 4 attempts. A non-negative integer.
     */
    retries?: number;
    /**
     * The wait before the first retry in ms (default 1000); it doubles per attempt, capped at
     * 300000 (5 minutes).
     */
    backoffMs?: number;
    /**
     * Bounds each attempt, in ms (a positive whole number; no bound when absent). A timed-out
     * attempt aborts `t.signal` (its `t.exec` children are killed, its `t.fetch` requests
     * cancelled) and is retried like any failure; the last one fails with `TASK_TIMEOUT`.
     */
    timeoutMs?: number;
    /** A label for the node, shown by clients. */
    label?: string;
    /**
     * When true, a task that fails after its last attempt resolves to `undefined` (the node is
     * `failed`, the run continues) instead of rejecting.
     */
    continueOnFail?: boolean;
  }

  /** The options of `ctx.approval`. */
  export interface ApprovalOptions {
    /** What the approval asks, as shown by `listApprovals` and dashboards. */
    request?: ApprovalRequest;
    /** A label for the node; the title when `request.title` is absent. */
    label?: string;
    /**
     * `"gate"` (default): approve or deny. `"decision"`: the decision carries a value.
     * `"select"`: approving requires `decision.selected`, one of the option keys. `"rank"`:
     * approving requires `decision.ranked`, option keys in order.
     */
    mode?: "gate" | "decision" | "select" | "rank";
    /** The choices of a `select` or `rank` approval. */
    options?: ApprovalChoice[];
    /**
     * Scopes one of which the deciding caller must hold (any caller with `approval:submit`
     * when empty); others get `FORBIDDEN`.
     */
    allowedScopes?: string[];
    /** User ids allowed to decide (anyone when empty); others get `FORBIDDEN`. */
    allowedUsers?: string[];
    /** Decide the approval automatically as it is requested, recorded as `smithers:auto`. */
    autoApprove?: AutoApproveOptions;
    /**
     * What a denial does: `"fail"` (default) rejects with `APPROVAL_DENIED` and fails the node;
     * `"continue"` resolves with `approved: false`; `"skip"` resolves to `undefined` and marks the
     * node `skipped`.
     */
    onDeny?: "fail" | "continue" | "skip";
    /**
     * Decides the approval as denied with note `"timeout"` when no decision came within this
     * many ms (a positive whole number; waits for ever when absent).
     */
    timeoutMs?: number;
  }

  /** The request shown to the people who decide an approval. */
  export interface ApprovalRequest {
    /** The title (default: the label, else the step id). */
    title?: string;
    /** A longer description. */
    summary?: string;
    /** Any JSON data for dashboards. */
    metadata?: unknown;
  }

  /** One choice of a `select` or `rank` approval. */
  export interface ApprovalChoice {
    /** What the decision names (`decision.selected`, an entry of `decision.ranked`). */
    key: string;
    /** What people see. */
    label: string;
    /** A longer description. */
    summary?: string;
  }

  /**
   * The `autoApprove` option. The approval is approved as it is requested (decided by
   * `"smithers:auto"`, event `approval.auto_approved`) when `condition` holds, `revertOn` does
   * not, and the node's previous `after` manual decisions in other runs of the workflow were all
   * approvals. `condition` and `revertOn` may be functions: they are called synchronously, once,
   * when the approval is first requested (never on replay), and must return a boolean (not a
   * Promise); their results are journaled with the request. One that throws or returns anything
   * else rejects the `ctx.approval` call with a TypeError.
   */
  export interface AutoApproveOptions {
    /**
     * How many of the node's latest manual decisions in other runs must all be approvals before
     * it is approved automatically (a whole number; 0 or absent: at once). Auto-approvals do not
     * count, and a denial among them resets the count.
     */
    after?: number;
    /** Auto-approve only when this holds (default true). */
    condition?: boolean | (() => boolean);
    /** Never auto-approve when this holds (default false). */
    revertOn?: boolean | (() => boolean);
    /** Record the auto-approval for audit. */
    audit?: boolean;
  }

  /** What `ctx.approval` resolves to. */
  export interface ApprovalResult<V = any> {
    /** Whether it was approved. */
    approved: boolean;
    /** The decider's note (`"timeout"` when `timeoutMs` ran out), or null. */
    note: string | null;
    /** The deciding user's id (`"smithers:auto"` for an auto-approval), or null. */
    decidedBy: string | null;
    /** When it was decided, in Unix ms. */
    decidedAtMs: number;
    /**
     * The decision's value: `decision.value` when the decision has one, else the decision's other
     * fields (`{selected}`, `{ranked}`), else null.
     */
    value: V | null;
  }

  /** The options of `ctx.waitForEvent`. */
  export interface WaitForEventOptions {
    /** The signal name to wait for (default: the step id). */
    event?: string;
    /**
     * Only a signal with this correlation id matches (trimmed; null, `""` or absent match only
     * signals without one).
     */
    correlationId?: string | null;
    /** Stop waiting after this many ms (a positive whole number; waits for ever when absent). */
    timeoutMs?: number;
    /**
     * What a timeout does: `"fail"` (default) rejects with `EVENT_TIMEOUT`; `"continue"`
     * resolves to null; `"skip"` resolves to `undefined` and marks the node `skipped`.
     */
    onTimeout?: "fail" | "continue" | "skip";
    /** A label for the node. */
    label?: string;
  }

  /** The options of `ctx.signal`: those of `ctx.waitForEvent` but the event name. */
  export type SignalOptions = Omit<WaitForEventOptions, "event">;

  /** The options of `ctx.timer`: a duration or an absolute time. */
  export type TimerOptions = { durationMs: number; untilMs?: never } | { untilMs: number; durationMs?: never };

  /** The options of `ctx.parallel`. */
  export interface ParallelOptions {
    /** The most thunks running at once (a number >= 1; unbounded by default). */
    maxConcurrency?: number;
  }

  /** `ctx.log`: structured log lines with the run's id, muted while replaying. */
  export interface Logger {
    /** Logs at debug level (shown when the gateway logs debug). */
    debug(message: string, fields?: Record<string, unknown>): void;
    /** Logs at info level; `fields` become attributes of the log line. */
    info(message: string, fields?: Record<string, unknown>): void;
    /** Logs at warn level. */
    warn(message: string, fields?: Record<string, unknown>): void;
    /** Logs at error level. */
    error(message: string, fields?: Record<string, unknown>): void;
  }

  /** The task body context `t`: the only place effects are allowed. */
  export interface TaskContext {
    /** The run's id. */
    readonly runId: string;
    /** The task's step id. */
    readonly nodeId: string;
    /** The iteration (0). */
    readonly iteration: number;
    /** The attempt number, from 1. */
    readonly attempt: number;
    /**
     * `runId:nodeId:iteration`: the same for every attempt of this task, also after a restart.
     * Hand it to external systems to make their effects exactly-once.
     */
    readonly idempotencyKey: string;
    /**
     * Aborted when the attempt times out, the run is cancelled or the gateway stops; `reason` is
     * the `SmithersError` (`TASK_TIMEOUT`, `CANCELLED`).
     */
    readonly signal: TaskSignal;
    /** Records that the attempt is alive, with optional JSON data (a `task.heartbeat` event). */
    heartbeat(data?: unknown): void;
    /**
     * Streams text as a `task.output` event (stdout by default). An attempt's streamed output is
     * capped at the gateway's output cap (4 MiB by default); past it, one marker says so.
     */
    emit(text: string, stream?: "stdout" | "stderr"): void;
    /**
     * The value of an environment variable listed in the workflow's `env` option, or undefined
     * when unset.
     * @throws TypeError for a name not in the allowlist.
     */
    env(name: string): string | undefined;
    /**
     * An HTTP request, cancelled with the attempt. It rejects with a `TypeError` ("fetch
     * failed", the detail in `cause`, with a code such as `ECONNREFUSED`): network failures carry
     * `retryable: true` and are retried like any task failure; an unsupported scheme, an
     * untrusted certificate or a body over the bound are not. Non-2xx statuses resolve (check
     * `ok`).
     */
    fetch(url: string | URL, init?: FetchInit): Promise<FetchResponse>;
    /**
     * Runs a program (no shell) in its own process group with only `PATH`, `HOME` and
     * `options.env` in its environment; its output streams as `task.output` events. The group is
     * killed when the attempt times out, the run is cancelled or the gateway exits.
     *
     * @returns `{code, stdout, stderr}` (each stream's last output-cap bytes, after a note when
     *   more was written). A non-zero exit, a failure to start or a timeout rejects with
     *   `SmithersError` `EXEC_FAILED` (see `ExecFailedError`) unless `allowFailure: true`.
     */
    exec(cmd: string, args?: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  }

  /** `t.signal`, an AbortSignal-like object. */
  export interface TaskSignal {
    /** Whether the attempt was aborted. */
    readonly aborted: boolean;
    /** Why: the `SmithersError` that aborted it (undefined while not aborted). */
    readonly reason: unknown;
    /** Called once when aborted. */
    onabort: ((event: { type: "abort" }) => void) | null;
    /** Adds a listener called once when aborted. */
    addEventListener(type: "abort", listener: (event: { type: "abort" }) => void): void;
    /** Does nothing: listeners stay until the attempt ends. */
    removeEventListener(type: "abort", listener: (event: { type: "abort" }) => void): void;
    /** Throws `reason` when aborted. */
    throwIfAborted(): void;
  }

  /** The `init` of `t.fetch`. */
  export interface FetchInit {
    /** The method (default `"GET"`). */
    method?: string;
    /** Request headers. */
    headers?: Record<string, string>;
    /** The body: a string (use `JSON.stringify` for objects) or bytes. */
    body?: string | Uint8Array | ArrayBuffer;
  }

  /** What `t.fetch` resolves to: a Response-like object with the whole body read. */
  export interface FetchResponse {
    /** The HTTP status. */
    readonly status: number;
    /** Whether the status is 200-299. */
    readonly ok: boolean;
    /** The reason phrase ("Not Found"). */
    readonly statusText: string;
    /** The final URL, after redirects. */
    readonly url: string;
    /** The response headers (names are case-insensitive). */
    readonly headers: FetchHeaders;
    /** The body as text. */
    text(): Promise<string>;
    /** The body parsed as JSON; rejects with a SyntaxError when it is not JSON. */
    json<T = any>(): Promise<T>;
  }

  /** The headers of a `t.fetch` response. */
  export interface FetchHeaders {
    /** The header's values joined by ", ", or null when absent. */
    get(name: string): string | null;
    /** Whether the header is present. */
    has(name: string): boolean;
    /** `[lower-cased name, value]` pairs (an array, not an iterator). */
    entries(): Array<[string, string]>;
    /** Calls `callback(value, lower-cased name)` for each header. */
    forEach(callback: (value: string, name: string) => void): void;
  }

  /** The options of `t.exec`. */
  export interface ExecOptions {
    /** The working directory (the gateway's when absent). */
    cwd?: string;
    /** Environment variables added to `PATH` and `HOME`. */
    env?: Record<string, string>;
    /** Text written to the child's standard input. */
    input?: string;
    /** Kill the process group after this many ms (a positive whole number; no bound when absent). */
    timeoutMs?: number;
    /** Resolve with the result on a non-zero exit instead of rejecting. */
    allowFailure?: boolean;
  }

  /** What `t.exec` resolves to. */
  export interface ExecResult {
    /** The exit code. */
    code: number;
    /** Standard output (its end when it was longer than the output cap). */
    stdout: string;
    /** Standard error (its end when it was longer than the output cap). */
    stderr: string;
  }

  /**
   * The error `t.exec` rejects with: code `EXEC_FAILED`, with the last 64 KiB of each stream.
   */
  export interface ExecFailedError extends SmithersError {
    code: "EXEC_FAILED";
    /** The exit code (-1 when the program did not start or was killed). */
    exitCode: number;
    /** The end of standard output. */
    stdout: string;
    /** The end of standard error. */
    stderr: string;
    /** The same, stored with the error; `timedOut` when `timeoutMs` killed it. */
    details: { code: number; stdout: string; stderr: string; timedOut: boolean };
  }

  /** The codes the gateway itself gives `SmithersError`s. */
  export type SmithersErrorCode =
    /** A task failed after its last attempt. */
    | "TASK_FAILED"
    /** A task's last attempt timed out. */
    | "TASK_TIMEOUT"
    /** An approval was denied under `onDeny: "fail"`. */
    | "APPROVAL_DENIED"
    /** The run was cancelled. */
    | "CANCELLED"
    /** `t.exec`'s program exited non-zero, did not start, or timed out. */
    | "EXEC_FAILED"
    /** A journaled step id was requested as another kind of step. */
    | "NONDETERMINISM"
    /** A step id was used twice in one run. */
    | "DUPLICATE_ID"
    /** A JavaScript turn ran over the gateway's budget (or its heap limit) and was interrupted. */
    | "JS_INTERRUPTED"
    /** The workflow's `timeoutMs` ran out. */
    | "RUN_TIMEOUT"
    /** A `versionPolicy: "strict"` run woke under another version of the module. */
    | "VERSION_MISMATCH"
    /** A `waitForEvent` or `signal` timed out under `onTimeout: "fail"`. */
    | "EVENT_TIMEOUT"
    /** A value was over the gateway's output cap (`SMITHERS_GATEWAY_MAX_OUTPUT_BYTES`). */
    | "OUTPUT_TOO_LARGE"
    /** An attempt ended with its worker or the gateway; the task ran again. */
    | "ATTEMPT_ABANDONED"
    /** A duration was negative, fractional, not a number or over 100 years. */
    | "INVALID_DURATION"
    /** The workflow threw something that is not a `SmithersError`. */
    | "WORKFLOW_FAILED";

  /** The options of `new SmithersError`. */
  export interface SmithersErrorOptions {
    /** JSON data stored with the error (in the node's and run's `errorJson`). */
    details?: unknown;
    /** `false`: a task throwing it is not retried. `true`: retried even if it is a TypeError. */
    retryable?: boolean;
    /** The underlying error (not stored). */
    cause?: unknown;
  }

  /**
   * The error workflows throw and catch. `code` is stable: use your own codes for your errors,
   * and compare with the gateway's (`SmithersErrorCode`) for its own. A task body that throws a
   * `SmithersError` fails its task with that code once its attempts are used up.
   */
  export class SmithersError extends Error {
    /**
     * @param code A non-empty string (a TypeError otherwise).
     * @param message The message (default: the code).
     */
    constructor(code: SmithersErrorCode | (string & {}), message?: string, options?: SmithersErrorOptions);
    /** Always `"SmithersError"`. */
    name: string;
    /** The stable code. */
    code: SmithersErrorCode | (string & {});
    /** JSON data about the error. */
    details: any;
    /** Whether a task failing with it may be retried (undefined: by the default rule). */
    retryable: boolean | undefined;
    /** The underlying error. */
    cause?: unknown;
  }
}

// The globals of the gateway's JavaScript runtime. There is no `process`, no `require`, no
// global `fetch` (use `t.fetch` in a task body) and no DOM.

/** `console.*`: log lines in the gateway's structured log, with the run and node; muted while replaying. */
interface Console {
  log(...data: any[]): void;
  info(...data: any[]): void;
  debug(...data: any[]): void;
  warn(...data: any[]): void;
  error(...data: any[]): void;
}
declare var console: Console;

/**
 * Calls `handler` after `timeout` ms. Not durable: it is gone after a restart or a park, and a
 * pending timer keeps the run from parking. Use `ctx.sleep` to wait in a workflow.
 */
declare function setTimeout(handler: (...args: any[]) => void, timeout?: number, ...args: any[]): number;
declare function clearTimeout(id: number | undefined): void;

/** Decodes base64 to a binary string. */
declare function atob(data: string): string;
/** Encodes a binary string as base64. */
declare function btoa(data: string): string;

/** A WHATWG URL. */
interface URL {
  hash: string;
  host: string;
  hostname: string;
  href: string;
  readonly origin: string;
  password: string;
  pathname: string;
  port: string;
  protocol: string;
  search: string;
  readonly searchParams: URLSearchParams;
  username: string;
  toString(): string;
  toJSON(): string;
}
declare var URL: {
  prototype: URL;
  new (url: string | URL, base?: string | URL): URL;
  /** Whether `new URL(url, base)` would succeed. */
  canParse(url: string | URL, base?: string | URL): boolean;
};

/** The query of a URL as name/value pairs. */
interface URLSearchParams {
  readonly size: number;
  append(name: string, value: string): void;
  delete(name: string): void;
  get(name: string): string | null;
  getAll(name: string): string[];
  has(name: string): boolean;
  set(name: string, value: string): void;
  sort(): void;
  toString(): string;
  forEach(callback: (value: string, name: string, parent: URLSearchParams) => void): void;
  entries(): IterableIterator<[string, string]>;
  keys(): IterableIterator<string>;
  values(): IterableIterator<string>;
  [Symbol.iterator](): IterableIterator<[string, string]>;
}
declare var URLSearchParams: {
  prototype: URLSearchParams;
  new (init?: string | Record<string, string> | Iterable<[string, string]> | URLSearchParams): URLSearchParams;
};

/** Encodes strings as UTF-8. */
interface TextEncoder {
  readonly encoding: "utf-8";
  encode(input?: string): Uint8Array;
  encodeInto(source: string, destination: Uint8Array): { read: number; written: number };
}
declare var TextEncoder: {
  prototype: TextEncoder;
  new (): TextEncoder;
};

/** Decodes UTF-8 bytes as text (the only encoding the runtime decodes). */
interface TextDecoder {
  readonly encoding: string;
  readonly fatal: boolean;
  readonly ignoreBOM: boolean;
  decode(input?: ArrayBuffer | ArrayBufferView, options?: { stream?: boolean }): string;
}
declare var TextDecoder: {
  prototype: TextDecoder;
  /** @param label `"utf-8"` (default) or an alias of it; other encodings throw a RangeError. */
  new (label?: string, options?: { fatal?: boolean; ignoreBOM?: boolean }): TextDecoder;
};
