package postgres

import (
	"fmt"

	"github.com/smithers-orchestrator/smithers-go/host"
)

const (
	// waitingEventNodesSQL reads the newest waiting-event runs through the
	// runs_status index, then their nodes through the nodes primary key.
	waitingEventNodesSQL = `SELECT ` + nodeColumns + ` FROM
	(SELECT run_id, created_at_ms FROM runs WHERE status = 'waiting-event'
	 ORDER BY created_at_ms DESC, run_id DESC LIMIT $1) r
	JOIN nodes n ON n.run_id = r.run_id
	WHERE n.state = 'waiting-event'
	ORDER BY r.created_at_ms DESC, r.run_id DESC, n.created_at_ms, n.node_id, n.iteration`

	// lockDeliverySQL makes the transactions handling one delivery id
	// take turns (a sender's retry racing the first delivery on another
	// replica): the second waits for the first to commit, then reads its
	// record. A hash collision of two ids only makes them wait for each
	// other.
	lockDeliverySQL = `SELECT pg_advisory_xact_lock($1, hashtext($2 || chr(10) || $3))`

	getWebhookDeliverySQL = `SELECT response_json FROM webhook_deliveries
	WHERE workflow_key = $1 AND delivery_id = $2 AND received_at_ms >= $3`

	putWebhookDeliverySQL = `INSERT INTO webhook_deliveries (workflow_key, delivery_id, response_json, received_at_ms)
	VALUES ($1, $2, $3, $4)
	ON CONFLICT (workflow_key, delivery_id) DO UPDATE SET response_json = excluded.response_json,
	received_at_ms = excluded.received_at_ms`

	// deleteWebhookDeliveriesSQL skips the records another transaction is
	// deleting (two replicas sweeping at once).
	deleteWebhookDeliveriesSQL = `DELETE FROM webhook_deliveries WHERE (workflow_key, delivery_id) IN
	(SELECT workflow_key, delivery_id FROM webhook_deliveries WHERE received_at_ms < $1
	 ORDER BY received_at_ms LIMIT $2 FOR UPDATE SKIP LOCKED)`
)

// WaitingEventNodes returns the waiting-event nodes of the newest limit
// runs whose status is waiting-event, newest run first, each run's nodes
// in creation order.
func (t *tx) WaitingEventNodes(limit int) ([]host.Node, error) {
	nodes, err := queryRows(t, scanNode, waitingEventNodesSQL, limit)
	if err != nil {
		return nil, fmt.Errorf("list waiting-event nodes: %w", err)
	}
	return nodes, nil
}

// WebhookDelivery returns the response recorded for the delivery id of the
// workflow's webhook when it was received at or after sinceMs. It first
// takes a lock on the delivery id held until the transaction ends, so that
// one delivery id is handled once across every process.
func (t *tx) WebhookDelivery(workflowKey, deliveryID string, sinceMs int64) (string, bool, error) {
	if _, err := t.exec(lockDeliverySQL, lockWebhooks, workflowKey, deliveryID); err != nil {
		return "", false, fmt.Errorf("lock webhook delivery %s of %s: %w", deliveryID, workflowKey, err)
	}
	resp, ok, err := queryRow(t, scanString, getWebhookDeliverySQL, workflowKey, deliveryID, sinceMs)
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
	tag, err := t.exec(deleteWebhookDeliveriesSQL, beforeMs, limit)
	if err != nil {
		return 0, fmt.Errorf("delete expired webhook deliveries: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
