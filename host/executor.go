package host

// Executor runs workflow code on behalf of the engine. jsruntime implements
// it with goja event-loop workers.
//
// The engine hands the executor one Session per activation of a run. The
// executor calls the workflow function with a ctx bound to the session and
// reports every step through the session's methods, which commit to the
// Store. Activate, Deliver and Detach must not block: they post work to the
// executor's own goroutines.
type Executor interface {
	// Workflows lists the registered workflows, sorted by key.
	Workflows() []WorkflowDef
	// BundleHash identifies the module code; it is stored with each run.
	BundleHash() string
	// ModulePath is the module's path (stored as the run's workflowPath).
	ModulePath() string
	// Activate starts the session's workflow function from the beginning,
	// replaying journaled nodes from s.Lookup. It ends, sooner or later, in
	// exactly one of s.Complete, s.Fail, s.Park, s.Restart (the executor
	// lost the activation's state and the run must replay), or a Detach by
	// the engine.
	Activate(s *Session)
	// Deliver tells a live activation that node n settled outside the
	// executor (approval decided, signal matched, timer fired). If the
	// activation is no longer live (it parked meanwhile), the executor calls
	// s.Rewake so the engine activates the run again.
	Deliver(s *Session, n Node)
	// Detach abandons a live activation: its JavaScript state is dropped,
	// every in-flight task body is aborted (t.signal, exec children killed),
	// and done is called once every goroutine started for it has returned.
	Detach(s *Session, reason error, done func())
	// Close stops every worker; live activations are abandoned as by
	// Detach (their runs stay "running" and resume at the next start).
	Close() error
}

// Observer is told about run lifecycle events (the API's metrics implement
// it). Methods must not block.
type Observer interface {
	// RunStarted reports an activation: source is "cron", "webhook",
	// "gateway" or "user" (from the run's triggeredBy); resume is true when
	// the run had been started before.
	RunStarted(workflow, source string, resume bool)
	// RunCompleted reports a run reaching a terminal status.
	RunCompleted(workflow string, status RunStatus)
	// CronFired reports a run started by a scheduled cron.
	CronFired(workflow string)
	// TasksWaiting reports how many task attempts of the workflow wait for
	// a slot of its concurrency limit.
	TasksWaiting(workflow string, waiting int)
}
