package host

// MaxDurationMs is the longest duration the gateway accepts anywhere a
// workflow gives one (a task's or run's timeoutMs, ctx.sleep, a timer's
// durationMs, an approval's or wait's timeoutMs): 100 years. Longer ones,
// and untilMs further than that in the future, are refused with
// INVALID_DURATION. Go's time.Duration overflows at about 292 years, and
// nothing anyone means is longer than a century.
const MaxDurationMs int64 = 100 * 365 * 24 * 60 * 60 * 1000

// DefaultMaxOutputBytes is the default cap on one task output, run output,
// t.emit chunk or signal payload (SMITHERS_GATEWAY_MAX_OUTPUT_BYTES).
const DefaultMaxOutputBytes = 4 << 20

// MaxErrorOutputBytes bounds the process output kept in an error (a failed
// t.exec's stdout and stderr): the tail is kept, with a note saying how
// much was cut, so one failing command cannot fill the journal and every
// event that carries the error.
const MaxErrorOutputBytes = 64 << 10

// ValidDurationMs reports whether ms is a duration the gateway accepts:
// 0 <= ms <= MaxDurationMs.
func ValidDurationMs(ms int64) bool { return ms >= 0 && ms <= MaxDurationMs }
