package host

import (
	"bytes"
	"encoding/json"
	"testing"
)

func decodeBody(t testing.TB, s string) any {
	t.Helper()
	var v any
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestWebhookPathValue(t *testing.T) {
	body := decodeBody(t, `{"a":{"b":[{"c":1},{"c":"two"}],"0":"key zero"},"list":[[10,11]],"n":null,"":{"":"empty"}}`)
	for _, tc := range []struct {
		path, want string
		ok         bool
	}{
		{"a.b.0.c", `1`, true},
		{"a.b.1.c", `"two"`, true},
		{"a.0", `"key zero"`, true}, // a numeric segment on an object is a key
		{"list.0.1", `11`, true},
		{"n", `null`, true},
		{".", `"empty"`, true},
		{"a.b.2", ``, false},
		{"a.b.-1", ``, false},
		{"a.b.01", ``, false},
		{"a.b.+1", ``, false},
		{"a.b.x", ``, false},
		{"a.b.0.c.d", ``, false},
		{"n.x", ``, false},
		{"missing", ``, false},
	} {
		v, ok := WebhookPathValue(body, tc.path)
		if ok != tc.ok {
			t.Fatalf("%q: ok %v, want %v", tc.path, ok, tc.ok)
		}
		if ok {
			got, _ := json.Marshal(v)
			if string(got) != tc.want {
				t.Fatalf("%q = %s, want %s", tc.path, got, tc.want)
			}
		}
	}
	if v, ok := WebhookPathValue(body, ""); !ok || v == nil {
		t.Fatal("the empty path is not the whole body")
	}
}

func TestWebhookString(t *testing.T) {
	for _, tc := range []struct {
		json, want string
		ok         bool
	}{
		{`"  run-1 "`, "run-1", true},
		{`"   "`, "", false},
		{`42`, "42", true},
		{`1.0`, "1", true},
		{`1.50`, "1.5", true},
		{`1e3`, "1000", true},
		{`-0`, "0", true},
		{`1e21`, "1e+21", true},
		{`123456789012345678901234`, "1.2345678901234569e+23", true},
		{`1e-7`, "1e-7", true},
		{`0.000001`, "0.000001", true},
		{`1e400`, "Infinity", true},
		{`true`, "true", true},
		{`false`, "false", true},
		{`null`, "", false},
		{`{"a":1}`, "", false},
		{`[1]`, "", false},
	} {
		got, ok := webhookString(decodeBody(t, tc.json))
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: %q %v, want %q %v", tc.json, got, ok, tc.want, tc.ok)
		}
	}
}

func TestWebhookRunInput(t *testing.T) {
	deep := func(n int) string {
		return `{"in":` + string(bytes.Repeat([]byte("["), n)) + string(bytes.Repeat([]byte("]"), n)) + `}`
	}
	big := `{"in":{"s":"` + string(bytes.Repeat([]byte("x"), MaxInputBytes)) + `"}}`
	for _, tc := range []struct {
		body, path, want, code string
	}{
		{`{"a":1}`, "", `{"a":1}`, ""},
		{`{"in":{"a":"<b>"}}`, "in", `{"a":"<b>"}`, ""},
		{`{"in":[1]}`, "in", `{"payload":[1]}`, ""},
		{`{"in":7}`, "in", `{"payload":7}`, ""},
		{`{"in":null}`, "in", `{"payload":null}`, ""},
		{`{}`, "in", `{}`, ""},
		{deep(31), "in", `{"payload":` + deep(31)[6:len(deep(31))-1] + `}`, ""},
		{deep(32), "in", "", CodeInvalidInput},
		{big, "in", "", CodeInvalidInput},
	} {
		got, err := webhookRunInput(decodeBody(t, tc.body), &WebhookRun{InputPath: tc.path})
		if ErrorCode(err) != tc.code || (tc.code == "" && got != tc.want) {
			t.Errorf("%.40s at %q: %.60s %v, want %.60s %s", tc.body, tc.path, got, err, tc.want, tc.code)
		}
	}
}

// FuzzWebhookPath: any body and path give a lookup without panic, and the
// run input built from them is a JSON object or INVALID_INPUT.
func FuzzWebhookPath(f *testing.F) {
	f.Add(`{"a":{"b":[{"c":1}]}}`, "a.b.0.c")
	f.Add(`[1,[2,[3]]]`, "1.1.0")
	f.Add(`"x"`, "")
	f.Add(`{"":{"":1}}`, ".")
	f.Add(`{"n":1e400,"m":-0.0e-9}`, "n")
	f.Fuzz(func(t *testing.T, body, path string) {
		var v any
		dec := json.NewDecoder(bytes.NewReader([]byte(body)))
		dec.UseNumber()
		if dec.Decode(&v) != nil {
			return
		}
		if got, ok := WebhookPathValue(v, path); ok {
			_, _ = webhookString(got)
		}
		in, err := webhookRunInput(v, &WebhookRun{InputPath: path})
		if err != nil {
			if ErrorCode(err) != CodeInvalidInput {
				t.Fatalf("run input error %v, want INVALID_INPUT", err)
			}
			return
		}
		var obj map[string]any
		if json.Unmarshal([]byte(in), &obj) != nil || obj == nil {
			t.Fatalf("run input %s is not a JSON object", in)
		}
	})
}
