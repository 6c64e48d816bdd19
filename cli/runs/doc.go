// Package runs is `smithers runs`: it lists, shows and follows the runs of
// a gateway and acts on them (launch, approve, deny, signal, cancel,
// resume) over the v1 protocol, through api/client. Results go to one
// writer as human tables, or as JSON with CLI.JSON; notes about the
// connection (a stream resumed after a dropped socket) go to another.
//
// It works against any v1 gateway. From this gateway it also reads the
// attempt rows (attempts.list) and the events a run keeps (a replayed
// run-event stream) to show a run's nodes and attempts.
//
// It holds no state beyond a CLI value; a CLI is used by one goroutine.
//
// It imports api/client for the protocol and nothing else of this module;
// it never reads flags or the environment (cmd/smithers does).
package runs
