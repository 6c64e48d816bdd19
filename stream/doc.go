// Package stream is the event hub between the engine and the sockets: the
// store's commit hook publishes committed run events in commit order; each
// subscriber (a
// WebSocket connection) gets the events it wants in a bounded queue (count
// and bytes) that its own writer goroutine drains.
//
// Publishing never blocks: a subscriber whose queue would exceed its event
// count, or whose backlog already fills its byte budget when a commit
// arrives, is cut off (Overflowed reports it) and every later event is
// dropped for it; other subscribers are unaffected. The byte budget bounds
// the backlog rather than the queue with the new commit added, so that one
// event larger than the budget (a task output of several MiB) reaches every
// subscriber that keeps up. Replay of older events comes from
// the Store (windows of idle runs live in SQLite, not RAM), so memory stays
// bounded whatever the number of runs.
//
// stream imports host only; it has no network imports.
//
// Concurrency: Hub and Subscriber methods are safe for concurrent use. Lock
// order: Hub.mu, then Subscriber.mu.
package stream
