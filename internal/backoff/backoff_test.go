package backoff

import (
	"context"
	"testing"
	"time"

	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/internal/wait"
)

func TestWaitsAreJitteredDoublingAndCapped(t *testing.T) {
	for _, c := range []struct {
		failures int
		want     time.Duration // the upper end; waits lie in [want/2, want]
	}{
		{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {5, 16 * time.Second},
		{6, 30 * time.Second}, {7, 30 * time.Second}, {1000, 30 * time.Second},
	} {
		seen := map[time.Duration]bool{}
		for range 50 {
			b := Backoff{Min: time.Second, Max: 30 * time.Second}
			var d time.Duration
			for range c.failures {
				d = b.Next()
			}
			if d < c.want/2 || d > c.want {
				t.Fatalf("failure %d: wait %v outside [%v, %v]", c.failures, d, c.want/2, c.want)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Fatalf("failure %d: waits not jittered: %v", c.failures, seen)
		}
	}
}

func TestResetStartsOver(t *testing.T) {
	b := Backoff{Min: time.Second, Max: time.Minute}
	for range 10 {
		b.Next()
	}
	if b.Failures() != 10 {
		t.Fatalf("%d failures recorded, want 10", b.Failures())
	}
	b.Reset()
	if d := b.Next(); d > time.Second || b.Failures() != 1 {
		t.Fatalf("after Reset: wait %v and %d failures, want at most 1s and 1", d, b.Failures())
	}
}

func TestWaitFollowsTheClockAndTheContext(t *testing.T) {
	clk := clock.NewVirtual(time.Unix(0, 0))
	b := Backoff{Min: time.Second, Max: time.Second}
	done := make(chan bool)
	go func() { done <- b.Wait(context.Background(), clk) }()
	wait.Until(t, time.Minute, "Wait to set its timer", func() bool { return clk.Pending() == 1 })
	clk.Advance(time.Second)
	if !<-done {
		t.Fatal("Wait gave up although its context is live")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if b.Wait(ctx, clk) {
		t.Fatal("Wait reported success after its context ended")
	}
}
