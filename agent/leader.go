package agent

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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/foresight-nomad/foresight/agent/ingest"
	"github.com/foresight-nomad/foresight/agent/store"
	"github.com/foresight-nomad/foresight/orchestrator"
	"github.com/foresight-nomad/foresight/plugin/host"
)

type tlsConfig = tls.Config

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
	closed bool
	// newest is the time of the newest sample taken, in Unix nanoseconds.
	newest atomic.Int64
}

func (s *termSink) Ingest(_ string, samples []store.Sample) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return errTermEnded
	}
	if err := s.st.AppendBatch(samples); err != nil {
		return err
	}
	s.feed.take(samples)
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

// lead runs the leader role for one term: ingest, a fresh store rebuilt from
// the agents' replayed history, and the leader API. It returns when ctx ends
// (the lock is lost or the agent stops); nothing of the term outlives it.
func (a *Agent) lead(ctx context.Context) {
	log := a.log.Named("leader")
	since := a.clock.Now()
	// The store merges replayed samples as far back as agents retain them,
	// so that a new leader's history matches the old one's.
	st, err := store.New(store.Config{Clock: a.clock, ReplayWindow: a.s.BufferAge})
	if err != nil {
		log.Error("create store", "error", err)
		return
	}
	reg := prometheus.NewRegistry()
	feed, err := newProfileFeed(a.nomad, a.clock, a.profileRound, log.Named("profiles"))
	if err != nil {
		log.Error("create profiler", "error", err)
		return
	}
	sink := &termSink{st: st, feed: feed}
	srv, err := ingest.NewServer(ingest.ServerConfig{Sink: sink, Clock: a.clock, Logger: log.Named("ingest"), Registerer: reg})
	if err != nil {
		log.Error("create ingest", "error", err)
		return
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "foresight_leader_series", Help: "Series (group, metric) the leader's store holds.",
	}, func() float64 { return float64(st.Stats().Series) }))
	tlsCfg, err := a.tls(true)
	if err != nil {
		log.Error("ingest TLS", "error", err)
		return
	}
	ln, err := a.grpcListener()
	if err != nil {
		log.Error("ingest listener", "error", err)
		return
	}
	gs := srv.NewGRPCServer(tlsCfg)
	served := make(chan error, 1)
	go func() { served <- gs.Serve(ln) }()

	// Rebuild the history: every agent replays what it retains.
	srv.RequestReplay(since.Add(-a.s.BufferAge))

	state := &leaderState{
		self:      LeaderInfo{ID: a.self.ID, HTTP: a.self.HTTP, GRPC: a.self.GRPC, Since: since},
		clock:     a.clock,
		store:     st,
		pause:     a.pause,
		profiles:  feed.prof,
		freshest:  sink.freshest,
		decisions: &DecisionLog{},
		capacity:  &CapacityLog{},
		agents: func() []AgentStatus {
			var out []AgentStatus
			for _, info := range srv.Agents() {
				out = append(out, AgentStatus{ID: info.AgentID, Node: info.NodeID, LastContact: info.LastContact, Samples: int64(info.Samples)})
			}
			return out
		},
	}
	// The decider is in place before the API that calls it is published.
	dec := newDecider(state, a.nomad, a.consul, reg, a.decisionInterval, a.s.Orchestrator, log.Named("orchestrator"))
	if targets := a.s.Orchestrator.Capacity; len(targets) > 0 {
		// The capacity plugins run while this agent leads.
		plugins := host.New(a.s.Orchestrator.PluginDir, a.nomadCfg, log.Named("plugins"))
		defer plugins.Close()
		capacity, err := orchestrator.NewCapacity(targets, func(t orchestrator.CapacityTarget) (orchestrator.Target, error) {
			p, err := plugins.Open(t.Name, t.Driver, t.Config)
			if err != nil {
				return nil, err
			}
			return p, nil
		}, a.clock, log.Named("capacity"))
		if err != nil {
			log.Error("no provider capacity will be requested", "error", err)
		} else {
			dec.capacity = capacity
		}
	}
	state.plan = dec.plan
	state.dec = dec
	mux := http.NewServeMux()
	(&leaderAPI{st: state}).register(mux)
	a.leaderReg.Store(reg)
	a.leader.Store(state)
	a.muxMu.Lock()
	a.mux = mux
	a.muxMu.Unlock()
	a.metrics.isLeader.Set(1)
	log.Info("leading", "grpc", a.GRPCAddr())

	termCtx, endTerm := context.WithCancel(ctx)
	defer endTerm()
	go feed.run(termCtx)
	go state.capacity.Run(termCtx, a.clock, cmp.Or(a.decisionInterval, DefaultDecisionInterval), feed.prof.Classes)
	go dec.run(termCtx)

	// Seal slots even when no sample arrives, so idle series age.
	// On the agent's clock, so that a leader on sim's clock seals in
	// cluster time.
	seal := a.clock.After(sealInterval)
serving:
	for {
		select {
		case <-ctx.Done():
			break serving
		case err := <-served:
			log.Error("ingest stopped", "error", err)
			break serving
		case <-seal:
			seal = a.clock.After(sealInterval)
			if err := st.Seal(); err != nil {
				log.Warn("seal store", "error", err)
			}
		}
	}

	// Step down at once: no write to the store, no API, no ingest.
	sink.close()
	a.metrics.isLeader.Set(0)
	a.muxMu.Lock()
	a.mux = nil
	a.muxMu.Unlock()
	a.leader.Store(nil)
	a.leaderReg.Store(nil)
	// Streams end now; agents resend what was not acknowledged to the next
	// leader, which deduplicates.
	gs.Stop()
	log.Info("stepped down")
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
