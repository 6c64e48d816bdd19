package host

import (
	"errors"
	"fmt"
)

// Error is the one error type of the gateway. Code is the stable wire code
// (docs/rpc.md keeps upstream's mixture of UPPER_SNAKE and PascalCase);
// api maps it to an HTTP status through a single table. Extra holds fields
// that are flattened into the wire error object (requiredScope, refresh,
// runId ...). Message is safe to send to clients.
type Error struct {
	Code    string
	Message string
	Extra   map[string]any
	// Err is the underlying cause, logged but never sent to clients.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, or "" when
// err carries none.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Wire error codes: the one set of them, used by host and api alike. The
// HTTP status of each lives in api's status table. Upstream mixes
// UPPER_SNAKE and PascalCase; both are kept as clients match on them.
const (
	CodeInvalidRequest      = "INVALID_REQUEST"
	CodeInvalidInput        = "INVALID_INPUT"
	CodeInvalidJSON         = "INVALID_JSON"
	CodeInvalidFrame        = "INVALID_FRAME"
	CodeProtocolUnsupported = "PROTOCOL_UNSUPPORTED"
	CodeMethodNotFound      = "METHOD_NOT_FOUND"
	CodeUnauthorized        = "UNAUTHORIZED"
	// CodeUnauthorizedOwner is upstream's PascalCase code for "only the
	// run owner or an admin may do this" (rewindRun).
	CodeUnauthorizedOwner  = "Unauthorized"
	CodeNotFound           = "NOT_FOUND"
	CodeRunNotActive       = "RUN_NOT_ACTIVE"
	CodeAlreadyDecided     = "AlreadyDecided"
	CodeBusy               = "Busy"
	CodeForbidden          = "FORBIDDEN"
	CodeServerError        = "SERVER_ERROR"
	CodeUnsupported        = "UnsupportedSandbox"
	CodeRunNotFound        = "RunNotFound"
	CodeNodeNotFound       = "NodeNotFound"
	CodeIterationNF        = "IterationNotFound"
	CodeNodeHasNoOut       = "NodeHasNoOutput"
	CodeSeqOutOfRange      = "SeqOutOfRange"
	CodePayloadTooLarge    = "PAYLOAD_TOO_LARGE"
	CodeBackpressure       = "BackpressureDisconnect"
	CodeSignalBufferFull   = "SIGNAL_BUFFER_FULL"
	CodeServiceUnavailable = "SERVICE_UNAVAILABLE"
)

// Workflow-level codes carried by SmithersError in JavaScript and stored in
// node and run errorJson (docs/workflows.md).
const (
	CodeTaskFailed      = "TASK_FAILED"
	CodeTaskTimeout     = "TASK_TIMEOUT"
	CodeApprovalDenied  = "APPROVAL_DENIED"
	CodeCancelled       = "CANCELLED"
	CodeExecFailed      = "EXEC_FAILED"
	CodeNondeterminism  = "NONDETERMINISM"
	CodeDuplicateID     = "DUPLICATE_ID"
	CodeJSInterrupted   = "JS_INTERRUPTED"
	CodeRunTimeout      = "RUN_TIMEOUT"
	CodeVersionMismatch = "VERSION_MISMATCH"
	CodeEventTimeout    = "EVENT_TIMEOUT"
	CodeWorkflowFailed  = "WORKFLOW_FAILED"
	CodeWorkflowMissing = "WORKFLOW_NOT_REGISTERED"
	// CodeOutputTooLarge: a task output, run output, t.emit chunk or
	// signal payload is over the gateway's MaxOutputBytes.
	CodeOutputTooLarge = "OUTPUT_TOO_LARGE"
	// CodeAttemptAbandoned marks an attempt whose activation ended while
	// it ran (gateway stopped, worker rebuilt); the task ran again.
	CodeAttemptAbandoned = "ATTEMPT_ABANDONED"
	// CodeInvalidDuration: a duration (timeoutMs, a sleep, untilMs) is
	// negative, not a number, or above MaxDurationMs.
	CodeInvalidDuration = "INVALID_DURATION"
)

// ErrRunTerminal is returned by step commits against a run that has already
// finished, failed or been cancelled; late completions of detached work are
// dropped with it rather than published after run.completed.
var ErrRunTerminal = errors.New("run is terminal")

// ErrStorageUnavailable marks a failure of the gateway's own storage: the
// disk is full, an I/O error, the database file was deleted or replaced.
// It is the gateway's problem, never the workflow's: the engine holds the
// step and retries it, the API answers 503 SERVICE_UNAVAILABLE with
// Retry-After. Stores wrap such errors with it (errors.Is).
var ErrStorageUnavailable = errors.New("storage unavailable")
