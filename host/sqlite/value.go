package sqlite

import (
	"context"
	"fmt"
)

const (
	putValueSQL = `INSERT INTO run_values (run_key, run_id, idx, value)
	VALUES (` + runKeyOfFirst + `, ?1, ?, ?)
	ON CONFLICT (run_key, idx) DO UPDATE SET value = excluded.value`

	listValuesSQL = `SELECT value FROM run_values WHERE run_key = ` + runKeyOf + ` ORDER BY idx`
)

// PutValue journals the index-th ctx.now/random/uuid value of the run
// (overwriting a value already stored at that index). The run must exist.
func (t *tx) PutValue(runID string, index int, valueJSON string) error {
	if _, err := t.exec(putValueSQL, runID, index, valueJSON); err != nil {
		return fmt.Errorf("put value %s[%d]: %w", runID, index, err)
	}
	return nil
}

// ListValues returns the run's committed journaled values in call order.
func (s *Store) ListValues(ctx context.Context, runID string) ([]string, error) {
	rows, err := s.rquery(ctx, listValuesSQL, runID)
	values, err := collect(rows, err, func(sc scanner) (string, error) {
		var v string
		err := sc.Scan(&v)
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("list values of %s: %w", runID, err)
	}
	return values, nil
}
