package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/smithers-orchestrator/smithers-go/host"
)

const eventColumns = `run_id, seq, id, name, payload, at_ms`

func scanEvent(row pgx.Row) (host.Event, error) {
	var (
		e       host.Event
		payload []byte
	)
	err := row.Scan(&e.RunID, &e.Seq, &e.StateVersion, &e.Name, &payload, &e.AtMs)
	e.Payload = json.RawMessage(payload)
	return e, err
}

// trimBatch bounds one window trim: after a smaller window was configured,
// a long run's surplus goes a batch per append rather than in one
// statement.
const trimBatch = 1000

const (
	// appendEventSQL appends one event in one round trip. It moves the
	// run's last_seq under the run's row lock, so that the events of one
	// run are numbered and committed in order whatever process appends
	// them (no row: no such run); inserts the event, whose identity id is
	// the stateVersion (never reused, also after the rows it numbered were
	// trimmed) and whose xid is the writing transaction's id, which the
	// commit feed reads back; deletes at most trimBatch events that fell
	// out of the window; and notifies the commit feeds, which PostgreSQL
	// does on commit only ("<seq> <seq> <run id>", see feed).
	appendEventSQL = `WITH next AS (
		UPDATE runs SET last_seq = last_seq + 1 WHERE run_id = $1 RETURNING last_seq
	), ins AS (
		INSERT INTO events (run_id, seq, name, payload, at_ms)
		SELECT $1, last_seq, $2, $3, $4 FROM next
		RETURNING seq, id, xid
	), trimmed AS (
		DELETE FROM events WHERE run_id = $1 AND seq IN
		(SELECT e.seq FROM events e, next WHERE e.run_id = $1 AND e.seq <= next.last_seq - $5
		 ORDER BY e.seq LIMIT $6)
	)
	SELECT ins.seq, ins.id, ins.xid::text FROM ins,
	LATERAL (SELECT pg_notify('` + eventsChannel + `', ins.seq || ' ' || ins.seq || ' ' || $1)) notified`

	listEventsSQL = `SELECT ` + eventColumns + ` FROM events
	WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`

	listAllEventsSQL = `SELECT ` + eventColumns + ` FROM events
	WHERE run_id = $1 AND seq > $2 ORDER BY seq`

	firstEventSeqSQL = `SELECT COALESCE(MIN(seq), 0) FROM events WHERE run_id = $1`

	// The newest event's id, or the floor DeleteRun left when it deleted
	// the run that had it.
	stateVersionSQL = `SELECT GREATEST((SELECT COALESCE(MAX(id), 0) FROM events),
	(SELECT version FROM state_version_floor))`
)

// AppendEvent persists one event of the run with the run's next seq and the
// next stateVersion, deletes the run's events that fell out of the window,
// and returns the event. Appending to a run that does not exist is an
// error.
func (t *tx) AppendEvent(runID, name string, payload json.RawMessage, atMs int64) error {
	e := host.Event{RunID: runID, Name: name, Payload: payload, AtMs: atMs}
	var payloadArg any
	if payload != nil {
		payloadArg = string(payload)
	}
	var xid string
	_, ok, err := queryRow(t, func(row pgx.Row) (struct{}, error) {
		return struct{}{}, row.Scan(&e.Seq, &e.StateVersion, &xid)
	}, appendEventSQL, runID, name, payloadArg, atMs, t.s.window, trimBatch)
	if err != nil {
		return fmt.Errorf("append event %s to %s: %w", name, runID, err)
	}
	if !ok {
		return fmt.Errorf("append event %s to %s: no such run", name, runID)
	}
	if t.xid == 0 {
		if t.xid, err = strconv.ParseUint(xid, 10, 64); err != nil {
			return fmt.Errorf("append event %s to %s: transaction id %q: %w", name, runID, xid, err)
		}
	}
	t.events = append(t.events, e)
	return nil
}

// ListEvents returns the run's retained committed events with seq >
// afterSeq in seq order, at most limit of them (limit <= 0: all).
func (s *Store) ListEvents(ctx context.Context, runID string, afterSeq int64, limit int) ([]host.Event, error) {
	var (
		events []host.Event
		err    error
	)
	if limit <= 0 {
		events, err = read(ctx, s, scanEvent, listAllEventsSQL, runID, afterSeq)
	} else {
		events, err = read(ctx, s, scanEvent, listEventsSQL, runID, afterSeq, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("list events of %s after %d: %w", runID, afterSeq, err)
	}
	return events, nil
}

// FirstEventSeq returns the seq of the run's oldest retained event, 0 if it
// has none.
func (s *Store) FirstEventSeq(ctx context.Context, runID string) (int64, error) {
	seq, _, err := readOne(ctx, s, scanInt64, firstEventSeqSQL, runID)
	if err != nil {
		return 0, fmt.Errorf("first event seq of %s: %w", runID, err)
	}
	return seq, nil
}

// StateVersion returns the highest stateVersion committed (0 before the
// first event); window trims and run deletions never make it go back.
func (s *Store) StateVersion(ctx context.Context) (int64, error) {
	v, _, err := readOne(ctx, s, scanInt64, stateVersionSQL)
	if err != nil {
		return 0, fmt.Errorf("state version: %w", err)
	}
	return v, nil
}

func scanInt64(row pgx.Row) (int64, error) {
	var n int64
	err := row.Scan(&n)
	return n, err
}
