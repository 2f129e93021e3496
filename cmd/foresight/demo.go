package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/agent"
	"github.com/foresight-nomad/foresight/agent/node/sampler"
	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/leaderapi"
	"github.com/foresight-nomad/foresight/sim"
)

// demoNodeScan is how often, in wall time, the demo looks for nodes that
// joined (provider capacity) to give them an agent, as Nomad would place a
// system job's allocation on them.
const demoNodeScan = 2 * time.Second

// runDemo runs a whole Foresight installation in one process: sim serving
// the Nomad and Consul APIs on a sped-up clock, one agent per node (the one
// that wins the election leads), and the leader's dashboard.
//
// The agents run in this process, not as child processes: they share sim's
// virtual clock directly (no clock to keep in step over HTTP), one signal
// stops everything in order (agents first, while sim still answers their
// goodbyes; then sim), and nothing can be orphaned. Each agent is still a
// complete agent with its own listeners, buffer and Consul session, talking
// to sim only through the Nomad and Consul HTTP APIs.
func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: foresight demo [-config FILE] [-agent-config FILE] [-speed N] [-bind HOST:PORT] [-nomad-addr HOST:PORT] [-consul-addr HOST:PORT]")
		fmt.Fprintln(stderr, "\nRuns a simulated cluster with one Foresight agent per node and the leader's dashboard.")
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "examples/sim/hybrid.hcl", "sim cluster file (HCL)")
	agentConfig := fs.String("agent-config", "", "agent config file (HCL) every agent starts from, e.g. an orchestrator block; node, addresses and data dir are the demo's")
	speed := fs.Float64("speed", 60, "virtual seconds per real second")
	bind := fs.String("bind", "127.0.0.1:7460", "HOST:PORT of the first agent's HTTP API and dashboard (its ingest takes the next port)")
	nomadAddr := fs.String("nomad-addr", "127.0.0.1:4646", "address to serve the simulated Nomad API on")
	consulAddr := fs.String("consul-addr", "127.0.0.1:8500", "address to serve the simulated Consul API on")
	dataDir := fs.String("data-dir", "", "where the agents keep their buffers (default: a temporary folder, removed on exit)")
	seed := fs.Uint64("seed", 1, "sim's seed for IDs and ports")
	logLevel := fs.String("log-level", "warn", "log level of sim and the agents: trace, debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	if *speed <= 0 {
		fmt.Fprintf(stderr, "foresight demo: -speed must be positive, not %g\n", *speed)
		return exitUsage
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "demo", Level: hclog.LevelFromString(*logLevel), Output: stderr})
	base, err := demoAgentConfig(*agentConfig)
	if err != nil {
		fmt.Fprintf(stderr, "foresight demo: %v\n", err)
		return exitError
	}
	if err := demo(demoOptions{
		Config: *configPath, Agent: base, Speed: *speed, Bind: *bind, NomadAddr: *nomadAddr, ConsulAddr: *consulAddr,
		DataDir: *dataDir, Seed: *seed, LogLevel: *logLevel, Log: log, Out: stdout,
	}); err != nil {
		fmt.Fprintf(stderr, "foresight demo: %v\n", err)
		return exitError
	}
	return exitOK
}

// demoOptions are the demo's flags.
type demoOptions struct {
	Config                string
	Agent                 agent.Config
	Speed                 float64
	Bind                  string
	NomadAddr, ConsulAddr string
	DataDir               string
	Seed                  uint64
	LogLevel              string
	Log                   hclog.Logger
	Out                   io.Writer
}

func demo(o demoOptions) error {
	cfg, err := sim.LoadConfig(o.Config)
	if err != nil {
		return err
	}
	dataDir := o.DataDir
	if dataDir == "" {
		if dataDir, err = os.MkdirTemp("", "foresight-demo-"); err != nil {
			return err
		}
		defer os.RemoveAll(dataDir)
	}
	signals, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Sim outlives the agents, so that they can release their sessions
	// and locks as they stop.
	simCtx, stopSim := context.WithCancel(context.Background())
	defer stopSim()
	s, err := startSim(simCtx, cfg, simOptions{NomadAddr: o.NomadAddr, ConsulAddr: o.ConsulAddr, Seed: o.Seed, Log: o.Log.Named("sim")})
	if err != nil {
		return err
	}
	defer s.Close()
	clockDone := make(chan struct{})
	go func() {
		defer close(clockDone)
		s.Cluster.Run(simCtx, o.Speed)
	}()

	nomad, err := nomadapi.NewClient(&nomadapi.Config{Address: "http://" + s.NomadAddr})
	if err != nil {
		return err
	}
	fleet := &demoFleet{opts: o, sim: s, dataDir: dataDir, started: map[string]bool{}}
	defer fleet.wait()
	agents, stopAgents := context.WithCancel(signals)
	defer stopAgents() // before the wait above, on an early return

	// The first agent listens where the dashboard URL says; it starts
	// alone so that it wins the election and serves the dashboard itself
	// (any other agent would redirect to it).
	nodes, _, err := nomad.Nodes().List(nil)
	if err != nil {
		return fmt.Errorf("list sim's nodes: %w", err)
	}
	if len(nodes) == 0 {
		return errors.New("the cluster file has no nodes at start")
	}
	first, err := fleet.start(agents, nodes[0].ID, o.Bind)
	if err != nil {
		return err
	}
	fleet.waitForLeader(agents, first)
	for _, n := range nodes[1:] {
		if _, err := fleet.start(agents, n.ID, "127.0.0.1:0"); err != nil {
			return err
		}
	}
	fmt.Fprintf(o.Out, `Foresight demo: a simulated cluster of %d nodes and %d jobs, clock x%g, one agent per node.

  Dashboard:  http://%s/ui/
  Nomad API:  http://%s
  Consul API: http://%s

Point the CLIs at it:

  export NOMAD_ADDR=http://%s
  export CONSUL_HTTP_ADDR=%s
  export FORESIGHT_ADDR=http://%s
  nomad job status
  foresight plan

Decisions appear on the dashboard within a minute or two. Press Ctrl-C to stop.
`, len(nodes), len(cfg.Jobs), o.Speed, first.HTTPAddr(), s.NomadAddr, s.ConsulAddr, s.NomadAddr, s.ConsulAddr, first.HTTPAddr())

	// Nodes that join later (provider capacity) get their agent too.
	for {
		select {
		case <-signals.Done():
			stop() // a second Ctrl-C kills at once
			fmt.Fprintln(o.Out, "Stopping the agents and the simulated cluster…")
			fleet.wait()
			stopSim()
			<-clockDone
			return nil
		case <-time.After(demoNodeScan):
		}
		nodes, _, err := nomad.Nodes().List(nil)
		if err != nil {
			o.Log.Warn("list nodes", "error", err)
			continue
		}
		for _, n := range nodes {
			if n.Status == nomadapi.NodeStatusReady {
				if _, err := fleet.start(agents, n.ID, "127.0.0.1:0"); err != nil {
					o.Log.Warn("start agent", "node", n.ID, "error", err)
				}
			}
		}
	}
}

// demoAgentConfig reads the agents' common config, if any. A capacity
// target's plugin is looked for beside the foresight binary unless the file
// names a plugin_dir: `make build` puts foresight-sim-target there.
func demoAgentConfig(path string) (agent.Config, error) {
	if path == "" {
		return agent.Config{}, nil
	}
	cfg, err := agent.LoadConfig(path)
	if err != nil {
		return agent.Config{}, err
	}
	if o := cfg.Orchestrator; o != nil && len(o.Capacity) > 0 && o.PluginDir == "" {
		exe, err := os.Executable()
		if err != nil {
			return agent.Config{}, fmt.Errorf("find the plugins beside this binary: %w", err)
		}
		o.PluginDir = filepath.Dir(exe)
	}
	if _, err := cfg.Resolve(); err != nil {
		return agent.Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return *cfg, nil
}

// demoFleet is the demo's agents, one per node.
type demoFleet struct {
	opts    demoOptions
	sim     *runningSim
	dataDir string

	mu      sync.Mutex
	started map[string]bool
	wg      sync.WaitGroup
}

// start runs an agent for the node until ctx ends; nil when the node
// already has one.
func (f *demoFleet) start(ctx context.Context, nodeID, bind string) (*agent.Agent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.started[nodeID] {
		return nil, nil
	}
	grpcBind := ""
	if _, port, _ := net.SplitHostPort(bind); port == "0" {
		grpcBind = "127.0.0.1:0"
	}
	cfg := f.opts.Agent
	cfg.NodeID = nodeID
	cfg.DataDir = filepath.Join(f.dataDir, nodeID)
	cfg.Bind, cfg.GRPCBind, cfg.Advertise = bind, grpcBind, ""
	cfg.LogLevel = f.opts.LogLevel
	cfg.Nomad = &agent.NomadConfig{Address: "http://" + f.sim.NomadAddr}
	cfg.Consul = &agent.ConsulConfig{Address: f.sim.ConsulAddr}
	cfg.Sim = &agent.SimConfig{Enabled: true}
	settings, err := cfg.Resolve()
	if err != nil {
		return nil, err
	}
	// Every agent, and so the leader, follows sim's virtual clock: samples
	// are stamped, and decisions taken, in cluster time.
	a, err := agent.New(settings, agent.Options{Logger: f.opts.Log.Named("agent"), Clock: f.sim.Cluster.Clock()})
	if err != nil {
		return nil, fmt.Errorf("agent for node %s: %w", nodeID, err)
	}
	f.started[nodeID] = true
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		if err := a.Run(ctx); err != nil {
			f.opts.Log.Error("agent stopped", "node", nodeID, "error", err)
		}
	}()
	return a, nil
}

// waitForLeader waits until a leads, a few seconds at most: the demo runs
// on either way, since every agent redirects to the leader.
func (f *demoFleet) waitForLeader(ctx context.Context, a *agent.Agent) {
	client, err := leaderapi.New(leaderapi.Config{Address: "http://" + a.HTTPAddr()})
	if err != nil {
		return
	}
	for range 50 {
		if health, err := client.Health(ctx); err == nil && health.Leader {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// wait waits for every agent to stop.
func (f *demoFleet) wait() { f.wg.Wait() }

// followSimClock is `foresight agent -sim-clock`: the agent's clock reads
// sim's virtual time, kept moving until ctx ends.
func followSimClock(ctx context.Context, s *agent.Settings, log hclog.Logger) (clock.Clock, error) {
	if !s.Sim {
		return nil, errors.New("-sim-clock needs -sim")
	}
	client, err := nomadapi.NewClient(s.NomadConfig())
	if err != nil {
		return nil, fmt.Errorf("nomad client: %w", err)
	}
	clk, err := sampler.NewSimClock(ctx, client, log.Named("simclock"))
	if err != nil {
		return nil, err
	}
	go clk.Run(ctx)
	return clk, nil
}
