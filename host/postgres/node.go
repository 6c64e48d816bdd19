package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/smithers-orchestrator/smithers-go/host"
)

// nodeColumns reads nodes under the alias n.
const nodeColumns = `n.run_id, n.node_id, n.iteration, n.kind, n.state, n.label,
	n.output_json, n.error_json, n.meta_json, n.attempts, n.created_at_ms, n.updated_at_ms, n.fires_at_ms`

func scanNode(row pgx.Row) (host.Node, error) {
	var (
		n           host.Node
		kind, state string
	)
	err := row.Scan(&n.RunID, &n.NodeID, &n.Iteration, &kind, &state, &n.Label,
		&n.OutputJSON, &n.ErrorJSON, &n.MetaJSON, &n.Attempts,
		&n.CreatedAtMs, &n.UpdatedAtMs, &n.FiresAtMs)
	n.Kind, n.State = host.NodeKind(kind), host.NodeState(state)
	return n, err
}

const (
	// getNodeSQL locks the node until the transaction ends, so that two
	// processes settling one wait (a timer and a decision, two replicas
	// firing one timer) take turns and the second sees the first's outcome.
	getNodeSQL = `SELECT ` + nodeColumns + ` FROM nodes n
	WHERE n.run_id = $1 AND n.node_id = $2 AND n.iteration = $3 FOR UPDATE`

	// listNodesSQL orders a run's nodes by creation, which is journal order
	// for nodes created by one pass.
	listNodesSQL = `SELECT ` + nodeColumns + ` FROM nodes n WHERE n.run_id = $1
	ORDER BY n.created_at_ms, n.node_id, n.iteration`

	listWaitingNodesSQL = `SELECT ` + nodeColumns + ` FROM nodes n
	WHERE n.run_id = $1 AND n.state = $2
	AND n.state IN ('waiting-approval', 'waiting-event', 'waiting-timer')
	ORDER BY n.created_at_ms, n.node_id, n.iteration`

	listNodeIterationsSQL = `SELECT ` + nodeColumns + ` FROM nodes n
	WHERE n.run_id = $1 AND n.node_id = $2 ORDER BY n.iteration`

	putNodeSQL = `INSERT INTO nodes (run_id, node_id, iteration, kind, state, label,
	output_json, error_json, meta_json, attempts, created_at_ms, updated_at_ms, fires_at_ms)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
	ON CONFLICT (run_id, node_id, iteration) DO UPDATE SET kind = excluded.kind,
	state = excluded.state, label = excluded.label, output_json = excluded.output_json,
	error_json = excluded.error_json, meta_json = excluded.meta_json,
	attempts = excluded.attempts, created_at_ms = excluded.created_at_ms,
	updated_at_ms = excluded.updated_at_ms, fires_at_ms = excluded.fires_at_ms`

	insertNodeSQL = `INSERT INTO nodes (run_id, node_id, iteration, kind, state, label,
	output_json, error_json, meta_json, attempts, created_at_ms, updated_at_ms, fires_at_ms)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
	ON CONFLICT (run_id, node_id, iteration) DO NOTHING`

	deleteNodeSQL = `DELETE FROM nodes WHERE run_id = $1 AND node_id = $2 AND iteration = $3`

	// listDueNodesSQL repeats the WHERE of the partial index nodes_due (a
	// few timers among all the nodes of every run).
	listDueNodesSQL = `SELECT ` + nodeColumns + ` FROM nodes n
	JOIN runs r ON r.run_id = n.run_id
	WHERE n.fires_at_ms > 0 AND n.state IN ('waiting-approval', 'waiting-event', 'waiting-timer')
	AND r.status NOT IN ('finished', 'failed', 'cancelled')
	AND ($1::bigint <= 0 OR n.fires_at_ms <= $1::bigint)
	ORDER BY n.fires_at_ms, n.run_id, n.node_id, n.iteration`
)

// GetNode reads one journal node and locks it until the transaction ends.
func (t *tx) GetNode(runID, nodeID string, iteration int) (host.Node, bool, error) {
	n, ok, err := queryRow(t, scanNode, getNodeSQL, runID, nodeID, iteration)
	if err != nil {
		return n, false, fmt.Errorf("get node %s/%s#%d: %w", runID, nodeID, iteration, err)
	}
	return n, ok, nil
}

// ListNodes reads the run's nodes in creation order.
func (t *tx) ListNodes(runID string) ([]host.Node, error) {
	nodes, err := queryRows(t, scanNode, listNodesSQL, runID)
	if err != nil {
		return nil, fmt.Errorf("list nodes of %s: %w", runID, err)
	}
	return nodes, nil
}

// ListWaitingNodes reads the run's nodes in a waiting state, oldest first,
// through the partial index nodes_waiting.
func (t *tx) ListWaitingNodes(runID string, state host.NodeState) ([]host.Node, error) {
	if !state.Waiting() {
		return nil, fmt.Errorf("list waiting nodes of %s: %s is not a waiting state", runID, state)
	}
	nodes, err := queryRows(t, scanNode, listWaitingNodesSQL, runID, string(state))
	if err != nil {
		return nil, fmt.Errorf("list %s nodes of %s: %w", state, runID, err)
	}
	return nodes, nil
}

// PutNode inserts or overwrites the node. The run must exist.
func (t *tx) PutNode(n host.Node) error {
	_, err := t.exec(putNodeSQL, n.RunID, n.NodeID, n.Iteration, string(n.Kind), string(n.State),
		n.Label, n.OutputJSON, n.ErrorJSON, n.MetaJSON, n.Attempts, n.CreatedAtMs, n.UpdatedAtMs,
		n.FiresAtMs)
	if err != nil {
		return fmt.Errorf("put node %s/%s#%d: %w", n.RunID, n.NodeID, n.Iteration, err)
	}
	return nil
}

// InsertNode writes a new node; false means the run has a node of that
// key (nothing was written). The run must exist.
func (t *tx) InsertNode(n host.Node) (bool, error) {
	tag, err := t.exec(insertNodeSQL, n.RunID, n.NodeID, n.Iteration, string(n.Kind), string(n.State),
		n.Label, n.OutputJSON, n.ErrorJSON, n.MetaJSON, n.Attempts, n.CreatedAtMs, n.UpdatedAtMs,
		n.FiresAtMs)
	if err != nil {
		return false, fmt.Errorf("insert node %s/%s#%d: %w", n.RunID, n.NodeID, n.Iteration, err)
	}
	return tag.RowsAffected() == 1, nil
}

// DeleteNode removes one node; its attempts stay.
func (t *tx) DeleteNode(runID, nodeID string, iteration int) error {
	if _, err := t.exec(deleteNodeSQL, runID, nodeID, iteration); err != nil {
		return fmt.Errorf("delete node %s/%s#%d: %w", runID, nodeID, iteration, err)
	}
	return nil
}

// ListNodes reads the run's committed nodes in creation order.
func (s *Store) ListNodes(ctx context.Context, runID string) ([]host.Node, error) {
	nodes, err := read(ctx, s, scanNode, listNodesSQL, runID)
	if err != nil {
		return nil, fmt.Errorf("list nodes of %s: %w", runID, err)
	}
	return nodes, nil
}

// ListNodeIterations reads the iterations of one node of a run.
func (s *Store) ListNodeIterations(ctx context.Context, runID, nodeID string) ([]host.Node, error) {
	nodes, err := read(ctx, s, scanNode, listNodeIterationsSQL, runID, nodeID)
	if err != nil {
		return nil, fmt.Errorf("list iterations of node %s of %s: %w", nodeID, runID, err)
	}
	return nodes, nil
}

// ListDueNodes returns the waiting nodes with a timer (FiresAtMs > 0) of
// every run that is not finished, failed or cancelled, soonest first; with
// beforeMs > 0 only those firing at or before it.
func (s *Store) ListDueNodes(ctx context.Context, beforeMs int64) ([]host.Node, error) {
	nodes, err := read(ctx, s, scanNode, listDueNodesSQL, beforeMs)
	if err != nil {
		return nil, fmt.Errorf("list due nodes: %w", err)
	}
	return nodes, nil
}
