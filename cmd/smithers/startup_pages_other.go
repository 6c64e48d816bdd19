//go:build !linux

package main

// releaseStartupPages has nothing to do off Linux.
func releaseStartupPages() {}
