package host

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
