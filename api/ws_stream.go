package api

import (
	"context"
	"encoding/json"
	"fmt"
	"math"

	"github.com/google/uuid"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// replayPage is how many stored events one replay query reads.
const replayPage = 500

// maxStreamsPerSocket bounds the run-event streams of one socket (each has
// its own heartbeat); streams live until the socket closes.
const maxStreamsPerSocket = 256

// streamRunEvents subscribes the socket to a run's events (docs/websocket.md
// with docs/differences.md): the response first, then (with afterSeq) a GapResync
// for events older than the window and the retained events in seq order,
// then live events, without gap or duplicate.
func (s *Server) streamRunEvents(ctx context.Context, c *call) (any, error) {
	if c.conn == nil {
		return nil, errInvalidRequest("streamRunEvents is only supported over websocket connections")
	}
	runID, ok := c.params.str("runId")
	if !ok || runID == "" {
		return nil, host.Errorf(codeInvalidRunID, "runId is required")
	}
	var afterSeq *int64
	if v, present := c.params["afterSeq"]; present {
		i, ok := parseAfterSeq(v)
		if !ok {
			return nil, host.Errorf(host.CodeSeqOutOfRange, "afterSeq must be a non-negative integer")
		}
		afterSeq = &i
	}
	if _, found, err := s.reads.GetRun(ctx, runID); err != nil {
		return nil, err
	} else if !found {
		return nil, host.Errorf(host.CodeRunNotFound, "Run not found: %s", runID)
	}
	conn := c.conn
	if conn.streamCount() >= maxStreamsPerSocket {
		return nil, host.Errorf(codeRateLimited, "A socket may hold at most %d run-event streams; open another socket", maxStreamsPerSocket)
	}
	conn.addStreamRun(runID, 1)
	// Read the current seq only after the hub delivers the run's events to
	// this socket, so nothing falls between replay and live.
	run, _, err := s.reads.GetRun(ctx, runID)
	if err != nil {
		conn.addStreamRun(runID, -1)
		return nil, err
	}
	current := run.LastSeq
	if afterSeq != nil && *afterSeq > current {
		conn.addStreamRun(runID, -1)
		return nil, host.Errorf(host.CodeSeqOutOfRange, "afterSeq %d is newer than current seq %d", *afterSeq, current)
	}
	st := &runStream{id: uuid.NewString(), runID: runID, lastSeq: current}
	var after any
	if afterSeq != nil {
		st.lastSeq = *afterSeq
		after = *afterSeq
	}
	payload := map[string]any{"streamId": st.id, "runId": runID, "afterSeq": after, "currentSeq": current}
	return afterResponse{payload: payload, after: func() { conn.startStream(st) }}, nil
}

// streamCount is the number of open run-event streams of the socket.
func (c *wsConn) streamCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, k := range c.streamRuns {
		n += k
	}
	return n
}

func (c *wsConn) addStreamRun(runID string, delta int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.streamRuns[runID] += delta
	if c.streamRuns[runID] <= 0 {
		delete(c.streamRuns, runID)
	}
}

// startStream replays what the client missed, then registers the stream
// for live events. Writer-only, so nothing is written in between. A
// live-only stream replays too: the events committed after the response's
// currentSeq that this writer drained before the stream was registered went
// out as broadcasts only, so they come from the store.
func (c *wsConn) startStream(st *runStream) {
	if err := c.replay(st); err != nil {
		c.event("run.error", map[string]any{"streamId": st.id, "runId": st.runID,
			"error": map[string]any{"version": "v1", "code": codeInternal, "message": fmt.Sprintf("replay failed: %v", err)}}, c.s.stateVersion())
	}
	c.streams[st.id] = st
}

// parseAfterSeq reads afterSeq the way upstream's Number.isInteger check
// does: 7, 7.0 and 7e0 are the same non-negative integer. An integer too
// large for int64 is still an integer; it reads as the largest int64, which
// is newer than any run's seq.
func parseAfterSeq(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	if i, err := n.Int64(); err == nil {
		return i, i >= 0
	}
	f, err := n.Float64()
	if err != nil { // not a number, or beyond float64 (Infinity in JS)
		return 0, false
	}
	switch {
	case f < 0 || f != math.Trunc(f):
		return 0, false
	case f >= math.MaxInt64:
		return math.MaxInt64, true
	}
	return int64(f), true
}

func (c *wsConn) replay(st *runStream) error {
	ctx := c.ctx
	store := c.s.reads
	first, err := store.FirstEventSeq(ctx, st.runID)
	if err != nil {
		return err
	}
	if first > 0 && st.lastSeq < first-1 {
		var snapshot any
		if d, err := c.s.gw.GetRun(ctx, st.runID); err == nil {
			snapshot = runDetail(d)
		}
		c.event("run.gap_resync", map[string]any{"apiVersion": "v1", "type": "GapResync", "streamId": st.id, "runId": st.runID,
			"fromSeq": st.lastSeq + 1, "toSeq": first - 1, "snapshot": snapshot}, c.s.stateVersion())
		st.lastSeq = first - 1
	}
	for {
		events, err := store.ListEvents(ctx, st.runID, st.lastSeq, replayPage)
		if err != nil {
			return err
		}
		for _, e := range events {
			st.lastSeq = e.Seq
			// A replayed frame is not a broadcast: the frame carries the
			// current stateVersion (docs/websocket.md), the RunEvent record
			// inside keeps the one it was stored with. An event just
			// committed may be read here before the hub has published it
			// (and so before the counter moved): current is at least its
			// version.
			c.event("run.event", runEventPayload(st, e), max(c.s.stateVersion(), e.StateVersion))
		}
		if len(events) < replayPage {
			return nil
		}
	}
}
