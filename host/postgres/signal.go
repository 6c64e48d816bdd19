package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/smithers-orchestrator/smithers-go/host"
)

// correlation_id is read raw: NULL scans into a nil *string.
const signalColumns = `run_id, seq, name, correlation_id, payload_json, received_at_ms,
	received_by, consumed_by`

func scanSignal(row pgx.Row) (host.Signal, error) {
	var s host.Signal
	err := row.Scan(&s.RunID, &s.Seq, &s.Name, &s.CorrelationID, &s.PayloadJSON,
		&s.ReceivedAtMs, &s.ReceivedBy, &s.ConsumedBy)
	return s, err
}

const (
	// lockRunForSignalSQL serialises the signals of one run: the next seq
	// is read after it, in a statement of its own, so that it sees the
	// signals of the transaction it waited for.
	lockRunForSignalSQL = `SELECT 1 FROM runs WHERE run_id = $1 FOR NO KEY UPDATE`

	// insertSignalSQL gives the signal the run's next seq, 0 for the first.
	insertSignalSQL = `INSERT INTO signals (run_id, seq, name, correlation_id, payload_json,
	received_at_ms, received_by, consumed_by)
	VALUES ($1, (SELECT COALESCE(MAX(seq) + 1, 0) FROM signals WHERE run_id = $1),
	$2, $3, $4, $5, $6, $7)
	RETURNING seq`

	// oldestUnconsumedSignalSQL compares correlation ids with IS NOT
	// DISTINCT FROM so that NULL matches NULL only. The partial index
	// signals_buffered skips consumed signals and is in seq order.
	oldestUnconsumedSignalSQL = `SELECT ` + signalColumns + ` FROM signals
	WHERE run_id = $1 AND name = $2 AND correlation_id IS NOT DISTINCT FROM $3::text AND consumed_by = ''
	ORDER BY seq LIMIT 1`

	countBufferedSignalsSQL = `SELECT COUNT(*) FROM signals WHERE run_id = $1 AND consumed_by = ''`

	consumeSignalSQL = `UPDATE signals SET consumed_by = $1 WHERE run_id = $2 AND seq = $3`

	listSignalsSQL = `SELECT ` + signalColumns + ` FROM signals WHERE run_id = $1 ORDER BY seq`
)

// InsertSignal stores s with the run's next seq (0-based) and returns it
// with that seq. The run must exist; its row stays locked until the
// transaction ends.
func (t *tx) InsertSignal(s host.Signal) (host.Signal, error) {
	if _, err := t.exec(lockRunForSignalSQL, s.RunID); err != nil {
		return host.Signal{}, fmt.Errorf("insert signal %q of %s: %w", s.Name, s.RunID, err)
	}
	seq, _, err := queryRow(t, func(row pgx.Row) (int64, error) {
		var seq int64
		err := row.Scan(&seq)
		return seq, err
	}, insertSignalSQL, s.RunID, s.Name, s.CorrelationID, s.PayloadJSON, s.ReceivedAtMs,
		s.ReceivedBy, s.ConsumedBy)
	if err != nil {
		return host.Signal{}, fmt.Errorf("insert signal %q of %s: %w", s.Name, s.RunID, err)
	}
	s.Seq = seq
	return s, nil
}

// OldestUnconsumedSignal finds the buffered signal of the run with that
// name and correlation id (nil matches only nil) that has the lowest seq.
func (t *tx) OldestUnconsumedSignal(runID, name string, correlationID *string) (host.Signal, bool, error) {
	s, ok, err := queryRow(t, scanSignal, oldestUnconsumedSignalSQL, runID, name, correlationID)
	if err != nil {
		return s, false, fmt.Errorf("oldest unconsumed signal %q of %s: %w", name, runID, err)
	}
	return s, ok, nil
}

// ConsumeSignal marks the signal as consumed by the wait of node nodeID.
// Consuming a signal that does not exist is an error.
func (t *tx) ConsumeSignal(runID string, seq int64, nodeID string) error {
	tag, err := t.exec(consumeSignalSQL, nodeID, runID, seq)
	if err != nil {
		return fmt.Errorf("consume signal %s/%d: %w", runID, seq, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("consume signal %s/%d: no such signal", runID, seq)
	}
	return nil
}

// CountBufferedSignals counts the run's signals that no wait consumed.
func (t *tx) CountBufferedSignals(runID string) (int, error) {
	n, _, err := queryRow(t, func(row pgx.Row) (int, error) {
		var n int
		err := row.Scan(&n)
		return n, err
	}, countBufferedSignalsSQL, runID)
	if err != nil {
		return 0, fmt.Errorf("count buffered signals of %s: %w", runID, err)
	}
	return n, nil
}

// ListSignals reads the run's committed signals in seq order.
func (s *Store) ListSignals(ctx context.Context, runID string) ([]host.Signal, error) {
	signals, err := read(ctx, s, scanSignal, listSignalsSQL, runID)
	if err != nil {
		return nil, fmt.Errorf("list signals of %s: %w", runID, err)
	}
	return signals, nil
}
