// Package scaffold writes the starter project of `smithers init`: a workflow
// module (gateway.mjs, or gateway.ts), the TypeScript declarations of the
// smithers-orchestrator module under types/, and the editor configuration
// (jsconfig.json, or tsconfig.json) that makes VS Code and tsc use them.
//
// It never overwrites a file that differs from what it would write unless
// told to (Options.Force), and checks every file before writing any, so a
// refused init leaves the directory as it was. It holds no state; Write may
// be called concurrently for different directories.
//
// It imports only the types package, for the declarations.
package scaffold
