package host

import (
	"context"
	"encoding/json"
)

// SignalInput is a submitSignal request after the API decoded it.
type SignalInput struct {
	RunID         string
	Name          string
	CorrelationID *string
	PayloadJSON   string
	ReceivedBy    string
}

// MaxBufferedSignals is how many signals a run may hold that no wait has
// consumed yet; past it submitSignal answers SIGNAL_BUFFER_FULL, so a
// sender in a loop cannot grow a run without bound.
const MaxBufferedSignals = 1000

// SubmitSignal records a signal for the run and, in the same transaction,
// hands it to the oldest wait of the run that matches its name and
// correlation id; an unmatched signal stays buffered for a later wait.
// Unknown runs fail with NOT_FOUND, terminal ones with RUN_NOT_ACTIVE (the
// signal is not stored), a payload over the output cap with
// OUTPUT_TOO_LARGE, a run holding MaxBufferedSignals with
// SIGNAL_BUFFER_FULL.
func (g *Gateway) SubmitSignal(ctx context.Context, in SignalInput) (Signal, error) {
	if in.PayloadJSON == "" {
		in.PayloadJSON = "{}"
	}
	if err := checkTexts(map[string]string{"signalName": in.Name, "correlationId": deref(in.CorrelationID), "receivedBy": in.ReceivedBy}); err != nil {
		return Signal{}, err
	}
	if len(in.PayloadJSON) > g.maxOutput {
		return Signal{}, Errorf(CodeOutputTooLarge, "signal payload is %d bytes of JSON, over the gateway's limit of %d", len(in.PayloadJSON), g.maxOutput)
	}
	now := g.nowMs()
	var sig Signal
	var settled *Node
	err := g.update(ctx, func(tx Tx) error {
		settled = nil // fn may run again after a conflict
		r, err := getRunTx(tx, in.RunID)
		if err != nil {
			return err
		}
		if r.Status.Terminal() {
			return Errorf(CodeRunNotActive, "Run %s is %s: it takes no more signals", in.RunID, r.Status)
		}
		sig, err = tx.InsertSignal(Signal{RunID: in.RunID, Name: in.Name, CorrelationID: in.CorrelationID, PayloadJSON: in.PayloadJSON, ReceivedAtMs: now, ReceivedBy: in.ReceivedBy})
		if err != nil {
			return err
		}
		nodes, err := tx.ListWaitingNodes(in.RunID, NodeWaitingEvent)
		if err != nil {
			return err
		}
		for _, n := range nodes {
			if !waitMatches(n, in.Name, in.CorrelationID) {
				continue
			}
			n, err = consumeSignal(tx, n, sig, now)
			if err != nil {
				return err
			}
			settled = &n
			return g.markRunning(tx, in.RunID, now)
		}
		// No wait took it: it stays buffered, within the cap (the error
		// rolls the insert back).
		buffered, err := tx.CountBufferedSignals(in.RunID)
		if err != nil {
			return err
		}
		if buffered > MaxBufferedSignals {
			return Errorf(CodeSignalBufferFull, "Run %s already holds %d signals that no wait has consumed", in.RunID, buffered-1)
		}
		return nil
	})
	if err != nil {
		return Signal{}, err
	}
	if settled != nil {
		g.wake(in.RunID, settled)
	}
	return sig, nil
}

func waitMatches(n Node, name string, correlationID *string) bool {
	var meta EventMeta
	if json.Unmarshal([]byte(n.MetaJSON), &meta) != nil || meta.WaitForEvent.SignalName != name {
		return false
	}
	a, b := meta.WaitForEvent.CorrelationID, correlationID
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}
