package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/smithers-orchestrator/smithers-go/host"
)

const eventColumns = `run_id, seq, id, name, payload, at_ms`

func scanEvent(sc scanner) (host.Event, error) {
	var (
		e       host.Event
		payload []byte
	)
	err := sc.Scan(&e.RunID, &e.Seq, &e.StateVersion, &e.Name, &payload, &e.AtMs)
	e.Payload = json.RawMessage(payload)
	return e, err
}

const (
	// lastSeqSQL reads the run's last_seq; no row means no such run.
	lastSeqSQL = `SELECT last_seq FROM runs WHERE run_id = ?`

	// setLastSeqSQL writes what the function's AppendEvents moved
	// last_seq to (tx.flush).
	setLastSeqSQL = `UPDATE runs SET last_seq = ? WHERE run_id = ?`

	// The AUTOINCREMENT id is the stateVersion: never reused, also after
	// the rows it numbered were trimmed.
	insertEventSQL = `INSERT INTO events (run_key, run_id, seq, name, payload, at_ms)
	VALUES (` + runKeyOfFirst + `, ?1, ?, ?, ?, ?)`

	trimEventsSQL = `DELETE FROM events WHERE run_key = ` + runKeyOf + ` AND seq <= ?`

	listEventsSQL = `SELECT ` + eventColumns + ` FROM events
	WHERE run_key = ` + runKeyOf + ` AND seq > ? ORDER BY seq LIMIT ?`

	firstEventSeqSQL = `SELECT COALESCE(MIN(seq), 0) FROM events WHERE run_key = ` + runKeyOf

	// sqlite_sequence holds the highest id the events table ever had, which
	// MAX(id) would forget once those rows were deleted. It has no row
	// before the first event.
	stateVersionSQL = `SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)`
)

// AppendEvent persists one event of the run with the run's next seq and the
// next stateVersion, deletes the run's events that fell out of the window,
// and returns the event. Appending to a run that does not exist is an error.
// The run's last_seq is counted in the transaction and written once, when
// the function returns (flush), however many events it appended.
func (t *tx) AppendEvent(runID, name string, payload json.RawMessage, atMs int64) (host.Event, error) {
	t.touch(runID)
	e := host.Event{RunID: runID, Name: name, Payload: payload, AtMs: atMs}
	last, ok := t.seqs[runID]
	if !ok {
		err := t.queryRow(lastSeqSQL, runID).Scan(&last.seq)
		if errors.Is(err, sql.ErrNoRows) {
			return host.Event{}, fmt.Errorf("append event %s to %s: no such run", name, runID)
		}
		if err != nil {
			return host.Event{}, fmt.Errorf("append event %s to %s: last seq: %w", name, runID, err)
		}
	}
	e.Seq = last.seq + 1
	var payloadArg any
	if payload != nil {
		payloadArg = string(payload)
	}
	res, err := t.exec(insertEventSQL, runID, e.Seq, name, payloadArg, atMs)
	if err == nil {
		e.StateVersion, err = res.LastInsertId()
	}
	if err != nil {
		return host.Event{}, fmt.Errorf("append event %s to %s: insert: %w", name, runID, err)
	}
	t.seqs[runID] = seqState{seq: e.Seq, dirty: true}
	if e.Seq > t.s.window {
		if _, err := t.exec(trimEventsSQL, runID, e.Seq-t.s.window); err != nil {
			return host.Event{}, fmt.Errorf("append event %s to %s: trim window: %w", name, runID, err)
		}
	}
	t.events = append(t.events, e)
	return e, nil
}

// ListEvents returns the run's retained committed events with seq >
// afterSeq in seq order, at most limit of them (limit <= 0: all).
func (s *Store) ListEvents(ctx context.Context, runID string, afterSeq int64, limit int) ([]host.Event, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.rquery(ctx, listEventsSQL, runID, afterSeq, limit)
	events, err := collect(rows, err, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("list events of %s after %d: %w", runID, afterSeq, err)
	}
	return events, nil
}

// FirstEventSeq returns the seq of the run's oldest retained event, 0 if it
// has none.
func (s *Store) FirstEventSeq(ctx context.Context, runID string) (int64, error) {
	var seq int64
	if err := s.rqueryRow(ctx, firstEventSeqSQL, runID).Scan(&seq); err != nil {
		return 0, fmt.Errorf("first event seq of %s: %w", runID, err)
	}
	return seq, nil
}

// StateVersion returns the highest stateVersion ever committed (0 before
// the first event); window trims never make it go back.
func (s *Store) StateVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.rqueryRow(ctx, stateVersionSQL).Scan(&v); err != nil {
		return 0, fmt.Errorf("state version: %w", err)
	}
	return v, nil
}
