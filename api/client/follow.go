package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// GapResync is the payload of a run.gap_resync frame: events FromSeq to
// ToSeq are no longer kept by the gateway; Snapshot is the getRun payload.
type GapResync struct {
	StreamID string          `json:"streamId"`
	RunID    string          `json:"runId"`
	FromSeq  int64           `json:"fromSeq"`
	ToSeq    int64           `json:"toSeq"`
	Snapshot json.RawMessage `json:"snapshot"`
}

// FollowOptions tune Client.FollowRun.
type FollowOptions struct {
	// AfterSeq is the last seq the caller has seen: events after it are
	// replayed first. Negative means live only.
	AfterSeq int64
	// OnEvent receives every run event in seq order, replayed ones first,
	// each exactly once across reconnects. Returning an error stops
	// FollowRun with that error.
	OnEvent func(RunEvent) error
	// OnGap, when set, is told about events the gateway no longer keeps.
	OnGap func(GapResync)
	// OnReconnect, when set, is told that the stream dropped with err and
	// is resumed after a pause.
	OnReconnect func(err error, pause time.Duration)
	// StallTimeout is how long a socket may stay silent before it counts
	// as dropped (default 30s; gateways send a heartbeat every second).
	StallTimeout time.Duration
	// MaxBackoff caps the pause between reconnects (default 5s; the first
	// is 250ms, doubling).
	MaxBackoff time.Duration
}

// errStreamDropped marks a stream that ended for a reason worth a
// reconnect (a transport failure, a silent socket, a backpressure cut).
type errStreamDropped struct{ err error }

func (e errStreamDropped) Error() string { return e.err.Error() }
func (e errStreamDropped) Unwrap() error { return e.err }

// FollowRun streams a run's events over WebSocket (connect with the run
// subscribed, then streamRunEvents with afterSeq) until the run completes:
// it returns nil after the run.completed event that is the run's last one
// (a run resumed after failing has an earlier run.completed, which does not
// stop it), or at once when the run is already terminal and nothing is left
// to replay. A dropped socket is resumed on a new socket from the last seq
// seen, pausing between tries; a gateway that cannot be reached at the
// first try is an error, not retried. It returns a *Error the gateway answered
// (UNAUTHORIZED, RunNotFound, ...), the error OnEvent returned, or the
// context's error.
func (c *Client) FollowRun(ctx context.Context, runID string, o FollowOptions) error {
	if o.StallTimeout <= 0 {
		o.StallTimeout = 30 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	last := o.AfterSeq
	pause := 250 * time.Millisecond
	streamed := false // a stream has started: the gateway is there
	for {
		progressed, err := c.followOnce(ctx, runID, &last, o)
		if err == nil {
			return nil
		}
		var dropped errStreamDropped
		if !errors.As(err, &dropped) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !streamed && !progressed {
			return dropped.err // never reached: a wrong URL, a gateway not started
		}
		if progressed {
			streamed = true
			pause = 250 * time.Millisecond
		}
		if o.OnReconnect != nil {
			o.OnReconnect(dropped.err, pause)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, o.MaxBackoff)
	}
}

// followOnce runs one socket's stream. progressed reports whether it got
// as far as a stream response. Errors worth a reconnect are
// errStreamDropped.
func (c *Client) followOnce(ctx context.Context, runID string, last *int64, o FollowOptions) (progressed bool, err error) {
	// Whether the run was over before the stream starts: then its last
	// event is at or before the stream's currentSeq.
	var before Run
	if err := c.Call(ctx, "getRun", map[string]any{"runId": runID}, &before); err != nil {
		return false, retryable(err)
	}
	dialCtx, cancel := context.WithTimeout(ctx, o.StallTimeout)
	conn, _, err := Dial(dialCtx, c.BaseURL, c.Token, DialOptions{Subscribe: []string{runID}})
	cancel()
	if err != nil {
		return false, retryable(err)
	}
	defer conn.Close()
	callCtx, cancel := context.WithTimeout(ctx, o.StallTimeout)
	resp, err := conn.StreamRunEvents(callCtx, runID, *last)
	cancel()
	if err != nil {
		return false, retryable(err)
	}
	if *last < 0 {
		// Live only: a reconnect resumes from here.
		*last = resp.CurrentSeq
	}
	if *last >= resp.CurrentSeq && before.Terminal() {
		return true, nil // its run.completed, if any, was seen before
	}
	stall := time.NewTimer(o.StallTimeout)
	defer stall.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case <-stall.C:
			return true, errStreamDropped{fmt.Errorf("no frame for %v", o.StallTimeout)}
		case ev, ok := <-conn.Events():
			if !ok {
				return true, errStreamDropped{fmt.Errorf("connection closed (code %d)", conn.CloseCode())}
			}
			stall.Reset(o.StallTimeout)
			done, err := handleStreamFrame(ev, resp, last, o)
			if done || err != nil {
				return true, err
			}
		}
	}
}

// retryable marks err as worth a reconnect unless the gateway answered it
// (a *Error: UNAUTHORIZED, RunNotFound ...) or refused the WebSocket
// upgrade with a 4xx status, which another try would meet again.
func retryable(err error) error {
	var gwErr *Error
	var hs *HandshakeError
	switch {
	case errors.As(err, &gwErr):
		return err
	case errors.As(err, &hs) && hs.Status >= 400 && hs.Status < 500:
		return err
	}
	return errStreamDropped{err}
}

// handleStreamFrame hands one frame of stream resp to the callbacks; done
// is true after the run's last run.completed.
func handleStreamFrame(ev Event, resp *StreamResponse, last *int64, o FollowOptions) (done bool, err error) {
	var head struct {
		StreamID string `json:"streamId"`
	}
	if json.Unmarshal(ev.Payload, &head) != nil || head.StreamID != resp.StreamID {
		return false, nil // a broadcast, a heartbeat of another stream
	}
	switch ev.Name {
	case "run.event":
		var re RunEvent
		if err := json.Unmarshal(ev.Payload, &re); err != nil {
			return false, fmt.Errorf("decode run.event: %w", err)
		}
		if re.Seq <= *last {
			return false, nil
		}
		*last = re.Seq
		if o.OnEvent != nil {
			if err := o.OnEvent(re); err != nil {
				return false, err
			}
		}
		return re.Event == "run.completed" && re.Seq >= resp.CurrentSeq, nil
	case "run.gap_resync":
		var g GapResync
		if err := json.Unmarshal(ev.Payload, &g); err != nil {
			return false, fmt.Errorf("decode run.gap_resync: %w", err)
		}
		*last = max(*last, g.ToSeq)
		if o.OnGap != nil {
			o.OnGap(g)
		}
	case "run.error":
		var e struct {
			Error json.RawMessage `json:"error"`
		}
		_ = json.Unmarshal(ev.Payload, &e)
		return false, errStreamDropped{decodeError(0, e.Error)}
	}
	return false, nil
}

// RunEvents returns the events the gateway keeps for a run after afterSeq,
// up to its current seq, replayed over a new socket; gap is set when older
// events are no longer kept. It waits at most until ctx is done.
func (c *Client) RunEvents(ctx context.Context, runID string, afterSeq int64) (events []RunEvent, gap *GapResync, err error) {
	conn, _, err := Dial(ctx, c.BaseURL, c.Token, DialOptions{Subscribe: []string{runID}})
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	resp, err := conn.StreamRunEvents(ctx, runID, max(afterSeq, 0))
	if err != nil {
		return nil, nil, err
	}
	last := max(afterSeq, 0)
	o := FollowOptions{
		OnEvent: func(e RunEvent) error { events = append(events, e); return nil },
		OnGap:   func(g GapResync) { gap = &g },
	}
	for last < resp.CurrentSeq {
		select {
		case <-ctx.Done():
			return events, gap, ctx.Err()
		case ev, ok := <-conn.Events():
			if !ok {
				return events, gap, fmt.Errorf("connection closed (code %d) after seq %d of %d", conn.CloseCode(), last, resp.CurrentSeq)
			}
			if _, err := handleStreamFrame(ev, resp, &last, o); err != nil {
				return events, gap, err
			}
		}
	}
	return events, gap, nil
}
