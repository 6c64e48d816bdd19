package postgres

import (
	"context"
	"fmt"
)

const (
	putValueSQL = `INSERT INTO run_values (run_id, idx, value) VALUES ($1, $2, $3)
	ON CONFLICT (run_id, idx) DO UPDATE SET value = excluded.value`

	listValuesSQL = `SELECT value FROM run_values WHERE run_id = $1 ORDER BY idx`
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
	values, err := read(ctx, s, scanString, listValuesSQL, runID)
	if err != nil {
		return nil, fmt.Errorf("list values of %s: %w", runID, err)
	}
	return values, nil
}
