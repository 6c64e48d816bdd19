// Package host is the domain of the Smithers gateway: workflows, runs, nodes,
// attempts, approvals, signals, events and crons; the error type with stable
// codes; the Store interface; and the engine (Gateway) that runs workflows
// durably by replaying them against a journal.
//
// host imports nothing of this module: jsruntime implements the Executor
// interface declared here, host/sqlite implements Store, api and cmd call the
// Gateway's exported methods.
//
// Concurrency: Gateway methods are safe for concurrent use. The Gateway's
// mutex (Gateway.mu) guards the table of active runs; it is never held while
// calling the Store or the Executor, except for the short non-blocking posts
// documented on Executor. Lock order: Gateway.mu, then activeRun.mu.
package host
