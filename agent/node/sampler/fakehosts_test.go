package sampler

import (
	"context"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/telemetry"
)

// fakeHost is one hand-written host in testdata/hosts (see its README):
// its tasks, the PIDs with a network namespace of their own, and what
// HostExtra must read of each task after t1 (rates over the 10 s from t0).
type fakeHost struct {
	name  string
	ownNS map[int]string
	tasks []fakeTask
}

type fakeTask struct {
	task   Task
	want   map[string]Reading
	absent map[string]string
}

var fakeHosts = []fakeHost{{
	name:  "docker-systemd-v2",
	ownNS: map[int]string{4100: "net:[4026532900]", 4130: "net:[4026532900]"},
	tasks: []fakeTask{{
		task: Task{AllocID: "3c9e2a71-0b4d-4f6e-8a1c-5d7f9b2e4a60", Group: "default/api/api", Name: "server"},
		want: map[string]Reading{
			telemetry.IOReadBPS:         {0, telemetry.SourceCgroup},
			telemetry.IOWriteBPS:        {10485760.0 / 10, telemetry.SourceCgroup},
			telemetry.CPUThrottledRatio: {0.25, telemetry.SourceCgroup},
			telemetry.PSICPUSome:        {5, telemetry.SourceCgroup},
			telemetry.PSIMemSome:        {0, telemetry.SourceCgroup},
			telemetry.PSIIOSome:         {1, telemetry.SourceCgroup},
			telemetry.NetRxBPS:          {100000, telemetry.SourceNetns},
			telemetry.NetTxBPS:          {200000, telemetry.SourceNetns},
		},
	}},
}, {
	name: "docker-systemd-v1",
	tasks: []fakeTask{{
		task: Task{AllocID: "7d1f3e5a-2c4b-4a6d-9e8f-1b3c5d7e9f20", Group: "default/batch/etl", Name: "load"},
		want: map[string]Reading{
			telemetry.IOReadBPS:         {31457280.0 / 10, telemetry.SourceCgroup},
			telemetry.IOWriteBPS:        {4194304.0 / 10, telemetry.SourceCgroup},
			telemetry.CPUThrottledRatio: {0.4, telemetry.SourceCgroup},
		},
		absent: map[string]string{
			telemetry.PSICPUSome: telemetry.AbsentPressureV1, telemetry.PSIMemSome: telemetry.AbsentPressureV1, telemetry.PSIIOSome: telemetry.AbsentPressureV1,
			telemetry.NetRxBPS: telemetry.AbsentHostNetwork, telemetry.NetTxBPS: telemetry.AbsentHostNetwork,
		},
	}},
}, {
	name:  "podman-v2",
	ownNS: map[int]string{7300: "net:[4026533000]"},
	tasks: []fakeTask{{
		task: Task{AllocID: "b2d4f6a8-1c3e-4a5b-8d7f-0e2c4a6b8d10", Group: "default/cache/cache", Name: "redis"},
		want: map[string]Reading{
			telemetry.IOReadBPS:         {0, telemetry.SourceCgroup},
			telemetry.IOWriteBPS:        {819.2, telemetry.SourceCgroup},
			telemetry.CPUThrottledRatio: {0, telemetry.SourceCgroup},
			telemetry.PSICPUSome:        {0.01, telemetry.SourceCgroup},
			telemetry.PSIMemSome:        {0, telemetry.SourceCgroup},
			telemetry.PSIIOSome:         {0.002, telemetry.SourceCgroup},
			telemetry.NetRxBPS:          {4000, telemetry.SourceNetns},
			telemetry.NetTxBPS:          {9000, telemetry.SourceNetns},
		},
	}},
}, {
	name:  "nomad-1.7-v2",
	ownNS: map[int]string{8200: "net:[4026533100]", 8240: "net:[4026533100]"},
	tasks: []fakeTask{{
		task: Task{AllocID: "c1a2b3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", Group: "default/web/web", Name: "web"},
		want: map[string]Reading{
			telemetry.IOReadBPS:         {0, telemetry.SourceCgroup},
			telemetry.IOWriteBPS:        {819.2, telemetry.SourceCgroup},
			telemetry.CPUThrottledRatio: {0, telemetry.SourceCgroup},
			telemetry.PSICPUSome:        {0.0005, telemetry.SourceCgroup},
			telemetry.PSIMemSome:        {0, telemetry.SourceCgroup},
			telemetry.PSIIOSome:         {0, telemetry.SourceCgroup},
		},
		absent: map[string]string{telemetry.NetRxBPS: telemetry.AbsentHostNetwork, telemetry.NetTxBPS: telemetry.AbsentHostNetwork},
	}, {
		task: Task{AllocID: "d2b3c4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e", Group: "default/db/db", Name: "db"},
		want: map[string]Reading{
			telemetry.IOReadBPS:         {104857.6, telemetry.SourceCgroup},
			telemetry.IOWriteBPS:        {2097152, telemetry.SourceCgroup},
			telemetry.CPUThrottledRatio: {0, telemetry.SourceCgroup},
			telemetry.PSICPUSome:        {0, telemetry.SourceCgroup},
			telemetry.PSIMemSome:        {0, telemetry.SourceCgroup},
			telemetry.PSIIOSome:         {3, telemetry.SourceCgroup},
			telemetry.NetRxBPS:          {70000, telemetry.SourceNetns},
			telemetry.NetTxBPS:          {90000, telemetry.SourceNetns},
		},
	}},
}}

// TestFakeHostLayouts reads every hand-written host's tasks through the same
// HostExtra as a real host: each layout's cgroups are found from the tasks'
// processes (or Nomad's own path), and each metric comes from where the
// layout keeps it, with nothing the tree cannot support.
func TestFakeHostLayouts(t *testing.T) {
	for _, fh := range fakeHosts {
		t.Run(fh.name, func(t *testing.T) {
			dir := filepath.Join("testdata", "hosts", fh.name)
			root := t.TempDir()
			procRoot, cgroupRoot := layHost(t, filepath.Join(dir, "t0"), root, fh.ownNS)
			t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
			clk := clock.NewVirtual(t0)
			x, err := NewHostExtra(HostPaths{CgroupRoot: cgroupRoot, ProcRoot: procRoot, SysRoot: t.TempDir()}, nil, clk, hclog.NewNullLogger())
			if err != nil {
				t.Fatal(err)
			}
			var tasks []Task
			for _, ft := range fh.tasks {
				tasks = append(tasks, ft.task)
			}
			if _, err := x.Sample(context.Background(), tasks); err != nil {
				t.Fatal(err)
			}
			layHost(t, filepath.Join(dir, "t1"), root, fh.ownNS)
			clk.Advance(10 * time.Second)
			got, err := x.Sample(context.Background(), tasks)
			if err != nil {
				t.Fatal(err)
			}
			for _, ft := range fh.tasks {
				te := got[ft.task]
				for name, w := range ft.want {
					r, ok := te.Metrics[name]
					if !ok || math.Abs(r.Value-w.Value) > 1e-9*max(1, w.Value) || r.Source != w.Source {
						t.Errorf("%s %s = %v from %q (present %v), want %v from %q", ft.task.Name, name, r.Value, r.Source, ok, w.Value, w.Source)
					}
				}
				for name, r := range te.Metrics {
					if _, ok := ft.want[name]; !ok {
						t.Errorf("%s %s = %v from %q: the tree cannot support it", ft.task.Name, name, r.Value, r.Source)
					}
				}
				for name, reason := range ft.absent {
					if te.Absent[name] != reason {
						t.Errorf("%s %s absent because %q, want %q", ft.task.Name, name, te.Absent[name], reason)
					}
				}
				for name, reason := range te.Absent {
					if _, ok := ft.absent[name]; !ok {
						t.Errorf("%s %s noted absent (%q), yet the tree has it", ft.task.Name, name, reason)
					}
				}
			}
		})
	}
}
