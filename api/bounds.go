package api

import (
	"encoding/json"
	"unicode/utf16"
)

// JSON structure bounds of CONTRACT.md §1.8, checked on every request body
// and WebSocket frame.
const (
	maxJSONDepth     = 32
	maxArrayItems    = 256
	maxStringUnits   = 16384
	boundsErrorStart = "gateway frame"
)

// checkBounds walks a decoded JSON value (from a decoder with UseNumber).
// The root is level 1 and every child value, primitives included, adds one
// level; strings are measured in UTF-16 code units; object keys are not
// checked.
func checkBounds(v any) error {
	return walkBounds(v, 1)
}

func walkBounds(v any, depth int) error {
	if depth > maxJSONDepth {
		return errInvalidInput("%s exceeds the maximum JSON depth of %d.", boundsErrorStart, maxJSONDepth)
	}
	switch x := v.(type) {
	case string:
		if utf16Len(x) > maxStringUnits {
			return errInvalidInput("%s contains a string exceeding %d characters.", boundsErrorStart, maxStringUnits)
		}
	case []any:
		if len(x) > maxArrayItems {
			return errInvalidInput("%s contains an array exceeding %d items.", boundsErrorStart, maxArrayItems)
		}
		for _, e := range x {
			if err := walkBounds(e, depth+1); err != nil {
				return err
			}
		}
	case map[string]any:
		for _, e := range x {
			if err := walkBounds(e, depth+1); err != nil {
				return err
			}
		}
	case json.Number, bool, nil:
	}
	return nil
}

// utf16Len counts UTF-16 code units (JavaScript's string length). A string
// of at most maxStringUnits bytes cannot have more units than bytes, so its
// byte length is returned as a cheap upper bound.
func utf16Len(s string) int {
	if len(s) <= maxStringUnits {
		return len(s)
	}
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}
