package auth

import (
	"net/http"
	"testing"
)

func TestBearerToken(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		want    string
	}{
		{"none", nil, ""},
		{"x-smithers-key", map[string]string{"X-Smithers-Key": "k1"}, "k1"},
		{"x-smithers-key wins", map[string]string{"X-Smithers-Key": "k1", "Authorization": "Bearer k2"}, "k1"},
		{"bearer", map[string]string{"Authorization": "Bearer abc"}, "abc"},
		{"bearer any case", map[string]string{"Authorization": "bEARER abc"}, "abc"},
		{"double space is kept", map[string]string{"Authorization": "Bearer  abc"}, " abc"},
		{"trailing space is kept", map[string]string{"Authorization": "Bearer abc "}, "abc "},
		{"no scheme: whole value", map[string]string{"Authorization": "abc"}, "abc"},
		{"other scheme: whole value", map[string]string{"Authorization": "Basic abc"}, "Basic abc"},
		{"bearer without space: whole value", map[string]string{"Authorization": "Bearerabc"}, "Bearerabc"},
		{"bearer alone", map[string]string{"Authorization": "Bearer "}, ""},
		{"short value", map[string]string{"Authorization": "Bear"}, "Bear"},
		{"empty key falls back", map[string]string{"X-Smithers-Key": "", "Authorization": "Bearer z"}, "z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.headers {
				h.Set(k, v)
			}
			if got := BearerToken(h); got != tt.want {
				t.Fatalf("BearerToken = %q, want %q", got, tt.want)
			}
		})
	}
}
