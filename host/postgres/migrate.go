package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// migrations is the schema history: migrations[i] takes the database from
// version i (rows 1..i in schema_migrations) to i+1. Append only; never edit
// a released entry.
//
// The tables are SQLite's in PostgreSQL types. Times are BIGINT Unix
// milliseconds and optional values NOT NULL with 0 or ” for "not set" (the
// Go zero value), so that ordering by them matches SQLite's NULLs-first;
// only a signal's correlation id (nil differs from "") and an event's
// payload (nil differs from empty) are nullable. JSON is TEXT, never JSONB,
// so that payloads round-trip byte for byte. Identifiers compare in the "C"
// collation, byte by byte as in SQLite, whatever the database's locale:
// run id prefixes and the (createdAtMs, runId) keyset order depend on it.
var migrations = []string{
	// 1: the schema of SQLite's migrations 1 to 5, plus what a store shared
	// by several processes needs: events.xid (the writing transaction, for
	// the commit feed's catch-up) and the stateVersion floor kept by run
	// deletions.
	`
CREATE TABLE runs (
	run_id                 TEXT COLLATE "C" PRIMARY KEY,
	parent_run_id          TEXT NOT NULL DEFAULT '',
	workflow_key           TEXT COLLATE "C" NOT NULL,
	workflow_path          TEXT NOT NULL DEFAULT '',
	workflow_hash          TEXT NOT NULL DEFAULT '',
	status                 TEXT NOT NULL,
	created_at_ms          BIGINT NOT NULL,
	started_at_ms          BIGINT NOT NULL DEFAULT 0,
	finished_at_ms         BIGINT NOT NULL DEFAULT 0,
	heartbeat_at_ms        BIGINT NOT NULL DEFAULT 0,
	runtime_owner_id       TEXT NOT NULL DEFAULT '',
	cancel_requested_at_ms BIGINT NOT NULL DEFAULT 0,
	error_json             TEXT NOT NULL DEFAULT '',
	config_json            TEXT NOT NULL DEFAULT '',
	input_json             TEXT NOT NULL DEFAULT '',
	output_json            TEXT NOT NULL DEFAULT '',
	idempotency_key        TEXT COLLATE "C" NOT NULL DEFAULT '',
	deadline_at_ms         BIGINT NOT NULL DEFAULT 0,
	last_seq               BIGINT NOT NULL DEFAULT 0,
	lease_epoch            BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX runs_created ON runs (created_at_ms DESC, run_id DESC);
CREATE INDEX runs_status ON runs (status, created_at_ms DESC, run_id DESC);
CREATE INDEX runs_workflow ON runs (workflow_key, created_at_ms DESC, run_id DESC);
CREATE UNIQUE INDEX runs_idempotency ON runs (workflow_key, idempotency_key)
	WHERE idempotency_key <> '';
CREATE INDEX runs_finished ON runs (finished_at_ms) WHERE finished_at_ms > 0;
CREATE INDEX runs_deadline ON runs (deadline_at_ms)
	WHERE deadline_at_ms > 0 AND status IN ('running', 'waiting-approval', 'waiting-event', 'waiting-timer');

CREATE TABLE nodes (
	run_id        TEXT COLLATE "C" NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
	node_id       TEXT COLLATE "C" NOT NULL,
	iteration     INTEGER NOT NULL,
	kind          TEXT NOT NULL,
	state         TEXT NOT NULL,
	label         TEXT NOT NULL DEFAULT '',
	output_json   TEXT NOT NULL DEFAULT '',
	error_json    TEXT NOT NULL DEFAULT '',
	meta_json     TEXT NOT NULL DEFAULT '',
	attempts      INTEGER NOT NULL DEFAULT 0,
	created_at_ms BIGINT NOT NULL DEFAULT 0,
	updated_at_ms BIGINT NOT NULL DEFAULT 0,
	fires_at_ms   BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (run_id, node_id, iteration)
);
CREATE INDEX nodes_due ON nodes (fires_at_ms)
	WHERE fires_at_ms > 0 AND state IN ('waiting-approval', 'waiting-event', 'waiting-timer');

CREATE TABLE attempts (
	run_id              TEXT COLLATE "C" NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
	node_id             TEXT COLLATE "C" NOT NULL,
	iteration           INTEGER NOT NULL,
	attempt             INTEGER NOT NULL,
	state               TEXT NOT NULL,
	started_at_ms       BIGINT NOT NULL DEFAULT 0,
	finished_at_ms      BIGINT NOT NULL DEFAULT 0,
	heartbeat_at_ms     BIGINT NOT NULL DEFAULT 0,
	heartbeat_data_json TEXT NOT NULL DEFAULT '',
	error_json          TEXT NOT NULL DEFAULT '',
	meta_json           TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (run_id, node_id, iteration, attempt)
);

CREATE TABLE approvals (
	run_id          TEXT COLLATE "C" NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
	node_id         TEXT COLLATE "C" NOT NULL,
	iteration       INTEGER NOT NULL,
	status          TEXT NOT NULL,
	requested_at_ms BIGINT NOT NULL DEFAULT 0,
	decided_at_ms   BIGINT NOT NULL DEFAULT 0,
	note            TEXT NOT NULL DEFAULT '',
	decided_by      TEXT NOT NULL DEFAULT '',
	request_json    TEXT NOT NULL DEFAULT '',
	decision_json   TEXT NOT NULL DEFAULT '',
	auto_approved   BOOLEAN NOT NULL DEFAULT false,
	PRIMARY KEY (run_id, node_id, iteration)
);
CREATE INDEX approvals_status ON approvals (status, requested_at_ms);
CREATE INDEX approvals_requested ON approvals (requested_at_ms);
CREATE INDEX approvals_node_decided ON approvals (node_id, decided_at_ms DESC)
	WHERE status IN ('approved', 'denied');

CREATE TABLE signals (
	run_id         TEXT COLLATE "C" NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
	seq            BIGINT NOT NULL,
	name           TEXT COLLATE "C" NOT NULL,
	correlation_id TEXT COLLATE "C",
	payload_json   TEXT NOT NULL DEFAULT '',
	received_at_ms BIGINT NOT NULL DEFAULT 0,
	received_by    TEXT NOT NULL DEFAULT '',
	consumed_by    TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (run_id, seq)
);
CREATE INDEX signals_buffered ON signals (run_id, name, seq) WHERE consumed_by = '';

CREATE TABLE events (
	id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	run_id  TEXT COLLATE "C" NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
	seq     BIGINT NOT NULL,
	name    TEXT NOT NULL,
	payload TEXT,
	at_ms   BIGINT NOT NULL,
	xid     xid8 NOT NULL DEFAULT pg_current_xact_id(),
	UNIQUE (run_id, seq)
);
CREATE INDEX events_xid ON events (xid);

CREATE TABLE state_version_floor (
	one     BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
	version BIGINT NOT NULL
);
INSERT INTO state_version_floor (version) VALUES (0);

CREATE TABLE run_values (
	run_id TEXT COLLATE "C" NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
	idx    INTEGER NOT NULL,
	value  TEXT NOT NULL,
	PRIMARY KEY (run_id, idx)
);

CREATE TABLE crons (
	cron_id        TEXT COLLATE "C" PRIMARY KEY,
	pattern        TEXT NOT NULL,
	workflow_path  TEXT NOT NULL DEFAULT '',
	workflow_key   TEXT NOT NULL DEFAULT '',
	enabled        BOOLEAN NOT NULL,
	created_at_ms  BIGINT NOT NULL DEFAULT 0,
	last_run_at_ms BIGINT NOT NULL DEFAULT 0,
	next_run_at_ms BIGINT NOT NULL DEFAULT 0,
	error_json     TEXT NOT NULL DEFAULT ''
);

CREATE TABLE processes (
	owner         TEXT COLLATE "C" NOT NULL DEFAULT '',
	pgid          INTEGER NOT NULL,
	start_time    BIGINT NOT NULL,
	run_id        TEXT COLLATE "C" NOT NULL DEFAULT '',
	node_id       TEXT NOT NULL DEFAULT '',
	attempt       INTEGER NOT NULL DEFAULT 0,
	started_at_ms BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (owner, pgid)
);
CREATE INDEX processes_run ON processes (run_id);

CREATE TABLE webhook_deliveries (
	workflow_key   TEXT COLLATE "C" NOT NULL,
	delivery_id    TEXT COLLATE "C" NOT NULL,
	response_json  TEXT NOT NULL,
	received_at_ms BIGINT NOT NULL,
	PRIMARY KEY (workflow_key, delivery_id)
);
CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at_ms);
`,
	// 2: the count of each run's nodes by state, kept on its row by a
	// trigger in the transaction that writes the nodes (getRun's summary
	// reads no node), and the waiting nodes of a run by state (the node a
	// waiting run waits on, found without reading the others).
	`
ALTER TABLE runs
	ADD COLUMN nodes_pending INTEGER NOT NULL DEFAULT 0,
	ADD COLUMN nodes_waiting_approval INTEGER NOT NULL DEFAULT 0,
	ADD COLUMN nodes_waiting_event INTEGER NOT NULL DEFAULT 0,
	ADD COLUMN nodes_waiting_timer INTEGER NOT NULL DEFAULT 0,
	ADD COLUMN nodes_in_progress INTEGER NOT NULL DEFAULT 0,
	ADD COLUMN nodes_finished INTEGER NOT NULL DEFAULT 0,
	ADD COLUMN nodes_failed INTEGER NOT NULL DEFAULT 0,
	ADD COLUMN nodes_cancelled INTEGER NOT NULL DEFAULT 0,
	ADD COLUMN nodes_skipped INTEGER NOT NULL DEFAULT 0;
UPDATE runs SET
	nodes_pending = (SELECT count(*) FROM nodes n WHERE n.run_id = runs.run_id AND n.state = 'pending'),
	nodes_waiting_approval = (SELECT count(*) FROM nodes n WHERE n.run_id = runs.run_id AND n.state = 'waiting-approval'),
	nodes_waiting_event = (SELECT count(*) FROM nodes n WHERE n.run_id = runs.run_id AND n.state = 'waiting-event'),
	nodes_waiting_timer = (SELECT count(*) FROM nodes n WHERE n.run_id = runs.run_id AND n.state = 'waiting-timer'),
	nodes_in_progress = (SELECT count(*) FROM nodes n WHERE n.run_id = runs.run_id AND n.state = 'in-progress'),
	nodes_finished = (SELECT count(*) FROM nodes n WHERE n.run_id = runs.run_id AND n.state = 'finished'),
	nodes_failed = (SELECT count(*) FROM nodes n WHERE n.run_id = runs.run_id AND n.state = 'failed'),
	nodes_cancelled = (SELECT count(*) FROM nodes n WHERE n.run_id = runs.run_id AND n.state = 'cancelled'),
	nodes_skipped = (SELECT count(*) FROM nodes n WHERE n.run_id = runs.run_id AND n.state = 'skipped');
CREATE FUNCTION nodes_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		UPDATE runs SET
			nodes_pending = nodes_pending + (NEW.state = 'pending')::int,
			nodes_waiting_approval = nodes_waiting_approval + (NEW.state = 'waiting-approval')::int,
			nodes_waiting_event = nodes_waiting_event + (NEW.state = 'waiting-event')::int,
			nodes_waiting_timer = nodes_waiting_timer + (NEW.state = 'waiting-timer')::int,
			nodes_in_progress = nodes_in_progress + (NEW.state = 'in-progress')::int,
			nodes_finished = nodes_finished + (NEW.state = 'finished')::int,
			nodes_failed = nodes_failed + (NEW.state = 'failed')::int,
			nodes_cancelled = nodes_cancelled + (NEW.state = 'cancelled')::int,
			nodes_skipped = nodes_skipped + (NEW.state = 'skipped')::int
		WHERE run_id = NEW.run_id;
	ELSIF TG_OP = 'UPDATE' THEN
		UPDATE runs SET
			nodes_pending = nodes_pending + (NEW.state = 'pending')::int - (OLD.state = 'pending')::int,
			nodes_waiting_approval = nodes_waiting_approval + (NEW.state = 'waiting-approval')::int - (OLD.state = 'waiting-approval')::int,
			nodes_waiting_event = nodes_waiting_event + (NEW.state = 'waiting-event')::int - (OLD.state = 'waiting-event')::int,
			nodes_waiting_timer = nodes_waiting_timer + (NEW.state = 'waiting-timer')::int - (OLD.state = 'waiting-timer')::int,
			nodes_in_progress = nodes_in_progress + (NEW.state = 'in-progress')::int - (OLD.state = 'in-progress')::int,
			nodes_finished = nodes_finished + (NEW.state = 'finished')::int - (OLD.state = 'finished')::int,
			nodes_failed = nodes_failed + (NEW.state = 'failed')::int - (OLD.state = 'failed')::int,
			nodes_cancelled = nodes_cancelled + (NEW.state = 'cancelled')::int - (OLD.state = 'cancelled')::int,
			nodes_skipped = nodes_skipped + (NEW.state = 'skipped')::int - (OLD.state = 'skipped')::int
		WHERE run_id = NEW.run_id;
	ELSE
		UPDATE runs SET
			nodes_pending = nodes_pending - (OLD.state = 'pending')::int,
			nodes_waiting_approval = nodes_waiting_approval - (OLD.state = 'waiting-approval')::int,
			nodes_waiting_event = nodes_waiting_event - (OLD.state = 'waiting-event')::int,
			nodes_waiting_timer = nodes_waiting_timer - (OLD.state = 'waiting-timer')::int,
			nodes_in_progress = nodes_in_progress - (OLD.state = 'in-progress')::int,
			nodes_finished = nodes_finished - (OLD.state = 'finished')::int,
			nodes_failed = nodes_failed - (OLD.state = 'failed')::int,
			nodes_cancelled = nodes_cancelled - (OLD.state = 'cancelled')::int,
			nodes_skipped = nodes_skipped - (OLD.state = 'skipped')::int
		WHERE run_id = OLD.run_id;
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER nodes_count AFTER INSERT OR DELETE ON nodes
	FOR EACH ROW EXECUTE FUNCTION nodes_count();
CREATE TRIGGER nodes_count_state AFTER UPDATE OF state ON nodes
	FOR EACH ROW WHEN (OLD.state <> NEW.state) EXECUTE FUNCTION nodes_count();
CREATE INDEX nodes_waiting ON nodes (run_id, state, created_at_ms, node_id, iteration)
	WHERE state IN ('waiting-approval', 'waiting-event', 'waiting-timer');
`,
	// 3: runs whose cancel was requested, which a start looks for among
	// the parked runs (RunFilter.CancelRequested) without reading them all.
	`
CREATE INDEX runs_cancel_requested ON runs (cancel_requested_at_ms) WHERE cancel_requested_at_ms > 0;
`,
}

// Advisory lock keys, in the two-int4 form (key, subkey) so that they
// cannot meet a single-bigint key of another program on the same database.
const (
	// lockMigrations, with subkey 0, is held by the process migrating.
	lockMigrations = 0x736d7468 // "smth"
	// lockWebhooks, with a hash of (workflow, delivery id) as subkey, is
	// held by the transaction handling that delivery (WebhookDelivery).
	lockWebhooks = lockMigrations + 1
)

// migrate brings the schema to len(migrations) under a session advisory
// lock, so that replicas starting together migrate once: the others wait
// for the lock, then find nothing left to do. Each step is one transaction
// (PostgreSQL's DDL is transactional) that also records its version. A
// database written by a newer binary is refused.
func (s *Store) migrate(ctx context.Context) (err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1, 0)", lockMigrations); err != nil {
		return fmt.Errorf("migrate: take the migration lock: %w", err)
	}
	defer func() {
		// When the unlock fails the session is closed, which releases the
		// lock on the server, and the pool drops the closed connection.
		_, uerr := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1, 0)", lockMigrations)
		if uerr != nil {
			_ = conn.Conn().Close(context.Background())
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	var version int
	if err := conn.QueryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&version); err != nil {
		return fmt.Errorf("migrate: read the schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("migrate: database schema version %d is newer than this binary's %d", version, len(migrations))
	}
	for v := version; v < len(migrations); v++ {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, migrations[v]); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version) VALUES ($1)", v+1)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate to version %d: %w", v+1, err)
		}
		s.log.Info("postgresql schema migrated", "version", v+1)
	}
	return nil
}
