package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Webhook defaults (upstream's; the delivery header is ours).
const (
	DefaultWebhookSignatureHeader = "x-hub-signature-256"
	DefaultWebhookSignaturePrefix = "sha256="
	DefaultWebhookDeliveryHeader  = "x-github-delivery"
)

// WebhookDedupeWindow is how long a webhook delivery id is remembered:
// senders retry a delivery they believe failed (GitHub for hours), and a
// retry within the window is answered with the first answer instead of
// being delivered again.
const WebhookDedupeWindow = 24 * time.Hour

// MaxWebhookScan is how many of the newest waiting-event runs a webhook
// without an explicit run id looks at for a matching wait (upstream's
// bound, which keeps one delivery's transaction short).
const MaxWebhookScan = 1000

// maxDeliveryIDBytes bounds a stored delivery id; longer ids (a header may
// be large) are stored as their SHA-256.
const maxDeliveryIDBytes = 256

// webhookSweepBatch bounds how many expired delivery records one delivery
// deletes. Every delivery records at most one, so the table stays within
// a day's deliveries.
const webhookSweepBatch = 100

// SignatureHeaderName is the header carrying the signature, lower-cased.
func (c *WebhookConfig) SignatureHeaderName() string {
	if h := strings.TrimSpace(c.SignatureHeader); h != "" {
		return strings.ToLower(h)
	}
	return DefaultWebhookSignatureHeader
}

// SignaturePrefixValue is what precedes the hex digest in the signature
// header ("sha256=" unless the module set another, possibly "").
func (c *WebhookConfig) SignaturePrefixValue() string {
	if c.SignaturePrefix != nil {
		return *c.SignaturePrefix
	}
	return DefaultWebhookSignaturePrefix
}

// DeliveryHeaderName is the header carrying the sender's delivery id,
// lower-cased.
func (c *WebhookConfig) DeliveryHeaderName() string {
	if h := strings.TrimSpace(c.DeliveryHeader); h != "" {
		return strings.ToLower(h)
	}
	return DefaultWebhookDeliveryHeader
}

// SignalName is the trimmed name of the signal a delivery sends ("" when
// the webhook delivers no signal).
func (c *WebhookConfig) SignalName() string {
	if c.Signal == nil {
		return ""
	}
	return strings.TrimSpace(c.Signal.Name)
}

// RunEnabled reports whether a delivery that reached no waiting run starts
// a run (true unless run.enabled is false).
func (c *WebhookConfig) RunEnabled() bool {
	return c.Run == nil || c.Run.Enabled == nil || *c.Run.Enabled
}

// checkWebhooks refuses a module whose webhook has a blank secret: every
// request to it would fail, and upstream says so only then.
func checkWebhooks(wfs []WorkflowDef) error {
	for _, wf := range wfs {
		if wf.Webhook != nil && strings.TrimSpace(wf.Webhook.Secret) == "" {
			return fmt.Errorf("workflow %q: webhook secret is blank: set webhook.secret to the secret the sender signs its deliveries with", wf.Key)
		}
	}
	return nil
}

// WebhookDelivery is one webhook request whose signature the API verified.
type WebhookDelivery struct {
	Workflow string
	// DeliveryID is the sender's delivery id ("" when it sent none).
	DeliveryID string
	// Body is the parsed JSON body, as encoding/json decodes into any with
	// UseNumber (numbers are json.Number).
	Body any
}

// WebhookResult is what a delivery did, in the fields of the success body.
type WebhookResult struct {
	Workflow      string            `json:"workflow"`
	Delivered     []WebhookSignalAt `json:"delivered"`
	MatchedRunIDs []string          `json:"matchedRunIds"`
	Started       *WebhookStarted   `json:"started"`
	// Duplicate is true when the delivery id was seen before: the result
	// is the first delivery's, and nothing was delivered this time.
	Duplicate bool `json:"duplicate,omitempty"`
}

// WebhookSignalAt is a signal a delivery gave to a run.
type WebhookSignalAt struct {
	RunID         string  `json:"runId"`
	Seq           int64   `json:"seq"`
	SignalName    string  `json:"signalName"`
	CorrelationID *string `json:"correlationId"`
	ReceivedAtMs  int64   `json:"receivedAtMs"`
}

// WebhookStarted is the run a delivery started.
type WebhookStarted struct {
	RunID    string `json:"runId"`
	Workflow string `json:"workflow"`
}

// DeliverWebhook delivers a verified webhook of workflow in.Workflow. With
// a signal configured, the signal goes to the run named at runIdPath if it
// waits for it, else to every one of the newest MaxWebhookScan
// waiting-event runs with a matching wait (received by "webhook:<key>");
// each such run resumes. When no run took it and run creation is enabled,
// a run starts with the value at inputPath (an object, else wrapped as
// {payload}) under system auth, triggered by "webhook:<key>".
//
// A delivery id seen within WebhookDedupeWindow returns the first
// delivery's result with Duplicate set and delivers nothing. The check,
// the delivery and the record commit in one transaction, so a retry racing
// the first delivery still delivers once.
//
// Errors: NOT_FOUND for an unknown workflow or one without a webhook,
// OUTPUT_TOO_LARGE for a signal payload over the output cap, INVALID_INPUT
// for a run input over the input limits, storage failures as they are.
func (g *Gateway) DeliverWebhook(ctx context.Context, in WebhookDelivery) (WebhookResult, error) {
	wf, ok := g.workflows[in.Workflow]
	if !ok {
		return WebhookResult{}, Errorf(CodeNotFound, "Unknown workflow: %s", in.Workflow)
	}
	if wf.Webhook == nil {
		return WebhookResult{}, Errorf(CodeNotFound, "Webhook not configured for workflow: %s", in.Workflow)
	}
	cfg := wf.Webhook
	name := cfg.SignalName()
	var sig webhookSignal
	if name != "" {
		var err error
		if sig, err = g.webhookSignal(cfg, in.Body); err != nil {
			return WebhookResult{}, err
		}
	}
	// The run input is only checked when a run is to start, but computed
	// before the transaction.
	var inputJSON string
	var inputErr error
	if cfg.RunEnabled() {
		inputJSON, inputErr = webhookRunInput(in.Body, cfg.Run)
	}
	deliveryID := webhookDeliveryKey(in.DeliveryID)
	now := g.now()
	ms := now.UnixMilli()
	receivedBy := "webhook:" + wf.Key
	var res WebhookResult
	var settled []Node
	var run Run
	var created bool
	err := g.update(ctx, func(tx Tx) error {
		res = WebhookResult{Workflow: wf.Key, Delivered: []WebhookSignalAt{}, MatchedRunIDs: []string{}}
		settled, run, created = nil, Run{}, false
		if deliveryID != "" {
			if _, err := tx.DeleteWebhookDeliveries(ms-WebhookDedupeWindow.Milliseconds(), webhookSweepBatch); err != nil {
				return err
			}
			first, seen, err := tx.WebhookDelivery(wf.Key, deliveryID, ms-WebhookDedupeWindow.Milliseconds())
			if err != nil {
				return err
			}
			if seen {
				if err := json.Unmarshal([]byte(first), &res); err != nil {
					return fmt.Errorf("decode recorded webhook delivery %s: %w", deliveryID, err)
				}
				res.Duplicate = true
				return nil
			}
		}
		if name != "" {
			waits, err := webhookWaits(tx, name, sig)
			if err != nil {
				return err
			}
			for _, n := range waits {
				s, err := tx.InsertSignal(Signal{RunID: n.RunID, Name: name, CorrelationID: sig.correlationID,
					PayloadJSON: sig.payloadJSON, ReceivedAtMs: ms, ReceivedBy: receivedBy})
				if err != nil {
					return err
				}
				n, err = consumeSignal(tx, n, s, ms)
				if err != nil {
					return err
				}
				if err := g.markRunning(tx, n.RunID, ms); err != nil {
					return err
				}
				settled = append(settled, n)
				res.Delivered = append(res.Delivered, WebhookSignalAt{RunID: s.RunID, Seq: s.Seq, SignalName: name,
					CorrelationID: s.CorrelationID, ReceivedAtMs: ms})
				res.MatchedRunIDs = append(res.MatchedRunIDs, s.RunID)
			}
		}
		if len(settled) == 0 && cfg.RunEnabled() {
			if inputErr != nil {
				return inputErr
			}
			r, isNew, err := g.insertLaunch(tx, wf, LaunchInput{Workflow: wf.Key, InputJSON: inputJSON, Auth: systemIdentity(), TriggeredBy: receivedBy}, now)
			if err != nil {
				return err
			}
			run, created = r, isNew
			res.Started = &WebhookStarted{RunID: r.RunID, Workflow: wf.Key}
		}
		if deliveryID != "" {
			return tx.PutWebhookDelivery(wf.Key, deliveryID, string(mustJSON(res)), ms)
		}
		return nil
	})
	if err != nil {
		return WebhookResult{}, err
	}
	for i := range settled {
		g.wake(settled[i].RunID, &settled[i])
	}
	if created {
		g.log.Info("webhook started a run", "workflow", wf.Key, "runId", run.RunID)
		g.started(run, true)
	}
	return res, nil
}

// webhookSignal is the signal a delivery sends, taken from its body.
type webhookSignal struct {
	// runID is the explicit run at runIdPath ("" scans waiting runs).
	runID         string
	correlationID *string
	payloadJSON   string
}

// webhookSignal reads the run id, correlation id and payload of the
// configured signal from body.
func (g *Gateway) webhookSignal(cfg *WebhookConfig, body any) (webhookSignal, error) {
	var sig webhookSignal
	if p := cfg.Signal.RunIDPath; p != "" {
		if v, ok := WebhookPathValue(body, p); ok {
			sig.runID, _ = webhookString(v)
		}
	}
	if p := cfg.Signal.CorrelationIDPath; p != "" {
		if v, ok := WebhookPathValue(body, p); ok {
			if s, ok := webhookString(v); ok {
				sig.correlationID = &s
			}
		}
	}
	payload, ok := WebhookPathValue(body, cfg.Signal.PayloadPath)
	if !ok || payload == nil {
		// As submitSignal: no payload is {}.
		payload = map[string]any{}
	}
	raw, err := encodeWebhookJSON(payload)
	if err != nil {
		return sig, err
	}
	if len(raw) > g.maxOutput {
		return sig, Errorf(CodeOutputTooLarge, "signal payload is %d bytes of JSON, over the gateway's limit of %d", len(raw), g.maxOutput)
	}
	sig.payloadJSON = raw
	return sig, nil
}

// webhookWaits finds the waits a signal goes to, one per run (the oldest
// matching wait of each): the named run's, when the body names one and it
// is not terminal, else those of the newest MaxWebhookScan waiting-event
// runs, newest run first.
func webhookWaits(tx Tx, name string, sig webhookSignal) ([]Node, error) {
	var nodes []Node
	if sig.runID != "" {
		r, ok, err := tx.GetRun(sig.runID)
		if err != nil || !ok || r.Status.Terminal() {
			return nil, err
		}
		if nodes, err = tx.ListWaitingNodes(sig.runID, NodeWaitingEvent); err != nil {
			return nil, err
		}
	} else {
		var err error
		if nodes, err = tx.WaitingEventNodes(MaxWebhookScan); err != nil {
			return nil, err
		}
	}
	var waits []Node
	taken := map[string]bool{}
	for _, n := range nodes {
		if taken[n.RunID] || n.State != NodeWaitingEvent || !waitMatches(n, name, sig.correlationID) {
			continue
		}
		taken[n.RunID] = true
		waits = append(waits, n)
	}
	return waits, nil
}

// webhookRunInput is the input of a run started by a delivery: the value
// at inputPath (the whole body by default), wrapped as {payload: value}
// when it is not an object, within the launchRun input limits.
func webhookRunInput(body any, run *WebhookRun) (string, error) {
	path := ""
	if run != nil {
		path = run.InputPath
	}
	v, ok := WebhookPathValue(body, path)
	input, isObject := v.(map[string]any)
	if !isObject {
		input = map[string]any{}
		if ok { // a missing value wraps as {payload: undefined}: {}
			input["payload"] = v
		}
	}
	raw, err := encodeWebhookJSON(input)
	if err != nil {
		return "", err
	}
	if err := CheckInputBounds(input, raw); err != nil {
		return "", err
	}
	return raw, nil
}

// encodeWebhookJSON encodes a value of a decoded body as JSON text, without
// HTML escaping (it is stored and shown as the sender sent it). A number
// beyond float64 (1e400) becomes null, as JavaScript's JSON.parse and
// JSON.stringify make it, so that every reader can decode what is stored.
func encodeWebhookJSON(v any) (string, error) {
	v = finiteNumbers(v)
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", Errorf(CodeInvalidInput, "Webhook payload could not be encoded as JSON.")
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// finiteNumbers replaces, in place, the numbers of a decoded body that
// overflow float64 with nil.
func finiteNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if _, err := strconv.ParseFloat(string(x), 64); err != nil {
			return nil
		}
	case map[string]any:
		for k, e := range x {
			x[k] = finiteNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = finiteNumbers(e)
		}
	}
	return v
}

// webhookDeliveryKey is the stored form of a delivery id: trimmed, and
// hashed when longer than maxDeliveryIDBytes.
func webhookDeliveryKey(id string) string {
	id = strings.TrimSpace(id)
	if len(id) <= maxDeliveryIDBytes {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "sha256:" + hex.EncodeToString(sum[:])
}
