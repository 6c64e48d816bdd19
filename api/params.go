package api

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// params is the decoded params object of an RPC call (numbers are
// json.Number). Non-object params are treated as {} (docs/rpc.md).
type params map[string]any

func asParams(v any) params {
	if m, ok := v.(map[string]any); ok {
		return m
	}
	return params{}
}

// obj returns a nested object field, nil when absent or not an object.
func (p params) obj(key string) params {
	if m, ok := p[key].(map[string]any); ok {
		return m
	}
	return nil
}

// str returns a string field and whether it was a string.
func (p params) str(key string) (string, bool) {
	if p == nil {
		return "", false
	}
	s, ok := p[key].(string)
	return s, ok
}

// strOr returns the first string among p.key and alt.key.
func (p params) strOr(key string, alt params) (string, bool) {
	if s, ok := p.str(key); ok {
		return s, true
	}
	return alt.str(key)
}

func (p params) has(key string) bool {
	if p == nil {
		return false
	}
	_, ok := p[key]
	return ok
}

// positiveInt coerces like JS Number(x) and requires a finite integer > 0
// (docs/rpc.md "positive int"); absent gives def.
func positiveIntParam(v any, field string, def int) (int, error) {
	if v == nil {
		return def, nil
	}
	f, ok := jsNumber(v)
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 {
		return 0, thrown(errInvalidInput("%s must be a finite number greater than 0.", field))
	}
	if f != math.Trunc(f) {
		return 0, thrown(errInvalidInput("%s must be an integer greater than 0.", field))
	}
	if f > math.MaxInt32 {
		f = math.MaxInt32
	}
	return int(f), nil
}

// jsNumber converts like JavaScript's Number(x) for the JSON value kinds.
func jsNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case string:
		s := strings.TrimSpace(x)
		if s == "" {
			return 0, true
		}
		f, err := strconv.ParseFloat(s, 64)
		return f, err == nil
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	case nil:
		return 0, true
	}
	return math.NaN(), false
}

// rawJSON re-encodes a decoded value as JSON.stringify would: without
// HTML escaping and without a trailing newline.
func rawJSON(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "null"
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

// thrownError marks an error that upstream throws rather than returns: its
// HTTP response frame echoes the request id, not body.id (docs/rpc.md
// step 10).
type thrownError struct{ err error }

func (t thrownError) Error() string { return t.err.Error() }
func (t thrownError) Unwrap() error { return t.err }

func thrown(err error) error { return thrownError{err} }

const maxI32 = math.MaxInt32

// validRunIDParam requires params.runId to be a string matching the run id
// pattern; both failures are InvalidRunId.
func validRunIDParam(p params) (string, error) {
	id, _ := p.str("runId")
	if id == "" {
		return "", host.Errorf(codeInvalidRunID, "runId is required")
	}
	if !host.ValidRunID(id) { // the id patterns of docs/rpc.md
		return "", host.Errorf(codeInvalidRunID, "runId must match ^[a-z0-9_-]{1,64}$.")
	}
	return id, nil
}

// validNodeIDParam requires params.nodeId to be a string matching the node
// id pattern (InvalidNodeId).
func validNodeIDParam(p params) (string, error) {
	id, _ := p.str("nodeId")
	if id == "" {
		return "", host.Errorf(codeInvalidNodeID, "nodeId is required")
	}
	if !host.ValidStepID(id) {
		return "", host.Errorf(codeInvalidNodeID, "nodeId must match ^[a-zA-Z0-9:_-]{1,128}$.")
	}
	return id, nil
}

// jsonInt reports the value of a JSON number that is an integer in
// [0, limit] (3, 3.0 and 3e0 all count as 3).
func jsonInt(v any, limit int64) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	return integralInRange(n.String(), limit)
}

func integralInRange(s string, limit int64) (int64, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f) || f < 0 || f > float64(limit) {
		return 0, false
	}
	return int64(f), true
}
