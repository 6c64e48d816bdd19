// Package types ships the TypeScript declarations of the workflow module
// API: the "smithers-orchestrator" module (gateway.register, ctx, t,
// SmithersError and their options) and the globals of the gateway's
// JavaScript runtime, in smithers-orchestrator.d.ts. `smithers init` writes
// them next to a starter module so that editors complete and type-check
// workflow code; a test (e2e) type-checks the examples and the starters
// against them with tsc.
//
// The declarations are written from jsruntime's bindings and must follow
// them: a new ctx or t member, option or error code is added here too.
// It imports nothing and holds no state.
package types
