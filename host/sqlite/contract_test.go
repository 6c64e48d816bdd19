package sqlite

import (
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
	"github.com/smithers-orchestrator/smithers-go/host/storetest"
)

// TestStoreContract runs the store conformance suite, which host/postgres
// runs too.
func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts storetest.Options) host.Store {
		s, _ := openTemp(t, Options{EventWindow: opts.EventWindow, OnCommit: opts.OnCommit})
		return s
	})
}
