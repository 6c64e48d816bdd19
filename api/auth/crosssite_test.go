package auth

import (
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// TestCrossSiteGuard: in trusted-proxy mode a request that may change state
// is refused when a browser could have sent it from another site (a foreign
// Origin, or a form or text body), and allowed from the gateway's own
// origin, from an allowed origin, and from clients that send no Origin.
func TestCrossSiteGuard(t *testing.T) {
	p := NewTrustedProxy(TrustedProxyConfig{AllowedOrigins: []string{"https://console.example"}})
	tests := []struct {
		name    string
		method  string
		tls     bool
		headers []string
		refused bool
	}{
		{"no Origin, JSON", http.MethodPost, false, []string{"Content-Type", "application/json"}, false},
		{"no Origin, no Content-Type", http.MethodPost, false, nil, false},
		{"own origin", http.MethodPost, false, []string{"Origin", "http://gw.example"}, false},
		{"own origin with the default port", http.MethodPost, false, []string{"Origin", "http://gw.example:80"}, false},
		{"own origin, host in another case", http.MethodPost, false, []string{"Origin", "http://GW.example"}, false},
		{"allowed origin", http.MethodPost, false, []string{"Origin", "https://console.example"}, false},
		{"other site", http.MethodPost, false, []string{"Origin", "https://evil.example"}, true},
		{"other port", http.MethodPost, false, []string{"Origin", "http://gw.example:8080"}, true},
		{"null origin", http.MethodPost, false, []string{"Origin", "null"}, true},
		{"other site, PUT", http.MethodPut, false, []string{"Origin", "https://evil.example"}, true},
		{"other site, DELETE", http.MethodDelete, false, []string{"Origin", "https://evil.example"}, true},
		{"other site, GET is not a state change", http.MethodGet, false, []string{"Origin", "https://evil.example"}, false},
		{"other site, HEAD", http.MethodHead, false, []string{"Origin", "https://evil.example"}, false},
		{"other site, OPTIONS", http.MethodOptions, false, []string{"Origin", "https://evil.example"}, false},
		{"text/plain", http.MethodPost, false, []string{"Content-Type", "text/plain"}, true},
		{"text/plain with charset, any case", http.MethodPost, false, []string{"Content-Type", " Text/Plain ; charset=UTF-8"}, true},
		{"form", http.MethodPost, false, []string{"Content-Type", "application/x-www-form-urlencoded"}, true},
		{"multipart", http.MethodPost, false, []string{"Content-Type", "multipart/form-data; boundary=x"}, true},
		{"form from the own origin", http.MethodPost, false, []string{"Origin", "http://gw.example", "Content-Type", "text/plain"}, true},
		{"behind TLS: https is own", http.MethodPost, true, []string{"Origin", "https://gw.example"}, false},
		{"behind TLS: http is not", http.MethodPost, true, []string{"Origin", "http://gw.example"}, true},
		{"forwarded proto https", http.MethodPost, false, []string{"X-Forwarded-Proto", "https", "Origin", "https://gw.example:443"}, false},
		{"forwarded proto https, http Origin", http.MethodPost, false, []string{"X-Forwarded-Proto", "https", "Origin", "http://gw.example"}, true},
		{"forwarded host", http.MethodPost, false, []string{"X-Forwarded-Host", "public.example, inner", "Origin", "https://public.example"}, false},
		{"forwarded host: Host is not own then", http.MethodPost, false, []string{"X-Forwarded-Host", "public.example", "Origin", "http://gw.example"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "http://gw.example/v1/rpc/launchRun", nil)
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			for i := 0; i+1 < len(tt.headers); i += 2 {
				r.Header.Set(tt.headers[i], tt.headers[i+1])
			}
			err := p.CheckStateChange(r)
			if !tt.refused {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var he *host.Error
			if !errors.As(err, &he) || he.Code != host.CodeForbidden || !errors.Is(err, ErrCrossSite) || he.Message == "" {
				t.Fatalf("error %v, want FORBIDDEN caused by ErrCrossSite", err)
			}
		})
	}
	// An upgrade is checked on its Origin alone.
	up := httptest.NewRequest(http.MethodGet, "http://gw.example/", nil)
	up.Header.Set("Origin", "https://evil.example")
	if err := p.CheckUpgrade(up); !errors.Is(err, ErrCrossSite) {
		t.Fatalf("upgrade from another site: %v", err)
	}
	up.Header.Set("Origin", "http://gw.example")
	if err := p.CheckUpgrade(up); err != nil {
		t.Fatalf("upgrade from the own origin: %v", err)
	}
}
