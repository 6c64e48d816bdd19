package tokenstore

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestParseTTL(t *testing.T) {
	valid := map[string]time.Duration{
		"1h":        time.Hour,
		"1H":        time.Hour,
		" 2m ":      2 * time.Minute,
		"\t30s\n":   30 * time.Second,
		"1.5s":      1500 * time.Millisecond,
		"100":       100 * time.Millisecond,
		"100ms":     100 * time.Millisecond,
		"100MS":     100 * time.Millisecond,
		"1d":        24 * time.Hour,
		"7D":        7 * 24 * time.Hour,
		"1.9999ms":  time.Millisecond,
		"1.0005s":   time.Second,
		"0.001s":    time.Millisecond,
		"0.5m":      30 * time.Second,
		"007s":      7 * time.Second,
		"\u00a01h":  time.Hour,
		"106751d":   106751 * 24 * time.Hour,
		"2.0000000": 2 * time.Millisecond,
	}
	for in, want := range valid {
		got, err := ParseTTL(in)
		if err != nil || got != want {
			t.Errorf("ParseTTL(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	invalid := []string{"", " ", "0", "0s", "0.5", "0.0009s", "-1s", "+1s", "1.s", ".5s", "1e3", "1 h",
		"1hr", "1w", "h", "abc", "1h1m", "1,5s", "１h", "1ſ", "99999999999999999999d", "106752d", "1.5.5s"}
	for _, in := range invalid {
		_, err := ParseTTL(in)
		he := wantCode(t, err, CodeInvalidDuration)
		if he.Message != "Invalid ttl: "+in {
			t.Errorf("ParseTTL(%q) message %q", in, he.Message)
		}
	}
}

// FuzzParseTTL checks ParseTTL never panics and accepts exactly the
// grammar ^\d+(\.\d+)?(ms|s|m|h|d)?$, trimmed and case-insensitive (with a
// positive, representable result).
func FuzzParseTTL(f *testing.F) {
	for _, s := range []string{"1h", "1.5s", "100", " 2M ", "0", "1e3", "0.0001s", "99999999999999999999d", ".5"} {
		f.Add(s)
	}
	grammar := regexp.MustCompile(`^[0-9]+(\.[0-9]+)?(ms|s|m|h|d)?$`)
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseTTL(s)
		if err != nil {
			wantCode(t, err, CodeInvalidDuration)
			return
		}
		if d < time.Millisecond || d%time.Millisecond != 0 {
			t.Fatalf("ParseTTL(%q) = %v", s, d)
		}
		if !grammar.MatchString(asciiLower(strings.TrimFunc(s, isJSSpace))) {
			t.Fatalf("ParseTTL accepted %q outside the grammar", s)
		}
	})
}
