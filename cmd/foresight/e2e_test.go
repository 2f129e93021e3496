package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/internal/wait"
	"github.com/foresight-nomad/foresight/leaderapi"
	"github.com/foresight-nomad/foresight/telemetry"
)

// binary is the foresight binary the end-to-end tests run, built once.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "foresight-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "foresight")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build foresight: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cluster is a running sim with agents, each a real process.
type cluster struct {
	t          testing.TB
	dir        string
	nomadAddr  string
	consulAddr string
	nomad      *nomadapi.Client
	consul     *consulapi.Client
	agents     map[string]*exec.Cmd // node ID → agent process
	agentArgs  map[string][]string  // node ID → its command line
	agentHTTP  map[string]string    // node ID → base URL
	agentLog   map[string]string    // node ID → the name of its log in dir
	simStarted time.Time
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// freePair finds two consecutive free ports, for an agent's HTTP and gRPC.
func freePair(t testing.TB) string {
	t.Helper()
	addr, err := freePorts()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// freePorts is freePair for callers off the test's goroutine.
func freePorts() (string, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := l.Addr().(*net.TCPAddr)
		l.Close()
		if next, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", addr.Port+1)); err == nil {
			next.Close()
			return addr.String(), nil
		}
	}
	return "", fmt.Errorf("no two consecutive free ports")
}

// launch starts the foresight binary with args, pointed at sim's Nomad and
// Consul, its output in dir/name.log.
func launch(dir, name, nomadAddr, consulAddr string, args ...string) (*exec.Cmd, *os.File, error) {
	logFile, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "NOMAD_ADDR=http://"+nomadAddr, "CONSUL_HTTP_ADDR="+consulAddr)
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, nil, err
	}
	return cmd, logFile, nil
}

// simClients are clients of a sim process's Nomad and Consul APIs, once
// sim serves nodes that satisfy ready.
func simClients(t testing.TB, nomadAddr, consulAddr string, ready func(nodes int) bool) (*nomadapi.Client, *consulapi.Client, []*nomadapi.NodeListStub) {
	t.Helper()
	nomad, err := nomadapi.NewClient(&nomadapi.Config{Address: "http://" + nomadAddr})
	if err != nil {
		t.Fatal(err)
	}
	consul, err := consulapi.NewClient(&consulapi.Config{Address: consulAddr})
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*nomadapi.NodeListStub
	wait.UntilEvery(t, 30*time.Second, 200*time.Millisecond, "sim to serve", func() bool {
		nodes, _, err = nomad.Nodes().List(nil)
		return err == nil && ready(len(nodes))
	})
	return nomad, consul, nodes
}

func (c *cluster) start(name string, args ...string) *exec.Cmd {
	c.t.Helper()
	cmd, logFile, err := launch(c.dir, name, c.nomadAddr, c.consulAddr, args...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		logFile.Close()
		if c.t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			c.t.Logf("--- %s log (last 3000 bytes) ---\n%s", name, tail(b, 3000))
		}
	})
	return cmd
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// startCluster runs sim on the e2e cluster file and one agent per node, on
// the election's defaults as operators run it; extra is added to the
// agents' config file.
func startCluster(t *testing.T, extra ...string) *cluster {
	t.Helper()
	return startClusterAt(t, freeAddr(t), extra...)
}

// startClusterAt is startCluster with sim's Nomad API at nomadAddr.
func startClusterAt(t testing.TB, nomadAddr string, extra ...string) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: runs real processes for minutes")
	}
	c := &cluster{t: t, dir: t.TempDir(), nomadAddr: nomadAddr, consulAddr: freeAddr(t),
		agents: map[string]*exec.Cmd{}, agentArgs: map[string][]string{}, agentHTTP: map[string]string{}, agentLog: map[string]string{}}
	c.start("sim", "sim", "-config", "testdata/e2e.hcl", "-nomad-addr", c.nomadAddr, "-consul-addr", c.consulAddr)
	c.simStarted = time.Now()
	var nodes []*nomadapi.NodeListStub
	c.nomad, c.consul, nodes = simClients(t, c.nomadAddr, c.consulAddr, func(n int) bool { return n == 3 })
	config := filepath.Join(c.dir, "agent.hcl")
	if err := os.WriteFile(config, []byte(strings.Join(extra, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		bind := freePair(t)
		c.agentHTTP[n.ID] = "http://" + bind
		c.agentArgs[n.ID] = []string{"agent", "-sim", "-config", config, "-node-id", n.ID,
			"-bind", bind, "-data-dir", filepath.Join(c.dir, fmt.Sprintf("data%d", i)), "-sample-interval", "1s"}
		c.agentLog[n.ID] = fmt.Sprintf("agent%d", i)
		c.agents[n.ID] = c.start(c.agentLog[n.ID], c.agentArgs[n.ID]...)
	}
	return c
}

// get fetches a leader API path through any agent (standbys redirect).
func get(base, path string, out any) error {
	resp, err := http.Get(base + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return json.Unmarshal(body, out)
}

// session is the Consul session holding the leader lock, "" when none.
func (c *cluster) session() string {
	pair, _, err := c.consul.KV().Get(leaderapi.DefaultKey, nil)
	if err != nil || pair == nil {
		return ""
	}
	return pair.Session
}

// alive reports whether Consul still knows session.
func alive(client *consulapi.Client, session string) bool {
	info, _, err := client.Session().Info(session, nil)
	return err == nil && info != nil
}

func (c *cluster) leader() (leaderapi.Record, bool) {
	l, ok, err := leaderapi.Current(context.Background(), c.consul, "")
	return l, ok && err == nil
}

func (c *cluster) anyAgent(except string) string {
	for id, base := range c.agentHTTP {
		if id != except {
			return base
		}
	}
	return ""
}

func TestAgentsEndToEnd(t *testing.T) {
	c := startCluster(t)

	// Every agent samples its node and ships to the elected leader.
	var st leaderapi.Status
	wait.UntilEvery(t, 60*time.Second, 200*time.Millisecond, "three agents shipping to a leader", func() bool {
		if err := get(c.anyAgent(""), "/v1/status", &st); err != nil {
			return false
		}
		withSamples := 0
		for _, a := range st.Agents {
			if a.Samples > 0 {
				withSamples++
			}
		}
		return withSamples == 3 && st.Groups >= 1
	})
	first, ok := c.leader()
	if !ok || st.Leader.ID != first.ID {
		t.Fatalf("status names leader %q, the election key %q", st.Leader.ID, first.ID)
	}

	// The fingerprint is published as node metadata, and constraints see it.
	var hddNode string
	wait.UntilEvery(t, 30*time.Second, 200*time.Millisecond, "fingerprints on every node", func() bool {
		nodes, _, err := c.nomad.Nodes().List(nil)
		if err != nil {
			return false
		}
		published := 0
		for _, stub := range nodes {
			n, _, err := c.nomad.Nodes().Info(stub.ID, nil)
			if err != nil {
				return false
			}
			if n.Meta["foresight.class"] != "" {
				published++
			}
			if n.Meta["foresight.storage"] == "hdd" {
				hddNode = n.ID
			}
		}
		return published == 3 && hddNode != ""
	})
	archive := &nomadapi.Job{
		ID: strPtr("archive"), Name: strPtr("archive"), Datacenters: []string{"dc1"},
		Constraints: []*nomadapi.Constraint{nomadapi.NewConstraint("${meta.foresight.storage}", "=", "hdd")},
		TaskGroups: []*nomadapi.TaskGroup{{
			Name: strPtr("archive"), Count: intPtr(1),
			Tasks: []*nomadapi.Task{{Name: "main", Driver: "docker", Config: map[string]any{"image": "archive:1"},
				Resources: &nomadapi.Resources{CPU: intPtr(200), MemoryMB: intPtr(128)}}},
		}},
	}
	if _, _, err := c.nomad.Jobs().Register(archive, nil); err != nil {
		t.Fatal(err)
	}
	allocs, _, err := c.nomad.Jobs().Allocations("archive", false, nil)
	if err != nil || len(allocs) != 1 || allocs[0].NodeID != hddNode {
		t.Fatalf("archive placed on %+v, want the node whose agent published storage=hdd (%s)", allocs, hddNode)
	}

	// A new allocation is sampled; once it is gone, it is not.
	wait.UntilEvery(t, 60*time.Second, 200*time.Millisecond, "the new group's telemetry", func() bool {
		var groups []leaderapi.GroupSummary
		if err := get(c.anyAgent(""), "/v1/groups", &groups); err != nil {
			return false
		}
		for _, g := range groups {
			if g.Group == "default/archive/archive" {
				return true
			}
		}
		return false
	})

	// The archive node's tasks have no cgroup of their own, as raw_exec on
	// cgroup v1: the group view says its disk bytes come from its
	// processes, and why it has no network or pressure stall rather than
	// a zero. The app's tasks on the other nodes are read from their
	// cgroups and network namespaces.
	var view leaderapi.GroupView
	wait.UntilEvery(t, 60*time.Second, 200*time.Millisecond, "the archive group's sources", func() bool {
		err := get(c.anyAgent(""), "/v1/group/default/archive/archive", &view)
		return err == nil && len(view.Sources[telemetry.IOWriteBPS]) > 0 && len(view.Unavailable) > 0
	})
	if got := view.Sources[telemetry.IOWriteBPS]; !slices.Equal(got, []string{telemetry.SourceProcess}) {
		t.Errorf("archive disk bytes read from %v, want its processes", got)
	}
	if got := view.Unavailable[telemetry.NetRxBPS]; !slices.Equal(got, []string{telemetry.AbsentHostNetwork}) {
		t.Errorf("archive network: %v, want %q", got, telemetry.AbsentHostNetwork)
	}
	if got := view.Unavailable[telemetry.PSICPUSome]; !slices.Equal(got, []string{telemetry.AbsentPressureV1}) {
		t.Errorf("archive pressure: %v, want %q", got, telemetry.AbsentPressureV1)
	}
	for _, m := range []string{telemetry.NetRxBPS, telemetry.PSICPUSome} {
		if slices.Contains(view.Metrics, m) {
			t.Errorf("archive has %s, which its tasks cannot have", m)
		}
	}
	var appView leaderapi.GroupView
	if err := get(c.anyAgent(""), "/v1/group/default/app/app", &appView); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(appView.Sources[telemetry.PSICPUSome], telemetry.SourceCgroup) || !slices.Contains(appView.Sources[telemetry.NetRxBPS], telemetry.SourceNetns) {
		t.Errorf("app sources %v, want pressure from cgroups and network from namespaces", appView.Sources)
	}

	if _, _, err := c.nomad.Jobs().Deregister("archive", false, nil); err != nil {
		t.Fatal(err)
	}
	stoppedAt := time.Now()
	time.Sleep(15 * time.Second)
	var series leaderapi.SeriesResponse
	if err := get(c.anyAgent(""), "/v1/group/default/archive/archive/series?metric=cpu_mhz&step=10s&from="+c.simStarted.UTC().Format(time.RFC3339), &series); err != nil {
		t.Fatal(err)
	}
	for _, p := range series.Points {
		if p.Slots > 0 && p.Time.After(stoppedAt.Add(10*time.Second)) {
			t.Fatalf("the stopped allocation was still sampled at %s (stopped %s)", p.Time, stoppedAt)
		}
	}

	// The leader is killed, and restarted at once as Nomad restarts a
	// system job's task. A new term begins (whichever agent wins it) and
	// rebuilds the history from the agents' buffers: no hole, nothing
	// counted twice.
	const app = "/v1/group/default/app/app/series?metric=cpu_mhz&step=10s&from="
	var before leaderapi.SeriesResponse
	wait.UntilEvery(t, 120*time.Second, 200*time.Millisecond, "six sealed steps of history on the first leader", func() bool {
		err := get(c.agentHTTP[first.ID], app+c.simStarted.UTC().Format(time.RFC3339), &before)
		return err == nil && len(before.Points) >= 6
	})
	oldSession := c.session()
	killed := time.Now()
	if err := c.agents[first.ID].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = c.agents[first.ID].Process.Wait()
	c.agents[first.ID] = c.start("agent-restarted", c.agentArgs[first.ID]...)
	var next leaderapi.Record
	wait.UntilEvery(t, 90*time.Second, 200*time.Millisecond, "a new leadership term", func() bool {
		s := c.session()
		l, ok := c.leader()
		next = l
		return ok && s != "" && s != oldSession
	})
	// How long it took is measured by BenchmarkFailover, not asserted: the
	// election's own tests check that a new term begins only once the old
	// session is gone.
	t.Logf("failover took %s; %s leads", time.Since(killed).Round(100*time.Millisecond), next.ID)
	if alive(c.consul, oldSession) {
		t.Fatalf("a new term began while the killed leader's session %s was alive", oldSession)
	}

	// Wait until the new leader has sealed slots well past the outage.
	resumeBy := time.Now().Add(20 * time.Second)
	var after leaderapi.SeriesResponse
	wait.UntilEvery(t, 90*time.Second, 200*time.Millisecond, "the new leader's history to pass the outage", func() bool {
		if err := get(next.HTTP, app+c.simStarted.UTC().Format(time.RFC3339), &after); err != nil {
			return false
		}
		n := len(after.Points)
		return n > 0 && after.Points[n-1].Time.After(resumeBy)
	})
	checkHistory(t, before.Points, after.Points)

	// The new leader decides for every group; in the default recommend
	// mode it reports what it would change and writes nothing.
	job, _, err := c.nomad.Jobs().Info("app", nil)
	if err != nil {
		t.Fatal(err)
	}
	var decision leaderapi.Decision
	wait.UntilEvery(t, 150*time.Second, 200*time.Millisecond, "a decision for default/app/app", func() bool {
		var log []leaderapi.Decision
		if err := get(next.HTTP, "/v1/decisions", &log); err != nil {
			return false
		}
		for _, d := range log {
			if d.Group == "default/app/app" {
				decision = d
				return true
			}
		}
		return false
	})
	r := decision.Result
	if r.Written || r.Held == "" || len(r.Decision.Reasons) == 0 {
		t.Fatalf("recommend-mode decision: written %v, held %q, reasons %v", r.Written, r.Held, r.Decision.Reasons)
	}
	after2, _, err := c.nomad.Jobs().Info("app", nil)
	if err != nil {
		t.Fatal(err)
	}
	if *after2.JobModifyIndex != *job.JobModifyIndex {
		t.Fatal("a recommend-mode decision changed the job")
	}
	t.Logf("decision: %v; changes %v; held: %s", r.Decision.Reasons, r.Changes, r.Held)

	// foresight plan shows the same change as a diff, and writes nothing.
	plan := exec.Command(binary, "plan")
	plan.Env = append(os.Environ(), "FORESIGHT_ADDR="+next.HTTP)
	out, err := plan.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "default/app/app (recommend)") || !strings.Contains(string(out), "~ count 3 →") {
		t.Fatalf("foresight plan: %v\n%s", err, out)
	}
	if now, _, err := c.nomad.Jobs().Info("app", nil); err != nil || *now.JobModifyIndex != *job.JobModifyIndex {
		t.Fatalf("foresight plan changed the job (%v)", err)
	}
}

// checkHistory compares the history before and after failover: every step
// from the first full one to the last has data, and steps the old leader had
// hold the same demand.
func checkHistory(t *testing.T, before, after []telemetry.Point) {
	t.Helper()
	old := map[time.Time]telemetry.Point{}
	for i, p := range before {
		if i < len(before)-1 { // the old leader's last step may be partial
			old[p.Time] = p
		}
	}
	started := false
	compared := 0
	for i, p := range after {
		if i == 0 || i == len(after)-1 {
			continue // the first and last steps may be partial
		}
		if p.Slots > 0 {
			started = true
		}
		if !started {
			continue
		}
		if p.Slots == 0 {
			t.Errorf("hole in the history at %s", p.Time)
			continue
		}
		if o, ok := old[p.Time]; ok && o.Slots > 0 {
			compared++
			if math.Abs(o.Mean-p.Mean) > 1e-6*math.Max(1, math.Abs(o.Mean)) {
				t.Errorf("at %s the new leader holds %.3f, the old held %.3f", p.Time, p.Mean, o.Mean)
			}
		}
	}
	if compared < 3 {
		t.Fatalf("only %d steps to compare before and after failover (%d before, %d after)", compared, len(before), len(after))
	}
}

func strPtr(s string) *string { return &s }
func intPtr(i int) *int       { return &i }
