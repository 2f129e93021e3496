package sampler

import (
	"context"
	"testing"
	"time"

	"github.com/foresight-nomad/foresight/telemetry"
	"github.com/hashicorp/nomad/api"
)

func TestSimClockFollowsSimsVirtualTime(t *testing.T) {
	cluster, client := startSim(t)
	ctx := context.Background()
	clk, err := NewSimClock(ctx, client, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !clk.Now().Equal(cluster.Now()) {
		t.Fatalf("clock reads %v, sim %v", clk.Now(), cluster.Now())
	}

	timer := clk.After(10 * time.Minute)
	cluster.Advance(9 * time.Minute)
	if err := clk.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-timer:
		t.Fatal("timer fired after 9 of its 10 virtual minutes")
	default:
	}
	if !clk.Now().Equal(cluster.Now()) {
		t.Fatalf("after a sync the clock reads %v, sim %v", clk.Now(), cluster.Now())
	}

	due := clk.Now().Add(time.Minute)
	cluster.Advance(time.Hour) // sim races ahead of the wall clock
	if err := clk.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-timer:
		if !at.Equal(due) {
			t.Fatalf("timer saw %v, want its deadline %v", at, due)
		}
	default:
		t.Fatal("timer did not fire once sim's time passed it")
	}
	if !clk.Now().Equal(cluster.Now()) {
		t.Fatalf("clock reads %v, sim %v", clk.Now(), cluster.Now())
	}
}

func TestSimClockNeedsASim(t *testing.T) {
	// A Nomad address that is not a sim (nothing listens here) is refused
	// with an error, not a clock stuck at the zero time.
	client, err := api.NewClient(&api.Config{Address: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewSimClock(context.Background(), client, nil); err == nil {
		t.Fatal("a clock without a sim behind it")
	}
}

func TestSamplerStampsSamplesInSimTime(t *testing.T) {
	cluster, client := startSim(t)
	ctx := context.Background()
	clk, err := NewSimClock(ctx, client, nil)
	if err != nil {
		t.Fatal(err)
	}
	cluster.Advance(time.Minute) // allocations are running
	node, _ := nodeWithAlloc(t, client)
	s, err := New(Config{Nomad: client, NodeID: node, Interval: time.Minute, Clock: clk, Extra: SimExtra{Nomad: client, NodeID: node},
		Sink: func([]telemetry.Sample, []telemetry.Note) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	allocs, _, err := client.Nodes().Allocations(node, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.setAllocs(allocs)
	cluster.Advance(3 * time.Hour)
	if err := clk.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	samples, _ := s.SampleOnce(ctx)
	if len(samples) == 0 {
		t.Fatal("no samples")
	}
	for _, sm := range samples {
		if !sm.Time.Equal(cluster.Now()) {
			t.Fatalf("sample stamped %v, sim's time is %v", sm.Time, cluster.Now())
		}
	}
}
