// Package sqlite implements host.Store on SQLite through modernc.org/sqlite
// (pure Go, so CGO_ENABLED=0 builds a static binary).
//
// It owns the gateway's database file: the schema and its versioned
// migrations (run by Open), the runs, nodes, attempts, approvals, signals,
// events, journaled values, crons and processes tables, the per-run event
// window, and the gateway-wide stateVersion (the events table's AUTOINCREMENT
// id, which never goes backwards, also across restarts and window trims).
//
// This package is the only importer of database/sql in the module. It
// imports host and nothing else of ours.
//
// Concurrency: a Store is safe for concurrent use. All writes go through
// Update, which hands its function to the Store's single writer goroutine
// over a channel. The writer drains the requests that are queued (at most
// maxBatch), runs them in one SQL transaction, each inside its own SAVEPOINT
// so that a function returning an error is rolled back alone, commits once
// (group commit), and only then answers each caller with the events its
// function appended. The writer owns one dedicated connection and its
// prepared statements; nothing else touches them. Read methods use a separate
// pool of connections and, thanks to WAL, run concurrently with the writer
// and see only committed data. Close stops the writer and waits for it.
//
// A function given to Update runs on the writer goroutine: it must not call
// Update (that deadlocks), must not keep the host.Tx after it returns, and
// should not block on anything slow, since every other writer waits for it.
package sqlite
