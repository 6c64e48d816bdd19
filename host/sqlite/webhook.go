package sqlite

import (
	"fmt"

	"github.com/smithers-orchestrator/smithers-go/host"
)

const (
	// waitingEventNodesSQL reads the newest waiting-event runs through the
	// runs_status index, then their nodes through the nodes primary key.
	waitingEventNodesSQL = `SELECT ` + nodeColumns + ` FROM
	(SELECT run_key, run_id, created_at_ms FROM runs WHERE status = 'waiting-event'
	 ORDER BY created_at_ms DESC, run_id DESC LIMIT ?) r
	JOIN nodes n ON n.run_key = r.run_key
	WHERE n.state = 'waiting-event'
	ORDER BY r.created_at_ms DESC, r.run_id DESC, n.created_at_ms, n.node_id, n.iteration`

	getWebhookDeliverySQL = `SELECT response_json FROM webhook_deliveries
	WHERE workflow_key = ? AND delivery_id = ? AND received_at_ms >= ?`

	putWebhookDeliverySQL = `INSERT INTO webhook_deliveries (workflow_key, delivery_id, response_json, received_at_ms)
	VALUES (?, ?, ?, ?)
	ON CONFLICT (workflow_key, delivery_id) DO UPDATE SET response_json = excluded.response_json,
	received_at_ms = excluded.received_at_ms`

	deleteWebhookDeliveriesSQL = `DELETE FROM webhook_deliveries WHERE rowid IN
	(SELECT rowid FROM webhook_deliveries WHERE received_at_ms < ? ORDER BY received_at_ms LIMIT ?)`
)

// WaitingEventNodes returns the waiting-event nodes of the newest limit
// runs whose status is waiting-event, newest run first, each run's nodes
// in creation order.
func (t *tx) WaitingEventNodes(limit int) ([]host.Node, error) {
	rows, err := t.query(waitingEventNodesSQL, limit)
	nodes, err := collect(rows, err, scanNode)
	if err != nil {
		return nil, fmt.Errorf("list waiting-event nodes: %w", err)
	}
	return nodes, nil
}

// WebhookDelivery returns the response recorded for the delivery id of the
// workflow's webhook when it was received at or after sinceMs.
func (t *tx) WebhookDelivery(workflowKey, deliveryID string, sinceMs int64) (string, bool, error) {
	resp, ok, err := getOne(t.queryRow(getWebhookDeliverySQL, workflowKey, deliveryID, sinceMs), func(sc scanner) (string, error) {
		var s string
		err := sc.Scan(&s)
		return s, err
	})
	if err != nil {
		return "", false, fmt.Errorf("get webhook delivery %s of %s: %w", deliveryID, workflowKey, err)
	}
	return resp, ok, nil
}

// PutWebhookDelivery records the response of a delivery, replacing an
// earlier record of the same id.
func (t *tx) PutWebhookDelivery(workflowKey, deliveryID, responseJSON string, receivedAtMs int64) error {
	if _, err := t.exec(putWebhookDeliverySQL, workflowKey, deliveryID, responseJSON, receivedAtMs); err != nil {
		return fmt.Errorf("put webhook delivery %s of %s: %w", deliveryID, workflowKey, err)
	}
	return nil
}

// DeleteWebhookDeliveries deletes up to limit records received before
// beforeMs, oldest first.
func (t *tx) DeleteWebhookDeliveries(beforeMs int64, limit int) (int, error) {
	res, err := t.exec(deleteWebhookDeliveriesSQL, beforeMs, limit)
	if err != nil {
		return 0, fmt.Errorf("delete expired webhook deliveries: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete expired webhook deliveries: %w", err)
	}
	return int(n), nil
}
