// Package api serves the Gateway v1 protocol over HTTP (Echo) and, later,
// WebSocket (gorilla/websocket): the route table of CONTRACT.md §1.1, the RPC
// method table, authentication and scopes (through api/auth), the one error
// table that maps codes to HTTP statuses, and the response shapes.
//
// api talks to the engine only through host's exported API. It is the only
// package of the module that imports Echo or gorilla/websocket (besides
// api/client, a Go client of the protocol).
//
// Concurrency: a Server is safe for concurrent use; each request is handled
// on its own goroutine.
package api
