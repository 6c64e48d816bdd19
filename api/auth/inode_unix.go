//go:build unix

package auth

import (
	"os"
	"syscall"
)

// fileInode returns the inode number of fi, so that an atomic rename over
// the token store is noticed even when size and mtime match.
func fileInode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino) //nolint:unconvert // Ino is not uint64 everywhere.
	}
	return 0
}
