//go:build !unix

package auth

import "os"

// fileInode returns 0 where inode numbers are not available; size, mtime
// and the racy-window re-read still catch changes.
func fileInode(os.FileInfo) uint64 { return 0 }
