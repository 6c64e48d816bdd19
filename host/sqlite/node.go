package sqlite

import (
	"context"
	"fmt"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// nodeColumns reads nodes under the alias n.
const nodeColumns = `n.run_id, n.node_id, n.iteration, n.kind, n.state, COALESCE(n.label, ''),
	COALESCE(n.output_json, ''), COALESCE(n.error_json, ''), COALESCE(n.meta_json, ''), n.attempts,
	COALESCE(n.created_at_ms, 0), COALESCE(n.updated_at_ms, 0), COALESCE(n.fires_at_ms, 0)`

func scanNode(sc scanner) (host.Node, error) {
	var n host.Node
	err := sc.Scan(&n.RunID, &n.NodeID, &n.Iteration, &n.Kind, &n.State, &n.Label,
		&n.OutputJSON, &n.ErrorJSON, &n.MetaJSON, &n.Attempts,
		&n.CreatedAtMs, &n.UpdatedAtMs, &n.FiresAtMs)
	return n, err
}

const (
	getNodeSQL = `SELECT ` + nodeColumns + ` FROM nodes n
	WHERE n.run_key = ` + runKeyOf + ` AND n.node_id = ? AND n.iteration = ?`

	// listNodesSQL orders a run's nodes by creation, which is journal order
	// for nodes created by one pass.
	listNodesSQL = `SELECT ` + nodeColumns + ` FROM nodes n WHERE n.run_key = ` + runKeyOf + `
	ORDER BY n.created_at_ms, n.node_id, n.iteration`

	listNodeIterationsSQL = `SELECT ` + nodeColumns + ` FROM nodes n
	WHERE n.run_key = ` + runKeyOf + ` AND n.node_id = ? ORDER BY n.iteration`

	putNodeSQL = `INSERT INTO nodes (run_key, run_id, node_id, iteration, kind, state, label,
	output_json, error_json, meta_json, attempts, created_at_ms, updated_at_ms, fires_at_ms)
	VALUES (` + runKeyOfFirst + `, ?1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (run_key, node_id, iteration) DO UPDATE SET kind = excluded.kind,
	state = excluded.state, label = excluded.label, output_json = excluded.output_json,
	error_json = excluded.error_json, meta_json = excluded.meta_json,
	attempts = excluded.attempts, created_at_ms = excluded.created_at_ms,
	updated_at_ms = excluded.updated_at_ms, fires_at_ms = excluded.fires_at_ms`

	insertNodeSQL = `INSERT INTO nodes (run_key, run_id, node_id, iteration, kind, state, label,
	output_json, error_json, meta_json, attempts, created_at_ms, updated_at_ms, fires_at_ms)
	VALUES (` + runKeyOfFirst + `, ?1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (run_key, node_id, iteration) DO NOTHING`

	// listWaitingNodesSQL repeats the WHERE of the partial index
	// nodes_waiting, which it must use.
	listWaitingNodesSQL = `SELECT ` + nodeColumns + ` FROM nodes n INDEXED BY nodes_waiting
	WHERE n.run_key = ` + runKeyOf + ` AND n.state = ?
	AND n.state IN ('waiting-approval', 'waiting-event', 'waiting-timer')
	ORDER BY n.created_at_ms, n.node_id, n.iteration`

	// listDueNodesSQL repeats the WHERE of the partial index nodes_due, which
	// it must use (a few timers among all the nodes of every run): INDEXED BY
	// turns a mismatch into an error at prepare time.
	listDueNodesSQL = `SELECT ` + nodeColumns + ` FROM nodes n INDEXED BY nodes_due
	JOIN runs r ON r.run_key = n.run_key
	WHERE n.fires_at_ms > 0 AND n.state IN ('waiting-approval', 'waiting-event', 'waiting-timer')
	AND r.status NOT IN ('finished', 'failed', 'cancelled')
	AND (?1 <= 0 OR n.fires_at_ms <= ?1)
	ORDER BY n.fires_at_ms, n.run_id, n.node_id, n.iteration`
)

// GetNode reads one journal node.
func (t *tx) GetNode(runID, nodeID string, iteration int) (host.Node, bool, error) {
	n, ok, err := getOne(t.queryRow(getNodeSQL, runID, nodeID, iteration), scanNode)
	if err != nil {
		return n, false, fmt.Errorf("get node %s/%s#%d: %w", runID, nodeID, iteration, err)
	}
	return n, ok, nil
}

// ListNodes reads the run's nodes in creation order.
func (t *tx) ListNodes(runID string) ([]host.Node, error) {
	rows, err := t.query(listNodesSQL, runID)
	nodes, err := collect(rows, err, scanNode)
	if err != nil {
		return nil, fmt.Errorf("list nodes of %s: %w", runID, err)
	}
	return nodes, nil
}

// ListWaitingNodes reads the run's nodes in a waiting state, oldest first.
func (t *tx) ListWaitingNodes(runID string, state host.NodeState) ([]host.Node, error) {
	if !state.Waiting() {
		return nil, fmt.Errorf("list waiting nodes of %s: %s is not a waiting state", runID, state)
	}
	rows, err := t.query(listWaitingNodesSQL, runID, string(state))
	nodes, err := collect(rows, err, scanNode)
	if err != nil {
		return nil, fmt.Errorf("list %s nodes of %s: %w", state, runID, err)
	}
	return nodes, nil
}

// PutNode inserts or overwrites the node. The run must exist.
func (t *tx) PutNode(n host.Node) error {
	t.touch(n.RunID)
	_, err := t.exec(putNodeSQL, n.RunID, n.NodeID, n.Iteration, string(n.Kind), string(n.State),
		nullString(n.Label), nullString(n.OutputJSON), nullString(n.ErrorJSON),
		nullString(n.MetaJSON), n.Attempts, nullInt(n.CreatedAtMs), nullInt(n.UpdatedAtMs),
		nullInt(n.FiresAtMs))
	if err != nil {
		return fmt.Errorf("put node %s/%s#%d: %w", n.RunID, n.NodeID, n.Iteration, err)
	}
	return nil
}

// InsertNode writes a new node; false means the run has a node of that
// key (nothing was written).
func (t *tx) InsertNode(n host.Node) (bool, error) {
	t.touch(n.RunID)
	res, err := t.exec(insertNodeSQL, n.RunID, n.NodeID, n.Iteration, string(n.Kind), string(n.State),
		nullString(n.Label), nullString(n.OutputJSON), nullString(n.ErrorJSON),
		nullString(n.MetaJSON), n.Attempts, nullInt(n.CreatedAtMs), nullInt(n.UpdatedAtMs),
		nullInt(n.FiresAtMs))
	var added int64
	if err == nil {
		added, err = res.RowsAffected()
	}
	if err != nil {
		return false, fmt.Errorf("insert node %s/%s#%d: %w", n.RunID, n.NodeID, n.Iteration, err)
	}
	return added == 1, nil
}

const deleteNodeSQL = `DELETE FROM nodes WHERE run_key = ` + runKeyOf + ` AND node_id = ? AND iteration = ?`

// DeleteNode removes one node; its attempts stay.
func (t *tx) DeleteNode(runID, nodeID string, iteration int) error {
	t.touch(runID)
	if _, err := t.exec(deleteNodeSQL, runID, nodeID, iteration); err != nil {
		return fmt.Errorf("delete node %s/%s#%d: %w", runID, nodeID, iteration, err)
	}
	return nil
}

// ListNodes reads the run's committed nodes in creation order.
func (s *Store) ListNodes(ctx context.Context, runID string) ([]host.Node, error) {
	rows, err := s.rquery(ctx, listNodesSQL, runID)
	nodes, err := collect(rows, err, scanNode)
	if err != nil {
		return nil, fmt.Errorf("list nodes of %s: %w", runID, err)
	}
	return nodes, nil
}

// ListNodeIterations reads the iterations of one node of a run.
func (s *Store) ListNodeIterations(ctx context.Context, runID, nodeID string) ([]host.Node, error) {
	rows, err := s.rquery(ctx, listNodeIterationsSQL, runID, nodeID)
	nodes, err := collect(rows, err, scanNode)
	if err != nil {
		return nil, fmt.Errorf("list iterations of node %s of %s: %w", nodeID, runID, err)
	}
	return nodes, nil
}

// ListDueNodes returns the waiting nodes with a timer (FiresAtMs > 0) of
// every run that is not finished, failed or cancelled, soonest first.
func (s *Store) ListDueNodes(ctx context.Context, beforeMs int64) ([]host.Node, error) {
	rows, err := s.rquery(ctx, listDueNodesSQL, beforeMs)
	nodes, err := collect(rows, err, scanNode)
	if err != nil {
		return nil, fmt.Errorf("list due nodes: %w", err)
	}
	return nodes, nil
}
