// Package api serves the Gateway v1 protocol over HTTP (Echo) and WebSocket
// (gorilla/websocket): the route table of docs/rpc.md, the RPC method
// table, authentication and scopes (through api/auth), the one error table
// that maps codes to HTTP statuses, and the response shapes.
//
// api talks to the engine only through host's exported API: writes and
// run lifecycle through host.Gateway, queries and event replay through a
// RunReader (Config.Reads, the store). It is the only package of the module
// that imports Echo or gorilla/websocket (besides api/client, a Go client
// of the protocol).
//
// Concurrency: a Server is safe for concurrent use; each request is handled
// on its own goroutine, each WebSocket by a reader and a writer goroutine.
// The locks of a socket (wsConn.mu), of the connection slots (wsSlots.mu)
// and of the server's socket set (Server.connsMu) are never held together.
package api
