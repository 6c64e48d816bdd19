package main

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
	"github.com/smithers-orchestrator/smithers-go/host/postgres"
	"github.com/smithers-orchestrator/smithers-go/host/sqlite"
)

// openStore opens the gateway's database: the SQLite file at DBPath (one
// gateway process, the default), or the PostgreSQL database at DatabaseURL
// (any number of gateway processes forming one gateway).
func (m *Main) openStore(ctx context.Context, onCommit func([]host.Event)) error {
	cfg := m.cfg
	if cfg.DatabaseURL != "" {
		st, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{EventWindow: cfg.EventWindow, Logger: m.log, OnCommit: onCommit})
		if err != nil {
			return fmt.Errorf("open database %s: %w", redactURL(cfg.DatabaseURL), err)
		}
		m.store = st
		return nil
	}
	st, err := sqlite.Open(ctx, cfg.DBPath, sqlite.Options{EventWindow: cfg.EventWindow, Logger: m.log, OnCommit: onCommit, SyncFull: cfg.DBSync == "full"})
	if err != nil {
		return fmt.Errorf("open database %s: %w", cfg.DBPath, err)
	}
	m.store = st
	return nil
}

// databaseName is how logs and the banner name the database, never with
// its password.
func (m *Main) databaseName() string {
	if m.cfg.DatabaseURL != "" {
		return redactURL(m.cfg.DatabaseURL)
	}
	return m.cfg.DBPath
}

// redactURL hides a database URL's password.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	return u.Redacted()
}

// heartbeatFor is how often runs' leases are renewed: a third of the lease
// (so that two renewals can be missed before another process takes a run
// over), at most every 10 s.
func heartbeatFor(leaseMs int) time.Duration {
	return min(10*time.Second, time.Duration(leaseMs)*time.Millisecond/3)
}
