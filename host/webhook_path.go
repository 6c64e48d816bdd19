package host

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// WebhookPathValue looks a dotted path ("a.b.0.c") up in a decoded webhook
// body: each segment is an object key, or an array index when the value
// there is an array. The empty path is the whole body. ok is false when a
// segment is missing (or indexes a scalar).
func WebhookPathValue(body any, path string) (v any, ok bool) {
	if path == "" {
		return body, true
	}
	v = body
	for seg := range strings.SplitSeq(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			if v, ok = x[seg]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(seg)
			// Only the canonical decimal form indexes, as in JavaScript
			// ("01" and "+1" are not indexes).
			if err != nil || i < 0 || i >= len(x) || strconv.Itoa(i) != seg {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// webhookString is a body value used as a run id or correlation id:
// strings as they are, numbers and booleans as JavaScript's String() writes
// them, all trimmed; ok is false for other values and blank strings.
func webhookString(v any) (string, bool) {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case json.Number:
		s = jsNumberString(x)
	case float64:
		s = jsNumberString(json.Number(strconv.FormatFloat(x, 'g', -1, 64)))
	case bool:
		s = strconv.FormatBool(x)
	default:
		return "", false
	}
	s = strings.TrimSpace(s)
	return s, s != ""
}

// jsNumberString writes a JSON number as JavaScript's String(n) does:
// 1.0 is "1", 1e3 is "1000", 1e21 is "1e+21", 1e-7 is "1e-7".
func jsNumberString(n json.Number) string {
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		if math.IsInf(f, 1) {
			return "Infinity"
		}
		if math.IsInf(f, -1) {
			return "-Infinity"
		}
		return string(n)
	}
	if f == 0 {
		return "0" // also -0
	}
	if abs := math.Abs(f); abs >= 1e21 || abs < 1e-6 {
		s := strconv.FormatFloat(f, 'e', -1, 64) // 1e+21, 1e-07
		mant, exp, _ := strings.Cut(s, "e")
		sign := exp[0]
		exp = strings.TrimLeft(exp[1:], "0")
		return mant + "e" + string(sign) + exp
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}
