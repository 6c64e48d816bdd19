package host

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// killOrphanProcesses kills the process groups of t.exec children recorded
// by a gateway that died without cleaning up, when a process with the
// recorded pid and start time still exists (a recycled pid is left alone).
func killOrphanProcesses(ctx context.Context, store Store, log *slog.Logger) {
	procs, err := store.ListProcesses(ctx)
	if err != nil {
		log.Error("list orphan process groups", "err", err)
		return
	}
	for _, p := range procs {
		if st, ok := ProcessStartTime(p.PGID); ok && st == p.StartTime {
			if err := syscall.Kill(-p.PGID, syscall.SIGKILL); err == nil {
				log.Warn("killed process group left by the previous gateway", "pgid", p.PGID, "runId", p.RunID, "nodeId", p.NodeID)
			}
		}
		if _, err := store.Update(ctx, func(tx Tx) error { return tx.DeleteProcess(p.PGID) }); err != nil {
			log.Error("forget orphan process group", "pgid", p.PGID, "err", err)
		}
	}
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
