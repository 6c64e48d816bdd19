// Package runs is `smithers runs`: it lists, shows and follows the runs of
// a gateway and acts on them (launch, approve, deny, signal, cancel,
// resume) over the v1 protocol, through api/client. Results go to one
// writer as human tables, or as JSON with CLI.JSON; notes about the
// connection (a stream resumed after a dropped socket) go to another.
//
// It works against any v1 gateway. From this gateway it also reads the
// attempt rows (attempts.list) and the events a run keeps (a replayed
// run-event stream) to show a run's nodes and attempts.
//
// It holds no state beyond a CLI value; a CLI is used by one goroutine.
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
