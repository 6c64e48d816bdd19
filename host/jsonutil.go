package host

import "encoding/json"

// mustJSON marshals values built by host itself (maps of strings, numbers
// and raw JSON), which cannot fail to marshal.
func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("host: marshal: " + err.Error())
	}
	return b
}

// orEmpty is s, or def when s is "".
func orEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orNull(s string) string {
	if s == "" {
		return "null"
	}
	return s
}

// errorJSON is the stored form of an error raised by the engine itself.
func errorJSON(code, message string) string {
	return string(mustJSON(map[string]any{"name": "SmithersError", "code": code, "message": message}))
}

func cancelledErrorJSON() string { return errorJSON(CodeCancelled, "Run was cancelled") }

// errorSummary returns the code and the message (cut to a line's worth)
// of a stored error, for log lines.
func errorSummary(errJSON string) (code, message string) {
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal([]byte(errJSON), &e)
	if len(e.Message) > 300 {
		e.Message = e.Message[:300] + "…"
	}
	return e.Code, e.Message
}

// ErrorCodeOfJSON returns the "code" field of a stored error JSON object.
func ErrorCodeOfJSON(s string) string {
	if s == "" {
		return ""
	}
	var e struct {
		Code string `json:"code"`
	}
	if json.Unmarshal([]byte(s), &e) != nil {
		return ""
	}
	return e.Code
}
