package host_test

import (
	"os"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host/postgres/pgtest"
)

// pg is the throwaway PostgreSQL cluster of the tests that need one,
// started on first use.
var pg pgtest.Shared

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &pg)) }
