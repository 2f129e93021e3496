// Package ship is the node role's half of telemetry transport: the Shipper
// streams the batches of the agent's durable buffer to the leader over the
// protocol of package telemetry/wire, and resends what the leader has not
// acknowledged after every reconnect.
package ship

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"

	"github.com/foresight-nomad/foresight/agent/node/buffer"
	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/internal/backoff"
	"github.com/foresight-nomad/foresight/telemetry"
	"github.com/foresight-nomad/foresight/telemetry/wire"
	"github.com/foresight-nomad/foresight/telemetry/wire/ingestpb"
)

// Config configures a Shipper.
type Config struct {
	// AgentID and NodeID say who is shipping. Required.
	AgentID, NodeID string
	// Buffer is the agent's durable buffer. Required.
	Buffer *buffer.Buffer
	// Resolve returns the leader's gRPC address (host:port), from the
	// election key. An error or an empty address means there is no leader
	// yet: the shipper keeps buffering and asks again after a backoff.
	// Required.
	Resolve func(ctx context.Context) (string, error)
	// TLS, when not nil, secures the stream (see wire.LoadTLS).
	TLS *tls.Config
	// Clock paces backoff and leader re-resolution; nil means the wall clock.
	Clock clock.Clock
	// Logger is for connection changes and rejected batches; nil means none.
	Logger hclog.Logger
	// Registerer receives the agent's shipping metrics; nil means none are
	// registered.
	Registerer prometheus.Registerer
	// Window bounds the batches in flight (sent, not yet acked), for live
	// batches and for replay each; 0 means 32.
	Window int
	// MinBackoff and MaxBackoff bound the wait between connection attempts
	// (internal/backoff's rule); 0 means 500 ms and 30 s.
	MinBackoff, MaxBackoff time.Duration
	// ResolveEvery is how often a connected shipper asks Resolve whether the
	// leader moved; 0 means 10 s.
	ResolveEvery time.Duration
	// DialOptions are added to the shipper's own gRPC dial options.
	DialOptions []grpc.DialOption
}

// Shipper streams an agent's buffer to the leader. Enqueue puts samples in
// the buffer; Run ships them. The promise is package wire's: nothing leaves
// the buffer's unacknowledged set without the leader's ack (short of the
// buffer's size bound, or a batch that cannot be read back; both are
// counted), and everything in it is sent again, in order, after every
// reconnect.
type Shipper struct {
	cfg Config
	buf *buffer.Buffer
	log hclog.Logger

	sampled   prometheus.Counter
	shipped   prometheus.Counter
	replayed  prometheus.Counter
	rejected  prometheus.Counter
	connected prometheus.Gauge
}

// New checks cfg and registers the agent's metrics.
func New(cfg Config) (*Shipper, error) {
	switch {
	case cfg.Buffer == nil:
		return nil, errors.New("shipper: no buffer")
	case cfg.Resolve == nil:
		return nil, errors.New("shipper: no leader resolver")
	}
	if err := telemetry.CheckID("agent id", cfg.AgentID); err != nil {
		return nil, fmt.Errorf("shipper: %w", err)
	}
	if err := telemetry.CheckID("node id", cfg.NodeID); err != nil {
		return nil, fmt.Errorf("shipper: %w", err)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Window <= 0 {
		cfg.Window = 32
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	if cfg.ResolveEvery <= 0 {
		cfg.ResolveEvery = 10 * time.Second
	}
	buf := cfg.Buffer
	f := promauto.With(cfg.Registerer)
	s := &Shipper{
		cfg: cfg,
		buf: buf,
		log: cfg.Logger,
		sampled: f.NewCounter(prometheus.CounterOpts{
			Name: "foresight_agent_samples_total",
			Help: "Samples taken and written to the durable buffer.",
		}),
		shipped: f.NewCounter(prometheus.CounterOpts{
			Name: "foresight_agent_shipped_samples_total",
			Help: "Samples the leader acknowledged (replays excluded).",
		}),
		replayed: f.NewCounter(prometheus.CounterOpts{
			Name: "foresight_agent_replayed_samples_total",
			Help: "Samples resent from history on a leader's replay request and acknowledged.",
		}),
		rejected: f.NewCounter(prometheus.CounterOpts{
			Name: "foresight_agent_rejected_batches_total",
			Help: "Batches the leader rejected, or that could not be read back from the buffer; they are not resent.",
		}),
		connected: f.NewGauge(prometheus.GaugeOpts{
			Name: "foresight_agent_leader_connected",
			Help: "1 while a stream to the leader is open.",
		}),
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "foresight_agent_buffer_bytes",
		Help: "Bytes of batches retained in the durable buffer.",
	}, func() float64 { return float64(buf.Stats().Bytes) })
	f.NewCounterFunc(prometheus.CounterOpts{
		Name: "foresight_agent_evicted_samples_total",
		Help: "Samples evicted from the durable buffer by its size or age bound.",
	}, func() float64 { return float64(buf.Stats().EvictedSamples) })
	f.NewCounterFunc(prometheus.CounterOpts{
		Name: "foresight_agent_evicted_unacked_samples_total",
		Help: "Samples evicted by the size bound before the leader acknowledged them: lost.",
	}, func() float64 { return float64(buf.Stats().EvictedUnackedSamples) })
	return s, nil
}

// Enqueue writes one batch of samples, with the notes of the same interval,
// to the durable buffer and returns its sequence number; once it returns,
// the samples survive a crash and will be shipped. Samples or notes the
// leader would reject fail the whole call, naming the first bad one, and
// nothing is written.
func (s *Shipper) Enqueue(samples []telemetry.Sample, notes ...telemetry.Note) (uint64, error) {
	if len(samples) == 0 {
		return 0, errors.New("enqueue: no samples")
	}
	if len(samples) > wire.DefaultMaxBatchSamples {
		return 0, fmt.Errorf("enqueue: %d samples exceed %d per batch; split them", len(samples), wire.DefaultMaxBatchSamples)
	}
	m := buffer.Meta{Samples: len(samples), MinTime: samples[0].Time, MaxTime: samples[0].Time}
	for i, sm := range samples {
		if err := sm.Check(); err != nil {
			return 0, fmt.Errorf("enqueue: sample %d of %d: %w", i+1, len(samples), err)
		}
		if sm.Time.Before(m.MinTime) {
			m.MinTime = sm.Time
		}
		if sm.Time.After(m.MaxTime) {
			m.MaxTime = sm.Time
		}
	}
	for i, n := range notes {
		if err := n.Check(); err != nil {
			return 0, fmt.Errorf("enqueue: note %d of %d: %w", i+1, len(notes), err)
		}
	}
	payload, err := proto.Marshal(wire.EncodeBlock(samples, notes...))
	if err != nil {
		return 0, fmt.Errorf("enqueue: encode %d samples: %w", len(samples), err)
	}
	if len(payload) > wire.MaxPayloadBytes {
		return 0, fmt.Errorf("enqueue: %d samples encode to %d bytes, over the %d a message may carry; split them", len(samples), len(payload), wire.MaxPayloadBytes)
	}
	seq, err := s.buf.Append(payload, m)
	if err != nil {
		return 0, fmt.Errorf("enqueue: %w", err)
	}
	s.sampled.Add(float64(len(samples)))
	return seq, nil
}

// Run ships until ctx is done, and then returns nil. It keeps one stream to
// the leader open, reconnecting with jittered, capped exponential backoff
// (so that agents cut off together do not reconnect together), and moves
// to a new leader when Resolve returns a new address. One Run at a
// time per Shipper, and one Shipper per Buffer.
func (s *Shipper) Run(ctx context.Context) error {
	retry := backoff.Backoff{Min: s.cfg.MinBackoff, Max: s.cfg.MaxBackoff}
	for ctx.Err() == nil {
		addr, err := s.cfg.Resolve(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			s.log.Debug("no leader address yet; buffering", "error", err)
		case addr == "":
			s.log.Debug("no leader elected yet; buffering")
		default:
			progress, err := s.session(ctx, addr)
			s.connected.Set(0)
			if ctx.Err() != nil {
				return nil
			}
			if progress {
				retry.Reset()
			}
			if errors.Is(err, errLeaderMoved) {
				s.log.Info("leader moved; reconnecting", "from", addr)
				continue
			}
			if retry.Failures() == 0 {
				s.log.Warn("stream to leader ended; buffering", "leader", addr, "error", err)
			} else {
				s.log.Debug("leader still unreachable; buffering", "leader", addr, "attempt", retry.Failures(), "error", err)
			}
		}
		if !retry.Wait(ctx, s.cfg.Clock) {
			return nil
		}
	}
	return nil
}

var errLeaderMoved = errors.New("leader moved")

// flight is a live batch sent and not yet acknowledged.
type flight struct {
	seq     uint64
	samples int
	done    bool
}

// replayState is the progress of the replay request being answered.
type replayState struct {
	id      uint64
	from    time.Time
	after   uint64   // last seq sent
	flights []flight // replayed batches not yet acknowledged, in order
}

type received struct {
	msg *ingestpb.LeaderMessage
	err error
}

// session runs one stream to addr until it fails, ctx ends or the leader
// moves. progress reports whether the leader acknowledged anything.
func (s *Shipper) session(ctx context.Context, addr string) (progress bool, err error) {
	creds := insecure.NewCredentials()
	if s.cfg.TLS != nil {
		creds = credentials.NewTLS(s.cfg.TLS)
	}
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	}, s.cfg.DialOptions...)
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return false, fmt.Errorf("dial leader %s: %w", addr, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := ingestpb.NewIngestClient(conn).Stream(ctx)
	if err != nil {
		return false, fmt.Errorf("open stream to leader %s: %w", addr, err)
	}
	bs := s.buf.Stats()
	hello := &ingestpb.Hello{AgentId: s.cfg.AgentID, NodeId: s.cfg.NodeID, BufferId: bs.BufferID, FirstSeq: bs.FirstSeq}
	if err := st.Send(&ingestpb.AgentMessage{Body: &ingestpb.AgentMessage_Hello{Hello: hello}}); err != nil {
		return false, fmt.Errorf("hello to leader %s: %w", addr, recvErr(st, err))
	}
	// The receiver never blocks on the channel: at most 2×Window acks are
	// outstanding, and replay requests are rare.
	msgs := make(chan received, 4*s.cfg.Window+16)
	go func() {
		for {
			m, err := st.Recv()
			select {
			case msgs <- received{m, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	s.log.Info("streaming to leader", "leader", addr, "acked", bs.Acked, "next_seq", bs.NextSeq)
	s.connected.Set(1)

	sent := bs.Acked // highest live seq sent on this stream
	var live []flight
	var replay *replayState
	resolveC := s.cfg.Clock.After(s.cfg.ResolveEvery)
	for {
		if err := s.ackDone(&live); err != nil {
			return progress, err
		}
		if err := s.sendLive(st, &sent, &live); err != nil {
			return progress, fmt.Errorf("send to leader %s: %w", addr, sendErr(ctx, msgs, err))
		}
		if err := s.ackDone(&live); err != nil { // batches skipped as unreadable
			return progress, err
		}
		if replay != nil {
			done, err := s.sendReplay(st, replay)
			if err != nil {
				return progress, fmt.Errorf("replay to leader %s: %w", addr, sendErr(ctx, msgs, err))
			}
			if done {
				replay = nil
			}
		}
		select {
		case <-ctx.Done():
			return progress, ctx.Err()
		case <-s.buf.Notify():
		case <-resolveC:
			now, err := s.cfg.Resolve(ctx)
			if err == nil && now != addr {
				return progress, errLeaderMoved
			}
			resolveC = s.cfg.Clock.After(s.cfg.ResolveEvery)
		case r := <-msgs:
			for {
				if r.err != nil {
					if errors.Is(r.err, io.EOF) {
						r.err = errors.New("leader closed the stream")
					}
					return progress, fmt.Errorf("receive from leader %s: %w", addr, r.err)
				}
				if s.handle(r.msg, live, &replay) {
					progress = true
				}
				select {
				case r = <-msgs:
					continue
				default:
				}
				break
			}
		}
	}
}

// recvErr prefers the stream's status to the io.EOF a failed Send returns;
// it must not run while another goroutine receives on st.
func recvErr(st ingestpb.Ingest_StreamClient, err error) error {
	if errors.Is(err, io.EOF) {
		if _, rerr := st.Recv(); rerr != nil {
			return rerr
		}
	}
	return err
}

// sendErr is recvErr for a stream whose receiving goroutine feeds msgs: the
// status arrives there, after any acks still queued.
func sendErr(ctx context.Context, msgs <-chan received, err error) error {
	if !errors.Is(err, io.EOF) {
		return err
	}
	for {
		select {
		case r := <-msgs:
			if r.err != nil {
				return r.err
			}
		case <-ctx.Done():
			return err
		}
	}
}

// sendLive sends unacknowledged batches after *sent until Window are in
// flight. A batch that cannot be read back is counted as rejected and
// acknowledged in turn, so it cannot block the queue.
func (s *Shipper) sendLive(st ingestpb.Ingest_StreamClient, sent *uint64, live *[]flight) error {
	for len(*live) < s.cfg.Window {
		batches, err := s.buf.Unacked(*sent, s.cfg.Window-len(*live))
		if err != nil {
			return err
		}
		if len(batches) == 0 {
			return nil
		}
		for _, b := range batches {
			*sent = b.Seq
			msg, err := s.message(b, false)
			if err != nil {
				s.log.Error("batch in buffer is unreadable; skipping it", "seq", b.Seq, "error", err)
				s.rejected.Inc()
				*live = append(*live, flight{seq: b.Seq, done: true})
				continue
			}
			if err := st.Send(msg); err != nil {
				return err
			}
			*live = append(*live, flight{seq: b.Seq, samples: b.Samples})
		}
	}
	return nil
}

// sendReplay sends retained batches of the replay request until Window are
// in flight, and ReplayDone once every one was sent and acknowledged.
func (s *Shipper) sendReplay(st ingestpb.Ingest_StreamClient, r *replayState) (done bool, err error) {
	for len(r.flights) < s.cfg.Window {
		batches, err := s.buf.Since(r.from, r.after, s.cfg.Window-len(r.flights))
		if err != nil {
			return false, err
		}
		if len(batches) == 0 {
			if len(r.flights) > 0 {
				return false, nil
			}
			msg := &ingestpb.AgentMessage{Body: &ingestpb.AgentMessage_ReplayDone{ReplayDone: &ingestpb.ReplayDone{Id: r.id}}}
			if err := st.Send(msg); err != nil {
				return false, err
			}
			s.log.Info("replay sent", "id", r.id, "from", r.from, "last_seq", r.after)
			return true, nil
		}
		for _, b := range batches {
			r.after = b.Seq
			msg, err := s.message(b, true)
			if err != nil {
				s.log.Error("batch in buffer is unreadable; not replaying it", "seq", b.Seq, "error", err)
				continue
			}
			if err := st.Send(msg); err != nil {
				return false, err
			}
			r.flights = append(r.flights, flight{seq: b.Seq, samples: b.Samples})
		}
	}
	return false, nil
}

func (s *Shipper) message(b buffer.Batch, replay bool) (*ingestpb.AgentMessage, error) {
	if len(b.Payload) > wire.MaxPayloadBytes {
		return nil, fmt.Errorf("batch %d: %d bytes will not fit in a message", b.Seq, len(b.Payload))
	}
	blk := &ingestpb.SampleBlock{}
	if err := proto.Unmarshal(b.Payload, blk); err != nil {
		return nil, fmt.Errorf("decode batch %d: %w", b.Seq, err)
	}
	return &ingestpb.AgentMessage{Body: &ingestpb.AgentMessage_Batch{Batch: &ingestpb.Batch{
		AgentId: s.cfg.AgentID,
		NodeId:  s.cfg.NodeID,
		Seq:     b.Seq,
		Replay:  replay,
		Samples: blk,
	}}}, nil
}

// handle applies one leader message; it reports whether it was an ack.
func (s *Shipper) handle(m *ingestpb.LeaderMessage, live []flight, replay **replayState) bool {
	switch body := m.Body.(type) {
	case *ingestpb.LeaderMessage_Ack:
		ack := body.Ack
		if ack.Replay {
			if r := *replay; r != nil && len(r.flights) > 0 && r.flights[0].seq == ack.Seq {
				if ack.Error == "" {
					s.replayed.Add(float64(r.flights[0].samples))
				}
				r.flights = r.flights[1:]
			}
			if ack.Error != "" {
				s.log.Warn("leader rejected a replayed batch", "seq", ack.Seq, "error", ack.Error)
			}
			return true
		}
		for i := range live {
			if live[i].seq != ack.Seq || live[i].done {
				continue
			}
			live[i].done = true
			switch {
			case ack.Error != "":
				s.rejected.Inc()
				s.log.Error("leader rejected a batch; it will not be resent", "seq", ack.Seq, "samples", live[i].samples, "error", ack.Error)
			default:
				s.shipped.Add(float64(live[i].samples))
			}
			break
		}
		return true
	case *ingestpb.LeaderMessage_Replay:
		r := body.Replay
		s.log.Info("leader asks for replay", "id", r.Id, "from", time.UnixMilli(r.FromUnixMs))
		// A new request restarts the replay; the acks still due for the old
		// one's batches arrive first, so they stay in flight.
		next := &replayState{id: r.Id, from: time.UnixMilli(r.FromUnixMs)}
		if *replay != nil {
			next.flights = (*replay).flights
		}
		*replay = next
	}
	return false
}

// ackDone drops the acknowledged batches at the head of the flight queue and
// records the acknowledgement in the buffer.
func (s *Shipper) ackDone(live *[]flight) error {
	n := 0
	for n < len(*live) && (*live)[n].done {
		n++
	}
	if n == 0 {
		return nil
	}
	seq := (*live)[n-1].seq
	*live = append((*live)[:0], (*live)[n:]...)
	if err := s.buf.Ack(seq); err != nil {
		return err
	}
	return nil
}
