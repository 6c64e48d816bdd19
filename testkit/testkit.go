package testkit

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"
)

// Buffer is a bytes.Buffer safe for the goroutines of a logger or a
// process writing to it while a test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Count is how many lines written so far contain every one of texts.
func (b *Buffer) Count(texts ...string) int {
	n := 0
	for _, l := range strings.Split(b.String(), "\n") {
		ok := l != ""
		for _, t := range texts {
			ok = ok && strings.Contains(l, t)
		}
		if ok {
			n++
		}
	}
	return n
}

// JSONLines decodes every line written so far that is a JSON object (the
// records of a slog JSON handler); other lines are left out.
func (b *Buffer) JSONLines() []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(b.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(l), &rec) == nil && rec != nil {
			out = append(out, rec)
		}
	}
	return out
}

// Records are the JSON records whose "msg" is msg.
func (b *Buffer) Records(msg string) []map[string]any {
	var out []map[string]any
	for _, rec := range b.JSONLines() {
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// Eventually polls cond every few milliseconds until it holds, and fails
// the test naming what it waited for when timeout passes first.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
