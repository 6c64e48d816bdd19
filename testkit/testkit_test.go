package testkit

import (
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"
)

func TestBufferTakesConcurrentWritersAndDecodesRecords(t *testing.T) {
	var b Buffer
	log := slog.New(slog.NewJSONHandler(&b, nil))
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			log.Info("step", "n", i)
		}(i)
	}
	wg.Wait()
	fmt.Fprintln(&b, "not json")
	if got := len(b.Records("step")); got != 8 {
		t.Fatalf("%d step records, want 8", got)
	}
	if b.Count("not json") != 1 || len(b.JSONLines()) != 8 {
		t.Fatalf("count %d, json lines %d", b.Count("not json"), len(b.JSONLines()))
	}
}

func TestEventuallyWaitsForTheCondition(t *testing.T) {
	start := time.Now()
	Eventually(t, time.Second, "20 ms to pass", func() bool { return time.Since(start) > 20*time.Millisecond })
	if time.Since(start) < 20*time.Millisecond {
		t.Fatal("returned before the condition held")
	}
}
