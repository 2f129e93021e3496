package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeTask is one task a generated host runs.
type fakeTask struct {
	AllocID, Name, Job, Group string
}

// The driver layouts a generated host mixes, as the recorded Nomad 1.6.5
// host on cgroup v1 (hybrid) shows them: exec in a libcontainer cgroup
// named by a random ID, docker (cgroupfs) in /docker/<id>, raw_exec in the
// root of every controller but a memory cgroup it shares.
const (
	layoutExec = iota
	layoutDocker
	layoutRawExec
	nLayouts
)

// hostProcesses is how many processes of no task the generated host runs.
const hostProcesses = 300

// fakeHost is a generated hybrid cgroup v1 host in a folder: a procfs and a
// cgroup tree, enough for the agent's /proc scan, cgroup resolution and
// per-process reads, at the scale of a busy node.
type fakeHost struct {
	tb                   testing.TB
	procRoot, cgroupRoot string
	tasks                []fakeTask
	nextPID, nextTask    int
	churned              map[int]int // task index → the PID it forked last
}

// layFakeHost writes a host running tasks (two processes each, a main and
// its child) and hostProcesses others.
func layFakeHost(tb testing.TB, dir string, tasks []fakeTask) *fakeHost {
	h := &fakeHost{tb: tb, procRoot: filepath.Join(dir, "proc"), cgroupRoot: filepath.Join(dir, "sys", "fs", "cgroup"), tasks: tasks, nextPID: 100000}
	h.proc(1, 0, "", "/", "/", hostNetNS)
	for i := range hostProcesses {
		h.proc(100+i, 1, "PATH=/usr/bin\x00HOME=/root\x00", "/", "/", hostNetNS)
	}
	var rawPIDs []int
	for i, t := range tasks {
		env := fmt.Sprintf("PATH=/usr/bin\x00NOMAD_ALLOC_ID=%s\x00NOMAD_TASK_NAME=%s\x00NOMAD_JOB_NAME=%s\x00NOMAD_GROUP_NAME=%s\x00NOMAD_NAMESPACE=default\x00", t.AllocID, t.Name, t.Job, t.Group)
		main, child := 10000+2*i, 10001+2*i
		path, ns := h.layout(i)
		if path == "" {
			rawPIDs = append(rawPIDs, main, child)
		}
		for _, p := range [][2]int{{main, 1}, {child, main}} {
			h.proc(p[0], p[1], env, path, path, ns)
		}
		if path != "" {
			h.taskCgroups(path, main, child)
		}
	}
	var procs strings.Builder
	for _, pid := range rawPIDs {
		fmt.Fprintf(&procs, "%d\n", pid)
	}
	for i := range 10 {
		fmt.Fprintf(&procs, "%d\n", 100+i)
	}
	h.write(filepath.Join(h.cgroupRoot, "memory", "process_api", "shared", "cgroup.procs"), procs.String())
	return h
}

// proc writes one process: path is its cgroup in every controller ("/" or
// "" for the root), as /proc/<pid>/cgroup shows it.
func (h *fakeHost) proc(pid, ppid int, env, path, unified, ns string) {
	if path == "" {
		path, unified = "/", "/"
	}
	dir := filepath.Join(h.procRoot, strconv.Itoa(pid))
	h.write(filepath.Join(dir, "environ"), env)
	mem := path
	if path == "/" && env != "" && strings.Contains(env, "NOMAD_ALLOC_ID") {
		mem = "/process_api/shared"
	}
	h.write(filepath.Join(dir, "cgroup"), fmt.Sprintf(
		"9:name=systemd:%[1]s\n8:pids:%[1]s\n7:blkio:%[1]s\n6:freezer:%[1]s\n5:devices:%[1]s\n4:memory:%[2]s\n3:cpuset:/\n2:cpuacct:%[1]s\n1:cpu:%[1]s\n0::%[3]s\n", path, mem, unified))
	h.write(filepath.Join(dir, "stat"), fmt.Sprintf("%d (worker) S %d %d %d 0 -1 4194560 2098 23536 0 0 5 9 21 59 20 0 1 0 1335493 2322432 363 18446744073709551615 4198400 5785993 140730222184944 0 0 0 0 4 65538 1 0 0 17 1 0 0 0 0 0 6141704 6178576 661778432 140730222189966 140730222190073 140730222190073 140730222190576 0\n", pid, ppid, pid, pid))
	h.write(filepath.Join(dir, "status"), fmt.Sprintf("Name:\tworker\nPid:\t%d\nPPid:\t%d\nVmRSS:\t    1580 kB\nThreads:\t1\n", pid, ppid))
	h.write(filepath.Join(dir, "io"), "rchar: 1426167561\nwchar: 1426073358\nsyscr: 1532\nsyscw: 1435\nread_bytes: 4096\nwrite_bytes: 1426108416\ncancelled_write_bytes: 0\n")
	h.write(filepath.Join(dir, "net", "dev"), "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0\n  eth0: 1081653573   60455    0    0    0     0          0         0  4132972   40323    0    0    0     0       0          0\n")
	nsDir := filepath.Join(dir, "ns")
	if err := os.MkdirAll(nsDir, 0o755); err != nil {
		h.tb.Fatal(err)
	}
	if err := os.Symlink(ns, filepath.Join(nsDir, "net")); err != nil && !os.IsExist(err) {
		h.tb.Fatal(err)
	}
}

// taskCgroups writes a task's own cgroups, as the recorded host has them.
func (h *fakeHost) taskCgroups(path string, pids ...int) {
	var procs strings.Builder
	for _, pid := range pids {
		fmt.Fprintf(&procs, "%d\n", pid)
	}
	files := map[string]map[string]string{
		"cpu":     {"cpu.stat": "nr_periods 0\nnr_throttled 0\nthrottled_time 0\nnr_bursts 0\nburst_time 0\n", "cpu.cfs_quota_us": "-1\n"},
		"memory":  {"memory.usage_in_bytes": "839680\n", "memory.stat": "cache 20480\nrss 114688\nswap 0\n"},
		"blkio":   {"blkio.throttle.io_service_bytes": "Total 0\n"},
		"unified": {"cpu.pressure": "some avg10=0.00 avg60=0.00 avg300=0.00 total=92022\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=73171\n", "memory.pressure": "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", "io.pressure": "some avg10=0.88 avg60=0.50 avg300=0.15 total=905064\nfull avg10=0.88 avg60=0.50 avg300=0.15 total=905064\n"},
	}
	for tree, fs := range files {
		dir := filepath.Join(h.cgroupRoot, tree, path)
		h.write(filepath.Join(dir, "cgroup.procs"), procs.String())
		for name, body := range fs {
			h.write(filepath.Join(dir, name), body)
		}
	}
}

func (h *fakeHost) write(path, body string) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		h.tb.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		h.tb.Fatal(err)
	}
}

// churn makes perTick tasks fork a short-lived child every tick, each
// replacing the one before, as the recorded tasks' dd loops do: every
// interval the agent's scan meets new PIDs. It stops with ctx.
func (h *fakeHost) churn(ctx context.Context, tick time.Duration, perTick int) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(tick):
		}
		h.fork(perTick)
	}
}

// fork makes the next n tasks, round robin, each fork a child that
// replaces the one it forked before.
func (h *fakeHost) fork(n int) {
	if h.churned == nil {
		h.churned = map[int]int{}
	}
	for range n {
		i := h.nextTask % len(h.tasks)
		h.nextTask++
		if old, ok := h.churned[i]; ok {
			_ = os.RemoveAll(filepath.Join(h.procRoot, strconv.Itoa(old)))
		}
		t := h.tasks[i]
		env := fmt.Sprintf("NOMAD_ALLOC_ID=%s\x00NOMAD_TASK_NAME=%s\x00", t.AllocID, t.Name)
		path, ns := h.layout(i)
		h.nextPID++
		h.proc(h.nextPID, 10000+2*i, env, path, path, ns)
		h.churned[i] = h.nextPID
	}
}

// layout is the cgroup path of task i's processes in every controller (""
// for raw_exec: the root) and the network namespace they run in.
func (h *fakeHost) layout(i int) (path, ns string) {
	t := h.tasks[i]
	switch i % nLayouts {
	case layoutExec:
		return "/nomad/" + uuidOf(t.AllocID+"/"+t.Name), hostNetNS
	case layoutDocker:
		return fmt.Sprintf("/docker/%x", sha256.Sum256([]byte(t.AllocID+t.Name))), fmt.Sprintf("net:[%d]", 4026540000+i)
	}
	return "", hostNetNS
}

// hostNetNS is the generated host's network namespace.
const hostNetNS = "net:[4026531840]"

// uuidOf is a stable random-looking ID, as libcontainer names cgroups.
func uuidOf(s string) string {
	b := sha256.Sum256([]byte(s))
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
