package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/smithers-orchestrator/smithers-go/host"
)

const cronColumns = `cron_id, pattern, workflow_path, workflow_key, enabled, created_at_ms,
	last_run_at_ms, next_run_at_ms, error_json`

func scanCron(row pgx.Row) (host.Cron, error) {
	var c host.Cron
	err := row.Scan(&c.CronID, &c.Pattern, &c.WorkflowPath, &c.WorkflowKey, &c.Enabled,
		&c.CreatedAtMs, &c.LastRunAtMs, &c.NextRunAtMs, &c.ErrorJSON)
	return c, err
}

const (
	// getCronSQL locks the cron until the transaction ends: the processes
	// that find a slot due take turns, and the second sees the first's
	// nextRunAtMs, so that a slot starts one run.
	getCronSQL = `SELECT ` + cronColumns + ` FROM crons WHERE cron_id = $1 FOR UPDATE`

	putCronSQL = `INSERT INTO crons (cron_id, pattern, workflow_path, workflow_key, enabled,
	created_at_ms, last_run_at_ms, next_run_at_ms, error_json)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
	ON CONFLICT (cron_id) DO UPDATE SET pattern = excluded.pattern,
	workflow_path = excluded.workflow_path, workflow_key = excluded.workflow_key,
	enabled = excluded.enabled, created_at_ms = excluded.created_at_ms,
	last_run_at_ms = excluded.last_run_at_ms, next_run_at_ms = excluded.next_run_at_ms,
	error_json = excluded.error_json`

	deleteCronSQL = `DELETE FROM crons WHERE cron_id = $1`

	listCronsSQL = `SELECT ` + cronColumns + ` FROM crons ORDER BY cron_id`
)

// GetCron reads one cron and locks it until the transaction ends.
func (t *tx) GetCron(cronID string) (host.Cron, bool, error) {
	c, ok, err := queryRow(t, scanCron, getCronSQL, cronID)
	if err != nil {
		return c, false, fmt.Errorf("get cron %s: %w", cronID, err)
	}
	return c, ok, nil
}

// PutCron inserts or overwrites the cron.
func (t *tx) PutCron(c host.Cron) error {
	_, err := t.exec(putCronSQL, c.CronID, c.Pattern, c.WorkflowPath, c.WorkflowKey, c.Enabled,
		c.CreatedAtMs, c.LastRunAtMs, c.NextRunAtMs, c.ErrorJSON)
	if err != nil {
		return fmt.Errorf("put cron %s: %w", c.CronID, err)
	}
	return nil
}

// DeleteCron deletes the cron and reports whether it existed.
func (t *tx) DeleteCron(cronID string) (bool, error) {
	tag, err := t.exec(deleteCronSQL, cronID)
	if err != nil {
		return false, fmt.Errorf("delete cron %s: %w", cronID, err)
	}
	return tag.RowsAffected() > 0, nil
}

// ListCrons returns every committed cron ordered by id.
func (s *Store) ListCrons(ctx context.Context) ([]host.Cron, error) {
	crons, err := read(ctx, s, scanCron, listCronsSQL)
	if err != nil {
		return nil, fmt.Errorf("list crons: %w", err)
	}
	return crons, nil
}
