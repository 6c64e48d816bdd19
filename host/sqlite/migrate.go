package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migrations is the schema history: migrations[i] takes the database from
// PRAGMA user_version i to i+1. Append only; never edit a released entry.
//
// Columns that the wire renders as null when unset (times, JSON, optional
// text) are nullable and hold NULL for Go's zero value.
var migrations = []string{
	// 1: initial schema.
	`
CREATE TABLE runs (
	run_id                 TEXT PRIMARY KEY,
	parent_run_id          TEXT,
	workflow_key           TEXT NOT NULL,
	workflow_path          TEXT,
	workflow_hash          TEXT,
	status                 TEXT NOT NULL,
	created_at_ms          INTEGER NOT NULL,
	started_at_ms          INTEGER,
	finished_at_ms         INTEGER,
	heartbeat_at_ms        INTEGER,
	runtime_owner_id       TEXT,
	cancel_requested_at_ms INTEGER,
	error_json             TEXT,
	config_json            TEXT,
	input_json             TEXT,
	output_json            TEXT,
	idempotency_key        TEXT,
	deadline_at_ms         INTEGER,
	last_seq               INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX runs_created ON runs (created_at_ms DESC, run_id DESC);
CREATE INDEX runs_status ON runs (status, created_at_ms DESC, run_id DESC);
CREATE INDEX runs_workflow ON runs (workflow_key, created_at_ms DESC, run_id DESC);
CREATE UNIQUE INDEX runs_idempotency ON runs (workflow_key, idempotency_key)
	WHERE idempotency_key IS NOT NULL;

CREATE TABLE nodes (
	run_id        TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
	node_id       TEXT NOT NULL,
	iteration     INTEGER NOT NULL,
	kind          TEXT NOT NULL,
	state         TEXT NOT NULL,
	label         TEXT,
	output_json   TEXT,
	error_json    TEXT,
	meta_json     TEXT,
	attempts      INTEGER NOT NULL DEFAULT 0,
	created_at_ms INTEGER,
	updated_at_ms INTEGER,
	fires_at_ms   INTEGER,
	PRIMARY KEY (run_id, node_id, iteration)
) STRICT, WITHOUT ROWID;
CREATE INDEX nodes_due ON nodes (fires_at_ms)
	WHERE fires_at_ms > 0 AND state IN ('waiting-approval', 'waiting-event', 'waiting-timer');

CREATE TABLE attempts (
	run_id              TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
	node_id             TEXT NOT NULL,
	iteration           INTEGER NOT NULL,
	attempt             INTEGER NOT NULL,
	state               TEXT NOT NULL,
	started_at_ms       INTEGER,
	finished_at_ms      INTEGER,
	heartbeat_at_ms     INTEGER,
	heartbeat_data_json TEXT,
	error_json          TEXT,
	meta_json           TEXT,
	PRIMARY KEY (run_id, node_id, iteration, attempt)
) STRICT, WITHOUT ROWID;

CREATE TABLE approvals (
	run_id          TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
	node_id         TEXT NOT NULL,
	iteration       INTEGER NOT NULL,
	status          TEXT NOT NULL,
	requested_at_ms INTEGER,
	decided_at_ms   INTEGER,
	note            TEXT,
	decided_by      TEXT,
	request_json    TEXT,
	decision_json   TEXT,
	auto_approved   INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (run_id, node_id, iteration)
) STRICT, WITHOUT ROWID;
CREATE INDEX approvals_status ON approvals (status, requested_at_ms);
CREATE INDEX approvals_requested ON approvals (requested_at_ms);

CREATE TABLE signals (
	run_id         TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
	seq            INTEGER NOT NULL,
	name           TEXT NOT NULL,
	correlation_id TEXT,
	payload_json   TEXT,
	received_at_ms INTEGER,
	received_by    TEXT,
	consumed_by    TEXT,
	PRIMARY KEY (run_id, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX signals_buffered ON signals (run_id, name, seq) WHERE consumed_by IS NULL;

CREATE TABLE events (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	run_id  TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
	seq     INTEGER NOT NULL,
	name    TEXT NOT NULL,
	payload TEXT,
	at_ms   INTEGER NOT NULL,
	UNIQUE (run_id, seq)
) STRICT;

CREATE TABLE run_values (
	run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
	idx    INTEGER NOT NULL,
	value  TEXT NOT NULL,
	PRIMARY KEY (run_id, idx)
) STRICT, WITHOUT ROWID;

CREATE TABLE crons (
	cron_id        TEXT PRIMARY KEY,
	pattern        TEXT NOT NULL,
	workflow_path  TEXT,
	workflow_key   TEXT,
	enabled        INTEGER NOT NULL,
	created_at_ms  INTEGER,
	last_run_at_ms INTEGER,
	next_run_at_ms INTEGER,
	error_json     TEXT
) STRICT;

CREATE TABLE processes (
	pgid          INTEGER PRIMARY KEY,
	start_time    INTEGER NOT NULL,
	run_id        TEXT,
	node_id       TEXT,
	attempt       INTEGER NOT NULL DEFAULT 0,
	started_at_ms INTEGER
) STRICT;
`,
	// 2: retention finds expired runs by when they finished.
	`
CREATE INDEX runs_finished ON runs (finished_at_ms) WHERE finished_at_ms IS NOT NULL;
`,
	// 3: autoApprove's history rule reads the newest decisions of a node.
	`
CREATE INDEX approvals_node_decided ON approvals (node_id, decided_at_ms DESC) WHERE status IN ('approved', 'denied');
`,
	// 4: webhook responses by delivery id, so that a sender's retry is
	// answered without delivering again; expired rows are swept by age.
	`
CREATE TABLE webhook_deliveries (
	workflow_key   TEXT NOT NULL,
	delivery_id    TEXT NOT NULL,
	response_json  TEXT NOT NULL,
	received_at_ms INTEGER NOT NULL,
	PRIMARY KEY (workflow_key, delivery_id)
) STRICT;
CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at_ms);
`,
	// 5: the fencing epoch of a run's activation; the gateway process that
	// recorded a t.exec group (several processes may share a database, on
	// several hosts); live runs by their timeoutMs deadline.
	`
ALTER TABLE runs ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE processes ADD COLUMN owner TEXT;
CREATE INDEX runs_deadline ON runs (deadline_at_ms)
	WHERE deadline_at_ms > 0 AND status IN ('running', 'waiting-approval', 'waiting-event', 'waiting-timer');
`,
	// 6: the count of each run's nodes by state, kept on its row by
	// triggers in the transaction that writes the nodes (getRun's summary
	// reads no node), and the waiting nodes of a run by state (the node a
	// waiting run waits on, found without reading the others).
	`
ALTER TABLE runs ADD COLUMN nodes_pending INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN nodes_waiting_approval INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN nodes_waiting_event INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN nodes_waiting_timer INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN nodes_in_progress INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN nodes_finished INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN nodes_failed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN nodes_cancelled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN nodes_skipped INTEGER NOT NULL DEFAULT 0;
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
CREATE TRIGGER nodes_count_insert AFTER INSERT ON nodes BEGIN
	UPDATE runs SET
		nodes_pending = nodes_pending + (NEW.state = 'pending'),
		nodes_waiting_approval = nodes_waiting_approval + (NEW.state = 'waiting-approval'),
		nodes_waiting_event = nodes_waiting_event + (NEW.state = 'waiting-event'),
		nodes_waiting_timer = nodes_waiting_timer + (NEW.state = 'waiting-timer'),
		nodes_in_progress = nodes_in_progress + (NEW.state = 'in-progress'),
		nodes_finished = nodes_finished + (NEW.state = 'finished'),
		nodes_failed = nodes_failed + (NEW.state = 'failed'),
		nodes_cancelled = nodes_cancelled + (NEW.state = 'cancelled'),
		nodes_skipped = nodes_skipped + (NEW.state = 'skipped')
	WHERE run_id = NEW.run_id;
END;
CREATE TRIGGER nodes_count_update AFTER UPDATE OF state ON nodes WHEN OLD.state <> NEW.state BEGIN
	UPDATE runs SET
		nodes_pending = nodes_pending + (NEW.state = 'pending') - (OLD.state = 'pending'),
		nodes_waiting_approval = nodes_waiting_approval + (NEW.state = 'waiting-approval') - (OLD.state = 'waiting-approval'),
		nodes_waiting_event = nodes_waiting_event + (NEW.state = 'waiting-event') - (OLD.state = 'waiting-event'),
		nodes_waiting_timer = nodes_waiting_timer + (NEW.state = 'waiting-timer') - (OLD.state = 'waiting-timer'),
		nodes_in_progress = nodes_in_progress + (NEW.state = 'in-progress') - (OLD.state = 'in-progress'),
		nodes_finished = nodes_finished + (NEW.state = 'finished') - (OLD.state = 'finished'),
		nodes_failed = nodes_failed + (NEW.state = 'failed') - (OLD.state = 'failed'),
		nodes_cancelled = nodes_cancelled + (NEW.state = 'cancelled') - (OLD.state = 'cancelled'),
		nodes_skipped = nodes_skipped + (NEW.state = 'skipped') - (OLD.state = 'skipped')
	WHERE run_id = NEW.run_id;
END;
CREATE TRIGGER nodes_count_delete AFTER DELETE ON nodes BEGIN
	UPDATE runs SET
		nodes_pending = nodes_pending - (OLD.state = 'pending'),
		nodes_waiting_approval = nodes_waiting_approval - (OLD.state = 'waiting-approval'),
		nodes_waiting_event = nodes_waiting_event - (OLD.state = 'waiting-event'),
		nodes_waiting_timer = nodes_waiting_timer - (OLD.state = 'waiting-timer'),
		nodes_in_progress = nodes_in_progress - (OLD.state = 'in-progress'),
		nodes_finished = nodes_finished - (OLD.state = 'finished'),
		nodes_failed = nodes_failed - (OLD.state = 'failed'),
		nodes_cancelled = nodes_cancelled - (OLD.state = 'cancelled'),
		nodes_skipped = nodes_skipped - (OLD.state = 'skipped')
	WHERE run_id = OLD.run_id;
END;
CREATE INDEX nodes_waiting ON nodes (run_id, state, created_at_ms, node_id, iteration)
	WHERE state IN ('waiting-approval', 'waiting-event', 'waiting-timer');
`,
	// 7: runs whose cancel was requested, which a start looks for among
	// the parked runs (RunFilter.CancelRequested) without reading them all.
	`
CREATE INDEX runs_cancel_requested ON runs (cancel_requested_at_ms) WHERE cancel_requested_at_ms > 0;
`,
	// 8: every run gets an integer key in creation order (run_key), and the
	// tables of a run's parts (nodes, attempts, approvals, signals, events,
	// values) are keyed by it first instead of by the random run id. The
	// rows that one group commit writes (the steps of runs launched about
	// the same time) then share B-tree pages: a commit writes a few pages
	// to the WAL instead of one per row. Run ids are unchanged and each
	// part keeps its run_id column. The migration rebuilds the tables
	// (foreign keys are off while migrations run, see migrate).
	`
CREATE TABLE runs_v8 (
	run_key                INTEGER PRIMARY KEY,
	run_id                 TEXT NOT NULL UNIQUE,
	parent_run_id          TEXT,
	workflow_key           TEXT NOT NULL,
	workflow_path          TEXT,
	workflow_hash          TEXT,
	status                 TEXT NOT NULL,
	created_at_ms          INTEGER NOT NULL,
	started_at_ms          INTEGER,
	finished_at_ms         INTEGER,
	heartbeat_at_ms        INTEGER,
	runtime_owner_id       TEXT,
	cancel_requested_at_ms INTEGER,
	error_json             TEXT,
	config_json            TEXT,
	input_json             TEXT,
	output_json            TEXT,
	idempotency_key        TEXT,
	deadline_at_ms         INTEGER,
	last_seq               INTEGER NOT NULL DEFAULT 0,
	lease_epoch            INTEGER NOT NULL DEFAULT 0,
	nodes_pending INTEGER NOT NULL DEFAULT 0,
	nodes_waiting_approval INTEGER NOT NULL DEFAULT 0,
	nodes_waiting_event INTEGER NOT NULL DEFAULT 0,
	nodes_waiting_timer INTEGER NOT NULL DEFAULT 0,
	nodes_in_progress INTEGER NOT NULL DEFAULT 0,
	nodes_finished INTEGER NOT NULL DEFAULT 0,
	nodes_failed INTEGER NOT NULL DEFAULT 0,
	nodes_cancelled INTEGER NOT NULL DEFAULT 0,
	nodes_skipped INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO runs_v8 (run_id, parent_run_id, workflow_key, workflow_path, workflow_hash, status, created_at_ms, started_at_ms, finished_at_ms, heartbeat_at_ms, runtime_owner_id, cancel_requested_at_ms, error_json, config_json, input_json, output_json, idempotency_key, deadline_at_ms, last_seq, lease_epoch, nodes_pending, nodes_waiting_approval, nodes_waiting_event, nodes_waiting_timer, nodes_in_progress, nodes_finished, nodes_failed, nodes_cancelled, nodes_skipped)
	SELECT run_id, parent_run_id, workflow_key, workflow_path, workflow_hash, status, created_at_ms, started_at_ms, finished_at_ms, heartbeat_at_ms, runtime_owner_id, cancel_requested_at_ms, error_json, config_json, input_json, output_json, idempotency_key, deadline_at_ms, last_seq, lease_epoch, nodes_pending, nodes_waiting_approval, nodes_waiting_event, nodes_waiting_timer, nodes_in_progress, nodes_finished, nodes_failed, nodes_cancelled, nodes_skipped FROM runs ORDER BY created_at_ms, run_id;

CREATE TABLE nodes_v8 (
	run_key       INTEGER NOT NULL REFERENCES runs (run_key) ON DELETE CASCADE,
	run_id        TEXT NOT NULL,
	node_id       TEXT NOT NULL,
	iteration     INTEGER NOT NULL,
	kind          TEXT NOT NULL,
	state         TEXT NOT NULL,
	label         TEXT,
	output_json   TEXT,
	error_json    TEXT,
	meta_json     TEXT,
	attempts      INTEGER NOT NULL DEFAULT 0,
	created_at_ms INTEGER,
	updated_at_ms INTEGER,
	fires_at_ms   INTEGER,
	PRIMARY KEY (run_key, node_id, iteration)
) STRICT, WITHOUT ROWID;
INSERT INTO nodes_v8 SELECT r.run_key, x.* FROM nodes x JOIN runs_v8 r USING (run_id);

CREATE TABLE attempts_v8 (
	run_key             INTEGER NOT NULL REFERENCES runs (run_key) ON DELETE CASCADE,
	run_id              TEXT NOT NULL,
	node_id             TEXT NOT NULL,
	iteration           INTEGER NOT NULL,
	attempt             INTEGER NOT NULL,
	state               TEXT NOT NULL,
	started_at_ms       INTEGER,
	finished_at_ms      INTEGER,
	heartbeat_at_ms     INTEGER,
	heartbeat_data_json TEXT,
	error_json          TEXT,
	meta_json           TEXT,
	PRIMARY KEY (run_key, node_id, iteration, attempt)
) STRICT, WITHOUT ROWID;
INSERT INTO attempts_v8 SELECT r.run_key, x.* FROM attempts x JOIN runs_v8 r USING (run_id);

CREATE TABLE approvals_v8 (
	run_key         INTEGER NOT NULL REFERENCES runs (run_key) ON DELETE CASCADE,
	run_id          TEXT NOT NULL,
	node_id         TEXT NOT NULL,
	iteration       INTEGER NOT NULL,
	status          TEXT NOT NULL,
	requested_at_ms INTEGER,
	decided_at_ms   INTEGER,
	note            TEXT,
	decided_by      TEXT,
	request_json    TEXT,
	decision_json   TEXT,
	auto_approved   INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (run_key, node_id, iteration)
) STRICT, WITHOUT ROWID;
INSERT INTO approvals_v8 SELECT r.run_key, x.* FROM approvals x JOIN runs_v8 r USING (run_id);

CREATE TABLE signals_v8 (
	run_key        INTEGER NOT NULL REFERENCES runs (run_key) ON DELETE CASCADE,
	run_id         TEXT NOT NULL,
	seq            INTEGER NOT NULL,
	name           TEXT NOT NULL,
	correlation_id TEXT,
	payload_json   TEXT,
	received_at_ms INTEGER,
	received_by    TEXT,
	consumed_by    TEXT,
	PRIMARY KEY (run_key, seq)
) STRICT, WITHOUT ROWID;
INSERT INTO signals_v8 SELECT r.run_key, x.* FROM signals x JOIN runs_v8 r USING (run_id);

CREATE TABLE events_v8 (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	run_key INTEGER NOT NULL REFERENCES runs (run_key) ON DELETE CASCADE,
	run_id  TEXT NOT NULL,
	seq     INTEGER NOT NULL,
	name    TEXT NOT NULL,
	payload TEXT,
	at_ms   INTEGER NOT NULL,
	UNIQUE (run_key, seq)
) STRICT;
INSERT INTO events_v8 (id, run_key, run_id, seq, name, payload, at_ms)
	SELECT x.id, r.run_key, x.run_id, x.seq, x.name, x.payload, x.at_ms
	FROM events x JOIN runs_v8 r USING (run_id) ORDER BY x.id;
-- The gateway's state version is the events' AUTOINCREMENT counter: it
-- carries on from where it was, even past events already deleted.
DELETE FROM sqlite_sequence WHERE name = 'events_v8';
INSERT INTO sqlite_sequence (name, seq)
	SELECT 'events_v8', COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'events';

CREATE TABLE run_values_v8 (
	run_key INTEGER NOT NULL REFERENCES runs (run_key) ON DELETE CASCADE,
	run_id  TEXT NOT NULL,
	idx     INTEGER NOT NULL,
	value   TEXT NOT NULL,
	PRIMARY KEY (run_key, idx)
) STRICT, WITHOUT ROWID;
INSERT INTO run_values_v8 SELECT r.run_key, x.* FROM run_values x JOIN runs_v8 r USING (run_id);

DROP TABLE nodes;
DROP TABLE attempts;
DROP TABLE approvals;
DROP TABLE signals;
DROP TABLE events;
DROP TABLE run_values;
DROP TABLE runs;
ALTER TABLE runs_v8 RENAME TO runs;
ALTER TABLE nodes_v8 RENAME TO nodes;
ALTER TABLE attempts_v8 RENAME TO attempts;
ALTER TABLE approvals_v8 RENAME TO approvals;
ALTER TABLE signals_v8 RENAME TO signals;
ALTER TABLE events_v8 RENAME TO events;
ALTER TABLE run_values_v8 RENAME TO run_values;

CREATE INDEX runs_created ON runs (created_at_ms DESC, run_id DESC);
CREATE INDEX runs_status ON runs (status, created_at_ms DESC, run_id DESC);
CREATE INDEX runs_workflow ON runs (workflow_key, created_at_ms DESC, run_id DESC);
CREATE UNIQUE INDEX runs_idempotency ON runs (workflow_key, idempotency_key)
	WHERE idempotency_key IS NOT NULL;
CREATE INDEX runs_finished ON runs (finished_at_ms) WHERE finished_at_ms IS NOT NULL;
CREATE INDEX runs_deadline ON runs (deadline_at_ms)
	WHERE deadline_at_ms > 0 AND status IN ('running', 'waiting-approval', 'waiting-event', 'waiting-timer');
CREATE INDEX runs_cancel_requested ON runs (cancel_requested_at_ms) WHERE cancel_requested_at_ms > 0;

CREATE INDEX nodes_due ON nodes (fires_at_ms)
	WHERE fires_at_ms > 0 AND state IN ('waiting-approval', 'waiting-event', 'waiting-timer');
CREATE INDEX nodes_waiting ON nodes (run_key, state, created_at_ms, node_id, iteration)
	WHERE state IN ('waiting-approval', 'waiting-event', 'waiting-timer');
CREATE TRIGGER nodes_count_insert AFTER INSERT ON nodes BEGIN
	UPDATE runs SET
		nodes_pending = nodes_pending + (NEW.state = 'pending'),
		nodes_waiting_approval = nodes_waiting_approval + (NEW.state = 'waiting-approval'),
		nodes_waiting_event = nodes_waiting_event + (NEW.state = 'waiting-event'),
		nodes_waiting_timer = nodes_waiting_timer + (NEW.state = 'waiting-timer'),
		nodes_in_progress = nodes_in_progress + (NEW.state = 'in-progress'),
		nodes_finished = nodes_finished + (NEW.state = 'finished'),
		nodes_failed = nodes_failed + (NEW.state = 'failed'),
		nodes_cancelled = nodes_cancelled + (NEW.state = 'cancelled'),
		nodes_skipped = nodes_skipped + (NEW.state = 'skipped')
	WHERE run_key = NEW.run_key;
END;
CREATE TRIGGER nodes_count_update AFTER UPDATE OF state ON nodes WHEN OLD.state <> NEW.state BEGIN
	UPDATE runs SET
		nodes_pending = nodes_pending + (NEW.state = 'pending') - (OLD.state = 'pending'),
		nodes_waiting_approval = nodes_waiting_approval + (NEW.state = 'waiting-approval') - (OLD.state = 'waiting-approval'),
		nodes_waiting_event = nodes_waiting_event + (NEW.state = 'waiting-event') - (OLD.state = 'waiting-event'),
		nodes_waiting_timer = nodes_waiting_timer + (NEW.state = 'waiting-timer') - (OLD.state = 'waiting-timer'),
		nodes_in_progress = nodes_in_progress + (NEW.state = 'in-progress') - (OLD.state = 'in-progress'),
		nodes_finished = nodes_finished + (NEW.state = 'finished') - (OLD.state = 'finished'),
		nodes_failed = nodes_failed + (NEW.state = 'failed') - (OLD.state = 'failed'),
		nodes_cancelled = nodes_cancelled + (NEW.state = 'cancelled') - (OLD.state = 'cancelled'),
		nodes_skipped = nodes_skipped + (NEW.state = 'skipped') - (OLD.state = 'skipped')
	WHERE run_key = NEW.run_key;
END;
CREATE TRIGGER nodes_count_delete AFTER DELETE ON nodes BEGIN
	UPDATE runs SET
		nodes_pending = nodes_pending - (OLD.state = 'pending'),
		nodes_waiting_approval = nodes_waiting_approval - (OLD.state = 'waiting-approval'),
		nodes_waiting_event = nodes_waiting_event - (OLD.state = 'waiting-event'),
		nodes_waiting_timer = nodes_waiting_timer - (OLD.state = 'waiting-timer'),
		nodes_in_progress = nodes_in_progress - (OLD.state = 'in-progress'),
		nodes_finished = nodes_finished - (OLD.state = 'finished'),
		nodes_failed = nodes_failed - (OLD.state = 'failed'),
		nodes_cancelled = nodes_cancelled - (OLD.state = 'cancelled'),
		nodes_skipped = nodes_skipped - (OLD.state = 'skipped')
	WHERE run_key = OLD.run_key;
END;

CREATE INDEX approvals_status ON approvals (status, requested_at_ms);
CREATE INDEX approvals_requested ON approvals (requested_at_ms);
CREATE INDEX approvals_node_decided ON approvals (node_id, decided_at_ms DESC) WHERE status IN ('approved', 'denied');

CREATE INDEX signals_buffered ON signals (run_key, name, seq) WHERE consumed_by IS NULL;
`,
}

// migrate brings the schema to len(migrations), one transaction per step, on
// the writer connection. A database written by a newer binary is refused.
func (s *Store) migrate(ctx context.Context) (err error) {
	var version int
	if err := s.wconn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("migrate: read user_version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("migrate: database schema version %d is newer than this binary's %d", version, len(migrations))
	}
	if version == len(migrations) {
		return nil
	}
	// A migration may rebuild a table that others reference (8 does): with
	// foreign keys on, dropping the old table would cascade to its
	// children. They are off while migrations run, each step checks them
	// before it commits, and they are on again afterwards. The pragma is a
	// no-op inside a transaction, so it is set around the steps.
	if _, err := s.wconn.ExecContext(ctx, "PRAGMA foreign_keys = OFF"); err != nil {
		return fmt.Errorf("migrate: foreign keys off: %w", err)
	}
	defer func() {
		if _, fkErr := s.wconn.ExecContext(context.Background(), "PRAGMA foreign_keys = ON"); fkErr != nil && err == nil {
			err = fmt.Errorf("migrate: foreign keys on: %w", fkErr)
		}
	}()
	for v := version; v < len(migrations); v++ {
		start := time.Now()
		if err := s.migrateStep(ctx, v); err != nil {
			return err
		}
		s.log.Info("sqlite schema migrated", "version", v+1, "tookMs", time.Since(start).Milliseconds())
	}
	return nil
}

func (s *Store) migrateStep(ctx context.Context, from int) (err error) {
	if _, err := s.wconn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("migrate to version %d: begin: %w", from+1, err)
	}
	defer func() {
		if err != nil {
			_, _ = s.wconn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	if _, err := s.wconn.ExecContext(ctx, migrations[from]); err != nil {
		return fmt.Errorf("migrate to version %d: %w", from+1, err)
	}
	if err := foreignKeyCheck(ctx, s.wconn); err != nil {
		return fmt.Errorf("migrate to version %d: %w", from+1, err)
	}
	// PRAGMA takes no bound parameters; the value is our own integer.
	if _, err := s.wconn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", from+1)); err != nil {
		return fmt.Errorf("migrate to version %d: set user_version: %w", from+1, err)
	}
	if _, err := s.wconn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("migrate to version %d: commit: %w", from+1, err)
	}
	return nil
}

// foreignKeyCheck fails if a row references a row that does not exist
// (migrations run with foreign keys off).
func foreignKeyCheck(ctx context.Context, conn *sql.Conn) error {
	rows, err := conn.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return fmt.Errorf("foreign key check: %w", err)
	}
	defer rows.Close()
	if rows.Next() {
		var (
			table, parent string
			rowid         sql.NullInt64
			fk            int64
		)
		if err := rows.Scan(&table, &rowid, &parent, &fk); err != nil {
			return fmt.Errorf("foreign key check: %w", err)
		}
		return fmt.Errorf("foreign key check: a row of %s references a missing row of %s", table, parent)
	}
	return rows.Err()
}
