package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// nestedArray is JSON text of depth d (a primitive is depth 1, [x] adds
// one).
func nestedArray(d int) string {
	return strings.Repeat("[", d-1) + "0" + strings.Repeat("]", d-1)
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestCheckBounds(t *testing.T) {
	const (
		depthMsg  = "gateway frame exceeds the maximum JSON depth of 32."
		arrayMsg  = "gateway frame contains an array exceeding 256 items."
		stringMsg = "gateway frame contains a string exceeding 16384 characters."
	)
	items := func(n int) string { return "[" + strings.TrimSuffix(strings.Repeat("1,", n), ",") + "]" }
	tests := []struct {
		name string
		body string // a JSON object
		want string // "" = within bounds
	}{
		{"depth 32 counting the primitive", `{"a":` + nestedArray(31) + `}`, ""},
		{"depth 33 counting the primitive", `{"a":` + nestedArray(32) + `}`, depthMsg},
		{"32 empty containers", strings.Repeat(`{"a":`, 31) + `{}` + strings.Repeat(`}`, 31), ""},
		{"33 empty containers", strings.Repeat(`{"a":`, 32) + `{}` + strings.Repeat(`}`, 32), depthMsg},
		{"string at depth 33", strings.Repeat(`{"a":`, 32) + `"x"` + strings.Repeat(`}`, 32), depthMsg},
		{"array of 256", `{"a":` + items(256) + `}`, ""},
		{"array of 257", `{"a":` + items(257) + `}`, arrayMsg},
		{"nested array of 257", `{"a":[[1],` + items(257) + `]}`, arrayMsg},
		{"object of 1000 keys has no item limit", manyKeys(1000), ""},
		{"string of 16384", `{"a":` + jsonString(strings.Repeat("x", 16384)) + `}`, ""},
		{"string of 16385", `{"a":` + jsonString(strings.Repeat("x", 16385)) + `}`, stringMsg},
		{"16384 two-byte characters", `{"a":` + jsonString(strings.Repeat("é", 16384)) + `}`, ""},
		{"8192 astral characters (16384 units)", `{"a":` + jsonString(strings.Repeat("😀", 8192)) + `}`, ""},
		{"8192 astral characters and one more unit", `{"a":` + jsonString(strings.Repeat("😀", 8192)+"x") + `}`, stringMsg},
		{"escaped surrogate pairs count two units", `{"a":"` + strings.Repeat(`\ud83d\ude00`, 8193) + `"}`, stringMsg},
		{"lone surrogates count one unit", `{"a":"` + strings.Repeat(`\ud800`, 16384) + `"}`, ""},
		{"string in array", `{"a":["x",` + jsonString(strings.Repeat("x", 16385)) + `]}`, stringMsg},
		{"keys are not checked", `{` + jsonString(strings.Repeat("k", 20000)) + `:1}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dec := json.NewDecoder(bytes.NewReader([]byte(tc.body)))
			dec.UseNumber()
			var v any
			if err := dec.Decode(&v); err != nil {
				t.Fatal(err)
			}
			err := checkBounds(v)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected %v", err)
				}
				return
			}
			if err == nil || !strings.HasSuffix(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestBoundsOverHTTP(t *testing.T) {
	g := newTestGateway(t)
	tests := []struct {
		name, body, message string
	}{
		{"depth", `{"a":` + nestedArray(32) + `}`, "gateway frame exceeds the maximum JSON depth of 32."},
		{"depth beyond the JSON decoder's own limit", `{"a":` + nestedArray(20000) + `}`, "gateway frame exceeds the maximum JSON depth of 32."},
		{"array", `{"a":[` + strings.Repeat("0,", 256) + `0]}`, "gateway frame contains an array exceeding 256 items."},
		{"string", `{"a":` + jsonString(strings.Repeat("😀", 8193)) + `}`, "gateway frame contains a string exceeding 16384 characters."},
		// Bounds apply to the whole body, envelope fields included.
		{"envelope id", `{"id":` + jsonString(strings.Repeat("x", 16385)) + `}`, "gateway frame contains a string exceeding 16384 characters."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := wantError(t, g.post("/v1/rpc/health", tokAll, tc.body), 400, "INVALID_INPUT")
			if e["message"] != tc.message {
				t.Fatalf("message %q", e["message"])
			}
		})
	}
	// Within bounds at every limit at once.
	body := `{"d":` + nestedArray(31) + `,"a":[` + strings.Repeat("0,", 255) + `0],"s":` + jsonString(strings.Repeat("😀", 8192)) + `}`
	if res := g.post("/v1/rpc/health", tokAll, body); res.status != 200 {
		t.Fatalf("%d %s", res.status, res.raw)
	}
}

func manyKeys(n int) string {
	var b strings.Builder
	b.WriteString("{")
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"k%d":1`, i)
	}
	b.WriteString("}")
	return b.String()
}
