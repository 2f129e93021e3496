package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/internal/wait"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
const clockTicks = 100

// BenchmarkAgentOverhead measures the agent on a node running 100 tasks,
// sampled every 10 s, while another agent leads: the CPU it uses, as a
// share of one core, and its resident memory, read from /proc. Goal: ≤ 0.5 %
// of a core and ≤ 40 MiB. Run with -benchtime 1x; each iteration measures
// for one minute after a warm-up.
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
	agentArgs := func(node, data string) []string {
		return []string{"agent", "-sim", "-node-id", node, "-bind", freePair(b), "-data-dir", filepath.Join(dir, data)}
	}
	start("leader", agentArgs(idle, "leader")...)
	wait.UntilEvery(b, 60*time.Second, 200*time.Millisecond, "the idle node's agent to lead", func() bool {
		pair, _, err := consul.KV().Get("foresight/leader", nil)
		return err == nil && pair != nil && pair.Session != "" && strings.Contains(string(pair.Value), idle)
	})
	measured := start("busy", agentArgs(busy, "busy")...)
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
