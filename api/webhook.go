package api

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/smithers-orchestrator/smithers-go/host"
)

const webhookPrefix = "/webhooks/"

// Reasons of smithers_gateway_webhooks_rejected_total (docs/workflows.md).
const (
	webhookWorkflowNotFound = "workflow_not_found"
	webhookNotConfigured    = "not_configured"
	webhookMisconfigured    = "misconfigured"
	webhookInvalidPayload   = "invalid_payload"
	webhookInvalidSignature = "invalid_signature"
	webhookServerError      = "server_error"
)

// isWebhookPath reports whether p (the escaped path) matches
// ^/webhooks/([^/]+)$.
func isWebhookPath(p string) bool {
	seg, ok := strings.CutPrefix(p, webhookPrefix)
	return ok && seg != "" && !strings.Contains(seg, "/")
}

// webhookRejection is a webhook answered with an error: its status, the
// error, and the metric reason.
type webhookRejection struct {
	status int
	code   string
	msg    string
	reason string
}

// webhook serves POST /webhooks/<workflowKey> (seg is the still-escaped
// key), in the processing order of docs/workflows.md: the workflow and its
// webhook config, the body within MaxBodyBytes, the HMAC-SHA256 signature
// over the raw body, the JSON, then the delivery by the engine.
//
// Webhooks take no bearer token and skip the cross-site guard: a sender
// is a server that proves itself with the signature, which a browser on
// another site cannot produce, and no browser credential (cookie, proxy
// identity) is ever used for them.
func (s *Server) webhook(c echo.Context, seg string) error {
	r := c.Request()
	requestID := r.Header.Get("X-Request-Id")
	if requestID == "" {
		requestID = uuid.NewString()
	}
	key, err := url.PathUnescape(seg)
	label := key
	if _, ok := s.gw.Workflow(key); !ok || err != nil {
		// Invented keys must not grow /metrics.
		label = unknownWorkflow
	}
	s.metrics.webhookReceived(label)
	reject := func(rej webhookRejection) error {
		s.metrics.webhookRejected(label, rej.reason, rej.code)
		s.log.Info("webhook rejected", "workflow", key, "requestId", requestID, "reason", rej.reason, "code", rej.code, "message", rej.msg)
		if rej.code == host.CodeServiceUnavailable {
			c.Response().Header().Set("Retry-After", retryAfterSeconds)
		}
		return writeJSON(c, rej.status, map[string]any{"ok": false, "error": map[string]any{"code": rej.code, "message": rej.msg}})
	}
	if err != nil {
		return reject(webhookRejection{400, host.CodeInvalidInput, "Webhook workflow key is not valid percent-encoding.", webhookInvalidPayload})
	}
	wf, ok := s.gw.Workflow(key)
	if !ok {
		return reject(webhookRejection{404, host.CodeNotFound, "Unknown workflow: " + key, webhookWorkflowNotFound})
	}
	cfg := wf.Webhook
	if cfg == nil {
		return reject(webhookRejection{404, host.CodeNotFound, "Webhook not configured for workflow: " + key, webhookNotConfigured})
	}
	// Start-up refuses a blank secret; kept for a config that bypasses it.
	if strings.TrimSpace(cfg.Secret) == "" {
		return reject(webhookRejection{500, host.CodeServerError, "Webhook secret is not configured", webhookNotConfigured})
	}
	if cfg.SignalName() == "" && !cfg.RunEnabled() {
		return reject(webhookRejection{400, host.CodeInvalidRequest, "Webhook config must enable signal delivery or run creation", webhookMisconfigured})
	}
	body, err := s.readBody(r)
	if err != nil {
		obj, code := wireError(err)
		return reject(webhookRejection{statusOf(code), code, obj["message"].(string), webhookInvalidPayload})
	}
	if !validWebhookSignature(cfg, r.Header, body) {
		return reject(webhookRejection{401, host.CodeUnauthorized, "Webhook signature verification failed", webhookInvalidSignature})
	}
	s.metrics.webhookVerified(label)
	payload, err := decodeWebhookBody(body)
	if err != nil {
		return reject(webhookRejection{400, host.CodeInvalidInput, "Webhook payload must be valid JSON.", webhookInvalidPayload})
	}
	res, err := s.gw.DeliverWebhook(r.Context(), host.WebhookDelivery{Workflow: key, DeliveryID: r.Header.Get(cfg.DeliveryHeaderName()), Body: payload})
	if err != nil {
		var he *host.Error
		if errors.As(err, &he) {
			return reject(webhookRejection{statusOf(he.Code), he.Code, he.Message, webhookInvalidPayload})
		}
		obj, code := wireError(err) // storage unavailable: 503, else 500
		s.log.Error("webhook delivery failed", "workflow", key, "requestId", requestID, "err", err)
		return reject(webhookRejection{statusOf(code), code, obj["message"].(string), webhookServerError})
	}
	out := map[string]any{"ok": true, "workflow": res.Workflow, "verified": true, "delivered": res.Delivered,
		"matchedRunIds": res.MatchedRunIDs, "started": res.Started}
	if res.Duplicate {
		out["duplicate"] = true
	}
	s.metrics.webhookAnswered(label)
	return writeJSON(c, http.StatusOK, out)
}

// validWebhookSignature checks the signature header against the configured
// prefix and the lower-case hex HMAC-SHA256 of the raw body, as GitHub's
// X-Hub-Signature-256: exact bytes, compared in constant time after a
// length check, so upper-case hex or a missing header fails.
func validWebhookSignature(cfg *host.WebhookConfig, h http.Header, body []byte) bool {
	mac := hmac.New(sha256.New, []byte(cfg.Secret))
	mac.Write(body)
	want := cfg.SignaturePrefixValue() + hex.EncodeToString(mac.Sum(nil))
	got := h.Get(cfg.SignatureHeaderName())
	return len(got) == len(want) && hmac.Equal([]byte(got), []byte(want))
}

// decodeWebhookBody parses a webhook body: any one JSON value (an empty
// body is {}), numbers kept as json.Number. Webhooks skip the structure
// bounds of RPC bodies; a run input taken from them has its own limits.
func decodeWebhookBody(body []byte) (any, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return map[string]any{}, nil
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}
