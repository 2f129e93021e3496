package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/agent/node/sampler"
	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/internal/wait"
	"github.com/foresight-nomad/foresight/leaderapi"
	"github.com/foresight-nomad/foresight/telemetry"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
const clockTicks = 100

// BenchmarkAgentOverhead measures the agent on a node running 100 tasks,
// sampled every 10 s, while another agent leads: the CPU it uses, as a
// share of one core, and its resident memory, read from /proc. Goal: ≤ 0.5 %
// of a core and ≤ 40 MiB. Run with -benchtime 1x; each sub-benchmark
// measures one agent for one minute after a warm-up:
//
//   - sim-telemetry is the baseline: the agent reads what Nomad does not
//     serve from sim's telemetry endpoint, one request per round.
//   - proc-scan reads the busy node's 100 tasks from a generated hybrid
//     cgroup v1 host instead (fakehost_test.go): 300 other processes, the
//     tasks split over exec, docker and raw_exec layouts, and 10 tasks a
//     second forking a short-lived child, as a dd loop does, so that every
//     round's /proc scan meets about 100 new PIDs. It exercises the scan,
//     the cgroup resolution and the per-process reads of a real host.
func BenchmarkAgentOverhead(b *testing.B) {
	dir := b.TempDir()
	c := &cluster{t: b, dir: dir, nomadAddr: freeAddr(b), consulAddr: freeAddr(b)}
	start := func(name string, args ...string) *os.Process { return c.start(name, args...).Process }
	start("sim", "sim", "-config", "testdata/overhead.hcl", "-nomad-addr", c.nomadAddr, "-consul-addr", c.consulAddr)
	nomad, _ := nomadapi.NewClient(&nomadapi.Config{Address: "http://" + c.nomadAddr})
	consul, _ := consulapi.NewClient(&consulapi.Config{Address: c.consulAddr})
	var busy, idle string
	wait.UntilEvery(b, 30*time.Second, 200*time.Millisecond, "sim", func() bool {
		nodes, _, err := nomad.Nodes().List(nil)
		if err != nil || len(nodes) != 2 {
			return false
		}
		for _, n := range nodes {
			if n.NodeClass == "busy" {
				busy = n.ID
			} else {
				idle = n.ID
			}
		}
		return true
	})
	agentArgs := func(node, bind, data string) []string {
		return []string{"agent", "-sim", "-node-id", node, "-bind", bind, "-data-dir", filepath.Join(dir, data)}
	}
	leaderHTTP := freePair(b)
	start("leader", agentArgs(idle, leaderHTTP, "leader")...)
	wait.UntilEvery(b, 60*time.Second, 200*time.Millisecond, "the idle node's agent to lead", func() bool {
		pair, _, err := consul.KV().Get("foresight/leader", nil)
		return err == nil && pair != nil && pair.Session != "" && strings.Contains(string(pair.Value), idle)
	})
	var tasks []fakeTask
	wait.UntilEvery(b, 60*time.Second, 200*time.Millisecond, "100 tasks on the busy node", func() bool {
		allocs, _, err := nomad.Nodes().Allocations(busy, nil)
		if err != nil {
			return false
		}
		tasks = tasks[:0]
		for _, a := range allocs {
			if a.ClientStatus == nomadapi.AllocClientStatusRunning {
				for name := range a.TaskStates {
					tasks = append(tasks, fakeTask{AllocID: a.ID, Name: name, Job: a.JobID, Group: a.TaskGroup})
				}
			}
		}
		return len(tasks) >= 100
	})
	host := layFakeHost(b, filepath.Join(dir, "host"), tasks)
	hostConfig := filepath.Join(dir, "host.hcl")
	if err := os.WriteFile(hostConfig, []byte(fmt.Sprintf("sim {\n  host = true\n}\nhost {\n  proc_root = %q\n  cgroup_root = %q\n  sys_root = %q\n}\n",
		host.procRoot, host.cgroupRoot, filepath.Join(dir, "host", "sys"))), 0o644); err != nil {
		b.Fatal(err)
	}

	for _, mode := range []struct {
		name string
		args []string
	}{
		{"sim-telemetry", nil},
		{"proc-scan", []string{"-config", hostConfig}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			if mode.args != nil {
				go host.churn(ctx, time.Second, 10)
			}
			measured := start("busy-"+mode.name, append(agentArgs(busy, freePair(b), "busy-"+mode.name), mode.args...)...)
			defer func() {
				_ = measured.Signal(syscall.SIGTERM)
				_, _ = measured.Wait()
			}()
			time.Sleep(25 * time.Second) // start-up, fingerprint and first samples
			for b.Loop() {
				cpu0, err := cpuTicks(measured.Pid)
				if err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				time.Sleep(time.Minute)
				cpu1, err := cpuTicks(measured.Pid)
				if err != nil {
					b.Fatal(err)
				}
				elapsed := time.Since(t0).Seconds()
				b.ReportMetric(100*float64(cpu1-cpu0)/clockTicks/elapsed, "%core")
			}
			rss, err := rssMiB(measured.Pid)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(rss, "MiB-rss")
			if mode.args != nil {
				// The scan really ran: the leader knows the load's disk bytes
				// as read from the generated host's cgroups and processes.
				var view leaderapi.GroupView
				if err := get("http://"+leaderHTTP, "/v1/group/default/load/load", &view); err != nil {
					b.Fatal(err)
				}
				if !slices.Contains(view.Sources[telemetry.IOWriteBPS], telemetry.SourceProcess) {
					b.Fatalf("the load's disk bytes were not read from the generated host: %v", view.Sources)
				}
			}
		})
	}
}

// cpuTicks is a process's user plus system time in clock ticks.
func cpuTicks(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command, which is in parentheses and may hold spaces.
	rest := raw[bytes.LastIndexByte(raw, ')')+2:]
	fields := strings.Fields(string(rest))
	utime, err := strconv.ParseInt(fields[11], 10, 64)
	if err != nil {
		return 0, err
	}
	stime, err := strconv.ParseInt(fields[12], 10, 64)
	return utime + stime, err
}

// rssMiB is a process's resident set size.
func rssMiB(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// BenchmarkHostRound is one sampling round of the agent's host reading
// (sampler.HostExtra) on the generated host of BenchmarkAgentOverhead, in
// process: the /proc scan with 10 new PIDs a round, the cgroup and
// per-process reads of 100 tasks, their network namespaces. It locates the
// cost that BenchmarkAgentOverhead measures as a whole.
func BenchmarkHostRound(b *testing.B) {
	var tasks []fakeTask
	var sampled []sampler.Task
	for i := range 100 {
		t := fakeTask{AllocID: uuidOf(fmt.Sprint("alloc", i)), Name: "main", Job: "load", Group: "load"}
		tasks = append(tasks, t)
		sampled = append(sampled, sampler.Task{AllocID: t.AllocID, Group: "default/load/load", Name: t.Name})
	}
	dir := b.TempDir()
	host := layFakeHost(b, dir, tasks)
	x, err := sampler.NewHostExtra(sampler.HostPaths{ProcRoot: host.procRoot, CgroupRoot: host.cgroupRoot, SysRoot: filepath.Join(dir, "sys")},
		func(context.Context) (float64, error) { return 2000, nil }, clock.Real{}, hclog.NewNullLogger())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := x.Sample(ctx, sampled); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		host.fork(10)
		b.StartTimer()
		if _, err := x.Sample(ctx, sampled); err != nil {
			b.Fatal(err)
		}
	}
	perRound := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(perRound/1e3, "µs/round")
	b.ReportMetric(perRound/float64(10*time.Second)*100, "core%@10s")
}
