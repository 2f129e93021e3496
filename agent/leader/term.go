package leader

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/foresight-nomad/foresight/agent/leader/backfill"
	"github.com/foresight-nomad/foresight/agent/leader/ingest"
	"github.com/foresight-nomad/foresight/agent/leader/store"
	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/leaderapi"
	"github.com/foresight-nomad/foresight/orchestrator"
	"github.com/foresight-nomad/foresight/plugin/host"
	"github.com/foresight-nomad/foresight/profiles"
	"github.com/foresight-nomad/foresight/telemetry"
)

// sealInterval is how often the leader seals its store's open slots.
const sealInterval = 10 * time.Second

// errTermEnded refuses telemetry that arrives after this agent stopped
// leading; the agents' buffers keep it for the next leader's replay.
var errTermEnded = errors.New("this agent no longer leads")

// termSink feeds accepted telemetry into one term's store, and nothing once
// the term has ended: after close returns, no sample reaches the store.
type termSink struct {
	mu     sync.RWMutex
	st     *store.Store
	feed   *profileFeed
	prov   *provenance
	closed bool
	// newest is the time of the newest sample taken, in Unix nanoseconds.
	newest atomic.Int64
}

func (s *termSink) Ingest(_ string, samples []telemetry.Sample) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return errTermEnded
	}
	if err := s.st.AppendBatch(samples); err != nil {
		return err
	}
	s.feed.take(samples)
	s.prov.take(samples)
	var newest int64
	for i := range samples {
		newest = max(newest, samples[i].Time.UnixNano())
	}
	for {
		cur := s.newest.Load()
		if newest <= cur || s.newest.CompareAndSwap(cur, newest) {
			break
		}
	}
	return nil
}

// IngestNotes implements ingest.NoteSink.
func (s *termSink) IngestNotes(_ string, at time.Time, notes []telemetry.Note) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.closed {
		s.prov.note(at, notes)
	}
}

// freshest is the time of the newest sample taken, if any.
func (s *termSink) freshest() (time.Time, bool) {
	n := s.newest.Load()
	return time.Unix(0, n).UTC(), n != 0
}

func (s *termSink) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// leaderState is what the leader role holds while this agent leads.
type leaderState struct {
	self     leaderapi.LeaderInfo
	clock    clock.Clock
	store    *store.Store
	pause    *PauseSwitch
	profiles *profiles.Profiler
	freshest func() (time.Time, bool)
	// prov says how the agents read each group's metrics.
	prov      *provenance
	decisions *DecisionLog
	// plan decides every group without writing anything.
	plan   func(ctx context.Context) ([]leaderapi.Decision, error)
	agents func() []leaderapi.AgentStatus
	// dec is the term's decision loop, for the autoscaler's scale requests.
	dec *decider
	// capacity keeps the classes' capacity over time, for the dashboard.
	capacity *CapacityLog
}

// Config is what one term of leadership needs from the agent.
type Config struct {
	// Self is how others reach this agent.
	Self  leaderapi.Record
	Clock clock.Clock
	// Nomad and Consul are the clients the term acts through; NomadConfig
	// is how Nomad was made, for the capacity plugins that inherit it.
	Nomad       *nomadapi.Client
	NomadConfig *nomadapi.Config
	Consul      *consulapi.Client
	// Pause is the cluster-wide actuation switch, watched by the agent.
	Pause *PauseSwitch
	// ReplayWindow is how far back the agents are asked to replay their
	// buffers, so that a new leader's history matches the old one's.
	ReplayWindow time.Duration
	// IngestTLS secures the ingest port; nil for plaintext.
	IngestTLS *tls.Config
	// Listen returns the ingest listener of this term.
	Listen func() (net.Listener, error)
	// ProfileRound is the interval one profiler observation covers, and
	// DecisionInterval how often every group is decided; their defaults
	// when 0 (DecisionInterval: the orchestrator block's).
	ProfileRound, DecisionInterval time.Duration
	// Orchestrator is the orchestrator block, resolved.
	Orchestrator OrchestratorSettings
	// Prometheus is where past usage is backfilled from; off when its
	// address is empty.
	Prometheus backfill.Settings
	// Telemetry says what the term's /metrics may carry.
	Telemetry TelemetrySettings
	Logger    hclog.Logger
}

// Published is what a serving term offers the agent's HTTP server: the
// leader API and dashboard, the term's metrics, and whether it leads.
type Published struct {
	Handler  http.Handler
	Registry *prometheus.Registry
}

// Run runs the leader role for one term: ingest, a fresh store rebuilt
// from the agents' replayed history, profiling, the decision loop, and the
// leader API. It calls publish with the term's handler and metrics once
// they serve, and with nil the moment the term steps down. It returns when
// ctx ends (the lock is lost or the agent stops); nothing of the term
// outlives it: no sample reaches the store, no request is answered and no
// write is made after it returned.
func Run(ctx context.Context, cfg Config, publish func(*Published)) {
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	since := cfg.Clock.Now()
	// The store merges replayed samples as far back as agents retain them,
	// so that a new leader's history matches the old one's.
	st, err := store.New(store.Config{Clock: cfg.Clock, ReplayWindow: cfg.ReplayWindow})
	if err != nil {
		log.Error("create store", "error", err)
		return
	}
	auth, err := newAuthorizer(cfg.NomadConfig)
	if err != nil {
		log.Error("no API without token checks", "error", err)
		return
	}
	reg := prometheus.NewRegistry()
	feed, err := newProfileFeed(cfg.Nomad, cfg.Clock, cfg.ProfileRound, orchestrator.DeclaredClasses(cfg.Orchestrator.Capacity), log.Named("profiles"))
	if err != nil {
		log.Error("create profiler", "error", err)
		return
	}
	sink := &termSink{st: st, feed: feed, prov: newProvenance()}
	placed := &placements{nomad: cfg.Nomad, node: map[string]string{}}
	srv, err := ingest.NewServer(ingest.ServerConfig{Sink: sink, Clock: cfg.Clock, Logger: log.Named("ingest"), Registerer: reg,
		NodeName: placed.nodeName, AllocNode: placed.allocNode})
	if err != nil {
		log.Error("create ingest", "error", err)
		return
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "foresight_leader_series", Help: "Series (group, metric) the leader's store holds.",
	}, func() float64 { return float64(st.Stats().Series) }))
	ln, err := cfg.Listen()
	if err != nil {
		log.Error("ingest listener", "error", err)
		return
	}
	gs := srv.NewGRPCServer(cfg.IngestTLS)
	served := make(chan error, 1)
	go func() { served <- gs.Serve(ln) }()

	// Rebuild the history: every agent replays what it retains.
	srv.RequestReplay(since.Add(-cfg.ReplayWindow))

	state := &leaderState{
		self:      leaderapi.LeaderInfo{ID: cfg.Self.ID, HTTP: cfg.Self.HTTP, GRPC: cfg.Self.GRPC, Since: since},
		clock:     cfg.Clock,
		store:     st,
		pause:     cfg.Pause,
		profiles:  feed.prof,
		freshest:  sink.freshest,
		prov:      sink.prov,
		decisions: &DecisionLog{},
		capacity:  &CapacityLog{},
		agents: func() []leaderapi.AgentStatus {
			var out []leaderapi.AgentStatus
			for _, info := range srv.Agents() {
				out = append(out, leaderapi.AgentStatus{ID: info.AgentID, Node: info.NodeID, LastContact: info.LastContact, Samples: int64(info.Samples)})
			}
			return out
		},
	}
	// The decider is in place before the API that calls it is published.
	dec := newDecider(state, cfg.Nomad, cfg.Consul, reg, cmp.Or(cfg.DecisionInterval, cfg.Orchestrator.DecisionInterval), cfg.Orchestrator, log.Named("orchestrator"))
	if targets := cfg.Orchestrator.Capacity; len(targets) > 0 {
		// The capacity plugins run while this agent leads.
		plugins := host.New(cfg.Orchestrator.PluginDir, cfg.NomadConfig, log.Named("plugins"))
		defer plugins.Close()
		capacity, err := orchestrator.NewCapacity(targets, func(t orchestrator.CapacityTarget) (orchestrator.Target, error) {
			p, err := plugins.Open(t.Name, t.Driver, t.Config)
			if err != nil {
				return nil, err
			}
			return p, nil
		}, cfg.Clock, log.Named("capacity"))
		if err != nil {
			log.Error("no provider capacity will be requested", "error", err)
		} else {
			dec.capacity = capacity
		}
	}
	if dec.metrics = newGroupMetrics(cfg.Telemetry); dec.metrics != nil {
		reg.MustRegister(dec.metrics)
	}
	reg.MustRegister(classMetrics{classes: feed.prof.Classes})
	state.plan = dec.plan
	state.dec = dec
	mux := http.NewServeMux()
	(&leaderAPI{st: state, auth: auth}).register(mux)
	publish(&Published{Handler: auth.protect(mux), Registry: reg})
	log.Info("leading", "grpc", ln.Addr().String())

	termCtx, endTerm := context.WithCancel(ctx)
	defer endTerm()
	go feed.run(termCtx)
	go state.capacity.Run(termCtx, cfg.Clock, cmp.Or(cfg.DecisionInterval, cfg.Orchestrator.DecisionInterval, DefaultDecisionInterval), feed.prof.Classes)
	go dec.run(termCtx)
	if cfg.Prometheus.Enabled() {
		// A new term has only what the agents retain: the rest of the
		// history window is read back from Prometheus.
		b, err := backfill.New(cfg.Prometheus, st, cfg.Clock, reg, log.Named("backfill"))
		if err != nil {
			log.Error("no history will be backfilled", "error", err)
		} else {
			log.Info("backfilling history from Prometheus", "address", cfg.Prometheus.Address, "history", cfg.Prometheus.History)
			go b.Run(termCtx)
		}
	}

	// Seal slots even when no sample arrives, so idle series age.
	// On the agent's clock, so that a leader on sim's clock seals in
	// cluster time.
	seal := cfg.Clock.After(sealInterval)
serving:
	for {
		select {
		case <-ctx.Done():
			break serving
		case err := <-served:
			log.Error("ingest stopped", "error", err)
			break serving
		case <-seal:
			seal = cfg.Clock.After(sealInterval)
			if err := st.Seal(); err != nil {
				log.Warn("seal store", "error", err)
			}
		}
	}

	// Step down at once: no write to the store, no API, no ingest.
	sink.close()
	publish(nil)
	// Streams end now; agents resend what was not acknowledged to the next
	// leader, which deduplicates.
	gs.Stop()
	log.Info("stepped down")
}

// placements answers, from Nomad, where an allocation runs and what a node
// is called, for ingest to bind agents to their nodes. An allocation never
// moves, so its node is remembered for the term.
type placements struct {
	nomad *nomadapi.Client
	mu    sync.Mutex
	node  map[string]string // alloc ID → node ID
}

func (p *placements) allocNode(ctx context.Context, alloc string) (string, bool) {
	p.mu.Lock()
	node, ok := p.node[alloc]
	p.mu.Unlock()
	if ok {
		return node, true
	}
	a, _, err := p.nomad.Allocations().Info(alloc, (&nomadapi.QueryOptions{}).WithContext(ctx))
	if err != nil || a.NodeID == "" {
		// Not known (yet, or Nomad does not answer): the sample is taken,
		// as it would be without mutual TLS.
		return "", false
	}
	p.mu.Lock()
	if len(p.node) > 100000 {
		p.node = map[string]string{}
	}
	p.node[alloc] = a.NodeID
	p.mu.Unlock()
	return a.NodeID, true
}

func (p *placements) nodeName(ctx context.Context, nodeID string) (string, error) {
	n, _, err := p.nomad.Nodes().Info(nodeID, (&nomadapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return "", err
	}
	return n.Name, nil
}
