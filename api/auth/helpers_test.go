package auth

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
	"github.com/smithers-orchestrator/smithers-go/testkit"
)

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newTestLogger() (*slog.Logger, *testkit.Buffer) {
	b := &testkit.Buffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// fakeClock is a settable clock safe for concurrent use.
type fakeClock struct{ ms atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ms.Store(t.UnixMilli())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// writeAtomic replaces path with data the way the CLI does.
func writeAtomic(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp-test"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func storePath(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "tokens.json")
}

// causeOf is the cause each wire message of an authentication failure
// must carry, so that callers can classify failures with errors.Is.
var causeOf = map[string]error{
	msgTokenRequired: ErrTokenRequired, msgInvalidToken: ErrTokenInvalid, msgTokenRevoked: ErrTokenRevoked,
	msgTokenExpired: ErrTokenExpired, msgStoreUnavailable: ErrStoreUnavailable, msgOriginNotAllowed: ErrOriginNotAllowed,
	msgJWTSegments: ErrTokenInvalid, msgJWTJSON: ErrTokenInvalid, msgJWTAlg: ErrTokenInvalid, msgJWTSignature: ErrTokenInvalid,
	msgJWTIssuer: ErrTokenInvalid, msgJWTAudience: ErrTokenInvalid, msgJWTMissingExp: ErrTokenInvalid,
	msgJWTExpired: ErrTokenExpired, msgJWTNotActive: ErrTokenInvalid,
}

// wantUnauthorized checks err is UNAUTHORIZED with message, the cause of
// that message and, when refresh is true, the refresh hint.
func wantUnauthorized(t *testing.T, err error, message string, refresh bool) {
	t.Helper()
	var he *host.Error
	if !errors.As(err, &he) {
		t.Fatalf("error = %v, want *host.Error", err)
	}
	if he.Code != CodeUnauthorized || he.Message != message {
		t.Fatalf("error = %s / %q, want %s / %q", he.Code, he.Message, CodeUnauthorized, message)
	}
	if cause, known := causeOf[message]; !known || !errors.Is(err, cause) {
		t.Fatalf("error %q has cause %v, want %v", message, he.Err, cause)
	}
	got, has := he.Extra["refresh"]
	if refresh && got != RefreshHint {
		t.Fatalf("refresh = %v, want %q", got, RefreshHint)
	}
	if !refresh && has {
		t.Fatalf("unexpected refresh %v", got)
	}
}
