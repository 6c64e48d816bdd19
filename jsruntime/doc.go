// Package jsruntime runs workflow modules: it bundles the module with
// esbuild, evaluates it in a small pool of goja runtimes, calls its
// register(gateway), and executes runs for the engine (it implements
// host.Executor). It is the only package of the module that imports goja,
// goja_nodejs or esbuild.
//
// Workers. Each worker is one goja runtime with one event-loop goroutine
// (worker.loop). A runtime is touched only on its loop goroutine; other
// goroutines reach it through worker.post, which never blocks. Each job is a
// turn: it runs with the turn budget watchdog armed, and the microtasks it
// queued run before it returns. A turn that blows the budget or the call
// stack (or is interrupted by the heap watchdog) fails the run that owned
// it; the worker's runtime is rebuilt and its other runs replay.
//
// Rebuilds restart the other runs' task bodies. The other runs of a
// rebuilt worker cannot keep their in-flight task bodies: a body's state
// after an await (its closures, its promise chain) lives in the old
// runtime, and JavaScript objects cannot move to another runtime. Nor can
// the old runtime be kept for them: the interrupt dropped the microtask
// queue of every run on the worker, so some continuations are lost with no
// way to know which, and the interrupted turn may have left module state
// shared by all runs half-updated. So each other run is ended (its
// attempts' t.signal is not aborted; their t.exec process groups are
// killed and their t.fetch requests cancelled with the activation's
// context) and replayed from its journal. What a user sees: an attempt
// that was in flight is recorded failed with ATTEMPT_ABANDONED, counts as
// one of the task's attempts, and the task runs again as a new attempt
// (node.started again, t.attempt one higher, t.idempotencyKey unchanged):
// tasks run at least once, and bodies with external effects should key
// them by t.idempotencyKey. Finished tasks are never run again; approvals,
// signals and timers are untouched.
//
// Activations. A run being executed is an activation (activation.go),
// bound to one worker. Its fields are loop-only except the commit queue
// (cmu). Every step is committed through the activation's commit
// goroutine, in issue order, and its result comes back to the loop as a
// job: a ctx promise resolves only after its step is durable. Effects
// (t.fetch, t.exec) run on goroutines counted in the activation's
// WaitGroup, with a context cancelled when the activation ends. An
// activation whose only pending work is approvals, signals or timers parks
// (its JavaScript state is dropped); it is replayed from the journal when
// woken.
//
// Concurrency slots. Under a workflow's concurrency limit every task
// attempt, first or retry, takes a slot from the engine
// (Session.AcquireTaskSlot) after its run's maxConcurrency slot and before
// the attempt is journaled started; the task stays journaled pending while
// it waits, which costs a queue entry, no goroutine, and keeps the
// activation from parking. The grant re-enters the loop as a job that runs
// even for an ended activation, so that a slot granted too late is given
// back. The slot is returned when the attempt's body ends, however it
// ends; none is held during a retry's backoff.
//
// Lock order: Executor.mu, then activation.cmu; neither is held while
// calling into the engine.
package jsruntime
