package host

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// killOrphanProcesses kills the process groups of t.exec children recorded
// by a gateway that died without cleaning up, when a process with the
// recorded pid and start time still exists (a recycled pid is left alone).
// On a store shared by several gateway processes (Store.Exclusive false),
// only groups recorded on this host by a process that no longer exists
// are touched: the others belong to live gateways or to other machines.
func (g *Gateway) killOrphanProcesses(ctx context.Context) {
	procs, err := g.store.ListProcesses(ctx)
	if err != nil {
		g.log.Error("list orphan process groups", "err", err)
		return
	}
	exclusive := g.store.Exclusive()
	host, _ := os.Hostname()
	for _, p := range procs {
		if !exclusive && p.Owner != g.instance && !ownerGone(p.Owner, host) {
			continue
		}
		if st, ok := ProcessStartTime(p.PGID); ok && st == p.StartTime {
			if err := syscall.Kill(-p.PGID, syscall.SIGKILL); err == nil {
				g.log.Warn("killed process group left by the previous gateway", "pgid", p.PGID, "runId", p.RunID, "nodeId", p.NodeID)
			}
		}
		if _, err := g.store.Update(ctx, func(tx Tx) error { return tx.DeleteProcess(p.Owner, p.PGID) }); err != nil {
			g.log.Error("forget orphan process group", "pgid", p.PGID, "err", err)
		}
	}
}

// ownerGone reports whether the gateway process named by an instance id
// ("host:pid:random") ran on this host and no longer exists.
func ownerGone(owner, thisHost string) bool {
	parts := strings.Split(owner, ":")
	if len(parts) < 3 || strings.Join(parts[:len(parts)-2], ":") != thisHost {
		return false
	}
	pid, err := strconv.Atoi(parts[len(parts)-2])
	if err != nil || pid <= 0 {
		return false
	}
	err = syscall.Kill(pid, 0)
	return err != nil && !errors.Is(err, syscall.EPERM)
}

// ProcessStartTime reads a process's start time (clock ticks since boot,
// field 22 of /proc/<pid>/stat). ok is false when the process does not
// exist or /proc is unavailable.
func ProcessStartTime(pid int) (uint64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(b)
	// The command name (field 2) is in parentheses and may contain spaces.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state); start time is field 22.
	if len(fields) < 20 {
		return 0, false
	}
	v, err := strconv.ParseUint(fields[19], 10, 64)
	return v, err == nil
}
