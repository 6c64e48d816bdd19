package sqlite

import (
	"context"
	"fmt"

	"github.com/smithers-orchestrator/smithers-go/host"
)

const cronColumns = `cron_id, pattern, COALESCE(workflow_path, ''), COALESCE(workflow_key, ''),
	enabled, COALESCE(created_at_ms, 0), COALESCE(last_run_at_ms, 0),
	COALESCE(next_run_at_ms, 0), COALESCE(error_json, '')`

func scanCron(sc scanner) (host.Cron, error) {
	var c host.Cron
	err := sc.Scan(&c.CronID, &c.Pattern, &c.WorkflowPath, &c.WorkflowKey, &c.Enabled,
		&c.CreatedAtMs, &c.LastRunAtMs, &c.NextRunAtMs, &c.ErrorJSON)
	return c, err
}

const (
	getCronSQL = `SELECT ` + cronColumns + ` FROM crons WHERE cron_id = ?`

	putCronSQL = `INSERT INTO crons (cron_id, pattern, workflow_path, workflow_key, enabled,
	created_at_ms, last_run_at_ms, next_run_at_ms, error_json)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (cron_id) DO UPDATE SET pattern = excluded.pattern,
	workflow_path = excluded.workflow_path, workflow_key = excluded.workflow_key,
	enabled = excluded.enabled, created_at_ms = excluded.created_at_ms,
	last_run_at_ms = excluded.last_run_at_ms, next_run_at_ms = excluded.next_run_at_ms,
	error_json = excluded.error_json`

	deleteCronSQL = `DELETE FROM crons WHERE cron_id = ?`

	listCronsSQL = `SELECT ` + cronColumns + ` FROM crons ORDER BY cron_id`
)

// GetCron reads one cron.
func (t *tx) GetCron(cronID string) (host.Cron, bool, error) {
	c, ok, err := getOne(t.queryRow(getCronSQL, cronID), scanCron)
	if err != nil {
		return c, false, fmt.Errorf("get cron %s: %w", cronID, err)
	}
	return c, ok, nil
}

// PutCron inserts or overwrites the cron.
func (t *tx) PutCron(c host.Cron) error {
	_, err := t.exec(putCronSQL, c.CronID, c.Pattern, nullString(c.WorkflowPath),
		nullString(c.WorkflowKey), boolInt(c.Enabled), nullInt(c.CreatedAtMs),
		nullInt(c.LastRunAtMs), nullInt(c.NextRunAtMs), nullString(c.ErrorJSON))
	if err != nil {
		return fmt.Errorf("put cron %s: %w", c.CronID, err)
	}
	return nil
}

// DeleteCron deletes the cron and reports whether it existed.
func (t *tx) DeleteCron(cronID string) (bool, error) {
	res, err := t.exec(deleteCronSQL, cronID)
	if err != nil {
		return false, fmt.Errorf("delete cron %s: %w", cronID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("delete cron %s: %w", cronID, err)
	}
	return n > 0, nil
}

// ListCrons returns every committed cron ordered by id.
func (s *Store) ListCrons(ctx context.Context) ([]host.Cron, error) {
	rows, err := s.rquery(ctx, listCronsSQL)
	crons, err := collect(rows, err, scanCron)
	if err != nil {
		return nil, fmt.Errorf("list crons: %w", err)
	}
	return crons, nil
}
