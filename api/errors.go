package api

import (
	"errors"
	"net/http"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// statusByCode is THE table from wire error code to HTTP status
// (CONTRACT.md §2.2, with DESIGN.md §8: caller mistakes are 4xx). Codes not
// listed are 500.
var statusByCode = map[string]int{
	"INVALID_REQUEST": 400, "InvalidRequest": 400, "INVALID_FRAME": 400, "INVALID_INPUT": 400, "InvalidInput": 400,
	"PROTOCOL_UNSUPPORTED": 400, "InvalidRunId": 400, "InvalidNodeId": 400, "InvalidIteration": 400, "InvalidDelta": 400,
	"InvalidFrameNo": 400, "ConfirmationRequired": 400, "FrameOutOfRange": 400, "SeqOutOfRange": 400, "INVALID_JSON": 400,
	"UNAUTHORIZED": 401, "Unauthorized": 401,
	"FORBIDDEN": 403, "Forbidden": 403,
	"NOT_FOUND": 404, "METHOD_NOT_FOUND": 404, "RunNotFound": 404, "NodeNotFound": 404, "AttemptNotFound": 404,
	"IterationNotFound": 404, "NodeHasNoOutput": 404, "CronNotFound": 404,
	"AttemptNotFinished": 409, "Busy": 409, "AlreadyDecided": 409, "RUN_NOT_ACTIVE": 409, "VERSION_MISMATCH": 409,
	"DiffTooLarge": 413, "PayloadTooLarge": 413, "PAYLOAD_TOO_LARGE": 413,
	"RateLimited": 429, "BackpressureDisconnect": 429,
	"UnsupportedSandbox": 501,
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
	if !errors.As(err, &he) {
		he = &host.Error{Code: host.CodeServerError, Message: "Internal server error", Err: err}
	}
	obj := map[string]any{"version": "v1", "code": he.Code, "message": he.Message}
	for k, v := range he.Extra {
		obj[k] = v
	}
	return obj, he.Code
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
