// Package testkit is the one kit of test helpers the packages' tests share:
// a log sink safe for concurrent writers, JSON log lines, and polling with
// a deadline instead of sleeping. Only tests import it.
package testkit
