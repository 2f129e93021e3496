package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/foresight-nomad/foresight/agent"
)

func runAgent(args []string, _, stderr io.Writer) int {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: foresight agent [-config FILE] [flags]")
		fmt.Fprintln(stderr, "\nRuns the Foresight agent: samples this node's tasks, ships them to the leader, and leads when elected.")
		fmt.Fprintln(stderr, "Nomad and Consul are found through NOMAD_ADDR, NOMAD_TOKEN, CONSUL_HTTP_ADDR and CONSUL_HTTP_TOKEN.")
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "", "agent config file (HCL); flags override it")
	nodeID := fs.String("node-id", "", "Nomad node this agent speaks for (default: the local Nomad client's)")
	bind := fs.String("bind", "", "HOST:PORT of the HTTP API, dashboard and /metrics (default "+agent.DefaultBind+")")
	grpcBind := fs.String("grpc-bind", "", "HOST:PORT of the leader's ingest (default: the port after -bind)")
	advertise := fs.String("advertise", "", "host other agents and the CLI dial to reach this one")
	dataDir := fs.String("data-dir", "", "where the telemetry buffer lives (default "+agent.DefaultDataDir+")")
	simMode := fs.Bool("sim", false, "read disk, network and pressure stall from a simulated cluster instead of the host")
	simClock := fs.Bool("sim-clock", false, "with -sim: follow the simulated cluster's virtual clock (for a sim at a -speed other than 1)")
	logLevel := fs.String("log-level", "", "trace, debug, info, warn or error (default info)")
	interval := fs.String("sample-interval", "", "how often every task is sampled (default 10s)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	cfg := &agent.Config{}
	if *configPath != "" {
		var err error
		if cfg, err = agent.LoadConfig(*configPath); err != nil {
			fmt.Fprintf(stderr, "foresight agent: %v\n", err)
			return exitError
		}
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&cfg.NodeID, *nodeID)
	set(&cfg.Bind, *bind)
	set(&cfg.GRPCBind, *grpcBind)
	set(&cfg.Advertise, *advertise)
	set(&cfg.DataDir, *dataDir)
	set(&cfg.LogLevel, *logLevel)
	set(&cfg.SampleInterval, *interval)
	if *simMode {
		if cfg.Sim == nil {
			cfg.Sim = &agent.SimConfig{}
		}
		cfg.Sim.Enabled = true
	}
	settings, err := cfg.Resolve()
	if err != nil {
		fmt.Fprintf(stderr, "foresight agent: %v\n", err)
		return exitError
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "agent", Level: hclog.LevelFromString(settings.LogLevel), Output: stderr})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := agent.Options{Logger: log}
	if *simClock {
		if opts.Clock, err = followSimClock(ctx, settings, log); err != nil {
			fmt.Fprintf(stderr, "foresight agent: %v\n", err)
			return exitError
		}
	}
	a, err := agent.New(settings, opts)
	if err != nil {
		fmt.Fprintf(stderr, "foresight agent: %v\n", err)
		return exitError
	}
	if err := a.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "foresight agent: %v\n", err)
		return exitError
	}
	return exitOK
}
