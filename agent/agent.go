package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/foresight-nomad/foresight/agent/election"
	"github.com/foresight-nomad/foresight/agent/leader"
	"github.com/foresight-nomad/foresight/agent/node"
	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/leaderapi"
	"github.com/foresight-nomad/foresight/telemetry/wire"
)

// Options are what an Agent needs besides its settings.
type Options struct {
	Logger hclog.Logger
	// Clock drives sampling; the wall clock when nil.
	Clock clock.Clock
	// ProfileRound is the interval one profiler observation covers;
	// DefaultProfileRound when 0.
	ProfileRound time.Duration
	// DecisionInterval is how often the leader decides every group;
	// DefaultDecisionInterval when 0.
	DecisionInterval time.Duration
}

// Agent is one Foresight agent: it samples its node and ships the samples,
// and leads when it holds the election lock.
type Agent struct {
	s     *Settings
	log   hclog.Logger
	clock clock.Clock
	nomad *nomadapi.Client
	// nomadCfg is how nomad was made, for the plugins that inherit it.
	nomadCfg *nomadapi.Config
	consul   *consulapi.Client
	reg      *prometheus.Registry
	pause    *leader.PauseSwitch

	httpLn net.Listener
	// grpcLn is the ingest listener until the first term takes it; later
	// terms listen again on grpcAddr.
	grpcMu   sync.Mutex
	grpcLn   net.Listener
	grpcAddr string
	self     leaderapi.Record

	// term is what the leader role publishes while this agent leads: its
	// API and dashboard, and its metrics; nil while it does not.
	term atomic.Pointer[leader.Published]

	metrics          agentMetrics
	profileRound     time.Duration
	decisionInterval time.Duration
}

// New prepares an agent: clients, listeners and metrics. Nothing runs until
// Run.
func New(s *Settings, opts Options) (*Agent, error) {
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	clk := opts.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	nomadCfg := s.NomadConfig()
	nomad, err := nomadapi.NewClient(nomadCfg)
	if err != nil {
		return nil, fmt.Errorf("nomad client: %w", err)
	}
	consulCfg := consulapi.DefaultConfig()
	if s.Consul.Address != "" {
		consulCfg.Address = s.Consul.Address
	}
	if s.Consul.Token != "" {
		consulCfg.Token = s.Consul.Token
	}
	consul, err := consulapi.NewClient(consulCfg)
	if err != nil {
		return nil, fmt.Errorf("consul client: %w", err)
	}
	a := &Agent{s: s, log: log, clock: clk, nomad: nomad, nomadCfg: nomadCfg, consul: consul, reg: prometheus.NewRegistry(),
		profileRound: opts.ProfileRound, decisionInterval: opts.DecisionInterval}
	if a.decisionInterval <= 0 {
		a.decisionInterval = s.Orchestrator.DecisionInterval
	}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.metrics = newAgentMetrics(a.reg)
	a.pause = leader.NewPauseSwitch(consul, "", log.Named("pause"))
	if a.httpLn, err = net.Listen("tcp", s.Bind); err != nil {
		return nil, fmt.Errorf("listen for HTTP on %s: %w", s.Bind, err)
	}
	if a.grpcLn, err = net.Listen("tcp", s.GRPCBind); err != nil {
		a.httpLn.Close()
		return nil, fmt.Errorf("listen for gRPC on %s: %w", s.GRPCBind, err)
	}
	a.grpcAddr = a.grpcLn.Addr().String()
	return a, nil
}

// HTTPAddr is where the agent's HTTP API listens.
func (a *Agent) HTTPAddr() string { return a.httpLn.Addr().String() }

// GRPCAddr is where the agent's ingest listens when it leads.
func (a *Agent) GRPCAddr() string { return a.grpcAddr }

// Run runs the agent until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	defer a.httpLn.Close()
	defer func() {
		a.grpcMu.Lock()
		defer a.grpcMu.Unlock()
		if a.grpcLn != nil {
			a.grpcLn.Close()
		}
	}()
	nodeID, err := a.nodeID(ctx)
	if err != nil {
		return err
	}
	a.log = a.log.With("node", nodeID)
	host := a.advertiseHost(nodeID)
	scheme := "http://"
	if a.s.TLSEnabled() {
		scheme = "https://"
	}
	a.self = leaderapi.Record{
		ID:   nodeID,
		HTTP: scheme + advertised(host, a.HTTPAddr()),
		GRPC: advertised(host, a.GRPCAddr()),
	}
	if err := os.MkdirAll(a.s.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	tlsCfg, err := a.tls(false)
	if err != nil {
		return err
	}
	nodeRole, err := node.Open(node.Config{
		NodeID: nodeID, Nomad: a.nomad, Clock: a.clock, Logger: a.log, Registerer: a.reg,
		BufferPath: filepath.Join(a.s.DataDir, "buffer-"+nodeID+".db"), BufferBytes: a.s.BufferBytes, BufferAge: a.s.BufferAge,
		SampleInterval: a.s.SampleInterval, TLS: tlsCfg, ResolveLeader: a.resolveLeader,
		Sim: a.s.Sim, SimHost: a.s.SimHost, Host: a.s.Host, Platform: a.s.Platform,
	})
	if err != nil {
		return err
	}
	defer nodeRole.Close()

	srv := &http.Server{Handler: a.handler(), ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	httpLn := a.httpLn
	if tlsCfg != nil {
		// The HTTP API and dashboard serve HTTPS with the agent's
		// certificate. Callers authenticate with their Nomad token, so a
		// client certificate is checked when one is given but not required:
		// a browser has none.
		httpTLS, err := a.tls(true)
		if err != nil {
			return err
		}
		httpTLS.ClientAuth = tls.VerifyClientCertIfGiven
		httpLn = tls.NewListener(a.httpLn, httpTLS)
	}
	var wg sync.WaitGroup
	run := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil && !errors.Is(err, context.Canceled) {
				a.log.Error("stopped", "component", name, "error", err)
			}
		}()
	}
	run("http", func(context.Context) error {
		if err := srv.Serve(httpLn); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	run("pause", func(ctx context.Context) error { a.pause.Watch(ctx); return nil })
	run("node", nodeRole.Run)
	elec, err := election.New(a.consul, election.Config{Key: a.s.LeaderKey, Self: a.self, SessionTTL: a.s.SessionTTL, LockDelay: a.s.LockDelay}, a.log.Named("election"))
	if err != nil {
		return err
	}
	run("election", func(ctx context.Context) error { return elec.Run(ctx, a.lead) })
	a.log.Info("agent running", "http", a.HTTPAddr(), "grpc", a.GRPCAddr())
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	wg.Wait()
	return nil
}

// nodeID is the configured node, or the local Nomad client's.
func (a *Agent) nodeID(ctx context.Context) (string, error) {
	if a.s.NodeID != "" {
		return a.s.NodeID, nil
	}
	self, err := a.nomad.Agent().Self()
	if err != nil {
		return "", fmt.Errorf("ask the local Nomad agent for its node ID (or set node_id): %w", err)
	}
	id := self.Stats["client"]["node_id"]
	if id == "" {
		return "", errors.New("the Nomad agent at NOMAD_ADDR is not a client; set node_id")
	}
	return id, nil
}

// advertiseHost is the host other agents dial: the configured one; else
// the bind host when it is a specific address; else the node's address as
// Nomad fingerprinted it (in sim, whose node addresses are made up, the
// loopback address).
func (a *Agent) advertiseHost(nodeID string) string {
	if a.s.Advertise != "" {
		return a.s.Advertise
	}
	if h, _, _ := net.SplitHostPort(a.HTTPAddr()); h != "" && !net.ParseIP(h).IsUnspecified() {
		return h
	}
	if !a.s.Sim {
		if node, _, err := a.nomad.Nodes().Info(nodeID, nil); err == nil && node.Attributes["unique.network.ip-address"] != "" {
			return node.Attributes["unique.network.ip-address"]
		}
		a.log.Warn("cannot tell this node's address; advertising loopback (set advertise)")
	}
	return "127.0.0.1"
}

// advertised is the address others dial: host with the listener's port.
func advertised(host, listen string) string {
	_, port, _ := net.SplitHostPort(listen)
	return net.JoinHostPort(host, port)
}

// handler serves the agent's own endpoints and, while it leads, the leader
// API; a standby redirects API calls to the leader.
func (a *Agent) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(prometheus.GathererFunc(a.gather), promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /v1/health", func(w http.ResponseWriter, r *http.Request) {
		leaderapi.WriteJSON(w, leaderapi.Health{OK: true, Leader: a.term.Load() != nil}, nil)
	})
	leaderOnly := func(w http.ResponseWriter, r *http.Request) {
		if t := a.term.Load(); t != nil {
			t.Handler.ServeHTTP(w, r)
			return
		}
		a.redirectToLeader(w, r)
	}
	mux.HandleFunc("/v1/", leaderOnly)
	mux.HandleFunc("/ui/", leaderOnly)
	return mux
}

// gather collects the agent's metrics and, while it leads, the term's.
func (a *Agent) gather() ([]*dto.MetricFamily, error) {
	gs := prometheus.Gatherers{a.reg}
	if t := a.term.Load(); t != nil {
		gs = append(gs, t.Registry)
	}
	return gs.Gather()
}

func (a *Agent) redirectToLeader(w http.ResponseWriter, r *http.Request) {
	leader, ok, err := leaderapi.Current(r.Context(), a.consul, a.s.LeaderKey)
	switch {
	case err != nil:
		leaderapi.WriteJSON(w, nil, leaderapi.Errorf(http.StatusServiceUnavailable, "find the leader: %v", err))
	case !ok || leader.ID == a.self.ID:
		leaderapi.WriteJSON(w, nil, leaderapi.Errorf(http.StatusServiceUnavailable, "no leader is elected yet"))
	default:
		http.Redirect(w, r, leader.HTTP+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}
}

// lead runs one term of the leader role while this agent holds the lock.
func (a *Agent) lead(ctx context.Context) {
	tlsCfg, err := a.tls(true)
	if err != nil {
		a.log.Error("ingest TLS: not leading", "error", err)
		return
	}
	leader.Run(ctx, leader.Config{
		Self: a.self, Clock: a.clock, Nomad: a.nomad, NomadConfig: a.nomadCfg, Consul: a.consul, Pause: a.pause,
		ReplayWindow: a.s.BufferAge, IngestTLS: tlsCfg, Listen: a.grpcListener,
		ProfileRound: a.profileRound, DecisionInterval: a.decisionInterval, Orchestrator: a.s.Orchestrator,
		Prometheus: a.s.Prometheus, Telemetry: a.s.Telemetry,
		Logger: a.log.Named("leader"),
	}, func(p *leader.Published) {
		a.term.Store(p)
		if p != nil {
			a.metrics.isLeader.Set(1)
		} else {
			a.metrics.isLeader.Set(0)
		}
	})
}

// grpcListener returns the listener for this term's ingest: the one opened
// at start for the first term, a new one on the same address after that
// (gRPC closes its listener when it stops).
func (a *Agent) grpcListener() (net.Listener, error) {
	a.grpcMu.Lock()
	defer a.grpcMu.Unlock()
	if ln := a.grpcLn; ln != nil {
		a.grpcLn = nil
		return ln, nil
	}
	return net.Listen("tcp", a.grpcAddr)
}

// resolveLeader returns the leader's gRPC address from the election key;
// an empty address means there is no leader yet.
func (a *Agent) resolveLeader(ctx context.Context) (string, error) {
	leader, ok, err := leaderapi.Current(ctx, a.consul, a.s.LeaderKey)
	if err != nil || !ok {
		return "", err
	}
	return leader.GRPC, nil
}

// tls loads the mutual TLS configuration, or nil when TLS is off.
func (a *Agent) tls(server bool) (*tls.Config, error) {
	if !a.s.TLSEnabled() {
		return nil, nil
	}
	cfg, err := wire.LoadTLS(a.s.TLS.CAFile, a.s.TLS.CertFile, a.s.TLS.KeyFile, server)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return cfg, nil
}
