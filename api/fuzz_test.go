package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"unicode/utf16"
)

// FuzzRPCBody feeds arbitrary bytes as the body of both RPC routes through
// the real handler (with a run:read token, so whatever method a body names
// cannot change state): it must never panic and must always answer a
// well-formed frame whose HTTP status is the error table's for its code.
func FuzzRPCBody(f *testing.F) {
	g := newTestGateway(f)
	for _, seed := range []string{
		``, `{}`, `{"method":"health"}`, `{"id":"x","method":"getRun","params":{"runId":"r"}}`,
		`{"runId":"r","nodeId":"n","iteration":"1"}`, `[1,2]`, `null`, `{"a":` + nestedArray(40) + `}`,
		`{"method":"runs.list","params":{"limit":"0"}}`, `{"id":` + jsonString(strings.Repeat("x", 200)) + `}`,
		`{"method":"getNodeOutput","params":{"runId":"a","nodeId":"b","iteration":1e400}}`, "\xff\xfe", `{"a":"\ud800"}`,
		`{"method":"launchRun","params":{"workflow":"echo"}}`, `{"method":"cronList","params":{"filter":{"workflow":1}}}`,
	} {
		f.Add([]byte(seed), "getRun")
	}
	f.Fuzz(func(t *testing.T, body []byte, urlMethod string) {
		for _, target := range []string{"/rpc", "/v1/rpc/" + urlMethodSegment(urlMethod)} {
			req := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+g.token(tokRead))
			rec := httptest.NewRecorder()
			g.h.ServeHTTP(rec, req)
			checkWellFormed(t, rec)
		}
	})
}

// urlMethodSegment makes a fuzzed method usable as one path segment.
func urlMethodSegment(m string) string {
	var b strings.Builder
	for _, r := range m {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "health"
	}
	return b.String()
}

func checkWellFormed(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Header().Get("X-Smithers-API-Version") != "v1" || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", rec.Header())
	}
	var frame map[string]any
	dec := json.NewDecoder(rec.Body)
	if err := dec.Decode(&frame); err != nil {
		t.Fatalf("status %d: body is not a JSON object: %v", rec.Code, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("trailing data after the frame")
	}
	if frame["type"] != "res" || frame["apiVersion"] != "v1" {
		t.Fatalf("frame %v", frame)
	}
	if _, ok := frame["id"].(string); !ok {
		t.Fatalf("frame without a string id: %v", frame)
	}
	switch frame["ok"] {
	case true:
		if _, has := frame["payload"]; !has || rec.Code != http.StatusOK {
			t.Fatalf("status %d success frame %v", rec.Code, frame)
		}
	case false:
		e, _ := frame["error"].(map[string]any)
		code, _ := e["code"].(string)
		if _, ok := e["message"].(string); !ok || e["version"] != "v1" || code == "" {
			t.Fatalf("error object %v", frame["error"])
		}
		if rec.Code != statusOf(code) {
			t.Fatalf("status %d for code %s, table says %d", rec.Code, code, statusOf(code))
		}
		if code == "SERVER_ERROR" {
			t.Fatalf("a caller's bytes caused a server error: %v", e)
		}
	default:
		t.Fatalf("frame without ok: %v", frame)
	}
}

// FuzzCheckBounds compares checkBounds with a token-stream reference of
// docs/rpc.md on every input that decodes as JSON.
func FuzzCheckBounds(f *testing.F) {
	for _, seed := range []string{
		`{}`, `[]`, `"x"`, `1`, `{"a":[1,2,{"b":"c"}]}`, nestedArray(32), nestedArray(33),
		"[" + strings.TrimSuffix(strings.Repeat("0,", 257), ",") + "]", jsonString(strings.Repeat("😀", 8193)),
		`{"` + strings.Repeat("k", 17000) + `":1}`, `[[],[[]],{"a":{}}]`, `"\ud83d\ude00\ud800"`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			return
		}
		got := checkBounds(v) == nil
		want := referenceBounds(t, data)
		if got != want {
			t.Fatalf("checkBounds within=%v, reference within=%v for %q", got, want, data)
		}
	})
}

// referenceBounds checks the first JSON value of data with the decoder's
// token stream: a value's level is the number of open containers plus one,
// arrays hold at most 256 items, value strings at most 16384 UTF-16 units.
func referenceBounds(t *testing.T, data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		object    bool
		expectKey bool
		items     int
	}
	var stack []*frame
	ok := true
	for {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("reference tokenizer: %v", err)
		}
		if d, isDelim := tok.(json.Delim); isDelim && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
		} else {
			var top *frame
			if len(stack) > 0 {
				top = stack[len(stack)-1]
			}
			if top != nil && top.object && top.expectKey {
				top.expectKey = false
				continue // a key: not a value, not checked
			}
			if len(stack)+1 > maxJSONDepth {
				ok = false
			}
			if top != nil {
				if top.object {
					top.expectKey = true
				} else if top.items++; top.items > maxArrayItems {
					ok = false
				}
			}
			switch x := tok.(type) {
			case json.Delim:
				stack = append(stack, &frame{object: x == '{', expectKey: x == '{'})
			case string:
				if len(utf16.Encode([]rune(x))) > maxStringUnits {
					ok = false
				}
			}
		}
		if len(stack) == 0 {
			return ok
		}
	}
}

// FuzzDecodeFlatStrings: what the fast path of decodeRPCBody accepts, the
// general decoder accepts and decodes to the same object.
func FuzzDecodeFlatStrings(f *testing.F) {
	for _, seed := range []string{`{}`, ` { } `, `{"runId":"abc"}`, `{"a":"1","a":"2"}`, "{\"a\" :\t\"b\" ,\n\"c\":\"\"}\r\n",
		`{"a":1}`, `{"a":"\u00e9"}`, `{"a":"b"`, `{"a":"b"}x`, `{"a":"b",}`, `{,}`, `{"a\\":"b"}`, "{\"a\":\"\x7f\"}"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := decodeFlatStrings(body)
		if !ok {
			return
		}
		general, err := decodeObject(body)
		if err != nil {
			t.Fatalf("%q: the fast path accepted what the decoder refuses: %v", body, err)
		}
		if len(fast) != len(general) {
			t.Fatalf("%q: fast %v, general %v", body, fast, general)
		}
		for k, v := range general {
			if fast[k] != v {
				t.Fatalf("%q: key %q fast %v, general %v", body, k, fast[k], v)
			}
		}
	})
}

// TestValidMethodChars: the loop accepts exactly what the documented
// pattern accepts.
func TestValidMethodChars(t *testing.T) {
	re := regexp.MustCompile(`^[a-z][a-zA-Z0-9]*(\.[a-z][a-zA-Z0-9]*)*$`)
	inputs := []string{"", "a", "getRun", "runs.get", "devtools.getNodeOutput", ".a", "a.", "a..b", "A", "aB9", "a.B", "a.9",
		"a-b", "a_b", "a b", "é", "a.b.c", "9a"}
	for c := 0; c < 128; c++ {
		inputs = append(inputs, "a"+string(rune(c)), string(rune(c))+"a", "a."+string(rune(c)))
	}
	for _, in := range inputs {
		if got, want := validMethodChars(in), re.MatchString(in); got != want {
			t.Errorf("%q: %v, pattern says %v", in, got, want)
		}
	}
}
