package ingest

import (
	"context"
	"crypto/tls"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/foresight-nomad/foresight/agent/node/buffer"
	"github.com/foresight-nomad/foresight/agent/node/ship"
	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/telemetry"
	"github.com/foresight-nomad/foresight/telemetry/telemetrytest"
	"github.com/foresight-nomad/foresight/telemetry/wire/ingestpb"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// sampleKey identifies one sample, to count how often the sink saw it.
type sampleKey struct {
	ms                         int64
	group, alloc, task, metric string
	value                      float64
}

func keyOf(sm telemetry.Sample) sampleKey {
	return sampleKey{sm.Time.UnixMilli(), sm.Group, sm.Alloc, sm.Task, sm.Metric, sm.Value}
}

// countingSink records every sample it is given.
type countingSink struct {
	mu     sync.Mutex
	counts map[sampleKey]int
	total  int
	fail   error
}

func newSink() *countingSink { return &countingSink{counts: map[sampleKey]int{}} }

func (c *countingSink) Ingest(_ string, samples []telemetry.Sample) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return c.fail
	}
	for _, sm := range samples {
		c.counts[keyOf(sm)]++
		c.total++
	}
	return nil
}

func (c *countingSink) Total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// checkExactlyOnce fails unless the sink holds each of want exactly once and
// nothing else.
func (c *countingSink) checkExactlyOnce(t *testing.T, want []telemetry.Sample) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.total != len(want) {
		t.Fatalf("sink took %d samples, want %d", c.total, len(want))
	}
	for _, sm := range want {
		if n := c.counts[keyOf(sm)]; n != 1 {
			t.Fatalf("sample %+v taken %d times, want once", sm, n)
		}
	}
}

// samplesAt returns one node's readings at t: tasks tasks × every metric.
func samplesAt(t time.Time, tasks int) []telemetry.Sample { return telemetrytest.SamplesAt(t, tasks) }

// leader is a Server listening on loopback, which can be stopped and
// started again on the same address.
type leader struct {
	t    *testing.T
	srv  *Server
	tls  *tls.Config
	addr string
	g    *grpc.Server
}

func startLeader(t *testing.T, srv *Server, tlsConfig *tls.Config) *leader {
	t.Helper()
	l := &leader{t: t, srv: srv, tls: tlsConfig, addr: "127.0.0.1:0"}
	l.start()
	t.Cleanup(l.stop)
	return l
}

func (l *leader) start() {
	l.t.Helper()
	lis, err := net.Listen("tcp", l.addr)
	if err != nil {
		l.t.Fatalf("listen on %s: %v", l.addr, err)
	}
	l.addr = lis.Addr().String()
	l.g = l.srv.NewGRPCServer(l.tls)
	go l.g.Serve(lis)
}

func (l *leader) stop() {
	if l.g != nil {
		l.g.Stop()
		l.g = nil
	}
}

func newServer(t *testing.T, sink Sink, clk clock.Clock, limits Limits) *Server {
	t.Helper()
	srv, err := NewServer(ServerConfig{Sink: sink, Clock: clk, Limits: limits, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

func testLogger(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Warn, Output: testWriter{t}})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func openBuffer(t *testing.T, clk clock.Clock) (*buffer.Buffer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "buffer.db")
	b, err := buffer.Open(path, buffer.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, path
}

// addrRef is a leader address a test can change under a running shipper.
type addrRef struct{ v atomic.Value }

func newAddr(addr string) *addrRef {
	a := &addrRef{}
	a.v.Store(addr)
	return a
}

func (a *addrRef) set(addr string) { a.v.Store(addr) }

func (a *addrRef) resolve(context.Context) (string, error) { return a.v.Load().(string), nil }

// runShipper starts Run and returns a function that stops it and waits.
func runShipper(t *testing.T, cfg ship.Config) (*ship.Shipper, func()) {
	t.Helper()
	if cfg.AgentID == "" {
		cfg.AgentID, cfg.NodeID = "agent-1", "node-1"
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	sh, err := ship.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("shipper Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return sh, stop
}

// eventually polls cond, advancing the virtual clock (when there is one) by
// a second per poll so that backoffs and timers on it expire. It fails the
// test only if cond stays false for a long real time: a hang, not a slow run.
func eventually(t *testing.T, clk *clock.Virtual, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		if clk != nil {
			clk.Advance(time.Second)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// rawStream opens a stream to addr as a bare client, for tests that speak
// the protocol directly.
func rawStream(t *testing.T, ctx context.Context, addr string, tlsConfig *tls.Config) (ingestpb.Ingest_StreamClient, error) {
	t.Helper()
	creds := insecure.NewCredentials()
	if tlsConfig != nil {
		creds = credentials.NewTLS(tlsConfig)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { conn.Close() })
	return ingestpb.NewIngestClient(conn).Stream(ctx)
}

func helloMsg(agent string, bufferID, first uint64) *ingestpb.AgentMessage {
	return &ingestpb.AgentMessage{Body: &ingestpb.AgentMessage_Hello{Hello: &ingestpb.Hello{AgentId: agent, NodeId: "node-" + agent, BufferId: bufferID, FirstSeq: first}}}
}

func batchMsg(agent string, seq uint64, replay bool, blk *ingestpb.SampleBlock) *ingestpb.AgentMessage {
	return &ingestpb.AgentMessage{Body: &ingestpb.AgentMessage_Batch{Batch: &ingestpb.Batch{AgentId: agent, NodeId: "node-" + agent, Seq: seq, Replay: replay, Samples: blk}}}
}

// sendAndAck sends one message and returns the next ack.
func sendAndAck(t *testing.T, st ingestpb.Ingest_StreamClient, m *ingestpb.AgentMessage) *ingestpb.Ack {
	t.Helper()
	if err := st.Send(m); err != nil {
		t.Fatalf("send: %v", err)
	}
	for {
		r, err := st.Recv()
		if err != nil {
			t.Fatalf("receive ack: %v", err)
		}
		if ack := r.GetAck(); ack != nil {
			return ack
		}
	}
}

// gathered is the value of the counter or gauge named in reg.
func gathered(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			m := f.GetMetric()[0]
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
