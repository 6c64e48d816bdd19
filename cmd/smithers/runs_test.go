package main

import (
	"bytes"
	"flag"
	"io"
	"strings"
	"testing"
)

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		pos      string
		note     string
		fromJSON bool
	}{
		{[]string{"r1", "ship"}, "r1 ship", "", false},
		{[]string{"r1", "ship", "--note", "ok"}, "r1 ship", "ok", false},
		{[]string{"--note=ok", "r1", "--json", "ship"}, "r1 ship", "ok", true},
		{[]string{"r1", "--", "--note", "x"}, "r1 --note x", "", false},
		{[]string{"r1", `{"a":-1}`, "-"}, `r1 {"a":-1} -`, "", false},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		note := fs.String("note", "", "")
		asJSON := fs.Bool("json", false, "")
		pos, err := parseInterspersed(fs, tc.args)
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if got := strings.Join(pos, " "); got != tc.pos || *note != tc.note || *asJSON != tc.fromJSON {
			t.Errorf("%q: positional %q note %q json %v; want %q %q %v", tc.args, got, *note, *asJSON, tc.pos, tc.note, tc.fromJSON)
		}
	}
}

func TestGatewayURL(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "SMITHERS_URL" {
				return v
			}
			return ""
		}
	}
	for _, tc := range []struct{ flag, env, want string }{
		{"", "", "http://127.0.0.1:7331"},
		{"", "https://gw.example/", "https://gw.example"},
		{"http://h:1", "https://gw.example", "http://h:1"},
	} {
		if got := gatewayURL(tc.flag, env(tc.env)); got != tc.want {
			t.Errorf("gatewayURL(%q, SMITHERS_URL=%q) = %q, want %q", tc.flag, tc.env, got, tc.want)
		}
	}
}

// TestRunsUsageExits2 covers the mistakes caught before any request.
func TestRunsUsageExits2(t *testing.T) {
	for _, args := range [][]string{
		{"runs"}, {"runs", "bogus"}, {"runs", "show"}, {"runs", "follow", "a", "b"},
		{"runs", "signal", "r1", "go", "{not json"}, {"runs", "launch", "wf", `"a string"`},
		{"runs", "deny", "r1", "n", "--decision", "1"}, {"runs", "list", "--limit", "x"},
	} {
		var out, errOut bytes.Buffer
		if code := run(args, func(string) string { return "" }, &out, &errOut); code != 2 || errOut.Len() == 0 {
			t.Errorf("smithers %s: exit %d, stderr %q; want 2 and a message", strings.Join(args, " "), code, errOut.String())
		}
	}
	var out bytes.Buffer
	if code := run([]string{"runs", "help"}, func(string) string { return "" }, &out, io.Discard); code != 0 || !strings.Contains(out.String(), "follow <runId>") {
		t.Errorf("smithers runs help: exit %d, %q", code, out.String())
	}
}
