package plugin

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad-autoscaler/sdk"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/agent/node/buffer"
	"github.com/foresight-nomad/foresight/agent/node/fingerprint"
	"github.com/foresight-nomad/foresight/agent/node/ship"
	"github.com/foresight-nomad/foresight/forecast"
	"github.com/foresight-nomad/foresight/internal/wait"
	"github.com/foresight-nomad/foresight/leaderapi"
	"github.com/foresight-nomad/foresight/orchestrator"
	"github.com/foresight-nomad/foresight/plugin/apm"
	"github.com/foresight-nomad/foresight/plugin/target"
	"github.com/foresight-nomad/foresight/sim"
	"github.com/foresight-nomad/foresight/sim/consul"
	"github.com/foresight-nomad/foresight/telemetry"
)

// The end-to-end scenario: a real trace (crane-input0) plays in sim on the
// wall clock, from 23:00 of its fifth day, the quiet hour before its daily
// peak; the leader holds the five days before (recorded from the same
// trace and shipped as an agent ships). The real Nomad Autoscaler, with our
// plugins in its plugin_dir, must raise the groups' counts for the peak two
// hours ahead, while today's demand still needs few instances.
const (
	e2eCut        = 4*1440 + 23*60 // the trace minute that plays at sim's start
	e2eScale      = 20             // MHz of work per trace unit
	e2eTarget     = 150            // MHz per instance
	e2eStartCount = 4
	e2eAhead      = 9 // a count that only the coming peak justifies
)

// autoscalerBinary is the real Nomad Autoscaler, or a skip.
func autoscalerBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: runs the real Nomad Autoscaler and Foresight agents for a minute")
	}
	path := os.Getenv("FORESIGHT_AUTOSCALER")
	if path == "" {
		home, _ := os.UserHomeDir()
		path = filepath.Join(home, ".cache", "foresight", "bin", "nomad-autoscaler-v0.5.0")
	}
	if _, err := os.Stat(path); err != nil {
		t.Skipf("the Nomad Autoscaler binary is not at %s (run `make autoscaler`, or set FORESIGHT_AUTOSCALER): %v", path, err)
	}
	return path
}

var builds struct {
	sync.Once
	dir string
	err error
}

// buildBinaries builds foresight and the three plugins once per test run;
// the plugins go into their own folder, the autoscaler's plugin_dir, and
// foresight-sim-target into another, the leader's capacity plugin_dir
// (capacityPluginDir).
func buildBinaries(t *testing.T) (foresight, pluginDir string) {
	t.Helper()
	builds.Do(func() {
		builds.dir, builds.err = os.MkdirTemp("", "foresight-autoscaler-e2e")
		if builds.err != nil {
			return
		}
		for _, b := range []struct{ out, pkg string }{
			{"foresight", "../cmd/foresight"},
			{"plugins/foresight-strategy", "../cmd/foresight-strategy"},
			{"plugins/foresight-apm", "../cmd/foresight-apm"},
			{"plugins/foresight-target", "../cmd/foresight-target"},
			{"capacity/foresight-sim-target", "../cmd/foresight-sim-target"},
		} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(builds.dir, b.out), b.pkg).CombinedOutput()
			if err != nil {
				builds.err = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if builds.err != nil {
		t.Fatal(builds.err)
	}
	return filepath.Join(builds.dir, "foresight"), filepath.Join(builds.dir, "plugins")
}

// capacityPluginDir is where buildBinaries put foresight-sim-target.
func capacityPluginDir(t *testing.T) string {
	t.Helper()
	buildBinaries(t)
	return filepath.Join(builds.dir, "capacity")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
	os.Exit(code)
}

// e2e is a running scenario.
type e2e struct {
	t         *testing.T
	dir       string
	start     time.Time
	trace     *sim.Trace
	history   []float64 // trace units per minute before start
	groups    []string  // the jobs' groups, namespace/job/group
	nomad     *nomadapi.Client
	nomadURL  string
	consulURL string
	consul    *consulapi.Client
	leaderURL string

	// The agents, one per node; with e2eSetup.watchNodes, nodes that join
	// later get theirs as soon as Nomad lists them.
	foresight string
	setup     e2eSetup
	agentCfg  string
	agentsMu  sync.Mutex
	agents    map[string]bool // node ID → agent started
	stops     []func()        // the agents'
}

func freePort(t *testing.T) string {
	t.Helper()
	addr, err := findFreePort()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// findFreePort finds a loopback port whose next port is free too.
func findFreePort() (string, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := l.Addr().String()
		l.Close()
		host, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(port)
		// agents take the next port for gRPC
		if l2, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p+1))); err == nil {
			l2.Close()
			return addr, nil
		}
	}
	return "", errors.New("no two consecutive free ports")
}

// writeTrace writes crane-input0 turned so that minute e2eCut comes first,
// and returns the minutes before it.
func writeTrace(t *testing.T, path string) []float64 {
	t.Helper()
	f, err := os.Open("../examples/traces/crane-input0.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	obs, err := forecast.ReadCSV(f, forecast.CSVOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var values []float64
	for _, o := range obs {
		values = append(values, o.Value)
	}
	var b strings.Builder
	b.WriteString("ts,value\n")
	for i := range values {
		fmt.Fprintf(&b, "%d,%g\n", 1628640000+60*i, values[(e2eCut+i)%len(values)])
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return values[:e2eCut]
}

// e2eJob is a job of the scenario: its name is its group's, and it plays
// the trace.
type e2eJob struct {
	name   string
	policy map[string]any    // the group's scaling policy, if any
	meta   map[string]string // job meta
	// service, when true, gives the group a Consul service of its name on
	// a dynamic port, with the platform meta routing needs.
	service bool
	// maxParallel, when set, is the group's update max_parallel.
	maxParallel int
}

// jobJSON is a service job with a workload, and optionally a scaling policy.
func jobJSON(j e2eJob) string {
	name, policy := j.name, j.policy
	tg := map[string]any{
		"Name": name, "Count": e2eStartCount,
		"Tasks": []any{map[string]any{"Name": "main", "Driver": "docker", "Config": map[string]any{"image": name + ":1"},
			"Resources": map[string]any{"CPU": 1000, "MemoryMB": 128}}},
	}
	if policy != nil {
		tg["Scaling"] = map[string]any{"Enabled": true, "Type": "horizontal", "Min": 1, "Max": 20, "Policy": policy}
	}
	if j.service {
		tg["Networks"] = []any{map[string]any{"Mode": "host", "DynamicPorts": []any{map[string]any{"Label": "http"}}}}
		tg["Services"] = []any{map[string]any{"Name": name, "PortLabel": "http", "Provider": "consul",
			"Meta": map[string]string{"foresight_platform": "${meta.foresight.platform}"}}}
	}
	if j.maxParallel > 0 {
		tg["Update"] = map[string]any{"MaxParallel": j.maxParallel}
	}
	b, _ := json.MarshalIndent(map[string]any{"Job": map[string]any{"ID": name, "Name": name, "Type": "service",
		"Datacenters": []string{"dc1"}, "Meta": j.meta, "TaskGroups": []any{tg}}}, "", "  ")
	return string(b)
}

// e2eSetup is what a scenario changes of the default cluster: three
// external nodes on the wall clock, agents with a leader block only.
type e2eSetup struct {
	// nodeGroups is the cluster file's node_group blocks.
	nodeGroups string
	// speed is sim's clock rate; above 1 the agents follow sim's virtual
	// clock (-sim-clock), while the autoscaler keeps the wall clock.
	speed float64
	// sampleInterval is the agents' -sample-interval, in sim time.
	sampleInterval string
	// orchestrator, when set, returns the agent config's orchestrator
	// block for the running scenario.
	orchestrator func(e *e2e) string
	// watchNodes starts an agent on every node that joins later, as
	// Nomad places a system job's allocation on it.
	watchNodes bool
}

// defaultSetup is the cluster of the scenarios that only scale counts.
var defaultSetup = e2eSetup{nodeGroups: `node_group "rack" {
  platform   = "external"
  count      = 3
  node_class = "general"
  cpu_mhz    = 2000
  cores      = 8
  memory_mb  = 16384
  disk_mb    = 100000
}
`, speed: 1, sampleInterval: "5s"}

// startE2E runs sim on the wall clock with the jobs, three real agents, and
// ships the recorded history of every job to their leader.
func startE2E(t *testing.T, foresight string, jobs ...e2eJob) *e2e {
	t.Helper()
	return startE2EWith(t, foresight, defaultSetup, jobs...)
}

// startE2EWith runs sim with setup's node groups and the jobs, one real
// agent per node, and ships the recorded history of every job to their
// leader.
func startE2EWith(t *testing.T, foresight string, setup e2eSetup, jobs ...e2eJob) *e2e {
	t.Helper()
	e := &e2e{t: t, dir: t.TempDir(), start: time.Now().UTC().Truncate(time.Second),
		foresight: foresight, setup: setup, agents: map[string]bool{}}
	e.history = writeTrace(t, filepath.Join(e.dir, "peak.csv"))
	var cluster strings.Builder
	fmt.Fprintf(&cluster, "start = %q\nstep  = \"5s\"\n\n%s", e.start.Format(time.RFC3339), setup.nodeGroups)
	for _, j := range jobs {
		if err := os.WriteFile(filepath.Join(e.dir, j.name+".json"), []byte(jobJSON(j)), 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&cluster, "\njob %q {\n  file = %q\n  workload %q {\n    trace = \"peak.csv\"\n    scale = %d\n  }\n}\n",
			j.name, j.name+".json", j.name, e2eScale)
		e.groups = append(e.groups, "default/"+j.name+"/"+j.name)
	}
	clusterFile := filepath.Join(e.dir, "cluster.hcl")
	if err := os.WriteFile(clusterFile, []byte(cluster.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := sim.LoadConfig(clusterFile)
	if err != nil {
		t.Fatal(err)
	}
	if e.trace, err = sim.LoadTrace(filepath.Join(e.dir, "peak.csv"), "", ""); err != nil {
		t.Fatal(err)
	}
	cs := consul.New(consul.Options{Datacenter: "dc1"})
	t.Cleanup(cs.Close)
	c, err := sim.New(cfg, sim.Options{Consul: cs, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	nomadSrv, consulSrv := httptest.NewServer(c.Handler()), httptest.NewServer(cs.Handler())
	t.Cleanup(consulSrv.Close)
	t.Cleanup(nomadSrv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// At speed 1 the wall clock: the autoscaler's intervals and the
	// forecasts share one time.
	go c.Run(ctx, setup.speed)
	e.nomadURL, e.consulURL = nomadSrv.URL, strings.TrimPrefix(consulSrv.URL, "http://")
	if e.nomad, err = nomadapi.NewClient(&nomadapi.Config{Address: e.nomadURL}); err != nil {
		t.Fatal(err)
	}
	if e.consul, err = consulapi.NewClient(&consulapi.Config{Address: e.consulURL}); err != nil {
		t.Fatal(err)
	}
	nodes, _, err := e.nomad.Nodes().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	agentCfg := ""
	if setup.orchestrator != nil {
		agentCfg += setup.orchestrator(e)
	}
	e.agentCfg = filepath.Join(e.dir, "agent.hcl")
	if err := os.WriteFile(e.agentCfg, []byte(agentCfg), 0o644); err != nil {
		t.Fatal(err)
	}
	stopWatch := func() {}
	t.Cleanup(func() { stopWatch(); e.stopAgents() })
	for _, n := range nodes {
		if err := e.startAgent(n.ID); err != nil {
			t.Fatal(err)
		}
	}
	if setup.watchNodes {
		stopWatch = e.watchNodes(ctx)
	}
	var leader leaderapi.Record
	wait.UntilEvery(t, 30*time.Second, 500*time.Millisecond, "a leader", func() bool {
		l, ok, err := leaderapi.Current(context.Background(), e.consul, "")
		leader = l
		return ok && err == nil
	})
	e.leaderURL = leader.HTTP
	e.shipHistory(ctx, leader.GRPC)
	return e
}

// startAgent starts the agent that speaks for node, once.
func (e *e2e) startAgent(node string) error {
	e.agentsMu.Lock()
	defer e.agentsMu.Unlock()
	if e.agents[node] {
		return nil
	}
	i := len(e.stops)
	bind, err := findFreePort()
	if err != nil {
		return err
	}
	args := []string{"agent", "-sim", "-config", e.agentCfg, "-node-id", node, "-bind", bind,
		"-data-dir", filepath.Join(e.dir, fmt.Sprintf("data%d", i)), "-sample-interval", e.setup.sampleInterval}
	if e.setup.speed != 1 {
		args = append(args, "-sim-clock")
	}
	stop, err := e.spawn(fmt.Sprintf("agent%d", i), e.foresight, args...)
	if err != nil {
		return err
	}
	e.agents[node] = true
	e.stops = append(e.stops, stop)
	return nil
}

// stopAgents stops every agent, all at once.
func (e *e2e) stopAgents() {
	e.agentsMu.Lock()
	stops := e.stops
	e.stops = nil
	e.agentsMu.Unlock()
	var wg sync.WaitGroup
	for _, stop := range stops {
		wg.Go(stop)
	}
	wg.Wait()
}

// watchNodes starts an agent on every node Nomad lists that has none, until
// the returned stop is called.
func (e *e2e) watchNodes(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			nodes, _, err := e.nomad.Nodes().List((&nomadapi.QueryOptions{}).WithContext(ctx))
			if err != nil {
				continue
			}
			for _, n := range nodes {
				if n.Status != nomadapi.NodeStatusDown && ctx.Err() == nil {
					if err := e.startAgent(n.ID); err != nil {
						e.t.Logf("agent for node %s: %v (retried)", n.ID, err)
					}
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// run starts a process for the rest of the test, its output in a log file
// shown when the test fails.
func (e *e2e) run(name, bin string, args ...string) {
	e.t.Helper()
	stop, err := e.spawn(name, bin, args...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(stop)
}

// spawn starts a process, its output in a log file, and returns what stops
// it: an interrupt, so that it stops the plugins it started, then a kill if
// it has not exited within seconds. The log's tail is shown when the test
// failed.
func (e *e2e) spawn(name, bin string, args ...string) (stop func(), err error) {
	logFile, err := os.Create(filepath.Join(e.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "NOMAD_ADDR="+e.nomadURL, "CONSUL_HTTP_ADDR="+e.consulURL)
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	return func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second): // a hang guard
			_ = cmd.Process.Kill()
			<-exited
		}
		logFile.Close()
		if e.t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			e.t.Logf("--- %s log (tail) ---\n%s", name, b)
		}
	}, nil
}

// shipHistory sends the five recorded days before sim's start to the
// leader, through an agent's durable buffer and shipper, one sample per
// minute and group, and waits until the leader serves them.
func (e *e2e) shipHistory(ctx context.Context, grpcAddr string) {
	t := e.t
	t.Helper()
	buf, err := buffer.Open(filepath.Join(e.dir, "history.db"), buffer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { buf.Close() })
	sh, err := ship.New(ship.Config{AgentID: "recorded-history", NodeID: "recorded-history", Buffer: buf,
		Resolve: func(context.Context) (string, error) { return grpcAddr, nil }})
	if err != nil {
		t.Fatal(err)
	}
	var batch []telemetry.Sample
	for i, v := range e.history {
		at := e.start.Add(-time.Duration(len(e.history)-i) * time.Minute)
		for _, g := range e.groups {
			batch = append(batch, telemetry.Sample{Time: at, Group: g, Alloc: "recorded", Task: "main",
				Metric: "cpu_mhz", Value: v * e2eScale})
		}
		if len(batch) >= 4000 || i == len(e.history)-1 {
			if _, err := sh.Enqueue(batch); err != nil {
				t.Fatal(err)
			}
			batch = nil
		}
	}
	shipCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = sh.Run(shipCtx) }()
	t.Cleanup(func() { stop(); <-done })
	leader := e.leaderClient(t)
	wait.UntilEvery(t, 60*time.Second, 500*time.Millisecond, "the leader to hold the recorded history", func() bool {
		n := 0
		for _, g := range e.groups {
			series, err := leader.Series(ctx, g, "cpu_mhz", e.start.Add(-time.Duration(len(e.history)-30)*time.Minute), e.start, time.Hour)
			pts := series.Points
			if err == nil && len(pts) > 1 && pts[0].Slots > 0 && pts[len(pts)-1].Slots > 0 {
				n++
			}
		}
		return n == len(e.groups)
	})
}

// leaderClient is a client of the leader's API.
func (e *e2e) leaderClient(t *testing.T) *leaderapi.Client {
	t.Helper()
	c, err := leaderapi.New(leaderapi.Config{Address: e.leaderURL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// demandSince is the highest demand the trace has played since start, in
// MHz: what a strategy that only looks at the present could ask for.
func (e *e2e) demandSince(to time.Time) float64 {
	m := 0.0
	for d := time.Duration(0); d <= to.Sub(e.start)+time.Minute; d += 5 * time.Second {
		m = math.Max(m, e.trace.At(d)*e2eScale)
	}
	return m
}

// startAutoscaler runs the real Nomad Autoscaler against sim, with our
// plugins in its plugin_dir, the Nomad policy source and a folder with the
// file policies (name → HCL).
func (e *e2e) startAutoscaler(autoscaler, pluginDir string, files map[string]string) {
	t := e.t
	t.Helper()
	policies := filepath.Join(e.dir, "policies")
	if err := os.MkdirAll(policies, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(policies, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	config := fmt.Sprintf(`log_level  = "debug"
plugin_dir = %q

http {
  bind_address = "127.0.0.1"
  bind_port    = %s
}

nomad {
  address = %q
}

policy {
  dir                         = %q
  default_evaluation_interval = "5s"
  default_cooldown            = "10s"
}

apm "foresight-apm" {
  driver = "foresight-apm"
  config = {
    address = %q
  }
}

strategy "foresight-strategy" {
  driver = "foresight-strategy"
  config = {
    address = %q
  }
}

target "foresight-target" {
  driver = "foresight-target"
  config = {
    address = %q
  }
}
`, pluginDir, strings.Split(freePort(t), ":")[1], e.nomadURL, policies, e.leaderURL, e.leaderURL, e.leaderURL)
	configFile := filepath.Join(e.dir, "autoscaler.hcl")
	if err := os.WriteFile(configFile, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	e.run("autoscaler", autoscaler, "agent", "-config", configFile)
}

// peakPolicy is a job's scaling policy (as Nomad serves it to the
// autoscaler) whose check scales on foresight-strategy with the given
// config, and an optional target block.
func peakPolicy(job string, strategy map[string]any, target map[string]any) map[string]any {
	p := map[string]any{
		"evaluation_interval": "5s",
		"cooldown":            "10s",
		"check": []any{map[string]any{"peak": []any{map[string]any{
			"source": "foresight-apm", "query": "usage:default/" + job + "/" + job + ":cpu_mhz", "query_window": "10m",
			"strategy": []any{map[string]any{"foresight-strategy": []any{strategy}}},
		}}}},
	}
	if target != nil {
		p["target"] = []any{map[string]any{"foresight-target": []any{target}}}
	}
	return p
}

// TestAutoscalerScalesAheadOfDailyPeak runs the real Nomad Autoscaler with
// foresight-strategy and foresight-apm against sim and real agents: (a) a
// job's scaling policy (the Nomad policy source) whose strategy asks the
// leader, and (b) a file policy whose strategy forecasts from
// foresight-apm's usage query; both through the autoscaler's nomad-target.
func TestAutoscalerScalesAheadOfDailyPeak(t *testing.T) {
	autoscaler := autoscalerBinary(t)
	foresight, pluginDir := buildBinaries(t)
	e := startE2E(t, foresight,
		e2eJob{name: "web", policy: peakPolicy("web", map[string]any{
			"source": "leader", "group": "default/web/web", "target": e2eTarget, "horizon": "2h"}, nil)},
		e2eJob{name: "api"})
	// (b): a file policy; the strategy forecasts from the metrics
	// foresight-apm serves (six days of the group's demand).
	e.startAutoscaler(autoscaler, pluginDir, map[string]string{"api.hcl": fmt.Sprintf(`scaling "api" {
  enabled = true
  type    = "horizontal"
  min     = 1
  max     = 20

  policy {
    evaluation_interval = "5s"
    cooldown            = "10s"

    check "peak" {
      source       = "foresight-apm"
      query        = "usage:default/api/api:cpu_mhz"
      query_window = "144h"

      strategy "foresight-strategy" {
        target  = %d
        horizon = "2h"
        step    = "5m"
      }
    }

    target "nomad-target" {
      Job   = "api"
      Group = "api"
    }
  }
}
`, e2eTarget)})

	// Both groups must reach a count that only the coming peak justifies.
	for _, job := range []string{"web", "api"} {
		var count int
		wait.UntilEvery(t, 90*time.Second, 500*time.Millisecond, job+"'s count to rise ahead of the peak", func() bool {
			st, _, err := e.nomad.Jobs().ScaleStatus(job, nil)
			if err != nil {
				return false
			}
			count = st.TaskGroups[job].Desired
			return count >= e2eAhead
		})
		now := time.Now()
		present := e.demandSince(now)
		if need := int(math.Ceil(present / e2eTarget)); need >= e2eAhead {
			t.Fatalf("%s: the demand so far (%.0f MHz) already needs %d instances: the test no longer shows scaling ahead", job, present, need)
		}
		st, _, err := e.nomad.Jobs().ScaleStatus(job, nil)
		if err != nil {
			t.Fatal(err)
		}
		var reasons []string
		forecastReason := false
		for _, ev := range st.TaskGroups[job].Events {
			reasons = append(reasons, ev.Message)
			forecastReason = forecastReason || strings.Contains(ev.Message, "forecast p90")
		}
		if !forecastReason {
			t.Fatalf("%s: scaling events %q: none says it came from a forecast", job, reasons)
		}
		t.Logf("%s: count %d at %s; the demand so far needs %d; events: %q", job, count, now.Sub(e.start).Round(time.Second),
			int(math.Ceil(present/e2eTarget)), reasons)
	}

	// foresight-apm's forecast query against the same leader sees the peak.
	a := apm.New(hclog.NewNullLogger())
	if err := a.SetConfig(map[string]string{"address": e.leaderURL}); err != nil {
		t.Fatal(err)
	}
	ms, err := a.Query("forecast:default/api/api:cpu_mhz:0.9:2h", sdk.TimeRange{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 24 || !ms[0].Timestamp.After(time.Now().Add(-5*time.Minute)) {
		t.Fatalf("forecast: %d points from %v", len(ms), ms[0].Timestamp)
	}
	top := 0.0
	for _, m := range ms {
		top = math.Max(top, m.Value)
	}
	if present := e.demandSince(time.Now()); top < 1.5*present {
		t.Fatalf("forecast p90 peaks at %.0f MHz over the next 2h, hardly above the %.0f MHz so far", top, present)
	}
}

// TestForesightTargetThroughLeader runs the real Nomad Autoscaler with
// foresight-target as the target of jobs' scaling policies: the action goes
// to the Foresight leader, which writes the count for a group in enforce
// mode and only records it for a group in recommend mode (the target's
// Scale is then a no-op, not an error).
func TestForesightTargetThroughLeader(t *testing.T) {
	autoscaler := autoscalerBinary(t)
	foresight, pluginDir := buildBinaries(t)
	strategy := func(job string) map[string]any {
		return map[string]any{"source": "leader", "group": "default/" + job + "/" + job, "target": e2eTarget, "horizon": "2h"}
	}
	e := startE2E(t, foresight,
		e2eJob{name: "shop", policy: peakPolicy("shop", strategy("shop"), map[string]any{}), meta: map[string]string{"foresight.mode": "enforce"}},
		e2eJob{name: "cart", policy: peakPolicy("cart", strategy("cart"), map[string]any{})})

	e.startAutoscaler(autoscaler, pluginDir, nil)

	leader := e.leaderClient(t)
	decided := func(group string) (string, bool) {
		var list []json.RawMessage
		if err := leader.Do(context.Background(), http.MethodGet, "/v1/decisions", nil, &list); err != nil {
			return "", false
		}
		for _, d := range list {
			if s := string(d); strings.Contains(s, `"`+group+`"`) && strings.Contains(s, "forecast p90") {
				return s, true
			}
		}
		return "", false
	}
	count := func(job string) int {
		j, _, err := e.nomad.Jobs().Info(job, nil)
		if err != nil || len(j.TaskGroups) == 0 || j.TaskGroups[0].Count == nil {
			return -1
		}
		return *j.TaskGroups[0].Count
	}

	// Enforce: the leader writes the count the autoscaler asked for.
	wait.UntilEvery(t, 90*time.Second, 500*time.Millisecond, "the leader to write shop's count from the autoscaler's action", func() bool {
		return count("shop") >= e2eAhead
	})
	if present := e.demandSince(time.Now()); math.Ceil(present/e2eTarget) >= e2eAhead {
		t.Fatalf("the demand so far (%.0f MHz) already needs %d or more", present, e2eAhead)
	}
	if d, ok := decided("default/shop/shop"); !ok {
		t.Fatalf("no decision for shop carries the strategy's reason: %s", d)
	}
	tg := target.New(hclog.NewNullLogger())
	st, err := tg.Status(map[string]string{"address": e.leaderURL, "Namespace": "default", "Job": "shop", "Group": "shop"})
	if err != nil {
		t.Fatal(err)
	}
	last, err := strconv.ParseInt(st.Meta[sdk.TargetStatusMetaKeyLastEvent], 10, 64)
	if err != nil || last < e.start.UnixNano() {
		t.Fatalf("status %+v: want the time of Foresight's count change as the last event", st)
	}

	// Recommend: the leader records the action and writes nothing.
	var d string
	wait.UntilEvery(t, 60*time.Second, 500*time.Millisecond, "the leader to record cart's request", func() bool {
		var ok bool
		d, ok = decided("default/cart/cart")
		return ok
	})
	if n := count("cart"); n != e2eStartCount {
		t.Fatalf("cart is in recommend mode but its count is %d, not %d; decision: %s", n, e2eStartCount, d)
	}
}

// e2eDecision is an entry of the leader's GET /v1/decisions.
type e2eDecision struct {
	Time     time.Time
	Group    string
	Result   orchestrator.Result
	Capacity []orchestrator.CapacityAction
	Error    string
}

// pollUntil polls cond until it holds, and fails with the last state it
// reported when limit (a hang guard) passes first.
func pollUntil(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) string {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, state := cond()
		if ok {
			return state
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %s; last seen: %s", what, limit, state)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestForesightTargetBuysProviderCapacity is issue 8's third must-show:
// the real Nomad Autoscaler, through foresight-target, scales a group up
// while the external pool is full, and the new allocations land on provider
// capacity that Foresight requested, with the Consul weights updated.
//
// One external node holds the group's four allocations of 1000 MHz; a
// provider node group (min 1, max 4, one node of the same size at start,
// a minute of provisioning) is resized by the leader through the real
// foresight-sim-target plugin from its capacity plugin_dir. The group is
// enforced, its Consul service carries the platform meta, and its
// service-defaults say http, as an operator sets them. An agent starts on
// every node that joins, as Foresight's system job would.
//
// The test shows, read with the official clients and sim's node group
// endpoint: the autoscaler's action and the capacity bought in the same
// scale request (the decision and the capacity action share their time),
// the pool grown by exactly the nodes the count lacks and all of them
// ready in Nomad, the external node still full, allocations running on the
// nodes that joined, the passing Consul instances on each platform equal
// to the running allocations there, and the service-splitter, marked as
// Foresight's, weighted by them.
//
// sim runs at 10× with the agents on its clock, so that the leader's
// one-minute profile rounds and the provisioning delay pass in seconds;
// the autoscaler keeps the wall clock. Its cooldowns then see Foresight's
// count change (sim time) in their future and wait longer; the scenario
// needs only its first action.
func TestForesightTargetBuysProviderCapacity(t *testing.T) {
	autoscaler := autoscalerBinary(t)
	foresight, pluginDir := buildBinaries(t)
	capacityDir := capacityPluginDir(t)
	const (
		perNode = 4 // allocations of 1000 MHz on a node of 2 × 2000 MHz
		maxPool = 4
		service = "shop"
	)
	classOf := func(p fingerprint.Platform) string {
		return fingerprint.Traits{Platform: p, Storage: fingerprint.StorageSSD,
			MemTier: fingerprint.MemTierOf(16384<<20, 2), NetTier: fingerprint.NetTierOf(10000)}.Class()
	}
	external, provider := classOf(fingerprint.PlatformExternal), classOf(fingerprint.PlatformProvider)
	setup := e2eSetup{
		nodeGroups: fmt.Sprintf(`node_group "rack" {
  platform   = "external"
  count      = 1
  node_class = "rack"
  cpu_mhz    = 2000
  cores      = 2
  memory_mb  = 16384
  disk_mb    = 20000
}

node_group "cloud" {
  platform        = "provider"
  min             = 1
  max             = %d
  count           = 1
  provision_delay = "1m"
  node_class      = "cloud"
  cpu_mhz         = 2000
  cores           = 2
  memory_mb       = 16384
  disk_mb         = 20000
}
`, maxPool),
		speed: 10, sampleInterval: "20s", watchNodes: true,
		orchestrator: func(e *e2e) string {
			return fmt.Sprintf(`
orchestrator {
  decision_interval = "15s"
  lead_time         = "1m"
  plugin_dir        = %q

  routing {
    enabled = true
  }

  capacity "cloud" {
    driver         = "foresight-sim-target"
    config         = { address = %q }
    target         = { node_group = "cloud" }
    classes        = [%q]
    min            = 1
    max            = %d
    scale_in_delay = "30m"
  }
}
`, capacityDir, e.nomadURL, provider, maxPool)
		},
	}
	e := startE2EWith(t, foresight, setup, e2eJob{name: "shop", service: true, maxParallel: e2eStartCount,
		policy: peakPolicy("shop", map[string]any{"source": "leader", "group": "default/shop/shop", "target": e2eTarget, "horizon": "2h"}, map[string]any{}),
		meta:   map[string]string{"foresight.mode": "enforce"}})
	// The operator lets Consul split the service's traffic.
	if _, _, err := e.consul.ConfigEntries().Set(&consulapi.ServiceConfigEntry{
		Kind: consulapi.ServiceDefaults, Name: service, Protocol: "http"}, nil); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	leader := e.leaderClient(t)
	decisions := func() []e2eDecision {
		var list []e2eDecision
		if err := leader.Do(ctx, http.MethodGet, "/v1/decisions", nil, &list); err != nil {
			return nil
		}
		return list
	}
	pool := func() (sim.NodeGroupStatus, error) {
		var g sim.NodeGroupStatus
		resp, err := http.Get(e.nomadURL + "/v1/sim/nodegroups/cloud")
		if err != nil {
			return g, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return g, fmt.Errorf("GET /v1/sim/nodegroups/cloud: %s", resp.Status)
		}
		return g, json.NewDecoder(resp.Body).Decode(&g)
	}
	// splitter reads the service's service-splitter: percent by subset,
	// and its meta.
	splitter := func() (map[string]float64, map[string]string, error) {
		entry, _, err := e.consul.ConfigEntries().Get(consulapi.ServiceSplitter, service, nil)
		if err != nil {
			return nil, nil, err
		}
		spl, ok := entry.(*consulapi.ServiceSplitterConfigEntry)
		if !ok {
			return nil, nil, fmt.Errorf("service-splitter %s is a %T", service, entry)
		}
		w := map[string]float64{}
		for _, s := range spl.Splits {
			w[s.ServiceSubset] += math.Round(float64(s.Weight)*100) / 100
		}
		return w, spl.Meta, nil
	}
	// Where shop runs, by the platform its agents published for each node
	// (Nomad's node meta), and on which nodes.
	type placement struct {
		count, running, pending int
		platform                map[string]int
		nodes                   map[string]int
	}
	nodePlatform := map[string]string{}
	place := func() (placement, error) {
		p := placement{count: -1, platform: map[string]int{}, nodes: map[string]int{}}
		job, _, err := e.nomad.Jobs().Info("shop", nil)
		if err != nil {
			return p, err
		}
		p.count = *job.TaskGroups[0].Count
		allocs, _, err := e.nomad.Jobs().Allocations("shop", false, nil)
		if err != nil {
			return p, err
		}
		for _, a := range allocs {
			if a.DesiredStatus != nomadapi.AllocDesiredStatusRun {
				continue
			}
			switch a.ClientStatus {
			case nomadapi.AllocClientStatusPending:
				p.pending++
				continue
			case nomadapi.AllocClientStatusRunning:
			default:
				continue
			}
			p.running++
			p.nodes[a.NodeID]++
			if nodePlatform[a.NodeID] == "" {
				n, _, err := e.nomad.Nodes().Info(a.NodeID, nil)
				if err != nil {
					return p, err
				}
				nodePlatform[a.NodeID] = n.Meta["foresight.platform"]
			}
			p.platform[cmp.Or(nodePlatform[a.NodeID], "unknown")]++
		}
		return p, nil
	}

	// Foresight, running before the autoscaler acts, learns the classes
	// and steers shop onto the external node, which its four allocations
	// then fill.
	beforeWeights := pollUntil(t, 60*time.Second, "the leader to steer shop onto the external class, its 4 allocations to run there and the splitter to send them all traffic", func() (bool, string) {
		job, _, err := e.nomad.Jobs().Info("shop", nil)
		if err != nil {
			return false, err.Error()
		}
		steered := false
		for _, a := range job.TaskGroups[0].Affinities {
			steered = steered || a.LTarget == orchestrator.ManagedPrefix+"class}" && a.RTarget == external
		}
		p, err := place()
		if err != nil {
			return false, err.Error()
		}
		state := fmt.Sprintf("affinity to %s: %v; running %v", external, steered, p.platform)
		w, _, err := splitter()
		if err != nil {
			return false, state + "; splitter: " + err.Error()
		}
		state += fmt.Sprintf("; splitter %v", w)
		return steered && p.platform["external"] == perNode && p.running == perNode && len(w) == 1 && w["external"] == 100, state
	})
	before, err := pool()
	if err != nil {
		t.Fatal(err)
	}
	if before.Desired != 1 || before.Ready != 1 {
		t.Fatalf("provider pool before the autoscaler acts: %+v, want 1 node", before)
	}
	startNodes := map[string]bool{}
	nodes, _, err := e.nomad.Nodes().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		startNodes[n.ID] = true
	}

	e.startAutoscaler(autoscaler, pluginDir, nil)

	// The autoscaler asks for more than the external node and the provider
	// node there already hold; the leader writes the count and, in the
	// same request, asks the capacity target for the rest.
	var scaled, bought e2eDecision
	pollUntil(t, 60*time.Second, "the autoscaler's scale-up, and the capacity the leader asked for with it", func() (bool, string) {
		list := decisions()
		state := fmt.Sprintf("%d decisions", len(list))
		for _, d := range list {
			dec := d.Result.Decision
			if d.Group != "default/shop/shop" || !d.Result.Written || dec.Count <= dec.CurrentCount ||
				!strings.Contains(strings.Join(dec.Reasons, "\n"), "forecast p90") {
				continue
			}
			scaled = d
			state = fmt.Sprintf("shop scaled %d → %d at %s: %q", dec.CurrentCount, dec.Count, d.Time.Format(time.RFC3339Nano), dec.Reasons)
			for _, c := range list {
				if c.Time.Equal(d.Time) && len(c.Capacity) > 0 {
					bought = c
					a := c.Capacity[0]
					return a.Scaled(), state + fmt.Sprintf("; capacity: %+v", a)
				}
			}
		}
		return false, state
	})
	dec, action := scaled.Result.Decision, bought.Capacity[0]
	t.Logf("the autoscaler's action: shop %d → %d; reasons %q", dec.CurrentCount, dec.Count, dec.Reasons)
	t.Logf("capacity asked in the same request: %s %s %d → %d nodes: %s", action.Target, action.Driver, action.From, action.To, action.Reason)
	if dec.Count <= 2*perNode {
		t.Fatalf("the autoscaler asked for %d, which the external node and the provider node already hold", dec.Count)
	}
	if dec.Capacity == nil || dec.Capacity.Class != provider {
		t.Fatalf("shop's decision requests %+v, want capacity on %s", dec.Capacity, provider)
	}
	if action.Target != "cloud" || action.Driver != "foresight-sim-target" || action.Class != provider || action.From != 1 || action.To <= 1 {
		t.Fatalf("capacity action %+v: want target cloud (foresight-sim-target) on %s grown from 1 node", action, provider)
	}

	// The new nodes join, the pending allocations land on them, and the
	// splitter follows the instances on each platform.
	var (
		grown   sim.NodeGroupStatus
		settled placement
		weights map[string]float64
		passing map[string]int
	)
	pollUntil(t, 60*time.Second, "the new provider nodes to run shop's allocations and the service-splitter to follow", func() (bool, string) {
		var err error
		if grown, err = pool(); err != nil {
			return false, err.Error()
		}
		if settled, err = place(); err != nil {
			return false, err.Error()
		}
		state := fmt.Sprintf("pool %d desired / %d ready; shop count %d, running %v (%d pending)",
			grown.Desired, grown.Ready, settled.count, settled.platform, settled.pending)
		entries, _, err := e.consul.Health().Service(service, "", true, nil)
		if err != nil {
			return false, state + "; " + err.Error()
		}
		passing = map[string]int{}
		for _, en := range entries {
			passing[cmp.Or(en.Service.Meta["foresight_platform"], "none")]++
		}
		state += fmt.Sprintf("; passing in Consul %v", passing)
		var meta map[string]string
		if weights, meta, err = splitter(); err != nil {
			return false, state + "; splitter: " + err.Error()
		}
		state += fmt.Sprintf("; splitter %v (meta %v)", weights, meta)
		if grown.Desired <= 1 || grown.Ready != grown.Desired || settled.pending > 0 || settled.running != settled.count ||
			settled.platform["provider"]+settled.platform["external"] != settled.running ||
			passing["external"] != settled.platform["external"] || passing["provider"] != settled.platform["provider"] {
			return false, state
		}
		for _, p := range []string{"external", "provider"} {
			want := 100 * float64(settled.platform[p]) / float64(settled.running)
			if math.Abs(weights[p]-want) > orchestrator.DefaultWeightTolerance {
				return false, state
			}
		}
		return meta[orchestrator.ManagedByMeta] == orchestrator.ManagedByValue, state
	})
	var actions []string
	for _, d := range decisions() {
		for _, a := range d.Capacity {
			actions = append(actions, fmt.Sprintf("sim +%s: %d → %d (%s)", d.Time.Sub(e.start).Round(time.Second), a.From, a.To, a.Reason))
		}
	}
	t.Logf("capacity actions: %q", actions)
	onNew := 0
	for node, n := range settled.nodes {
		if !startNodes[node] {
			onNew += n
		}
	}
	t.Logf("before the autoscaler: %s", beforeWeights)
	t.Logf("provider pool %d → %d nodes (%d ready); shop: %d running, %v by platform, %d on nodes that joined; Consul passing %v; splitter %v",
		before.Desired, grown.Desired, grown.Ready, settled.running, settled.platform, onNew, passing, weights)
	if settled.platform["external"] != perNode {
		t.Fatalf("shop runs %d allocations on the external node, want it full with %d", settled.platform["external"], perNode)
	}
	if onNew == 0 {
		t.Fatalf("no allocation of shop runs on the provider nodes that joined; by node: %v", settled.nodes)
	}
	// The provider node there at start holds perNode of the count, the
	// ones bought the rest; one more would be capacity bought twice.
	if need := max(1, (settled.count-1)/perNode); grown.Desired != need {
		t.Fatalf("provider pool at %d nodes for %d allocations beyond the external node's %d, want %d", grown.Desired, settled.count-perNode, perNode, need)
	}
	ready := 0
	nodes, _, err = e.nomad.Nodes().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.NodeClass == "cloud" && n.Status == nomadapi.NodeStatusReady {
			ready++
		}
	}
	if ready != grown.Desired {
		t.Fatalf("Nomad lists %d ready provider nodes, the pool says %d", ready, grown.Desired)
	}
}
