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

// errorFrame renders a failed response frame.
func errorFrame(id string, err error) (map[string]any, string) {
	obj, code := wireError(err)
	return map[string]any{"type": "res", "id": id, "ok": false, "apiVersion": "v1", "error": obj}, code
}

// okFrame renders a successful response frame; payload is always present.
func okFrame(id string, payload any) map[string]any {
	return map[string]any{"type": "res", "id": id, "ok": true, "apiVersion": "v1", "payload": payload}
}

func errInvalidRequest(format string, args ...any) error {
	return host.Errorf(host.CodeInvalidRequest, format, args...)
}

func errInvalidInput(format string, args ...any) error {
	return host.Errorf(host.CodeInvalidInput, format, args...)
}
