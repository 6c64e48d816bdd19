// Package storetest is the conformance suite of host.Store: one set of
// tests that every implementation runs unchanged (host/sqlite and
// host/postgres call Run from their TestStoreContract), so that the stores
// cannot drift apart. It asserts only what host.Store and host.Tx promise,
// nothing of one implementation: no SQL, no files, no exact stateVersion
// values (only that they increase).
//
// storetest imports host and the standard library only.
package storetest
