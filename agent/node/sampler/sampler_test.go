package sampler

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/sim"
	"github.com/foresight-nomad/foresight/sim/simtest"
	"github.com/foresight-nomad/foresight/telemetry"
)

func startSim(t *testing.T) (*sim.Cluster, *api.Client) {
	t.Helper()
	s := simtest.Start(t, "../../../sim/testdata/small.hcl")
	return s.Cluster, s.Client
}

// nodeWithAlloc finds a node that runs an allocation of the test job.
func nodeWithAlloc(t *testing.T, client *api.Client) (nodeID string, alloc *api.AllocationListStub) {
	t.Helper()
	allocs, _, err := client.Jobs().Allocations("app", false, nil)
	if err != nil || len(allocs) == 0 {
		t.Fatalf("no allocations: %v", err)
	}
	return allocs[0].NodeID, allocs[0]
}

type collector struct {
	mu      sync.Mutex
	batches [][]telemetry.Sample
	got     chan struct{}
}

func (c *collector) sink(s []telemetry.Sample, _ []telemetry.Note) error {
	c.mu.Lock()
	c.batches = append(c.batches, s)
	c.mu.Unlock()
	select {
	case c.got <- struct{}{}:
	default:
	}
	return nil
}

func TestSamplesFollowAllocationsAndMeasuredMetrics(t *testing.T) {
	c, client := startSim(t)
	c.Advance(time.Minute) // allocations are running
	nodeID, alloc := nodeWithAlloc(t, client)
	col := &collector{got: make(chan struct{}, 1)}
	s, err := New(Config{Nomad: client, NodeID: nodeID, Interval: 10 * time.Second, Clock: c.Clock(), Extra: SimExtra{Nomad: client, NodeID: nodeID}, Sink: col.sink})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.watch(ctx) }()
	<-s.synced

	samples, _ := s.SampleOnce(ctx)
	seen := map[string]float64{}
	for _, sm := range samples {
		if sm.Alloc != alloc.ID {
			t.Fatalf("sample of %s, which does not run on node %s", sm.Alloc, nodeID)
		}
		if sm.Group != "default/app/app" || sm.Task != "main" || !sm.Time.Equal(c.Now()) {
			t.Fatalf("sample identity: %+v", sm)
		}
		seen[sm.Metric] = sm.Value
	}
	for _, m := range []string{telemetry.CPUMHz, telemetry.MemRSSBytes, telemetry.MemUsageBytes, "psi_cpu_some", "io_read_bps", "net_rx_bps", telemetry.CPUThrottledRatio} {
		if _, ok := seen[m]; !ok {
			t.Errorf("metric %s missing from %v", m, seen)
		}
	}
	if seen[telemetry.CPUMHz] <= 0 {
		t.Errorf("cpu_mhz %v for a task with demand", seen[telemetry.CPUMHz])
	}

	// The allocation stops: the watcher drops it without polling, and the
	// next sample leaves it out.
	if _, err := client.Allocations().Stop(&api.Allocation{ID: alloc.ID}, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second) // a hang guard, not a timing assertion
	for len(s.Running()) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, task := range s.Running() {
		if task.AllocID == alloc.ID {
			t.Fatal("stopped allocation still sampled")
		}
	}
}

func TestNoExtraSourceMeansNoExtraMetrics(t *testing.T) {
	c, client := startSim(t)
	c.Advance(time.Minute)
	nodeID, _ := nodeWithAlloc(t, client)
	s, err := New(Config{Nomad: client, NodeID: nodeID, Interval: time.Second, Sink: func([]telemetry.Sample, []telemetry.Note) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.watch(ctx) }()
	<-s.synced
	samples, _ := s.SampleOnce(ctx)
	for _, sm := range samples {
		switch sm.Metric {
		case telemetry.CPUMHz, telemetry.MemRSSBytes, telemetry.MemUsageBytes:
		default:
			t.Fatalf("metric %s reported without a source that measures it", sm.Metric)
		}
	}
}

func TestConfigIsChecked(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("empty config accepted")
	}
}
