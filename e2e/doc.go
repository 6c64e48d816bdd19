// Package e2e holds the end-to-end tests of the real `smithers` binary:
// TestMain builds it once, and each test starts it as a child process on
// 127.0.0.1 with a temporary data directory, talks HTTP to it, and kills
// (SIGKILL or SIGTERM) and restarts it to check durability.
package e2e
