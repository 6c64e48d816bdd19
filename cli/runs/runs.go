package runs

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/smithers-orchestrator/smithers-go/api/client"
)

// CLI runs the commands against one gateway.
type CLI struct {
	Client *client.Client
	// Out receives the results; Err receives notes about the connection.
	Out, Err io.Writer
	// JSON prints the gateway's payloads as JSON instead of tables.
	JSON bool
	// Now and Location are the clock and time zone of printed times
	// (default time.Now and time.Local).
	Now      func() time.Time
	Location *time.Location
}

func (c *CLI) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *CLI) loc() *time.Location {
	if c.Location != nil {
		return c.Location
	}
	return time.Local
}

// call invokes method and returns its payload as raw JSON.
func (c *CLI) call(ctx context.Context, method string, params any) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := c.Client.Call(ctx, method, params, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// printJSON writes v as indented JSON.
func (c *CLI) printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.Out, "%s\n", b)
	return err
}
