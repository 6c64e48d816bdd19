package runs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/smithers-orchestrator/smithers-go/api/client"
)

// timestamp formats Unix ms as local date and time; "-" for 0.
func (c *CLI) timestamp(ms int64) string {
	if ms <= 0 {
		return "-"
	}
	return time.UnixMilli(ms).In(c.loc()).Format("2006-01-02 15:04:05")
}

// clock formats a time of day with milliseconds.
func (c *CLI) clock(t time.Time) string { return t.In(c.loc()).Format("15:04:05.000") }

// span is how long something took from start to end ms; an unfinished one
// is measured up to now.
func (c *CLI) span(startMs, endMs int64) string {
	if startMs <= 0 {
		return "-"
	}
	if endMs <= 0 {
		endMs = c.now().UnixMilli()
	}
	return duration(time.Duration(max(endMs-startMs, 0)) * time.Millisecond)
}

// duration rounds d to what a person reads: ms below a second, then
// tenths of seconds, then seconds.
func duration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

// errorSummary renders a stored error as "CODE: message" on one line, cut
// to width runes; "" when there is none.
func errorSummary(raw []byte, width int) string {
	e, ok := client.ParseErrorInfo(raw)
	if !ok {
		if len(raw) == 0 || string(raw) == "null" {
			return ""
		}
		return cut(string(raw), width)
	}
	s := e.Message
	switch {
	case e.Code != "" && s != "":
		s = e.Code + ": " + s
	case e.Code != "":
		s = e.Code
	case e.Name != "" && e.Name != "Error":
		s = e.Name + ": " + s
	}
	return cut(s, width)
}

// cut puts s on one line (newlines shown as ⏎) of at most width runes,
// ending in … when it was longer.
func cut(s string, width int) string {
	s = strings.TrimRight(s, "\n")
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "⏎")
	s = strings.ReplaceAll(s, "\t", " ")
	if width > 0 && utf8.RuneCountInString(s) > width {
		r := []rune(s)
		return string(r[:width-1]) + "…"
	}
	return s
}

// compact renders raw JSON on one line, cut to width.
func compact(raw json.RawMessage, width int) string {
	if len(raw) == 0 {
		return ""
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return cut(string(raw), width)
	}
	return cut(b.String(), width)
}

// indented renders raw JSON indented, "null" when empty.
func indented(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "null"
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return string(raw)
	}
	return b.String()
}

// table lays rows of tab-separated cells out in aligned columns, without
// the trailing blanks tabwriter leaves after an empty last cell.
type table struct {
	out io.Writer
	buf bytes.Buffer
	tw  *tabwriter.Writer
}

func newTable(out io.Writer) *table {
	t := &table{out: out}
	t.tw = tabwriter.NewWriter(&t.buf, 0, 4, 2, ' ', 0)
	return t
}

// row adds a row of cells.
func (t *table) row(cells ...string) {
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

// flush writes the table.
func (t *table) flush() error {
	if err := t.tw.Flush(); err != nil {
		return err
	}
	lines := strings.SplitAfter(t.buf.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(strings.TrimSuffix(l, "\n"), " ")
		if strings.HasSuffix(l, "\n") {
			lines[i] += "\n"
		}
	}
	_, err := io.WriteString(t.out, strings.Join(lines, ""))
	return err
}
