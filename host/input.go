package host

import (
	"sort"
	"strings"
)

// Run input limits, the same for every way a run starts (launchRun, a
// webhook): the serialised size, and the container depth (a root object is
// depth 1).
const (
	MaxInputBytes = 1 << 20
	MaxInputDepth = 32
)

// CheckInputBounds applies the run input limits to an input v (decoded
// JSON) whose encoding is raw; INVALID_INPUT when it is over either.
func CheckInputBounds(v any, raw string) error {
	if len(raw) > MaxInputBytes {
		return Errorf(CodeInvalidInput, "Gateway RPC input exceeds %d bytes.", MaxInputBytes)
	}
	if containerDepth(v) > MaxInputDepth {
		return Errorf(CodeInvalidInput, "Gateway RPC input exceeds the maximum nesting depth of %d.", MaxInputDepth)
	}
	return nil
}

// containerDepth counts nested objects and arrays; a scalar is 0.
func containerDepth(v any) int {
	d := 0
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			d = max(d, containerDepth(e))
		}
		return d + 1
	case []any:
		for _, e := range x {
			d = max(d, containerDepth(e))
		}
		return d + 1
	}
	return 0
}

// CheckText refuses a NUL character in a text the gateway stores as such (a
// signal name, a correlation id, a note, a key): PostgreSQL's text cannot
// hold one, and no client means one. INVALID_INPUT names the field.
func CheckText(field, s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return Errorf(CodeInvalidInput, "%s must not contain a NUL character.", field)
	}
	return nil
}

// checkTexts applies CheckText to each field, in name order.
func checkTexts(fields map[string]string) error {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := CheckText(n, fields[n]); err != nil {
			return err
		}
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
