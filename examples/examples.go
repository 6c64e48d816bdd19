// Package examples holds runnable workflow modules. Each one is exercised by
// a test; the quickstart is embedded in the binary for `smithers dev`.
package examples

import _ "embed"

// Quickstart is the source of quickstart/gateway.mjs.
//
//go:embed quickstart/gateway.mjs
var Quickstart string
