package main

// End-to-end tests of the leader's decision loop (issue 7): the real
// foresight binary runs `foresight sim` on a sped-up virtual clock and one
// `foresight agent -sim -sim-clock` per node, and the elected leader decides,
// writes jobs, buys and releases provider capacity through the real
// foresight-sim-target plugin (go-plugin, from a plugin_dir), writes Consul
// routing and migrates allocations. Every time below is sim's virtual time
// unless it says wall time; waits are bounded polls in wall time. The three
// tests run in parallel, about two and a half minutes of wall time in all.
//
// To look into a failure: ORCH_KEEP=DIR keeps every process's log in DIR,
// and ORCH_DEBUG=1 logs the daily-cycle test's latest decision for web
// every five sim minutes.

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/agent/node/fingerprint"
	"github.com/foresight-nomad/foresight/internal/wait"
	"github.com/foresight-nomad/foresight/leaderapi"
	"github.com/foresight-nomad/foresight/sim"
)

// simTarget is foresight-sim-target built once into its own plugin_dir.
var simTarget struct {
	sync.Once
	dir string
	err error
}

// plainAgentConfig is the agents' config in the scenarios without provider
// capacity: a decision every simulated minute.
const plainAgentConfig = `
log_level = "info"
orchestrator {
  decision_interval = "1m"
}
`

func simTargetDir(t *testing.T) string {
	t.Helper()
	simTarget.Do(func() {
		// Next to the foresight binary, whose folder TestMain removes.
		simTarget.dir = filepath.Join(filepath.Dir(binary), "plugins")
		if simTarget.err = os.MkdirAll(simTarget.dir, 0o755); simTarget.err != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(simTarget.dir, "foresight-sim-target"), "../foresight-sim-target").CombinedOutput()
		if err != nil {
			simTarget.err = fmt.Errorf("build foresight-sim-target: %v\n%s", err, out)
		}
	})
	if simTarget.err != nil {
		t.Fatal(simTarget.err)
	}
	return simTarget.dir
}

// orchCluster is sim on a sped-up clock with one agent process per node;
// nodes that join later (provider capacity) get their agent as soon as they
// appear, as Nomad places a system job's allocation on them.
type orchCluster struct {
	t          *testing.T
	dir        string
	nomadAddr  string
	consulAddr string
	nomad      *nomadapi.Client
	consul     *consulapi.Client
	agentCfg   string
	sampleIv   string

	mu     sync.Mutex
	procs  []*exec.Cmd // sim first
	logs   []*os.File
	names  []string
	agents map[string]string // node ID → agent base URL
	leader string            // the first agent's URL: it leads

	stopWatch context.CancelFunc
	watchDone chan struct{}
}

// startOrch runs sim on clusterFile at speed and one agent per node with the
// agent config text agentCfg, sampling every sampleInterval of sim time;
// the agent on the first node of leadGroup is started first and waited
// for, so that it leads.
func startOrch(t *testing.T, clusterFile string, speed float64, agentCfg, leadGroup, sampleInterval string) *orchCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: runs sim and real agents for a minute or more")
	}
	c := &orchCluster{t: t, dir: t.TempDir(), nomadAddr: freeAddr(t), consulAddr: freeAddr(t),
		agents: map[string]string{}, sampleIv: sampleInterval}
	t.Cleanup(c.stop)
	if err := c.spawn("sim", "sim", "-config", clusterFile, "-speed", fmt.Sprint(speed),
		"-nomad-addr", c.nomadAddr, "-consul-addr", c.consulAddr, "-log-level", "warn"); err != nil {
		t.Fatal(err)
	}
	var nodes []*nomadapi.NodeListStub
	c.nomad, c.consul, nodes = simClients(t, c.nomadAddr, c.consulAddr, func(n int) bool { return n > 0 })
	c.agentCfg = filepath.Join(c.dir, "agent.hcl")
	if err := os.WriteFile(c.agentCfg, []byte(agentCfg), 0o644); err != nil {
		t.Fatal(err)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	for _, n := range nodes {
		if strings.HasPrefix(n.Name, leadGroup+"-") {
			if err := c.startAgent(n.ID); err != nil {
				t.Fatal(err)
			}
			c.leader = c.agents[n.ID]
			break
		}
	}
	if c.leader == "" {
		t.Fatalf("no node of group %q", leadGroup)
	}
	wait.UntilEvery(t, 30*time.Second, 200*time.Millisecond, "the first agent to lead", func() bool {
		var h struct{ Leader bool }
		return get(c.leader, "/v1/health", &h) == nil && h.Leader
	})
	ctx, cancel := context.WithCancel(context.Background())
	c.stopWatch, c.watchDone = cancel, make(chan struct{})
	go c.watch(ctx)
	return c
}

// spawn starts the foresight binary with args, its output in name.log.
func (c *orchCluster) spawn(name string, args ...string) error {
	cmd, logFile, err := launch(c.dir, name, c.nomadAddr, c.consulAddr, args...)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.procs, c.logs, c.names = append(c.procs, cmd), append(c.logs, logFile), append(c.names, name)
	c.mu.Unlock()
	return nil
}

func (c *orchCluster) startAgent(nodeID string) error {
	c.mu.Lock()
	_, ok := c.agents[nodeID]
	i := len(c.agents)
	c.mu.Unlock()
	if ok {
		return nil
	}
	bind, err := freePorts()
	if err != nil {
		return err
	}
	if err := c.spawn(fmt.Sprintf("agent%d", i), "agent", "-sim", "-sim-clock", "-config", c.agentCfg, "-node-id", nodeID,
		"-bind", bind, "-data-dir", filepath.Join(c.dir, fmt.Sprintf("data%d", i)), "-sample-interval", c.sampleIv); err != nil {
		return err
	}
	c.mu.Lock()
	c.agents[nodeID] = "http://" + bind
	c.mu.Unlock()
	return nil
}

// watch gives every node that appears its agent, until ctx ends.
func (c *orchCluster) watch(ctx context.Context) {
	defer close(c.watchDone)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
		nodes, _, err := c.nomad.Nodes().List((&nomadapi.QueryOptions{}).WithContext(ctx))
		if err != nil {
			continue
		}
		for _, n := range nodes {
			if n.Status != nomadapi.NodeStatusDown {
				_ = c.startAgent(n.ID) // a failure is retried on the next scan
			}
		}
	}
}

// stop ends the watcher, then the agents, then sim, and shows the logs of
// a failed test.
func (c *orchCluster) stop() {
	if c.stopWatch != nil {
		c.stopWatch()
		<-c.watchDone
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.procs) - 1; i >= 0; i-- {
		_ = c.procs[i].Process.Kill()
		_, _ = c.procs[i].Process.Wait()
		c.logs[i].Close()
		if keep := os.Getenv("ORCH_KEEP"); keep != "" {
			b, _ := os.ReadFile(c.logs[i].Name())
			_ = os.MkdirAll(keep, 0o755)
			_ = os.WriteFile(filepath.Join(keep, c.names[i]+".log"), b, 0o644)
		}
		if c.t.Failed() && (i == 0 || c.names[i] == "agent0") {
			b, _ := os.ReadFile(c.logs[i].Name())
			c.t.Logf("--- %s log (last 4000 bytes) ---\n%s", c.names[i], tail(b, 4000))
		}
	}
}

// simStatus is sim's /v1/sim/status.
func (c *orchCluster) simStatus() (sim.SimStatus, error) {
	var st sim.SimStatus
	_, err := c.nomad.Raw().Query("/v1/sim/status", &st, nil)
	return st, err
}

func (c *orchCluster) simNow() time.Time {
	st, err := c.simStatus()
	if err != nil {
		c.t.Fatalf("read sim's clock: %v", err)
	}
	return st.Now
}

// nodeGroup is sim's view of one node group.
type nodeGroup struct {
	Desired, Ready, Provisioning int
}

func (c *orchCluster) nodeGroup(name string) (nodeGroup, error) {
	var g nodeGroup
	_, err := c.nomad.Raw().Query("/v1/sim/nodegroups/"+name, &g, nil)
	return g, err
}

// waitSim waits until sim's clock reaches at, within limit of wall time.
func (c *orchCluster) waitSim(limit time.Duration, at time.Time) {
	c.t.Helper()
	wait.UntilEvery(c.t, limit, 200*time.Millisecond, "sim's clock to reach "+at.Format("15:04:05"), func() bool {
		st, err := c.simStatus()
		return err == nil && !st.Now.Before(at)
	})
}

// decisions is the leader's decision log.
func (c *orchCluster) decisions() ([]leaderapi.Decision, error) {
	var log []leaderapi.Decision
	err := get(c.leader, "/v1/decisions", &log)
	return log, err
}

// cli runs a foresight CLI command against the leader.
func (c *orchCluster) cli(args ...string) string {
	c.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "FORESIGHT_ADDR="+c.leader)
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.t.Fatalf("foresight %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// writeServiceDefaults sets a service's protocol to http, as an operator
// does before Consul may split its traffic.
func (c *orchCluster) writeServiceDefaults(service string) {
	c.t.Helper()
	if _, _, err := c.consul.ConfigEntries().Set(&consulapi.ServiceConfigEntry{
		Kind: consulapi.ServiceDefaults, Name: service, Protocol: "http",
	}, nil); err != nil {
		c.t.Fatalf("write service-defaults %s: %v", service, err)
	}
}

// splitterWeights reads the service-splitter of service: percent by
// subset, nil when there is none.
func (c *orchCluster) splitterWeights(service string) (map[string]float64, error) {
	e, _, err := c.consul.ConfigEntries().Get(consulapi.ServiceSplitter, service, nil)
	if err != nil {
		if se, ok := err.(consulapi.StatusError); ok && se.Code == http.StatusNotFound {
			return nil, nil
		}
		if strings.Contains(err.Error(), "404") {
			return nil, nil
		}
		return nil, err
	}
	spl, ok := e.(*consulapi.ServiceSplitterConfigEntry)
	if !ok {
		return nil, fmt.Errorf("service-splitter %s is a %T", service, e)
	}
	out := map[string]float64{}
	for _, s := range spl.Splits {
		out[s.ServiceSubset] += math.Round(float64(s.Weight)*100) / 100
	}
	return out, nil
}

// placement counts a job's running allocations by the platform of their
// node, from the node meta the agents published; nodePlatform caches it.
type placement struct {
	running map[string]int
}

func (c *orchCluster) placement(job string, nodePlatform map[string]string) (placement, error) {
	p := placement{running: map[string]int{}}
	stubs, _, err := c.nomad.Jobs().Allocations(job, false, nil)
	if err != nil {
		return p, err
	}
	for _, a := range stubs {
		if a.ClientStatus != nomadapi.AllocClientStatusRunning || a.DesiredStatus != nomadapi.AllocDesiredStatusRun {
			continue
		}
		plat, ok := nodePlatform[a.NodeID]
		if !ok {
			n, _, err := c.nomad.Nodes().Info(a.NodeID, nil)
			if err != nil {
				return p, err
			}
			plat = n.Meta["foresight.platform"]
			if plat != "" {
				nodePlatform[a.NodeID] = plat
			}
		}
		p.running[plat]++
	}
	return p, nil
}

// traceDemand is the demand sim's workload model gives a group at elapsed
// time since the cluster's start: the trace, compressed as the cluster
// file says, times the workload's scale.
func traceDemand(t *testing.T, clusterFile, job, group string) func(elapsed time.Duration) float64 {
	t.Helper()
	cfg, err := sim.LoadConfig(clusterFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range cfg.Jobs {
		if *j.Job.ID != job {
			continue
		}
		for _, w := range j.Workloads {
			if w.Group == group {
				return func(e time.Duration) float64 { return w.Trace.At(e) * w.Scale }
			}
		}
	}
	t.Fatalf("%s has no workload %s/%s", clusterFile, job, group)
	return nil
}

// minuteMean is the mean demand over the sim minute that starts at elapsed.
func minuteMean(demand func(time.Duration) float64, elapsed time.Duration) float64 {
	s := 0.0
	for i := range 60 {
		s += demand(elapsed + time.Duration(i)*time.Second)
	}
	return s / 60
}

// cloudClass is the foresight.class the agents publish for the provider
// nodes of orchestrate-daily.hcl (2 × 2000 MHz cores, 16 GiB, ssd, 10 Gbit/s).
func cloudClass() string {
	return fingerprint.Traits{
		Platform: fingerprint.PlatformProvider, Storage: fingerprint.StorageSSD,
		MemTier: fingerprint.MemTierOf(16384<<20, 2), NetTier: fingerprint.NetTierOf(10000),
	}.Class()
}

// TestDailyCycleBuysCapacityAheadOfThePeak plays a real daily cycle
// (crane-input0, Apache-2.0) with its time axis compressed 24× by the
// cluster file's time_scale: one recorded day is one simulated hour (the
// shortest season the forecaster searches on the leader's one-minute
// grid), so the leader holds three cycles of history when the fourth
// day's peak comes, a little over three simulated hours in, about two and
// a half minutes of wall time at -speed 75. (Faster, the agents' view of
// sim's clock, read every 100 ms of wall time, lags by more than the
// store's 10 s slot, and a group's demand, summed over its allocations'
// samples, comes out partial.) The two external nodes hold 8 allocations
// of web; the peak needs about 17, the provider pool starts with one node
// of 4. The test measures, in sim time:
//
//   - after the third day's peak, that the allocations came back to the
//     external nodes, the Consul service-splitter (read with the official
//     client) went back to external only, and the pool shrank back to its
//     min, each node released only after a node's worth of it had been
//     spare for scale_in_delay;
//   - for the fourth day's peak, when the leader asked the pool for a node
//     and when it was ready, against when the demand peaked: the request
//     must come at least one provisioning delay (4 min) before the peak;
//   - that allocations then land on the provider nodes and the splitter
//     gives the provider subset a share.
func TestDailyCycleBuysCapacityAheadOfThePeak(t *testing.T) {
	t.Parallel()
	const (
		clusterFile = "testdata/orchestrate-daily.hcl"
		speed       = 75
		provision   = 4 * time.Minute
		scaleIn     = 3 * time.Minute
		cycle       = time.Hour // one recorded day, compressed 24×
		// allocsPerNode is how many allocations of web a node holds.
		allocsPerNode = 4
	)
	class := cloudClass()
	cfg := fmt.Sprintf(`
log_level = "info"
orchestrator {
  decision_interval = "1m"
  # the pool's provisioning delay (4m), an allocation's start, and the
  # minute a sample takes to reach a sealed step of the leader's store
  lead_time         = "5m"
  plugin_dir        = %q
  capacity "cloud" {
    driver         = "foresight-sim-target"
    target         = { node_group = "cloud" }
    classes        = [%q]
    min            = 1
    max            = 4
    scale_in_delay = "3m"
  }
}
`, simTargetDir(t), class)
	c := startOrch(t, clusterFile, speed, cfg, "onprem", "5s")
	c.writeServiceDefaults("web")
	start := c.simNow().Truncate(time.Minute)
	demand := traceDemand(t, clusterFile, "web", "web")

	// The busiest sim minute of a cycle.
	peakOf := func(day int) (time.Duration, float64) {
		var at time.Duration
		peak := 0.0
		for m := time.Duration(day) * cycle; m < time.Duration(day+1)*cycle; m += time.Minute {
			if v := minuteMean(demand, m); v > peak {
				peak, at = v, m
			}
		}
		return at, peak
	}
	prevPeakAt, _ := peakOf(2)
	peakAt, peak := peakOf(3)
	t.Logf("the demand peaks at %.0f MHz at sim minute %.0f (day 4 of the trace), after one at minute %.0f (day 3)", peak, peakAt.Minutes(), prevPeakAt.Minutes())

	// Follow the run: the pool's size, where web runs, the splitter.
	type sample struct {
		at                 time.Duration
		desired, ready     int
		external, provider int
		weights            map[string]float64
		demand             float64
	}
	var (
		samples  []sample
		platform = map[string]string{}
	)
	end := peakAt + 5*time.Minute
	lastLog := time.Duration(-1)
	wait.UntilEvery(t, 4*time.Minute, 200*time.Millisecond, fmt.Sprintf("sim minute %.0f", end.Minutes()), func() bool {
		now := c.simNow()
		g, err := c.nodeGroup("cloud")
		if err != nil {
			return false
		}
		p, err := c.placement("web", platform)
		if err != nil {
			return false
		}
		w, err := c.splitterWeights("web")
		if err != nil {
			return false
		}
		at := now.Sub(start)
		s := sample{at: at, desired: g.Desired, ready: g.Ready, external: p.running["external"], provider: p.running["provider"],
			weights: w, demand: minuteMean(demand, at.Truncate(time.Minute))}
		samples = append(samples, s)
		if m := at.Truncate(5 * time.Minute); m != lastLog {
			lastLog = m
			t.Logf("sim minute %5.1f: demand %5.0f MHz, pool %d desired / %d ready, web on external %d, provider %d, splitter %v",
				at.Minutes(), s.demand, g.Desired, g.Ready, s.external, s.provider, w)
			if os.Getenv("ORCH_DEBUG") != "" {
				if log, err := c.decisions(); err == nil {
					if d, ok := latest(log, "default/web/web"); ok {
						b, _ := json.Marshal(d)
						t.Logf("  last decision: %s", b)
					}
				}
			}
		}
		return at >= end
	})

	// Every node released was spare for scale_in_delay before: the provider
	// allocations fit one node fewer all along.
	released := 0
	for i := 1; i < len(samples); i++ {
		s, prev := samples[i], samples[i-1]
		if s.at <= prevPeakAt || s.desired >= prev.desired {
			continue
		}
		released++
		for _, w := range samples[:i] {
			if w.at >= s.at-scaleIn && w.provider > allocsPerNode*(w.desired-1) {
				t.Errorf("a node was released at sim minute %.1f, but at %.1f the pool of %d ran %d allocations: not a node spare for scale_in_delay %s",
					s.at.Minutes(), w.at.Minutes(), w.desired, w.provider, scaleIn)
				break
			}
		}
	}

	// Capacity for the day-4 peak: the pool's first scale-up after it last
	// stood at its min, and when that node was ready.
	base := -1
	for i, s := range samples {
		if s.at <= peakAt && s.desired == 1 {
			base = i
		}
	}
	if base < 0 {
		t.Fatalf("the pool never stood at its min before the peak at sim minute %.0f", peakAt.Minutes())
	}
	var upAt, readyAt, fullAt time.Duration = -1, -1, -1
	most := 1
	for _, s := range samples[base:] {
		if s.at > peakAt {
			break
		}
		if upAt < 0 && s.desired > 1 {
			upAt = s.at
		}
		if upAt >= 0 && readyAt < 0 && s.ready > 1 {
			readyAt = s.at
		}
		if s.desired > most {
			most, fullAt = s.desired, s.at
		}
	}
	if upAt < 0 {
		t.Fatalf("the pool was not scaled up for the peak at sim minute %.0f", peakAt.Minutes())
	}
	// After the third day's peak: the pool back at its min, web back on
	// the external nodes and the splitter on external only, before the
	// pool is scaled up for the next peak. (Migration waits while the
	// job's deployment runs, and every count change starts one.)
	back := time.Duration(-1)
	for _, s := range samples {
		if s.at > prevPeakAt && s.at < upAt && s.desired == 1 && s.provider == 0 && s.weights["external"] == 100 {
			back = s.at
			break
		}
	}
	if back < 0 {
		t.Errorf("between the peaks at sim minutes %.0f and %.0f, the pool never stood at its min with web all on external and the splitter at external 100",
			prevPeakAt.Minutes(), peakAt.Minutes())
	} else {
		t.Logf("after the day-3 peak: pool at its min, web all on external, splitter external 100 at sim minute %.1f (%.1f after the peak)", back.Minutes(), (back - prevPeakAt).Minutes())
	}
	if back >= 0 && released == 0 {
		t.Errorf("the pool was at its min after the day-3 peak without ever releasing a node")
	}
	t.Logf("capacity for the day-4 peak: first node asked for at sim minute %.1f and ready at %.1f, the pool at %d nodes from %.1f; the demand peaked at %.1f: asked %.1f sim minutes ahead, ready %.1f ahead",
		upAt.Minutes(), readyAt.Minutes(), most, fullAt.Minutes(), peakAt.Minutes(), (peakAt - upAt).Minutes(), (peakAt - readyAt).Minutes())
	if peakAt-upAt < provision {
		t.Errorf("capacity asked for only %.1f sim minutes before the peak, less than the provisioning delay %s", (peakAt - upAt).Minutes(), provision)
	}
	if readyAt < 0 || readyAt > peakAt {
		t.Errorf("the first new provider node was not ready by the peak (ready at sim minute %.1f)", readyAt.Minutes())
	}

	// Allocations landed on the provider pool, and the splitter followed.
	maxProvider, maxWeight := 0, 0.0
	var share sample
	for _, s := range samples {
		if s.at >= upAt {
			maxProvider = max(maxProvider, s.provider)
			if s.weights["provider"] > maxWeight {
				maxWeight, share = s.weights["provider"], s
			}
		}
	}
	if maxProvider == 0 {
		t.Errorf("no allocation of web ran on the provider pool around the peak")
	}
	if maxWeight == 0 {
		t.Errorf("the service-splitter never gave the provider subset a share around the peak")
	} else {
		t.Logf("splitter at sim minute %.1f: %v with %d external and %d provider instances",
			share.at.Minutes(), share.weights, share.external, share.provider)
		if want := 100 * float64(share.provider) / float64(share.provider+share.external); math.Abs(want-maxWeight) > 15 {
			t.Errorf("the splitter gives provider %.1f%% while %.1f%% of the running instances are there", maxWeight, want)
		}
	}
}

// jobVersion is a job's current version.
func (c *orchCluster) jobVersion(job string) uint64 {
	c.t.Helper()
	j, _, err := c.nomad.Jobs().Info(job, nil)
	if err != nil {
		c.t.Fatalf("read job %s: %v", job, err)
	}
	return *j.Version
}

// latest is the newest decision logged for group, and whether there is one.
func latest(log []leaderapi.Decision, group string) (leaderapi.Decision, bool) {
	for i := len(log) - 1; i >= 0; i-- {
		if log[i].Group == group {
			return log[i], true
		}
	}
	return leaderapi.Decision{}, false
}

// TestRecommendPauseAndBadPolicyWriteNothing runs three groups on a trace
// played 240× faster than recorded (crane-input0, a recorded day in six
// simulated minutes), so that the count the leader wants keeps changing:
//
//   - recommend mode (the default) writes nothing: once the agents have
//     published their node metadata (their only writes, made when a trait
//     changes), sim serves no Nomad write at all over eight decision
//     intervals, although the leader reports changes it would make;
//   - a policy with foresight.min > foresight.max is reported in
//     /v1/decisions with the keys named, and its job is never written;
//   - once the user enforces "moving", the leader writes it; after
//     `foresight pause` and one decision interval, nothing is written for
//     eight intervals while the leader still reports the changes it holds;
//     after `foresight resume` it writes again.
func TestRecommendPauseAndBadPolicyWriteNothing(t *testing.T) {
	t.Parallel()
	const (
		clusterFile = "testdata/orchestrate-safety.hcl"
		speed       = 60
		interval    = time.Minute
		quiet       = 8 * interval
	)
	c := startOrch(t, clusterFile, speed, plainAgentConfig, "onprem", "5s")

	// Every agent has published its node's traits: from here on the agents
	// have nothing to write unless a trait changes.
	wait.UntilEvery(t, 60*time.Second, 200*time.Millisecond, "both nodes' foresight.* metadata", func() bool {
		nodes, _, err := c.nomad.Nodes().List(nil)
		if err != nil {
			return false
		}
		for _, s := range nodes {
			n, _, err := c.nomad.Nodes().Info(s.ID, nil)
			if err != nil || n.Meta["foresight.class"] == "" {
				return false
			}
		}
		return len(nodes) == 2
	})
	// The leader decides: recommend-mode changes and the bad policy are
	// reported.
	var api, bad leaderapi.Decision
	wait.UntilEvery(t, 90*time.Second, 200*time.Millisecond, "decisions for api (a change held by recommend mode) and bad (held by its policy)", func() bool {
		log, err := c.decisions()
		if err != nil {
			return false
		}
		var okA, okB bool
		api, okA = latest(log, "default/api/api")
		bad, okB = latest(log, "default/bad/bad")
		return okA && okB && len(api.Result.Changes) > 0
	})
	if api.Result.Written || !strings.Contains(api.Result.Held, "recommend") {
		t.Fatalf("recommend-mode decision for api: written %v, held %q", api.Result.Written, api.Result.Held)
	}
	hold := bad.Result.Decision.Hold
	if bad.Result.Written || !strings.Contains(hold, "foresight.min") || !strings.Contains(hold, "foresight.max") {
		t.Fatalf("bad policy not reported as such: written %v, hold %q, reasons %v", bad.Result.Written, hold, bad.Result.Decision.Reasons)
	}
	t.Logf("api: %v, held: %s", api.Result.Changes, api.Result.Held)
	t.Logf("bad: %s", hold)

	// Eight intervals in recommend mode: not one Nomad write.
	st, err := c.simStatus()
	if err != nil {
		t.Fatal(err)
	}
	writes, from := st.Writes, st.Now
	versions := map[string]uint64{"api": c.jobVersion("api"), "moving": c.jobVersion("moving"), "bad": c.jobVersion("bad")}
	c.waitSim(60*time.Second, from.Add(quiet))
	st, err = c.simStatus()
	if err != nil {
		t.Fatal(err)
	}
	log, err := c.decisions()
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	for _, d := range log {
		if d.Time.After(from) && d.Group == "default/api/api" && len(d.Result.Changes) > 0 && !d.Result.Written {
			held++
		}
	}
	t.Logf("recommend mode: %d Nomad writes in %s of sim time from %s, with %d changes for api reported and held",
		st.Writes-writes, st.Now.Sub(from).Round(time.Second), from.Format("15:04:05"), held)
	if st.Writes != writes {
		t.Errorf("sim served %d Nomad writes in recommend mode (agents' metadata was already published)", st.Writes-writes)
	}
	// The log keeps one entry per unchanged recommendation, so a change
	// held all along may have been logged before the quiet period: the
	// plan, decided now, shows it is still wanted and still not written.
	var plan []leaderapi.Decision
	if err := get(c.leader, "/v1/plan", &plan); err != nil {
		t.Fatal(err)
	}
	pending, _ := latest(plan, "default/api/api")
	if held == 0 && len(pending.Result.Changes) == 0 {
		t.Errorf("no change held for api in recommend mode: the quiet period proves nothing")
	}
	for job, v := range versions {
		if got := c.jobVersion(job); got != v {
			t.Errorf("job %s went from version %d to %d in recommend mode", job, v, got)
		}
	}

	// The user enforces "moving"; the leader writes it.
	job, _, err := c.nomad.Jobs().Info("moving", nil)
	if err != nil {
		t.Fatal(err)
	}
	job.Meta["foresight.mode"] = "enforce"
	if _, _, err := c.nomad.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	userVersion := c.jobVersion("moving")
	wait.UntilEvery(t, 60*time.Second, 200*time.Millisecond, "the leader to write the enforced job", func() bool {
		j, _, err := c.nomad.Jobs().Info("moving", nil)
		return err == nil && *j.Version > userVersion
	})

	// Pause: after one decision interval, nothing more is written.
	out := c.cli("pause")
	pausedAt := c.simNow()
	t.Logf("foresight pause at %s: %s", pausedAt.Format("15:04:05"), strings.TrimSpace(out))
	c.waitSim(30*time.Second, pausedAt.Add(interval))
	st, err = c.simStatus()
	if err != nil {
		t.Fatal(err)
	}
	writes, from = st.Writes, st.Now
	v := c.jobVersion("moving")
	c.waitSim(60*time.Second, from.Add(quiet))
	st, err = c.simStatus()
	if err != nil {
		t.Fatal(err)
	}
	if log, err = c.decisions(); err != nil {
		t.Fatal(err)
	}
	held = 0
	for _, d := range log {
		if d.Time.After(from) && d.Group == "default/moving/moving" && len(d.Result.Changes) > 0 && d.Result.Held == "actuation paused" {
			held++
		}
	}
	t.Logf("paused: %d Nomad writes in %s of sim time, %d changes for moving held by the pause", st.Writes-writes, st.Now.Sub(from).Round(time.Second), held)
	if got := c.jobVersion("moving"); got != v {
		t.Errorf("moving was written while paused: version %d → %d", v, got)
	}
	if st.Writes != writes {
		t.Errorf("sim served %d Nomad writes while actuation was paused", st.Writes-writes)
	}
	if held == 0 {
		t.Errorf("no change for moving was held by the pause: the quiet period proves nothing")
	}

	// Resume: the held change is written.
	c.cli("resume")
	wait.UntilEvery(t, 60*time.Second, 200*time.Millisecond, "a write of moving after resume", func() bool {
		j, _, err := c.nomad.Jobs().Info("moving", nil)
		return err == nil && *j.Version > v
	})
	if got := c.jobVersion("bad"); got != versions["bad"] {
		t.Errorf("the job with a bad policy was written: version %d → %d", versions["bad"], got)
	}
}

// TestMisplacedGroupMovesToItsBestClassAboveDemand runs batch mostly on
// SSD nodes (three allocations of four, as bin-packing places them), while
// it does the same work with half the CPU on the disk nodes: sim's hidden
// workload efficiency, which only what the agents observe can tell (the
// profiler's prior sees no trait that stands out). The group starts in recommend mode, as an
// operator would first watch it; once the leader recommends the disk
// class, the test enforces the group as the operator would, and the leader
// must move its allocations there. At no poll of the run may the running
// allocations' capacity (reservation × the class's efficiency, in the work
// units of the demand) fall below the demand the trace sets at that sim
// time, polled every 20 ms of wall time (under a second of sim time, well
// inside the 10 s an allocation takes to start).
func TestMisplacedGroupMovesToItsBestClassAboveDemand(t *testing.T) {
	t.Parallel()
	const (
		clusterFile = "testdata/orchestrate-migrate.hcl"
		speed       = 30
		reserved    = 1000.0 // MHz per allocation (jobs/orchestrate-batch.json)
		group       = "default/batch/batch"
	)
	c := startOrch(t, clusterFile, speed, plainAgentConfig, "ssd", "5s")
	start := c.simNow()
	demand := traceDemand(t, clusterFile, "batch", "batch")
	simCfg, err := sim.LoadConfig(clusterFile)
	if err != nil {
		t.Fatal(err)
	}
	efficiency := simCfg.Jobs[0].Workloads[0].Efficiency

	nodeClass := map[string]string{}
	classOf := func(node string) string {
		if cl, ok := nodeClass[node]; ok {
			return cl
		}
		n, _, err := c.nomad.Nodes().Info(node, nil)
		if err != nil {
			t.Fatalf("node %s: %v", node, err)
		}
		nodeClass[node] = n.NodeClass
		return n.NodeClass
	}
	var (
		polls, lowest = 0, math.Inf(1)
		lowestAt      time.Duration
	)
	// running counts batch's running allocations by node class.
	running := func() map[string]int {
		stubs, _, err := c.nomad.Jobs().Allocations("batch", false, nil)
		if err != nil {
			t.Fatalf("allocations of batch: %v", err)
		}
		out := map[string]int{}
		for _, a := range stubs {
			if a.ClientStatus == nomadapi.AllocClientStatusRunning && a.DesiredStatus == nomadapi.AllocDesiredStatusRun {
				out[classOf(a.NodeID)]++
			}
		}
		return out
	}
	// check fails the test if the running allocations' capacity is below
	// the demand now.
	check := func() (map[string]int, time.Duration) {
		now := c.simNow()
		running := running()
		capacity := 0.0
		for cl, n := range running {
			e := efficiency[cl]
			if e == 0 {
				e = 1
			}
			capacity += float64(n) * reserved * e
		}
		at := now.Sub(start)
		d := demand(now.Sub(start.Truncate(time.Minute)))
		polls++
		if capacity-d < lowest {
			lowest, lowestAt = capacity-d, at
		}
		if capacity < d {
			t.Fatalf("at sim minute %.1f batch's running allocations %v hold %.0f MHz of work for a demand of %.0f", at.Minutes(), running, capacity, d)
		}
		return running, at
	}
	// Sim starts the allocations 10 s after it places them; the test
	// holds the group to its demand from when all four run.
	var first map[string]int
	wait.UntilEvery(t, 30*time.Second, 200*time.Millisecond, "batch's four allocations to run", func() bool {
		first = running()
		return first["ssd"]+first["hdd"] == 4
	})
	check()
	if first["ssd"] <= first["hdd"] || first["hdd"] == 0 {
		t.Fatalf("setup: batch runs %v, want most of it on ssd and some on hdd", first)
	}
	t.Logf("batch starts on %v", first)

	// Recommend mode: the leader learns, and recommends the disk class,
	// from at least ten minutes of history, so that the forecast the count
	// is sized from has something to go on.
	var rec leaderapi.Decision
	wait.UntilEvery(t, 60*time.Second, 200*time.Millisecond, "the leader to recommend the hdd class for batch", func() bool {
		if _, at := check(); at < 10*time.Minute {
			return false
		}
		log, err := c.decisions()
		if err != nil {
			return false
		}
		d, ok := latest(log, group)
		if ok && strings.Contains(d.Result.Decision.Class, "hdd") {
			rec = d
			return true
		}
		return false
	})
	if rec.Result.Written {
		t.Fatal("a recommend-mode decision was written")
	}
	var view leaderapi.GroupView
	if err := get(c.leader, "/v1/group/"+group, &view); err != nil {
		t.Fatal(err)
	}
	for _, s := range view.Affinity {
		t.Logf("score %s: %.1f (confidence %.2f): %s", s.Class, s.Value, s.Confidence, s.Reason)
	}
	t.Logf("recommended at sim minute %.1f: %v", rec.Time.Sub(start).Minutes(), rec.Result.Decision.Reasons)

	// The operator enforces the group; the leader moves it.
	job, _, err := c.nomad.Jobs().Info("batch", nil)
	if err != nil {
		t.Fatal(err)
	}
	job.Meta["foresight.mode"] = "enforce"
	if _, _, err := c.nomad.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	var movedAt time.Duration
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		running, at := check()
		if running["ssd"] == 0 && running["hdd"] >= 4 {
			movedAt = at
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for batch to run on hdd only: it runs %v at sim minute %.1f", running, at.Minutes())
		}
	}
	log, err := c.decisions()
	if err != nil {
		t.Fatal(err)
	}
	var steer leaderapi.Decision
	for _, d := range log {
		if d.Group == group && d.Result.Written && d.Result.Decision.Rewrite {
			steer = d
		}
	}
	if !strings.Contains(steer.Result.Decision.Class, "hdd") {
		t.Fatalf("no written decision steered batch to the hdd class")
	}
	t.Logf("steered at sim minute %.1f: %v", steer.Time.Sub(start).Minutes(), steer.Result.Decision.Reasons)
	t.Logf("batch runs on hdd only from sim minute %.1f; over %d polls the least margin of capacity over demand was %.0f MHz (sim minute %.1f)",
		movedAt.Minutes(), polls, lowest, lowestAt.Minutes())
}
