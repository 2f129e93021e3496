package sampler

import (
	"context"
	"encoding/json"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/internal/shared"
	"github.com/foresight-nomad/foresight/telemetry"
)

// recordedHost is the real Nomad 1.6.5 client on cgroup v1 (hybrid) in
// ../shared/fixtures/hosts: an exec, two raw_exec and a docker task.
type recordedHost struct {
	dir    string
	t0, t1 time.Time
	tasks  map[string]Task // by driver; "raw_exec" and "raw_exec2"
	// coreMHz is the host's MHz per core as Nomad counted CPU there:
	// TotalTicks over Percent in its own allocation stats.
	coreMHz float64
}

func loadRecordedHost(t *testing.T) recordedHost {
	dir := shared.Path(t, "fixtures", "hosts", "nomad-1.6.5-cgroupv1")
	var index struct {
		T0    float64 `json:"t0_unix"`
		T1    float64 `json:"t1_unix"`
		Tasks []struct {
			Job, Group, Task, Driver string
			AllocID                  string `json:"alloc_id"`
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "tasks.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &index); err != nil {
		t.Fatal(err)
	}
	h := recordedHost{dir: dir, tasks: map[string]Task{},
		t0: time.UnixMilli(int64(index.T0 * 1000)).UTC(), t1: time.UnixMilli(int64(index.T1 * 1000)).UTC()}
	for _, tk := range index.Tasks {
		key := tk.Driver
		if _, dup := h.tasks[key]; dup {
			key += "2"
		}
		h.tasks[key] = Task{AllocID: tk.AllocID, Group: "default/" + tk.Job + "/" + tk.Group, Name: tk.Task}
	}
	var stats struct {
		Tasks map[string]struct {
			ResourceUsage struct {
				CpuStats struct{ Percent, TotalTicks float64 }
			}
		}
	}
	b, err = os.ReadFile(filepath.Join(dir, "t0", "alloc-stats-dio-2dd4a291.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &stats); err != nil {
		t.Fatal(err)
	}
	cpu := stats.Tasks["writer"].ResourceUsage.CpuStats
	h.coreMHz = cpu.TotalTicks / (cpu.Percent / 100)
	return h
}

// The docker task ran with network_mode = "none": a namespace of its own.
// The recording lists its PIDs in tasks.json (25073, 25726) and at t0 a
// sleep (25597) that is its child.
var recordedDockerNS = map[int]string{25073: "net:[4026532712]", 25597: "net:[4026532712]", 25726: "net:[4026532712]"}

const mib = 1 << 20

func TestRecordedHostCgroupV1(t *testing.T) {
	h := loadRecordedHost(t)
	root := t.TempDir()
	procRoot, cgroupRoot := layHost(t, filepath.Join(h.dir, "t0"), root, recordedDockerNS)
	clk := clock.NewVirtual(h.t0)
	x, err := NewHostExtra(HostPaths{CgroupRoot: cgroupRoot, ProcRoot: procRoot, SysRoot: t.TempDir()},
		func(context.Context) (float64, error) { return h.coreMHz, nil }, clk, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	tasks := []Task{h.tasks["docker"], h.tasks["exec"], h.tasks["raw_exec"], h.tasks["raw_exec2"]}
	first, err := x.Sample(context.Background(), tasks)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range tasks {
		if m := first[tk].Metrics; len(m) != 0 && !(len(m) == 1 && m[telemetry.MemRSSBytes].Source == telemetry.SourceProcess) {
			t.Errorf("%s: the first reading gave rates: %v", tk.AllocID, m)
		}
	}
	layHost(t, filepath.Join(h.dir, "t1"), root, recordedDockerNS)
	clk.Set(h.t1)
	got, err := x.Sample(context.Background(), tasks)
	if err != nil {
		t.Fatal(err)
	}
	secs := h.t1.Sub(h.t0).Seconds()

	type want struct {
		value, tol float64
		source     string
	}
	// Every rate below is computed from the recorded counters by hand.
	cases := []struct {
		driver string
		want   map[string]want
		absent map[string]string
	}{{
		// exec: /nomad/<UUID> in every controller. blkio read "Total 0" at
		// both times while sh (25333) wrote 209743872 bytes, its dd
		// children reaped into its counters; the unified hierarchy keeps
		// pressure stall; no CFS quota, so never throttled.
		driver: "exec",
		want: map[string]want{
			telemetry.IOWriteBPS:        {(859889664 - 650145792) / secs, 1e-6, telemetry.SourceProcessOverCgroup},
			telemetry.IOReadBPS:         {0, 0, telemetry.SourceProcessOverCgroup},
			telemetry.CPUThrottledRatio: {0, 0, telemetry.SourceCgroup},
			telemetry.PSICPUSome:        {100 * (57167 - 44938) / 1e6 / secs, 1e-6, telemetry.SourceCgroup},
			telemetry.PSIMemSome:        {0, 0, telemetry.SourceCgroup},
			telemetry.PSIIOSome:         {100 * (616608 - 457907) / 1e6 / secs, 1e-6, telemetry.SourceCgroup},
		},
		absent: map[string]string{telemetry.NetRxBPS: telemetry.AbsentHostNetwork, telemetry.NetTxBPS: telemetry.AbsentHostNetwork},
	}, {
		// docker (cgroupfs driver): /docker/<id>, network_mode none: its
		// own namespace, with loopback only.
		driver: "docker",
		want: map[string]want{
			telemetry.IOWriteBPS:        {(1635840000 - 1426108416) / secs, 1e-6, telemetry.SourceProcessOverCgroup},
			telemetry.IOReadBPS:         {0, 0, telemetry.SourceProcessOverCgroup},
			telemetry.CPUThrottledRatio: {0, 0, telemetry.SourceCgroup},
			telemetry.PSICPUSome:        {100 * (97859 - 92022) / 1e6 / secs, 1e-6, telemetry.SourceCgroup},
			telemetry.PSIMemSome:        {0, 0, telemetry.SourceCgroup},
			telemetry.PSIIOSome:         {100 * (1056425 - 905064) / 1e6 / secs, 1e-6, telemetry.SourceCgroup},
			telemetry.NetRxBPS:          {0, 0, telemetry.SourceNetns},
			telemetry.NetTxBPS:          {0, 0, telemetry.SourceNetns},
		},
	}, {
		// raw_exec (alloc 15b4…): the root of cpu, blkio and the v2
		// hierarchy, and a memory cgroup (/process_api/<hash>) shared with
		// the other raw_exec task and host processes: everything from
		// python3 (25281) itself. utime+stime 15 → 16 ticks.
		driver: "raw_exec",
		want: map[string]want{
			telemetry.IOReadBPS:   {0, 0, telemetry.SourceProcess},
			telemetry.IOWriteBPS:  {0, 0, telemetry.SourceProcess},
			telemetry.CPUMHz:      {0.01 / secs * h.coreMHz, 1e-9, telemetry.SourceProcess},
			telemetry.MemRSSBytes: {18856 * 1024, 0, telemetry.SourceProcess},
		},
		absent: map[string]string{
			telemetry.CPUThrottledRatio: telemetry.AbsentNoCgroup,
			telemetry.PSICPUSome:        telemetry.AbsentNoCgroup,
			telemetry.PSIMemSome:        telemetry.AbsentNoCgroup,
			telemetry.PSIIOSome:         telemetry.AbsentNoCgroup,
			telemetry.NetRxBPS:          telemetry.AbsentHostNetwork,
			telemetry.NetTxBPS:          telemetry.AbsentHostNetwork,
		},
	}, {
		// raw_exec (alloc be5c…): python3 (25275) wrote 4096 bytes.
		driver: "raw_exec2",
		want: map[string]want{
			telemetry.IOReadBPS:   {0, 0, telemetry.SourceProcess},
			telemetry.IOWriteBPS:  {4096 / secs, 1e-9, telemetry.SourceProcess},
			telemetry.CPUMHz:      {0, 0, telemetry.SourceProcess},
			telemetry.MemRSSBytes: {18992 * 1024, 0, telemetry.SourceProcess},
		},
		absent: map[string]string{
			telemetry.CPUThrottledRatio: telemetry.AbsentNoCgroup,
			telemetry.PSICPUSome:        telemetry.AbsentNoCgroup,
			telemetry.NetRxBPS:          telemetry.AbsentHostNetwork,
		},
	}}
	for _, c := range cases {
		t.Run(c.driver, func(t *testing.T) {
			te := got[h.tasks[c.driver]]
			if te == nil {
				t.Fatal("no reading")
			}
			var names []string
			for name := range te.Metrics {
				names = append(names, name)
			}
			for name := range c.want {
				if !slices.Contains(names, name) {
					t.Errorf("%s missing", name)
				}
			}
			for _, name := range names {
				w, ok := c.want[name]
				r := te.Metrics[name]
				if !ok {
					t.Errorf("%s = %v (%s): the recording cannot support it", name, r.Value, r.Source)
					continue
				}
				if math.Abs(r.Value-w.value) > w.tol || r.Source != w.source {
					t.Errorf("%s = %v from %q, want %v from %q", name, r.Value, r.Source, w.value, w.source)
				}
			}
			for name, reason := range c.absent {
				if te.Absent[name] != reason {
					t.Errorf("%s absent because %q, want %q", name, te.Absent[name], reason)
				}
			}
		})
	}
	for _, d := range []string{"exec", "docker"} {
		if w := got[h.tasks[d]].Metrics[telemetry.IOWriteBPS].Value; math.Abs(w-20*mib) > 0.05*20*mib {
			t.Errorf("%s writes %.2f MiB/s, want about 20", d, w/mib)
		}
	}
}

// TestRecordedHostSamples replays the recorded host with what Nomad's
// allocation stats answered at the same moments: which metrics each task
// yields, and from where.
func TestRecordedHostSamples(t *testing.T) {
	h := loadRecordedHost(t)
	root := t.TempDir()
	procRoot, cgroupRoot := layHost(t, filepath.Join(h.dir, "t0"), root, recordedDockerNS)
	snapshot := "t0"
	nomad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := strings.CutPrefix(r.URL.Path, "/v1/client/allocation/")
		id, ok2 := strings.CutSuffix(id, "/stats")
		if !ok || !ok2 {
			http.NotFound(w, r)
			return
		}
		files, _ := filepath.Glob(filepath.Join(h.dir, snapshot, "alloc-stats-*-"+id[:8]+".json"))
		if len(files) != 1 {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, files[0])
	}))
	defer nomad.Close()
	client, err := api.NewClient(&api.Config{Address: nomad.URL})
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewVirtual(h.t0)
	x, err := NewHostExtra(HostPaths{CgroupRoot: cgroupRoot, ProcRoot: procRoot, SysRoot: t.TempDir()},
		func(context.Context) (float64, error) { return h.coreMHz, nil }, clk, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Nomad: client, NodeID: "n", Interval: 10 * time.Second, Clock: clk, Extra: x,
		Sink: func([]telemetry.Sample, []telemetry.Note) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	var allocs []*api.Allocation
	for _, tk := range h.tasks {
		g, _ := telemetry.ParseGroup(tk.Group)
		allocs = append(allocs, &api.Allocation{ID: tk.AllocID, Namespace: g.Namespace, JobID: g.Job, TaskGroup: g.Group,
			ClientStatus: api.AllocClientStatusRunning, DesiredStatus: api.AllocDesiredStatusRun,
			TaskStates: map[string]*api.TaskState{tk.Name: {State: "running"}}})
	}
	s.setAllocs(allocs)
	s.SampleOnce(context.Background())
	layHost(t, filepath.Join(h.dir, "t1"), root, recordedDockerNS)
	snapshot = "t1"
	clk.Set(h.t1)
	samples, notes := s.SampleOnce(context.Background())

	got := map[string]map[string]string{} // driver → metric → source
	for _, sm := range samples {
		for d, tk := range h.tasks {
			if sm.Alloc == tk.AllocID {
				if got[d] == nil {
					got[d] = map[string]string{}
				}
				got[d][sm.Metric] = sm.Source
			}
		}
	}
	cgroupTask := map[string]string{
		telemetry.CPUMHz: telemetry.SourceNomad, telemetry.MemRSSBytes: telemetry.SourceNomad, telemetry.MemUsageBytes: telemetry.SourceNomad,
		telemetry.IOReadBPS: telemetry.SourceProcessOverCgroup, telemetry.IOWriteBPS: telemetry.SourceProcessOverCgroup,
		telemetry.CPUThrottledRatio: telemetry.SourceCgroup,
		telemetry.PSICPUSome:        telemetry.SourceCgroup, telemetry.PSIMemSome: telemetry.SourceCgroup, telemetry.PSIIOSome: telemetry.SourceCgroup,
	}
	docker := maps.Clone(cgroupTask)
	docker[telemetry.NetRxBPS], docker[telemetry.NetTxBPS] = telemetry.SourceNetns, telemetry.SourceNetns
	rawExec := map[string]string{
		telemetry.CPUMHz: telemetry.SourceProcess, telemetry.MemRSSBytes: telemetry.SourceProcess,
		telemetry.IOReadBPS: telemetry.SourceProcess, telemetry.IOWriteBPS: telemetry.SourceProcess,
	}
	for d, want := range map[string]map[string]string{"exec": cgroupTask, "docker": docker, "raw_exec": rawExec, "raw_exec2": rawExec} {
		if !maps.Equal(got[d], want) {
			t.Errorf("%s: metrics and sources\n got %v\nwant %v", d, got[d], want)
		}
	}
	wantNotes := []telemetry.Note{
		{Group: "default/io/io", Metric: telemetry.NetRxBPS, Reason: telemetry.AbsentHostNetwork},
		{Group: "default/web/web", Metric: telemetry.PSIIOSome, Reason: telemetry.AbsentNoCgroup},
	}
	for _, w := range wantNotes {
		if !slices.Contains(notes, w) {
			t.Errorf("no note %+v in %+v", w, notes)
		}
	}
	for _, n := range notes {
		if n.Group == "default/dio/dio" {
			t.Errorf("the docker task has everything, yet a note: %+v", n)
		}
	}
}
