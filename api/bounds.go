package api

import (
	"encoding/json"
	"unicode/utf16"
)

// JSON structure bounds of docs/rpc.md, checked on every request body
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
		return errDepth()
	}
	switch x := v.(type) {
	case string:
		// n bytes of UTF-8 never make more than n UTF-16 units.
		if len(x) > maxStringUnits && utf16Len(x) > maxStringUnits {
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

// errDepth is the depth violation of §1.8, also answered when the JSON
// decoder itself gives up on a deeper body.
func errDepth() error {
	return errInvalidInput("%s exceeds the maximum JSON depth of %d.", boundsErrorStart, maxJSONDepth)
}

// utf16Len counts UTF-16 code units (JavaScript's string length).
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}
