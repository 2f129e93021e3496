package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foresight-nomad/foresight/sim"
	"github.com/foresight-nomad/foresight/sim/consul"
)

func runSim(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: foresight sim -config FILE [-nomad-addr HOST:PORT] [-consul-addr HOST:PORT] [-speed N]")
		fmt.Fprintln(stderr, "\nRuns a simulated Nomad and Consul cluster that serves their HTTP APIs.")
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "", "cluster file (HCL) describing nodes, jobs and their traces")
	nomadAddr := fs.String("nomad-addr", "127.0.0.1:4646", "address to serve the Nomad HTTP API on")
	consulAddr := fs.String("consul-addr", "127.0.0.1:8500", "address to serve the Consul HTTP API on")
	speed := fs.Float64("speed", 1, "virtual seconds per real second (60: a simulated minute each second)")
	seed := fs.Uint64("seed", 1, "seed for IDs and ports, so runs can be repeated")
	logLevel := fs.String("log-level", "info", "log level: trace, debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *configPath == "" || fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	if *speed <= 0 {
		fmt.Fprintf(stderr, "foresight sim: -speed must be positive, not %g\n", *speed)
		return exitUsage
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "sim", Level: hclog.LevelFromString(*logLevel), Output: stderr})

	cfg, err := sim.LoadConfig(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "foresight sim: %v\n", err)
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := startSim(ctx, cfg, simOptions{NomadAddr: *nomadAddr, ConsulAddr: *consulAddr, Seed: *seed, Log: log})
	if err != nil {
		fmt.Fprintf(stderr, "foresight sim: %v\n", err)
		return exitError
	}
	defer s.Close()
	fmt.Fprintf(stdout, `Simulated cluster running (%d node groups, %d jobs, clock x%g).

  Nomad API:  http://%s
  Consul API: http://%s

Point the CLIs and clients at it:

  export NOMAD_ADDR=http://%s
  export CONSUL_HTTP_ADDR=%s
`, len(cfg.NodeGroups), len(cfg.Jobs), *speed, s.NomadAddr, s.ConsulAddr, s.NomadAddr, s.ConsulAddr)
	if token := s.Cluster.BootstrapToken(); token != "" {
		// What `nomad acl bootstrap` prints once: the management token.
		fmt.Fprintf(stdout, "  export NOMAD_TOKEN=%s   # ACLs are on: the bootstrap (management) token\n", token)
	}
	fmt.Fprintln(stdout, "\nPress Ctrl-C to stop.")
	s.Cluster.Run(ctx, *speed)
	log.Info("stopping")
	return exitOK
}

// simOptions say where a simulated cluster listens.
type simOptions struct {
	NomadAddr, ConsulAddr string
	Seed                  uint64
	Log                   hclog.Logger
}

// runningSim is a simulated cluster serving its APIs.
type runningSim struct {
	Cluster               *sim.Cluster
	Consul                *consul.Server
	NomadAddr, ConsulAddr string
	servers               []*http.Server
}

// startSim builds the cluster and serves the Nomad and Consul APIs; the
// clock does not move until the caller runs or advances it.
func startSim(ctx context.Context, cfg *sim.Config, opts simOptions) (*runningSim, error) {
	cs := consul.New(consul.Options{Logger: opts.Log.Named("consul"), Datacenter: cfg.NodeGroups[0].Datacenter})
	c, err := sim.New(cfg, sim.Options{Logger: opts.Log.Named("nomad"), Consul: cs, Seed: opts.Seed})
	if err != nil {
		cs.Close()
		return nil, err
	}
	s := &runningSim{Cluster: c, Consul: cs}
	nomadLn, err := net.Listen("tcp", opts.NomadAddr)
	if err != nil {
		cs.Close()
		return nil, fmt.Errorf("listen for the Nomad API: %w", err)
	}
	consulLn, err := net.Listen("tcp", opts.ConsulAddr)
	if err != nil {
		nomadLn.Close()
		cs.Close()
		return nil, fmt.Errorf("listen for the Consul API: %w", err)
	}
	s.NomadAddr, s.ConsulAddr = nomadLn.Addr().String(), consulLn.Addr().String()
	for _, l := range []struct {
		ln net.Listener
		h  http.Handler
	}{{nomadLn, c.Handler()}, {consulLn, cs.Handler()}} {
		srv := &http.Server{Handler: l.h, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
		s.servers = append(s.servers, srv)
		go func() {
			if err := srv.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				opts.Log.Error("serve", "addr", l.ln.Addr().String(), "error", err)
			}
		}()
	}
	return s, nil
}

// Close stops serving; open streams and blocking queries end at once.
func (s *runningSim) Close() {
	shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, srv := range s.servers {
		if err := srv.Shutdown(shutdown); err != nil {
			srv.Close()
		}
	}
	s.Consul.Close()
}
