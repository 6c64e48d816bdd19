package tokenstore

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// storeNowMs is the fixed "now" of the tests, in Unix milliseconds.
const storeNowMs = 1_700_000_000_000

// wantCode fails unless err is a *host.Error with code, and returns it.
func wantCode(t *testing.T, err error, code string) *host.Error {
	t.Helper()
	var he *host.Error
	if !errors.As(err, &he) || he.Code != code {
		t.Fatalf("error = %v, want code %s", err, code)
	}
	return he
}

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

// readTestdata returns a file of testdata/.
func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}
