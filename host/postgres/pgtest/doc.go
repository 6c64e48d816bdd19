// Package pgtest runs throwaway PostgreSQL servers for tests: a cluster is
// created with initdb in a temporary folder, served by a postgres child
// process on a free TCP port of 127.0.0.1 (and a unix socket in the folder),
// and removed with its folder when the test binary is done with it. Tests of
// any package (host/postgres, e2e) use it through Shared, one cluster per
// test binary, and NewDatabase, one database per test.
//
// It uses Debian's binaries (/usr/lib/postgresql/*/bin, else initdb and
// postgres on PATH). initdb refuses to run as root, so as root the server
// runs as the unprivileged postgres user that Debian's package creates. Without
// the binaries a test is skipped with one line saying what to install,
// except with CI=true, where it fails: CI installs PostgreSQL, so a missing
// one there is a broken CI, not a smaller machine.
//
// The server runs without fsync (a test cluster need not survive a power
// loss, but every commit survives the server's crash, as StopServer
// simulates) and is killed, with its backends, when the test process dies
// however it dies (the child is started with a parent-death signal);
// folders left by a killed test binary are removed by the next Start.
package pgtest
