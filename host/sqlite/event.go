package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

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

	trimEventsSQL = `DELETE FROM events WHERE run_key = ` + runKeyOf + ` AND seq <= ?`

	listEventsSQL = `SELECT ` + eventColumns + ` FROM events
	WHERE run_key = ` + runKeyOf + ` AND seq > ? ORDER BY seq LIMIT ?`

	firstEventSeqSQL = `SELECT COALESCE(MIN(seq), 0) FROM events WHERE run_key = ` + runKeyOf

	// sqlite_sequence holds the highest id the events table ever had, which
	// MAX(id) would forget once those rows were deleted. It has no row
	// before the first event.
	stateVersionSQL = `SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)`
)

// AppendEvent gives the event the run's next seq and keeps it for flush,
// which writes the function's events in as few statements as it can.
// Appending to a run that does not exist is an error. The run's last_seq
// is counted in the transaction and written once, at flush, however many
// events the function appended.
func (t *tx) AppendEvent(runID, name string, payload json.RawMessage, atMs int64) error {
	t.touch(runID)
	last, ok := t.seqs[runID]
	if !ok {
		err := t.queryRow(lastSeqSQL, runID).Scan(&last.seq)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("append event %s to %s: no such run", name, runID)
		}
		if err != nil {
			return fmt.Errorf("append event %s to %s: last seq: %w", name, runID, err)
		}
	}
	e := host.Event{RunID: runID, Seq: last.seq + 1, Name: name, Payload: payload, AtMs: atMs}
	t.seqs[runID] = seqState{seq: e.Seq, dirty: true}
	t.events = append(t.events, e)
	return nil
}

// maxEventRows bounds the rows of one multi-row event INSERT (flush).
const maxEventRows = 16

// insertEventsSQL is the INSERT of n events, each row five parameters:
// run id, seq, name, payload, time. The AUTOINCREMENT id is the
// stateVersion: never reused, also after the rows it numbered were
// trimmed; the rows of one statement take consecutive ids in order.
func insertEventsSQL(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO events (run_key, run_id, seq, name, payload, at_ms) VALUES `)
	for i := range n {
		p := 5*i + 1
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "((SELECT run_key FROM runs WHERE run_id = ?%d), ?%d, ?%d, ?%d, ?%d, ?%d)", p, p, p+1, p+2, p+3, p+4)
	}
	return b.String()
}

// writeEvents inserts the events the function appended, in order, and
// sets their stateVersions.
func (t *tx) writeEvents() error {
	for start := 0; start < len(t.events); start += maxEventRows {
		rows := t.events[start:min(start+maxEventRows, len(t.events))]
		args := make([]any, 0, 5*len(rows))
		for _, e := range rows {
			var payload any
			if e.Payload != nil {
				payload = string(e.Payload)
			}
			args = append(args, e.RunID, e.Seq, e.Name, payload, e.AtMs)
		}
		res, err := t.exec(t.s.insertEvents[len(rows)-1], args...)
		var last int64
		if err == nil {
			last, err = res.LastInsertId()
		}
		if err != nil {
			return fmt.Errorf("append event %s to %s: insert: %w", rows[0].Name, rows[0].RunID, err)
		}
		for i := range rows {
			rows[i].StateVersion = last - int64(len(rows)-1-i)
		}
	}
	return nil
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
