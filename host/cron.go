package host

import (
	"time"

	"github.com/robfig/cron/v3"
)

// cronParser accepts standard 5-field patterns, an optional leading seconds
// field, month and weekday names, and descriptors such as @daily.
func cronParser() cron.Parser {
	return cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
}

// ValidateCronPattern checks a cron pattern; the error is INVALID_INPUT with
// the parser's message.
func ValidateCronPattern(pattern string) error {
	if _, err := cronParser().Parse(pattern); err != nil {
		return Errorf(CodeInvalidInput, "Invalid cron pattern %q: %v", pattern, err)
	}
	return nil
}

// NextCronTime is the first time after from that pattern fires, in from's
// location.
func NextCronTime(pattern string, from time.Time) (time.Time, error) {
	s, err := cronParser().Parse(pattern)
	if err != nil {
		return time.Time{}, Errorf(CodeInvalidInput, "Invalid cron pattern %q: %v", pattern, err)
	}
	return s.Next(from), nil
}
