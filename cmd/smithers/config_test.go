package main

import (
	"io"
	"strings"
	"testing"
)

func TestDatabaseURLAndDBPathAreExclusive(t *testing.T) {
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	_, err := parseConfig("gateway", nil, env(map[string]string{
		"SMITHERS_DATABASE_URL": "postgres://gw@db/smithers", "SMITHERS_DB_PATH": "/data/smithers.db"}), io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "SMITHERS_DATABASE_URL") || !strings.Contains(err.Error(), "SMITHERS_DB_PATH") {
		t.Fatalf("both databases set: %v, want an error naming both variables", err)
	}
	_, err = parseConfig("gateway", []string{"--db-path", "/x.db"}, env(map[string]string{"SMITHERS_DATABASE_URL": "postgres://gw@db/smithers"}), io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "--db-path") {
		t.Fatalf("--db-path with a database URL: %v", err)
	}
	c, err := parseConfig("gateway", nil, env(map[string]string{"SMITHERS_DATABASE_URL": "postgres://gw@db/smithers"}), io.Discard, nil)
	if err != nil || c.DatabaseURL == "" || c.LeaseMs != 15000 {
		t.Fatalf("a database URL alone: %+v, %v", c, err)
	}
	if _, err := parseConfig("gateway", nil, env(map[string]string{"SMITHERS_DATABASE_URL": "mysql://x"}), io.Discard, nil); err == nil {
		t.Fatal("a URL that is not postgres:// was accepted")
	}
}

func TestRedactURLHidesThePassword(t *testing.T) {
	if got := redactURL("postgres://gw:s3cret@db:5432/smithers?sslmode=require"); strings.Contains(got, "s3cret") {
		t.Fatalf("redactURL kept the password: %s", got)
	}
}
