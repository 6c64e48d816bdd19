package api

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// jsonAppender is a payload that appends its own JSON encoding, byte for
// byte what encoding/json writes for it, without reflection: getRun's
// payload, on the API's hottest read path.
type jsonAppender interface {
	appendJSON(dst []byte) []byte
}

// appendOKFrame appends okFrame(id, p) as encoding/json would write it.
func appendOKFrame(dst []byte, id string, p jsonAppender) []byte {
	dst = append(dst, `{"apiVersion":"v1","id":`...)
	dst = appendJSONString(dst, id)
	dst = append(dst, `,"ok":true,"payload":`...)
	dst = p.appendJSON(dst)
	return append(dst, `,"type":"res"}`...)
}

const hexDigits = "0123456789abcdef"

// htmlSafe reports whether encoding/json writes the ASCII byte b as is in
// a string (it escapes controls, the quote, the backslash and, for HTML,
// <, > and &).
func htmlSafe(b byte) bool {
	return b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&'
}

// appendJSONString appends s as encoding/json's Marshal writes a string:
// HTML-safe, invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if htmlSafe(b) {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendRawJSON appends stored JSON text as encoding/json writes a
// json.RawMessage: compacted, HTML-escaped, null when empty. Text that has
// nothing to compact or escape (the usual case: the gateway stores compact
// JSON) is copied as is.
func appendRawJSON(dst []byte, raw string) []byte {
	if raw == "" {
		return append(dst, "null"...)
	}
	plain := true
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case ' ', '\t', '\n', '\r', '<', '>', '&', 0xE2: // 0xE2 leads U+2028 and U+2029
			plain = false
		}
		if !plain {
			break
		}
	}
	if plain {
		return append(dst, raw...)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(raw)); err != nil {
		return append(dst, raw...) // unreachable for stored JSON; Marshal would fail
	}
	var out bytes.Buffer
	json.HTMLEscape(&out, compact.Bytes())
	return append(dst, out.Bytes()...)
}

func appendNullInt(dst []byte, p *int64) []byte {
	if p == nil {
		return append(dst, "null"...)
	}
	return strconv.AppendInt(dst, *p, 10)
}

func appendNullString(dst []byte, p *string) []byte {
	if p == nil {
		return append(dst, "null"...)
	}
	return appendJSONString(dst, *p)
}

// appendJSON writes getRun's payload as encoding/json writes runDetailJSON.
func (d runDetailJSON) appendJSON(dst []byte) []byte {
	dst = append(dst, `{"cancelRequestedAtMs":`...)
	dst = appendNullInt(dst, d.CancelRequestedAtMs)
	dst = append(dst, `,"configJson":`...)
	dst = appendNullString(dst, d.ConfigJSON)
	dst = append(dst, `,"createdAtMs":`...)
	dst = strconv.AppendInt(dst, d.CreatedAtMs, 10)
	dst = append(dst, `,"errorJson":`...)
	dst = appendNullString(dst, d.ErrorJSON)
	dst = append(dst, `,"finishedAtMs":`...)
	dst = appendNullInt(dst, d.FinishedAtMs)
	dst = append(dst, `,"heartbeatAtMs":`...)
	dst = appendNullInt(dst, d.HeartbeatAtMs)
	dst = append(dst, `,"hijackRequestedAtMs":null,"hijackTarget":null,"input":`...)
	dst = appendRawJSON(dst, string(d.Input))
	dst = append(dst, `,"output":`...)
	dst = appendRawJSON(dst, string(d.Output))
	dst = append(dst, `,"parentRunId":`...)
	dst = appendNullString(dst, d.ParentRunID)
	dst = append(dst, `,"runId":`...)
	dst = appendJSONString(dst, d.RunID)
	dst = append(dst, `,"runState":`...)
	dst = d.RunState.appendJSON(dst)
	dst = append(dst, `,"runtimeOwnerId":`...)
	dst = appendNullString(dst, d.RuntimeOwnerID)
	dst = append(dst, `,"startedAtMs":`...)
	dst = appendNullInt(dst, d.StartedAtMs)
	dst = append(dst, `,"status":`...)
	dst = appendJSONString(dst, d.Status)
	dst = append(dst, `,"summary":`...)
	dst = d.Summary.appendJSON(dst)
	dst = append(dst, `,"vcsRevision":null,"vcsRoot":null,"vcsType":null,"workflowHash":`...)
	dst = appendNullString(dst, d.WorkflowHash)
	dst = append(dst, `,"workflowKey":`...)
	dst = appendJSONString(dst, d.WorkflowKey)
	dst = append(dst, `,"workflowName":`...)
	dst = appendJSONString(dst, d.WorkflowName)
	dst = append(dst, `,"workflowPath":`...)
	dst = appendNullString(dst, d.WorkflowPath)
	return append(dst, '}')
}

func (v runStateJSON) appendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	if b := v.Blocked; b != nil {
		dst = append(dst, `"blocked":{`...)
		if b.CorrelationKey != nil {
			dst = append(dst, `"correlationKey":`...)
			dst = appendJSONString(dst, *b.CorrelationKey)
			dst = append(dst, ',')
		}
		dst = append(dst, `"kind":`...)
		dst = appendJSONString(dst, b.Kind)
		dst = append(dst, `,"nodeId":`...)
		dst = appendJSONString(dst, b.NodeID)
		if b.RequestedAt != "" {
			dst = append(dst, `,"requestedAt":`...)
			dst = appendJSONString(dst, b.RequestedAt)
		}
		if b.WakeAt != "" {
			dst = append(dst, `,"wakeAt":`...)
			dst = appendJSONString(dst, b.WakeAt)
		}
		dst = append(dst, "},"...)
	}
	dst = append(dst, `"computedAt":`...)
	dst = appendJSONString(dst, v.ComputedAt)
	dst = append(dst, `,"runId":`...)
	dst = appendJSONString(dst, v.RunID)
	dst = append(dst, `,"state":`...)
	dst = appendJSONString(dst, v.State)
	if u := v.Unhealthy; u != nil {
		dst = append(dst, `,"unhealthy":{"kind":`...)
		dst = appendJSONString(dst, u.Kind)
		dst = append(dst, `,"lastHeartbeatAt":`...)
		dst = appendJSONString(dst, u.LastHeartbeatAt)
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

func (s summaryJSON) appendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	first := true
	for _, f := range [...]struct {
		key string
		n   int
	}{{"cancelled", s.Cancelled}, {"failed", s.Failed}, {"finished", s.Finished}, {"in-progress", s.InProgress},
		{"pending", s.Pending}, {"skipped", s.Skipped}, {"waiting-approval", s.WaitingApproval},
		{"waiting-event", s.WaitingEvent}, {"waiting-timer", s.WaitingTimer}} {
		if f.n == 0 {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '"')
		dst = append(dst, f.key...)
		dst = append(dst, `":`...)
		dst = strconv.AppendInt(dst, int64(f.n), 10)
	}
	return append(dst, '}')
}
