package pgtest

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestClusterServesStopsRestartsAndIsRemoved(t *testing.T) {
	ctx := context.Background()
	c, err := Start(ctx)
	if err != nil {
		Unavailable(t, err)
	}
	defer c.Close()
	url, err := c.CreateDatabase(ctx, "one")
	if err != nil {
		t.Fatal(err)
	}
	query := func() error {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS t (v int)"); err != nil {
			return err
		}
		_, err = conn.Exec(ctx, "INSERT INTO t VALUES (1)")
		return err
	}
	if err := query(); err != nil {
		t.Fatalf("query the new database: %v", err)
	}
	if err := c.StopServer(); err != nil {
		t.Fatal(err)
	}
	if err := query(); err == nil {
		t.Fatal("the stopped server answered")
	}
	if err := c.StartServer(ctx); err != nil {
		t.Fatal(err)
	}
	if err := query(); err != nil {
		t.Fatalf("query after restart: %v", err)
	}
	if err := c.DropDatabase(ctx, "one"); err != nil {
		t.Fatal(err)
	}
	if err := query(); err == nil {
		t.Fatal("the dropped database answered")
	}
	dir := c.SocketDir()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("cluster folder %s still there after Close: %v", dir, err)
	}
}

func TestDatabaseNamesAreUniqueAndShort(t *testing.T) {
	c := &Cluster{}
	a := c.dbName("TestStoreContract/RunRoundTrip/every_field_set")
	b := c.dbName("TestStoreContract/RunRoundTrip/every_field_set")
	long := c.dbName(string(make([]byte, 200)) + "Tail")
	if a == b {
		t.Errorf("two databases named %q", a)
	}
	if a != "t1_teststorecontract_runroundtrip_every_field_set" {
		t.Errorf("name = %q", a)
	}
	if len(long) > 63 {
		t.Errorf("name %q is longer than 63 bytes", long)
	}
}
