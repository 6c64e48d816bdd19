package tokenstore

import (
	"slices"
	"testing"
)

func TestSplitScopes(t *testing.T) {
	tests := map[string][]string{
		"":                            {},
		"run:read":                    {"run:read"},
		"run:read,run:write":          {"run:read", "run:write"},
		" run:read , cron:read\tx\ny": {"run:read", "cron:read", "x", "y"},
		",,,":                         {},
		"a\u00a0b\u3000c":             {"a", "b", "c"},
	}
	for in, want := range tests {
		if got := SplitScopes(in); got == nil || !slices.Equal(got, want) {
			t.Errorf("SplitScopes(%q) = %#v, want %q", in, got, want)
		}
	}
}

func TestTokenID(t *testing.T) {
	// sha256("abc") = ba7816bf8f01cfea414140de5dae2223...
	if got := TokenID("abc"); got != "ba7816bf8f01cfea" {
		t.Fatalf("TokenID = %q", got)
	}
}
