package host_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// TestRegressReconcileNeverReachesOlderOrphans: reconcile lists only the 1000
// newest running runs. When other live replicas keep 1000 newer runs
// running, an older run whose owner died is never taken over.
func TestRegressReconcileNeverReachesOlderOrphans(t *testing.T) {
	now := time.Now().UnixMilli()
	far := now + int64(time.Hour/time.Millisecond) // renewed leases: fresh for the whole test
	e := newEngine(t, oneTask(nil), engineOpts{shared: true, heartbeat: 20 * time.Millisecond, lease: 100 * time.Millisecond,
		beforeBoot: func(fs *faultyStore) {
			// The replica holding "orphan" is alive at our start (its last renewal
			// is good for another 1.5 s) and dies right after.
			insertRun(t, fs, host.Run{RunID: "orphan", Status: host.RunRunning, CreatedAtMs: now - 1000, StartedAtMs: now - 1000,
				RuntimeOwnerID: "dying:1:x", HeartbeatAtMs: now + 1500})
			_, err := fs.Update(context.Background(), func(tx host.Tx) error {
				for i := 0; i < 1000; i++ {
					r := host.Run{RunID: fmt.Sprintf("busy-%04d", i), WorkflowKey: "wf", InputJSON: "{}", Status: host.RunRunning,
						CreatedAtMs: now + int64(i), StartedAtMs: now, RuntimeOwnerID: "live:2:y", HeartbeatAtMs: far}
					if err := tx.InsertRun(r); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}})
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if e.run("orphan").Status == host.RunFinished {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	r := e.run("orphan")
	t.Fatalf("5 s (50 leases) after its owner stopped renewing, the orphan is %s, owner %s: never taken over", r.Status, r.RuntimeOwnerID)
}
