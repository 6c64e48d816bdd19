package jsruntime

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// href serializes parts the way the URL class does (serialize in
// webclasses.js).
func (u *webURL) href() string {
	s := u.protocol
	if u.hasAuthority {
		s += "//"
		if u.username != "" || u.password != "" {
			s += u.username
			if u.password != "" {
				s += ":" + u.password
			}
			s += "@"
		}
		s += u.hostname
		if u.port != "" {
			s += ":" + u.port
		}
	} else if !u.opaquePath && strings.HasPrefix(u.pathname, "//") {
		s += "/."
	}
	return s + u.pathname + u.search + u.hash
}

func TestParseWebURL(t *testing.T) {
	tests := []struct {
		input, base string
		want        string // href; "" when the input must be refused
	}{
		{"https://example.com", "", "https://example.com/"},
		{"HTTPS://Example.COM:443/./a/../b/./", "", "https://example.com/b/"},
		{"http://example.com:80/x", "", "http://example.com/x"},
		{"http://example.com:8080/x", "", "http://example.com:8080/x"},
		{"https://example.com/a/b/", "", "https://example.com/a/b/"},
		{"https://user:p%40ss@e.com/", "", "https://user:p%40ss@e.com/"},
		{"https://e.com/é x?q=é'#é", "", "https://e.com/%C3%A9%20x?q=%C3%A9%27#%C3%A9"},
		{" https://e.com/\tx\n ", "", "https://e.com/x"},
		{"https://bücher.example/", "", "https://xn--bcher-kva.example/"},
		{"http://[::1]:3000/x", "", "http://[::1]:3000/x"},
		{"https:example.com/p", "", "https://example.com/p"},
		{"mailto:a@b.c?subject=hi", "", "mailto:a@b.c?subject=hi"},
		{"file:///etc/hosts", "", "file:///etc/hosts"},
		{"custom://h/p?q", "", "custom://h/p?q"},
		{"../c?q", "https://example.com/a/b/", "https://example.com/a/c?q"},
		{"items", "https://example.com/api/v1/", "https://example.com/api/v1/items"},
		{"items", "https://example.com/api/v1", "https://example.com/api/items"},
		{"?x=1", "https://e.com/a/b", "https://e.com/a/b?x=1"},
		{"#f", "https://e.com/a/b?q", "https://e.com/a/b?q#f"},
		{"//other.org/p", "https://e.com/a", "https://other.org/p"},
		{"../../../../x", "https://e.com/a/", "https://e.com/x"},
		{"http://other.org/y", "https://e.com/a", "http://other.org/y"},
		{"/x", "http://my_service:8080/a", "http://my_service:8080/x"},
		{"#frag", "mailto:a@b.c", "mailto:a@b.c#frag"},
		{"x:/../..//a", "", "x:/.//a"},
		// Refused.
		{"not a url", "", ""},
		{"", "", ""},
		{"https://", "", ""},
		{"https://exa mple.com/", "", ""},
		{"https://e.com:99999/", "", ""},
		{"https://e.com:-1/", "", ""},
		{"x", "not a base", ""},
		{"x", "mailto:a@b.c", ""},
		{"http://%zz/", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.input+" "+tc.base, func(t *testing.T) {
			var base *string
			if tc.base != "" {
				base = &tc.base
			}
			u, err := parseWebURL(tc.input, base)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("parseWebURL(%q, %q) = %q, want an error", tc.input, tc.base, u.href())
				}
				if !strings.HasPrefix(err.Error(), "Invalid ") {
					t.Fatalf("error %q does not start with Invalid", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseWebURL(%q, %q): %v", tc.input, tc.base, err)
			}
			if got := u.href(); got != tc.want {
				t.Fatalf("parseWebURL(%q, %q) = %q, want %q", tc.input, tc.base, got, tc.want)
			}
		})
	}
}

// FuzzParseURL: the URL parser takes any string without panicking, and
// what it accepts round-trips: the href of a parsed URL parses again to the
// same parts (a URL handed from one workflow step to another, or through
// url.href to t.fetch, means the same place).
func FuzzParseURL(f *testing.F) {
	for _, seed := range []struct{ input, base string }{
		{"https://example.com", ""},
		{"HTTPS://Example.COM:443/./a/../b/./", ""},
		{"https://user:p%40ss@e.com:8443/a/b?x=1&y=two#frag", ""},
		{"https://e.com/é x?q=é'#é", ""},
		{"https://bücher.example/", ""},
		{"http://[::1]:3000/x", ""},
		{"https:example.com", ""},
		{"mailto:a@b.c?subject=hi", ""},
		{"file:///etc/hosts", ""},
		{"../c?q", "https://example.com/a/b/"},
		{"//other.org/p", "https://e.com/a"},
		{"#f", "mailto:a@b.c"},
		{"x:/../..//a", ""},
		{"not a url", ""},
		{"", "https://e.com"},
	} {
		f.Add(seed.input, seed.base)
	}
	f.Fuzz(func(t *testing.T, input, base string) {
		var b *string
		if base != "" {
			b = &base
		}
		u, err := parseWebURL(input, b)
		if err != nil {
			return
		}
		if !utf8.ValidString(input) || (b != nil && !utf8.ValidString(base)) {
			// JavaScript strings reach the parser as valid UTF-8 (lone
			// surrogates become U+FFFD); nothing more to check.
			return
		}
		href := u.href()
		again, err := parseWebURL(href, nil)
		if err != nil {
			t.Fatalf("parseWebURL(%q, %q) gave href %q, which does not parse: %v", input, base, href, err)
		}
		if *again != *u {
			t.Fatalf("parseWebURL(%q, %q) = %+v (href %q), which parses again to %+v", input, base, *u, href, *again)
		}
	})
}
