package cgroup_test

import (
	"fmt"
	"time"

	"github.com/foresight-nomad/foresight/agent/node/cgroup"
)

// The agent's sampling of one task: locate its cgroup once, then read it
// every interval and turn the readings into rates. The fixture's counters do
// not move between the two reads, so the rates are real zeros, except the
// throttled ratio: with no CPU period elapsed it is undefined, and absent.
func Example() {
	loc, err := cgroup.NewLocator("testdata/v2-nomad17", "")
	if err != nil {
		panic(err)
	}
	task, err := loc.Locate("8f3c1e2a-5b6d-4c7e-9a1b-2c3d4e5f6a7b", "web")
	if err != nil {
		panic(err)
	}
	reader := cgroup.NewReader(nil) // pass cgroup.StackedDevices("/sys") in production
	var rater cgroup.Rater
	var reading cgroup.Reading
	start := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)

	for i := range 2 {
		if err := reader.Read(&task, &reading); err != nil {
			panic(err)
		}
		rates := rater.Update(start.Add(time.Duration(i)*10*time.Second), &reading)
		metrics := reading.Metrics(nil)
		metrics = rates.Metrics(metrics)
		fmt.Printf("sample %d:", i)
		for _, m := range metrics {
			fmt.Printf(" %s=%g", m.Name, m.Value)
		}
		fmt.Println()
	}
	// Output:
	// sample 0: mem_usage_bytes=1.34217728e+08 mem_rss_bytes=1.00663296e+08
	// sample 1: mem_usage_bytes=1.34217728e+08 mem_rss_bytes=1.00663296e+08 io_read_bps=0 io_write_bps=0 psi_cpu_some=0 psi_mem_some=0 psi_io_some=0
}
