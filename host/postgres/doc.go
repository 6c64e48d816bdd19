// Package postgres implements host.Store on PostgreSQL through
// github.com/jackc/pgx/v5 (pgxpool), for several gateway processes sharing
// one database: any replica answers any request, and every replica sees
// every committed event.
//
// It owns the database's schema and its versioned migrations (applied by
// Open under an advisory lock, so that replicas starting together migrate
// once; the versions applied are rows of schema_migrations), the same
// tables as host/sqlite in PostgreSQL types (JSON as TEXT, so payloads
// round-trip byte for byte), the per-run event window, the gateway-wide
// stateVersion (the events table's identity column), and the commit feed
// that hands every committed event to Options.OnCommit (feed.go says how).
// Every query is parameterised; only fixed identifiers are written into
// SQL text.
//
// This package is the only importer of pgx in the module. It imports host
// and nothing else of ours. Its test helper, pgtest, runs throwaway
// PostgreSQL servers for any package's tests.
//
// Concurrency: a Store is safe for concurrent use, and any number of
// Stores, in this process or others, may share a database. Update runs its
// function in its own READ COMMITTED transaction on a pooled connection,
// concurrently with other functions. Tx.GetRun (FOR NO KEY UPDATE),
// GetNode, GetCron and GetApproval (FOR UPDATE) lock the row they read
// until the transaction ends, AppendEvent and InsertSignal lock the run, and
// WebhookDelivery locks the delivery id (an advisory lock), so that
// functions reading and writing back one run, node, cron or delivery take
// turns across every process, and the later one reads what the earlier one
// committed. A conflict (deadlock, serialization failure, a concurrent
// launch with the same idempotency key) makes Update run the function again
// in a fresh transaction, so a function must only assign variables it
// captured. A function must not call Update, nor keep the host.Tx after it
// returns.
//
// Events cross processes through the commit feed: every transaction that
// appended events notifies (pg_notify, delivered on commit only) the runs
// it wrote; each Store's listening connection wakes on them and reads the
// runs' events after the last seq it delivered, so OnCommit gets every
// event of every process once, per run in seq order. A Store delivers its
// own commits directly when they follow what it delivered. After a lost
// listening connection it reconnects and reads every run written since its
// last barrier, by transaction id (events.xid), so nothing is lost. The
// events table stays the source of truth; a notification only wakes
// readers. feed.go details it. The price: PostgreSQL serialises the
// commits of notifying transactions in a database (a lock held until the
// commit is flushed), so event-appending commits of all replicas together
// are bounded by the WAL flush latency; group commit does not batch them.
//
// The commit feed has one goroutine, the listener, which owns the
// listening connection; Close stops it and waits for it. Delivery is
// serialised by feed.mu, under which OnCommit is called (from the listener
// or from Update after its commit). Lock order: feed.mu, then the pool's
// own locks; feed.mu is never taken while a transaction of this Store is
// open, and health.mu is a leaf taken alone.
package postgres
