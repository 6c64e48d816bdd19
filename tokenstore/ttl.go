package tokenstore

import (
	"math"
	"math/big"
	"strings"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// maxTTLMs is the longest TTL, in milliseconds, that a time.Duration holds.
const maxTTLMs = math.MaxInt64 / int64(time.Millisecond)

// ParseTTL parses a token lifetime (the CLI's --ttl), as upstream does:
// trimmed, case-insensitive ^\d+(\.\d+)?(ms|s|m|h|d)?$ with milliseconds as
// the default unit, floored to whole milliseconds, which must be more than
// zero. Any other input is a *host.Error with code CodeInvalidDuration and
// message "Invalid ttl: <s>".
func ParseTTL(s string) (time.Duration, error) {
	ms, ok := parseTTLMs(s)
	if !ok {
		return 0, &host.Error{Code: CodeInvalidDuration, Message: "Invalid ttl: " + s}
	}
	return time.Duration(ms) * time.Millisecond, nil
}

func parseTTLMs(s string) (int64, bool) {
	t := asciiLower(strings.TrimFunc(s, isJSSpace))
	if len(t) > 64 {
		return 0, false
	}
	i := 0
	for i < len(t) && isDigit(t[i]) {
		i++
	}
	if i == 0 {
		return 0, false
	}
	digits, frac := t[:i], ""
	if i < len(t) && t[i] == '.' {
		j := i + 1
		for j < len(t) && isDigit(t[j]) {
			j++
		}
		if j == i+1 {
			return 0, false
		}
		frac, i = t[i+1:j], j
	}
	var unit int64
	switch t[i:] {
	case "", "ms":
		unit = 1
	case "s":
		unit = 1000
	case "m":
		unit = 60 * 1000
	case "h":
		unit = 60 * 60 * 1000
	case "d":
		unit = 24 * 60 * 60 * 1000
	default:
		return 0, false
	}
	// ms = floor(digits.frac * unit), computed exactly.
	num, _ := new(big.Int).SetString(digits+frac, 10)
	num.Mul(num, big.NewInt(unit))
	num.Quo(num, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac))), nil))
	if num.Sign() <= 0 || !num.IsInt64() || num.Int64() > maxTTLMs {
		return 0, false
	}
	return num.Int64(), true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// asciiLower lower-cases ASCII letters only, as a non-Unicode JavaScript
// /i regular expression compares them.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
