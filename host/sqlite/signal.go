package sqlite

import (
	"context"
	"fmt"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// correlation_id is read raw: NULL scans into a nil *string.
const signalColumns = `run_id, seq, name, correlation_id, COALESCE(payload_json, ''),
	COALESCE(received_at_ms, 0), COALESCE(received_by, ''), COALESCE(consumed_by, '')`

func scanSignal(sc scanner) (host.Signal, error) {
	var s host.Signal
	err := sc.Scan(&s.RunID, &s.Seq, &s.Name, &s.CorrelationID, &s.PayloadJSON,
		&s.ReceivedAtMs, &s.ReceivedBy, &s.ConsumedBy)
	return s, err
}

const (
	// insertSignalSQL gives the signal the run's next seq, 0 for the first.
	insertSignalSQL = `INSERT INTO signals (run_key, run_id, seq, name, correlation_id, payload_json,
	received_at_ms, received_by, consumed_by)
	VALUES (` + runKeyOfFirst + `, ?1, (SELECT COALESCE(MAX(seq) + 1, 0) FROM signals WHERE run_key = ` + runKeyOfFirst + `),
	?2, ?3, ?4, ?5, ?6, ?7)
	RETURNING seq`

	// oldestUnconsumedSignalSQL compares correlation ids with IS so that
	// NULL matches NULL only. It reads the partial index signals_buffered,
	// which skips consumed signals and is in seq order.
	oldestUnconsumedSignalSQL = `SELECT ` + signalColumns + ` FROM signals
	INDEXED BY signals_buffered WHERE run_key = ` + runKeyOf + ` AND name = ? AND correlation_id IS ? AND consumed_by IS NULL
	ORDER BY seq LIMIT 1`

	countBufferedSignalsSQL = `SELECT COUNT(*) FROM signals INDEXED BY signals_buffered
	WHERE run_key = ` + runKeyOf + ` AND consumed_by IS NULL`

	consumeSignalSQL = `UPDATE signals SET consumed_by = ? WHERE run_key = ` + runKeyOf + ` AND seq = ?`

	listSignalsSQL = `SELECT ` + signalColumns + ` FROM signals WHERE run_key = ` + runKeyOf + ` ORDER BY seq`
)

// InsertSignal stores s with the run's next seq (0-based) and returns it
// with that seq. The run must exist.
func (t *tx) InsertSignal(s host.Signal) (host.Signal, error) {
	err := t.queryRow(insertSignalSQL, s.RunID, s.Name, correlationArg(s.CorrelationID),
		nullString(s.PayloadJSON), nullInt(s.ReceivedAtMs), nullString(s.ReceivedBy),
		nullString(s.ConsumedBy)).Scan(&s.Seq)
	if err != nil {
		return host.Signal{}, fmt.Errorf("insert signal %q of %s: %w", s.Name, s.RunID, err)
	}
	return s, nil
}

// OldestUnconsumedSignal finds the buffered signal of the run with that
// name and correlation id (nil matches only nil) that has the lowest seq.
func (t *tx) OldestUnconsumedSignal(runID, name string, correlationID *string) (host.Signal, bool, error) {
	row := t.queryRow(oldestUnconsumedSignalSQL, runID, name, correlationArg(correlationID))
	s, ok, err := getOne(row, scanSignal)
	if err != nil {
		return s, false, fmt.Errorf("oldest unconsumed signal %q of %s: %w", name, runID, err)
	}
	return s, ok, nil
}

// ConsumeSignal marks the signal as consumed by the wait of node nodeID.
// Consuming a signal that does not exist is an error.
func (t *tx) ConsumeSignal(runID string, seq int64, nodeID string) error {
	res, err := t.exec(consumeSignalSQL, nullString(nodeID), runID, seq)
	if err != nil {
		return fmt.Errorf("consume signal %s/%d: %w", runID, seq, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("consume signal %s/%d: %w", runID, seq, err)
	} else if n == 0 {
		return fmt.Errorf("consume signal %s/%d: no such signal", runID, seq)
	}
	return nil
}

// CountBufferedSignals counts the run's signals that no wait consumed.
func (t *tx) CountBufferedSignals(runID string) (int, error) {
	var n int
	if err := t.queryRow(countBufferedSignalsSQL, runID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count buffered signals of %s: %w", runID, err)
	}
	return n, nil
}

// ListSignals reads the run's committed signals in seq order.
func (s *Store) ListSignals(ctx context.Context, runID string) ([]host.Signal, error) {
	rows, err := s.rquery(ctx, listSignalsSQL, runID)
	signals, err := collect(rows, err, scanSignal)
	if err != nil {
		return nil, fmt.Errorf("list signals of %s: %w", runID, err)
	}
	return signals, nil
}

// correlationArg binds a correlation id: nil is NULL, any string (also "")
// is itself.
func correlationArg(id *string) any {
	if id == nil {
		return nil
	}
	return *id
}
