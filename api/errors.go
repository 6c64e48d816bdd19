package api

import (
	"errors"
	"net/http"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// Wire codes that only api answers with: upstream's PascalCase codes of
// parameter validation, devtools and limits, kept as clients match on
// them. The codes the engine shares are host.Code*.
const (
	codeInvalidRequestLegacy = "InvalidRequest"
	codeInvalidInputLegacy   = "InvalidInput"
	codeInvalidRunID         = "InvalidRunId"
	codeInvalidNodeID        = "InvalidNodeId"
	codeInvalidIteration     = "InvalidIteration"
	codeInvalidDelta         = "InvalidDelta"
	codeInvalidFrameNo       = "InvalidFrameNo"
	codeConfirmationRequired = "ConfirmationRequired"
	codeFrameOutOfRange      = "FrameOutOfRange"
	codeForbiddenLegacy      = "Forbidden"
	codeAttemptNotFound      = "AttemptNotFound"
	codeCronNotFound         = "CronNotFound"
	codeAttemptNotFinished   = "AttemptNotFinished"
	codeDiffTooLarge         = "DiffTooLarge"
	// codePayloadTooLarge is the HTTP body limit's code (host's
	// PAYLOAD_TOO_LARGE is the bounds check's).
	codePayloadTooLarge = "PayloadTooLarge"
	codeRateLimited     = "RateLimited"
	// codeMalformedOutputRow: a stored node output is not valid JSON.
	codeMalformedOutputRow = "MalformedOutputRow"
	// codeInternal is the code of a run.error frame whose replay failed.
	codeInternal = "Internal"
)

// statusByCode is THE table from wire error code to HTTP status
// (docs/rpc.md, with docs/differences.md: caller mistakes are 4xx). Codes not
// listed are 500.
var statusByCode = map[string]int{
	host.CodeInvalidRequest: 400, codeInvalidRequestLegacy: 400, host.CodeInvalidFrame: 400, host.CodeInvalidInput: 400, codeInvalidInputLegacy: 400,
	host.CodeProtocolUnsupported: 400, codeInvalidRunID: 400, codeInvalidNodeID: 400, codeInvalidIteration: 400, codeInvalidDelta: 400,
	codeInvalidFrameNo: 400, codeConfirmationRequired: 400, codeFrameOutOfRange: 400, host.CodeSeqOutOfRange: 400, host.CodeInvalidJSON: 400,
	host.CodeInvalidDuration: 400,
	host.CodeUnauthorized:    401, host.CodeUnauthorizedOwner: 401,
	host.CodeForbidden: 403, codeForbiddenLegacy: 403,
	host.CodeNotFound: 404, host.CodeMethodNotFound: 404, host.CodeRunNotFound: 404, host.CodeNodeNotFound: 404, codeAttemptNotFound: 404,
	host.CodeIterationNF: 404, host.CodeNodeHasNoOut: 404, codeCronNotFound: 404,
	codeAttemptNotFinished: 409, host.CodeBusy: 409, host.CodeAlreadyDecided: 409, host.CodeRunNotActive: 409, host.CodeVersionMismatch: 409,
	codeDiffTooLarge: 413, codePayloadTooLarge: 413, host.CodePayloadTooLarge: 413, host.CodeOutputTooLarge: 413,
	codeRateLimited: 429, host.CodeBackpressure: 429, host.CodeSignalBufferFull: 429,
	host.CodeUnsupported:        501,
	host.CodeServiceUnavailable: 503,
}

// statusOf maps an error code to its HTTP status.
func statusOf(code string) int {
	if s, ok := statusByCode[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// wireError is the error object of a response frame: {version, code,
// message, ...extra}.
func wireError(err error) (map[string]any, string) {
	var he *host.Error
	if !errors.As(err, &he) && errors.Is(err, host.ErrStorageUnavailable) {
		he = &host.Error{Code: host.CodeServiceUnavailable, Message: "The gateway's storage is unavailable; retry later.", Err: err}
	}
	if he == nil {
		he = &host.Error{Code: host.CodeServerError, Message: "Internal server error", Err: err}
	}
	obj := map[string]any{"version": "v1", "code": he.Code, "message": he.Message}
	for k, v := range he.Extra {
		obj[k] = v
	}
	return obj, he.Code
}

// wireMessage is the message a client is shown for err.
func wireMessage(err error) string {
	obj, _ := wireError(err)
	msg, _ := obj["message"].(string)
	return msg
}

// resFrame is a response frame. Its fields are in the order of their
// names, the order in which encoding/json writes a map's keys, so a frame
// reads the same as when it was one.
type resFrame struct {
	APIVersion string `json:"apiVersion"`
	ID         string `json:"id"`
	OK         bool   `json:"ok"`
	Payload    any    `json:"payload"`
	Type       string `json:"type"`
}

// errFrame is a failed response frame: it has no payload key.
type errFrame struct {
	APIVersion string         `json:"apiVersion"`
	Error      map[string]any `json:"error"`
	ID         string         `json:"id"`
	OK         bool           `json:"ok"`
	Type       string         `json:"type"`
}

// errorFrame renders a failed response frame.
func errorFrame(id string, err error) (errFrame, string) {
	obj, code := wireError(err)
	return errFrame{APIVersion: "v1", Error: obj, ID: id, Type: "res"}, code
}

// okFrame renders a successful response frame; payload is always present.
func okFrame(id string, payload any) resFrame {
	return resFrame{APIVersion: "v1", ID: id, OK: true, Payload: payload, Type: "res"}
}

func errInvalidRequest(format string, args ...any) error {
	return host.Errorf(host.CodeInvalidRequest, format, args...)
}

func errInvalidInput(format string, args ...any) error {
	return host.Errorf(host.CodeInvalidInput, format, args...)
}
