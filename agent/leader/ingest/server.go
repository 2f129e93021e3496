package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math/bits"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/telemetry"
	"github.com/foresight-nomad/foresight/telemetry/wire"
	"github.com/foresight-nomad/foresight/telemetry/wire/ingestpb"
)

// Sink takes the samples of accepted batches; the leader's store is one.
// Ingest is called for one agent at a time but for many agents at once, so
// it must be safe for concurrent use. It must not keep samples after it
// returns: the Server reuses the slice. An error rejects the whole batch, so
// Ingest should store all of the samples or none.
type Sink interface {
	Ingest(agentID string, samples []telemetry.Sample) error
}

// NoteSink is a Sink that also takes the notes of accepted batches: why a
// group's tasks on an agent's node carry no sample of a metric. at is the
// time of the batch's newest sample. IngestNotes is called after Ingest
// took the batch, under the same rules; notes are advice and cannot fail.
type NoteSink interface {
	IngestNotes(agentID string, at time.Time, notes []telemetry.Note)
}

// Limits bound what one agent can make the leader do. A batch over a limit
// is rejected and changes nothing. Agents refuse to enqueue batches over
// the default batch and message limits, so a leader should not set them
// lower.
type Limits struct {
	// MaxBatchSamples bounds the samples in one batch; 0 means
	// wire.DefaultMaxBatchSamples.
	MaxBatchSamples int
	// MaxSeriesPerAgent bounds the distinct (group, alloc, task, metric)
	// series one agent may have sent within SeriesWindow of its newest
	// sample; 0 means 10000 (an agent sends about 1100).
	MaxSeriesPerAgent int
	// SeriesWindow is how long a series counts against MaxSeriesPerAgent
	// after its last sample; 0 means one hour.
	SeriesWindow time.Duration
	// MaxMessageBytes bounds one received message (grpc.MaxRecvMsgSize);
	// 0 means wire.DefaultMaxMessageBytes. gRPC enforces it by ending the stream
	// (ResourceExhausted) rather than in an ack.
	MaxMessageBytes int
	// MaxFutureSkew is how far past the leader's clock a sample's time may
	// be; 0 means 5 minutes.
	MaxFutureSkew time.Duration
	// MaxAgents bounds the agents the leader keeps state for; 0 means 10000.
	MaxAgents int
	// MaxSeqRanges bounds the ranges of sequence numbers remembered per
	// agent for deduplication; 0 means 1024.
	MaxSeqRanges int
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxBatchSamples, wire.DefaultMaxBatchSamples)
	def(&l.MaxSeriesPerAgent, 10000)
	defDur(&l.SeriesWindow, time.Hour)
	def(&l.MaxMessageBytes, wire.DefaultMaxMessageBytes)
	defDur(&l.MaxFutureSkew, 5*time.Minute)
	def(&l.MaxAgents, 10000)
	def(&l.MaxSeqRanges, 1024)
	return l
}

// ServerConfig configures a Server.
type ServerConfig struct {
	// Sink receives accepted samples. Required.
	Sink Sink
	// Clock judges how far in the future a sample is and stamps agents'
	// last contact; nil means the wall clock.
	Clock clock.Clock
	// Logger is for rejected batches and streams; nil means no logging.
	Logger hclog.Logger
	// Registerer receives the leader's ingest metrics; nil means none are
	// registered.
	Registerer prometheus.Registerer
	// Limits bound each agent; zero fields take their defaults.
	Limits Limits
	// NodeName is the Nomad name of a node, which an agent's certificate
	// may carry instead of the node ID; nil means only the ID binds.
	NodeName func(ctx context.Context, nodeID string) (string, error)
	// AllocNode is the node Nomad placed an allocation on; ok is false
	// when that cannot be told now. nil skips the check.
	AllocNode func(ctx context.Context, allocID string) (node string, ok bool)
}

// AgentInfo is what the leader knows of one agent.
type AgentInfo struct {
	// AgentID and NodeID are as the agent said in its Hello.
	AgentID, NodeID string
	// Connected reports whether the agent has a stream open now.
	Connected bool
	// LastContact is when the agent last opened a stream or sent a message.
	LastContact time.Time
	// Watermark is the highest sequence number taken from the agent.
	Watermark uint64
	// Samples and Batches count what was taken (not duplicates or
	// rejections).
	Samples, Batches uint64
	// Duplicates and Rejected count the batches dropped.
	Duplicates, Rejected uint64
	// Replayed reports whether the agent finished the current replay request.
	Replayed bool
}

// Server is the leader's side of ingest: the gRPC service agents stream to.
// It is safe for concurrent use.
type Server struct {
	ingestpb.UnimplementedIngestServer

	sink   Sink
	clock  clock.Clock
	log    hclog.Logger
	limits Limits
	seed   maphash.Seed
	pool   sync.Pool // of *[]telemetry.Sample

	mu     sync.Mutex
	agents map[string]*agentState
	replay *ingestpb.ReplayRequest // nil when no replay is asked for

	ingested   prometheus.Counter
	batches    prometheus.Counter
	duplicates prometheus.Counter
	rejected   *prometheus.CounterVec
	streams    prometheus.Gauge
	refused    *prometheus.CounterVec

	nodeName  func(ctx context.Context, nodeID string) (string, error)
	allocNode func(ctx context.Context, allocID string) (string, bool)
	// warned holds the agents whose refusal was logged, so that each is
	// logged once.
	warned map[string]bool
}

var _ ingestpb.IngestServer = (*Server)(nil)

// agentState is the leader's memory of one agent. mu serializes the batches
// of the agent, so that deduplication holds when an agent's old and new
// streams overlap; the Server's mu guards conn and the AgentInfo fields.
type agentState struct {
	mu       sync.Mutex
	bufferID uint64
	seen     seqSet
	series   map[uint64]int64 // series hash → time of its newest sample, Unix ms
	newestMs int64
	dec      wire.Decoder
	notes    []telemetry.Note // scratch for the notes of a batch
	strHash  []uint64         // scratch for admitSeries
	keys     []uint64         // scratch for admitSeries

	conn       *streamConn
	replayDone uint64
	info       AgentInfo
}

// streamConn serializes sends on one stream, which gRPC requires.
type streamConn struct {
	mu sync.Mutex
	st ingestpb.Ingest_StreamServer
}

func (c *streamConn) send(m *ingestpb.LeaderMessage) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.Send(m)
}

// NewServer returns a Server that feeds cfg.Sink.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Sink == nil {
		return nil, errors.New("ingest server: no sink")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	f := promauto.With(cfg.Registerer)
	return &Server{
		sink:   cfg.Sink,
		clock:  cfg.Clock,
		log:    cfg.Logger,
		limits: cfg.Limits.withDefaults(),
		seed:   maphash.MakeSeed(),
		agents: map[string]*agentState{},
		ingested: f.NewCounter(prometheus.CounterOpts{
			Name: "foresight_leader_ingested_samples_total",
			Help: "Samples taken from agents and handed to the store (duplicates and rejections excluded).",
		}),
		batches: f.NewCounter(prometheus.CounterOpts{
			Name: "foresight_leader_ingested_batches_total",
			Help: "Batches taken from agents and handed to the store.",
		}),
		duplicates: f.NewCounter(prometheus.CounterOpts{
			Name: "foresight_leader_duplicate_batches_total",
			Help: "Batches dropped because their (agent, sequence number) had been taken already.",
		}),
		rejected: f.NewCounterVec(prometheus.CounterOpts{
			Name: "foresight_leader_rejected_batches_total",
			Help: "Batches rejected, by reason: malformed, limit, sink or binding (samples of another node's allocations).",
		}, []string{"reason"}),
		streams: f.NewGauge(prometheus.GaugeOpts{
			Name: "foresight_leader_agent_streams",
			Help: "Agent streams open now.",
		}),
		refused: f.NewCounterVec(prometheus.CounterOpts{
			Name: "foresight_leader_agent_binding_refusals_total",
			Help: "With mutual TLS, streams refused because the agent's certificate does not name its node (what=stream), and batches refused because they hold samples of allocations Nomad placed on another node (what=batch).",
		}, []string{"what"}),
		nodeName:  cfg.NodeName,
		allocNode: cfg.AllocNode,
		warned:    map[string]bool{},
	}, nil
}

// NewGRPCServer returns a gRPC server with the ingest service registered,
// the message size limit applied and, when tlsConfig is not nil, TLS (use
// LoadTLS to require client certificates). The caller serves and stops it.
func (s *Server) NewGRPCServer(tlsConfig *tls.Config, opts ...grpc.ServerOption) *grpc.Server {
	base := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(s.limits.MaxMessageBytes),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}
	if tlsConfig != nil {
		base = append(base, grpc.Creds(credentials.NewTLS(tlsConfig)))
	}
	g := grpc.NewServer(append(base, opts...)...)
	ingestpb.RegisterIngestServer(g, s)
	return g
}

// Stream serves one agent's stream: a Hello, then batches, each answered by
// an ack sent after the batch was handled.
func (s *Server) Stream(st ingestpb.Ingest_StreamServer) error {
	first, err := st.Recv()
	if err != nil {
		return err
	}
	hello := first.GetHello()
	if hello == nil {
		return status.Error(codes.InvalidArgument, "ingest: the first message of a stream must be a Hello")
	}
	if err := telemetry.CheckID("agent id", hello.AgentId); err != nil {
		return status.Errorf(codes.InvalidArgument, "ingest hello: %v", err)
	}
	if err := telemetry.CheckID("node id", hello.NodeId); err != nil {
		return status.Errorf(codes.InvalidArgument, "ingest hello from %q: %v", hello.AgentId, err)
	}
	bound, err := s.bind(st.Context(), hello)
	if err != nil {
		return err
	}
	conn := &streamConn{st: st}
	a, replay, err := s.attach(hello, conn)
	if err != nil {
		return err
	}
	defer s.detach(a, conn)
	s.streams.Inc()
	defer s.streams.Dec()
	if replay != nil {
		if err := conn.send(replayMessage(replay)); err != nil {
			return err
		}
	}
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		s.touch(a)
		switch body := m.Body.(type) {
		case *ingestpb.AgentMessage_Batch:
			ack := s.take(st.Context(), a, hello, bound, body.Batch)
			if err := conn.send(&ingestpb.LeaderMessage{Body: &ingestpb.LeaderMessage_Ack{Ack: ack}}); err != nil {
				return err
			}
		case *ingestpb.AgentMessage_ReplayDone:
			s.mu.Lock()
			a.replayDone = max(a.replayDone, body.ReplayDone.Id)
			s.mu.Unlock()
		default:
			return status.Errorf(codes.InvalidArgument, "ingest stream of agent %q: unexpected %T after the Hello", hello.AgentId, m.Body)
		}
	}
}

// attach finds or creates the agent's state and makes conn its stream. It
// returns the replay request the agent still owes, if any.
func (s *Server) attach(h *ingestpb.Hello, conn *streamConn) (*agentState, *ingestpb.ReplayRequest, error) {
	s.mu.Lock()
	a := s.agents[h.AgentId]
	if a == nil {
		if len(s.agents) >= s.limits.MaxAgents {
			n := len(s.agents)
			s.mu.Unlock()
			return nil, nil, status.Errorf(codes.ResourceExhausted, "ingest: agent %q refused: the leader tracks %d agents already", h.AgentId, n)
		}
		a = &agentState{series: map[uint64]int64{}}
		a.seen.maxRanges = s.limits.MaxSeqRanges
		a.info.AgentID = h.AgentId
		s.agents[h.AgentId] = a
	}
	a.info.NodeID = h.NodeId
	a.info.Connected = true
	a.info.LastContact = s.clock.Now()
	a.conn = conn
	var replay *ingestpb.ReplayRequest
	if s.replay != nil && a.replayDone < s.replay.Id {
		replay = s.replay
	}
	s.mu.Unlock()

	// a.mu may be held through a slow Sink call by the agent's old stream;
	// wait for it without holding up every other agent.
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.bufferID != h.BufferId {
		if a.bufferID != 0 {
			s.log.Warn("agent's buffer changed: forgetting its sequence numbers", "agent", h.AgentId, "old_buffer", a.bufferID, "new_buffer", h.BufferId)
		}
		a.bufferID = h.BufferId
		a.seen.ranges = nil
	}
	a.seen.forgetBelow(h.FirstSeq)
	return a, replay, nil
}

func (s *Server) detach(a *agentState, conn *streamConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.conn == conn {
		a.conn = nil
		a.info.Connected = false
	}
}

func (s *Server) touch(a *agentState) {
	now := s.clock.Now()
	s.mu.Lock()
	a.info.LastContact = now
	s.mu.Unlock()
}

// bind checks, when the stream came over mutual TLS, that the agent
// speaks for the node its certificate names: the Hello's agent ID must be
// its node ID, and the client certificate must carry that node ID, or the
// node's Nomad name, as its Common Name or as a DNS name. It reports
// whether the stream is bound, so that its batches are checked too.
func (s *Server) bind(ctx context.Context, h *ingestpb.Hello) (bool, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return false, nil
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return false, nil
	}
	cert := info.State.PeerCertificates[0]
	names := append([]string{cert.Subject.CommonName}, cert.DNSNames...)
	if h.AgentId == h.NodeId && slices.Contains(names, h.NodeId) {
		return true, nil
	}
	if h.AgentId == h.NodeId && s.nodeName != nil {
		if name, err := s.nodeName(ctx, h.NodeId); err == nil && name != "" && slices.Contains(names, name) {
			return true, nil
		}
	}
	s.refuse("stream", h.AgentId, fmt.Sprintf("its certificate names %q, not its node %q", names, h.NodeId))
	return false, status.Errorf(codes.PermissionDenied, "ingest: agent %q refused: the client certificate names %q, neither the node ID %q nor its Nomad name", h.AgentId, names, h.NodeId)
}

// refuse counts a binding refusal and logs the first of each agent.
func (s *Server) refuse(what, agentID, why string) {
	s.refused.WithLabelValues(what).Inc()
	s.mu.Lock()
	first := !s.warned[agentID]
	if first && len(s.warned) < s.limits.MaxAgents {
		s.warned[agentID] = true
	}
	s.mu.Unlock()
	if first {
		s.log.Warn("agent refused: it does not speak for its own node (logged once per agent)", "agent", agentID, "why", why)
	}
}

// foreignAlloc returns an allocation of samples that Nomad placed on
// another node than the agent's, if any.
func (s *Server) foreignAlloc(ctx context.Context, nodeID string, samples []telemetry.Sample) (alloc, node string) {
	if s.allocNode == nil {
		return "", ""
	}
	seen := map[string]bool{}
	for i := range samples {
		id := samples[i].Alloc
		if seen[id] {
			continue
		}
		seen[id] = true
		if n, ok := s.allocNode(ctx, id); ok && n != nodeID {
			return id, n
		}
	}
	return "", ""
}

// take handles one batch and returns its ack.
func (s *Server) take(ctx context.Context, a *agentState, h *ingestpb.Hello, bound bool, b *ingestpb.Batch) *ingestpb.Ack {
	ack := &ingestpb.Ack{Seq: b.Seq, Replay: b.Replay}
	agentID := h.AgentId
	n, dup, reason, err := s.takeLocked(ctx, a, h, bound, b)
	if reason == "binding" {
		s.refuse("batch", agentID, err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err != nil:
		ack.Error = err.Error()
		a.info.Rejected++
		s.rejected.WithLabelValues(reason).Inc()
		s.log.Warn("rejected batch", "agent", agentID, "seq", b.Seq, "replay", b.Replay, "error", err)
	case dup:
		ack.Duplicate = true
		a.info.Duplicates++
		s.duplicates.Inc()
	default:
		a.info.Batches++
		a.info.Samples += uint64(n)
		a.info.Watermark = max(a.info.Watermark, b.Seq)
		s.batches.Inc()
		s.ingested.Add(float64(n))
	}
	return ack
}

func (s *Server) takeLocked(ctx context.Context, a *agentState, h *ingestpb.Hello, bound bool, b *ingestpb.Batch) (n int, dup bool, reason string, err error) {
	agentID := h.AgentId
	if b.AgentId != agentID {
		return 0, false, "malformed", fmt.Errorf("batch %d: agent id %q differs from the stream's %q", b.Seq, b.AgentId, agentID)
	}
	if b.Seq == 0 {
		return 0, false, "malformed", errors.New("batch has no sequence number")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seen.contains(b.Seq) {
		return 0, true, "", nil
	}
	p := s.pool.Get()
	if p == nil {
		p = new([]telemetry.Sample)
	}
	buf := p.(*[]telemetry.Sample)
	defer s.pool.Put(buf)
	latest := s.clock.Now().Add(s.limits.MaxFutureSkew)
	samples, err := a.dec.Decode(b.Samples, s.limits.MaxBatchSamples, latest, *buf)
	if err != nil {
		return 0, false, reasonOf(err), fmt.Errorf("batch %d: %w", b.Seq, err)
	}
	*buf = samples
	if bound {
		if alloc, node := s.foreignAlloc(ctx, h.NodeId, samples); alloc != "" {
			return 0, false, "binding", fmt.Errorf("batch %d: allocation %s runs on node %s, not on the agent's node %s", b.Seq, alloc, node, h.NodeId)
		}
	}
	notes, err := a.dec.Notes(b.Samples, a.notes)
	if err != nil {
		return 0, false, "malformed", fmt.Errorf("batch %d: %w", b.Seq, err)
	}
	a.notes = notes
	commit, err := s.admitSeries(a, b.Samples, samples)
	if err != nil {
		return 0, false, "limit", fmt.Errorf("batch %d: %w", b.Seq, err)
	}
	if err := s.sink.Ingest(agentID, samples); err != nil {
		return 0, false, "sink", fmt.Errorf("batch %d: store: %w", b.Seq, err)
	}
	commit()
	if ns, ok := s.sink.(NoteSink); ok && len(notes) > 0 {
		var newest time.Time
		for i := range samples {
			if samples[i].Time.After(newest) {
				newest = samples[i].Time
			}
		}
		ns.IngestNotes(agentID, newest, notes)
	}
	a.seen.add(b.Seq)
	return len(samples), false, "", nil
}

func reasonOf(err error) string {
	if errors.Is(err, wire.ErrLimit) {
		return "limit"
	}
	return "malformed"
}

// admitSeries checks the batch against the agent's series limit and returns
// the function that records its series once the batch is taken. A series is
// known by a 64-bit hash of its four strings; a collision only undercounts.
func (s *Server) admitSeries(a *agentState, blk *ingestpb.SampleBlock, samples []telemetry.Sample) (commit func(), err error) {
	a.strHash = slices.Grow(a.strHash[:0], len(blk.Strings))[:len(blk.Strings)]
	for i, str := range blk.Strings {
		a.strHash[i] = maphash.String(s.seed, str)
	}
	a.keys = slices.Grow(a.keys[:0], len(samples))[:len(samples)]
	newest := a.newestMs
	for i := range samples {
		a.keys[i] = seriesHash(a.strHash[blk.Group[i]], a.strHash[blk.Alloc[i]], a.strHash[blk.Task[i]], a.strHash[blk.Metric[i]])
		newest = max(newest, samples[i].Time.UnixMilli())
	}
	limit := s.limits.MaxSeriesPerAgent
	// Only a batch that could take the agent over the limit is counted
	// exactly: the common case costs one map update per sample.
	if len(a.series)+len(samples) > limit {
		added := map[uint64]struct{}{}
		for _, k := range a.keys {
			if _, ok := a.series[k]; !ok {
				added[k] = struct{}{}
			}
		}
		if len(a.series)+len(added) > limit {
			cutoff := newest - s.limits.SeriesWindow.Milliseconds()
			live := 0
			for _, ms := range a.series {
				if ms >= cutoff {
					live++
				}
			}
			if live+len(added) > limit {
				return nil, fmt.Errorf("%w: %d series within %v of the newest sample exceed the limit of %d per agent", wire.ErrLimit, live+len(added), s.limits.SeriesWindow, limit)
			}
			for k, ms := range a.series {
				if ms < cutoff {
					delete(a.series, k)
				}
			}
		}
	}
	return func() {
		for i, k := range a.keys {
			if ms := samples[i].Time.UnixMilli(); ms > a.series[k] {
				a.series[k] = ms
			}
		}
		a.newestMs = newest
	}, nil
}

// seriesHash combines the hashes of a series' four strings.
func seriesHash(g, a, t, m uint64) uint64 {
	const k = 0x9e3779b97f4a7c15
	h := (g ^ bits.RotateLeft64(a, 17)) * k
	h = (h ^ bits.RotateLeft64(t, 31)) * k
	h = (h ^ bits.RotateLeft64(m, 47)) * k
	return h ^ h>>29
}

// RequestReplay asks every connected agent, and every agent that connects
// later until StopReplay or the next RequestReplay, to stream its retained
// history from the given time. A new leader calls it once it holds the lock,
// to rebuild its store; batches it already took are dropped as duplicates.
func (s *Server) RequestReplay(from time.Time) {
	s.mu.Lock()
	id := uint64(1)
	if s.replay != nil {
		id = s.replay.Id + 1
	}
	for _, a := range s.agents {
		id = max(id, a.replayDone+1)
	}
	s.replay = &ingestpb.ReplayRequest{Id: id, FromUnixMs: from.UnixMilli()}
	msg := replayMessage(s.replay)
	var conns []*streamConn
	for _, a := range s.agents {
		if a.conn != nil {
			conns = append(conns, a.conn)
		}
	}
	s.mu.Unlock()
	// A stream's send can block on flow control; the stream's own goroutine
	// keeps acking meanwhile, and a dead stream's send fails.
	for _, c := range conns {
		go c.send(msg)
	}
}

// StopReplay stops asking agents that connect from now on to replay.
func (s *Server) StopReplay() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replay = nil
}

// Agents reports every agent the leader has heard from, sorted by id.
func (s *Server) Agents() []AgentInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]AgentInfo, 0, len(s.agents))
	for _, a := range s.agents {
		info := a.info
		info.Replayed = s.replay != nil && a.replayDone >= s.replay.Id
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AgentID < out[j].AgentID })
	return out
}

func replayMessage(r *ingestpb.ReplayRequest) *ingestpb.LeaderMessage {
	return &ingestpb.LeaderMessage{Body: &ingestpb.LeaderMessage_Replay{Replay: r}}
}
