package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// releaseStartupPages unmaps from the process the resident pages of the
// binary's read-only mappings (its code and constant tables), with
// MADV_DONTNEED: they are private, never-written file pages, so nothing is
// lost and the page cache keeps them (unlike MADV_PAGEOUT, which would
// evict them and make the next start, or the next use, read the disk).
// The ones the gateway goes on using fault back in from the page cache.
// Start-up touches much that is never run again (esbuild bundling the
// module, the migrations), which would otherwise stay counted in the
// process's resident memory. Errors leave things as they were.
func releaseStartupPages() {
	exe, err := os.Executable()
	if err != nil {
		return
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe || strings.Contains(fields[1], "w") {
			continue
		}
		start, end, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		lo, err1 := strconv.ParseUint(start, 16, 64)
		hi, err2 := strconv.ParseUint(end, 16, 64)
		if err1 != nil || err2 != nil || hi <= lo {
			continue
		}
		_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, uintptr(lo), uintptr(hi-lo), syscall.MADV_DONTNEED)
	}
}
