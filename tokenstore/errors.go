package tokenstore

import (
	"errors"
	"fmt"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// Error codes of Issue, Revoke, List and ParseTTL, carried by *host.Error.
const (
	CodeTokenNotFound     = "TOKEN_NOT_FOUND"
	CodeTokenIssueFailed  = "TOKEN_ISSUE_FAILED"
	CodeTokenRevokeFailed = "TOKEN_REVOKE_FAILED"
	CodeTokenListFailed   = "TOKEN_LIST_FAILED"
	CodeTokenStoreCorrupt = "TOKEN_STORE_CORRUPT"
	CodeInvalidDuration   = host.CodeInvalidDuration
)

func corruptStore(path, why string) *host.Error {
	return &host.Error{Code: CodeTokenStoreCorrupt,
		Message: fmt.Sprintf("Token store %s is corrupt (%s); it was left untouched", path, why)}
}

// wrapStoreError turns a failure of step into a *host.Error: a corrupt store
// keeps its own code, anything else gets code with the step and cause.
func wrapStoreError(code, summary, step string, err error) *host.Error {
	var he *host.Error
	if errors.As(err, &he) {
		return he
	}
	return &host.Error{Code: code, Message: fmt.Sprintf("%s: %s: %v", summary, step, err), Err: err}
}
