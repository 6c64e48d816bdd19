package auth

import (
	"net/http"
	"strings"
)

// BearerToken extracts the bearer credential of an HTTP request (docs/rpc.md
// §1.6): the x-smithers-key header wins; otherwise, when the first seven
// characters of Authorization are "bearer " in any letter case, the rest of
// it, untrimmed; otherwise the whole Authorization value. It returns "" when
// neither header carries a value.
func BearerToken(h http.Header) string {
	if key := h.Get("x-smithers-key"); key != "" {
		return key
	}
	value := h.Get("Authorization")
	if len(value) >= 7 && strings.EqualFold(value[:7], "bearer ") {
		return value[7:]
	}
	return value
}
