// Package bench is the load generator behind `smithers bench`. It speaks
// the Gateway v1 protocol through api/client, so it measures any gateway,
// this one or the upstream one. Scenarios (--scenarios, in the order given):
//
//   - rpc: GET /health, then getRun over HTTP on one run, each for
//     --duration with --concurrency callers; the getRun row compares its
//     rate and p99 with /health's, measured on the same gateway in the same
//     call.
//   - runs: each caller launches a run, follows it on a fresh socket with
//     streamRunEvents (as the official client does), approves what it asks
//     for, and waits for run.completed.
//   - launch: each caller launches a run over HTTP and waits for its
//     run.completed on one socket that watches every run; reports runs/s,
//     durable steps/s (node.finished events) and the gateway's CPU per run
//     (process_cpu_seconds_total of /metrics before and after) and its
//     peak resident memory (sampled every second).
//   - fanout: --subscribers unfiltered sockets; one driver launches runs
//     and approves them; each approval.decided received is one sample.
//   - stream: --subscribers sockets subscribed to one run of the "ticks"
//     workflow (examples/bench) which a driver sends --rate signals per
//     second; each signal settles one wait, whose node.finished every socket
//     must receive: samples are receive time minus send time, and any
//     missing delivery is reported as dropped. A signal puts two events on
//     the run (the wait finished, the next one pending): --rate 50 is 100
//     events per second on the run, which the note reports; ops are event
//     frames received by all sockets.
//   - parked: launches --parked runs that park and reports how much the
//     gateway's resident memory grew.
//
// Concurrency: Run runs one scenario at a time; a scenario's callers are
// goroutines it starts and waits for.
package bench
