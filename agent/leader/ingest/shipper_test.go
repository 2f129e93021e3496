package ingest

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	"github.com/foresight-nomad/foresight/agent/node/buffer"
	"github.com/foresight-nomad/foresight/agent/node/ship"
	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/telemetry"
	"github.com/foresight-nomad/foresight/telemetry/wire"
)

// An agent ships its buffer; then it "crashes" before recording the acks
// (a copy of its buffer from before shipping stands for that) and resends
// everything: the leader acknowledges the resends as duplicates and the
// store sees every sample exactly once.
func TestShipThenResendAfterLostAcksCountsOnce(t *testing.T) {
	clk := clock.NewVirtual(t0)
	sink := newSink()
	srv := newServer(t, sink, clk, Limits{})
	l := startLeader(t, srv, nil)
	buf, path := openBuffer(t, clk)

	sh, err := ship.New(ship.Config{AgentID: "agent-1", NodeID: "node-1", Buffer: buf, Resolve: newAddr(l.addr).resolve, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	var want []telemetry.Sample
	for i := range 20 {
		batch := samplesAt(t0.Add(time.Duration(i)*10*time.Second), 10)
		if _, err := sh.Enqueue(batch); err != nil {
			t.Fatal(err)
		}
		want = append(want, batch...)
	}
	copyPath := filepath.Join(t.TempDir(), "before-acks.db")
	copyFile(t, path, copyPath)

	_, stop := runShipper(t, ship.Config{Buffer: buf, Resolve: newAddr(l.addr).resolve, Clock: clk})
	eventually(t, clk, "every batch acknowledged", func() bool { return buf.Stats().Acked == 20 })
	stop()
	sink.checkExactlyOnce(t, want)

	old, err := buffer.Open(copyPath, buffer.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if old.Stats().Acked != 0 {
		t.Fatalf("copy has acks: %+v", old.Stats())
	}
	_, stop = runShipper(t, ship.Config{Buffer: old, Resolve: newAddr(l.addr).resolve, Clock: clk})
	eventually(t, clk, "resent batches acknowledged", func() bool { return old.Stats().Acked == 20 })
	stop()
	sink.checkExactlyOnce(t, want)
	info := srv.Agents()
	if len(info) != 1 || info[0].Batches != 20 || info[0].Duplicates != 20 || info[0].Watermark != 20 || info[0].Samples != uint64(len(want)) {
		t.Fatalf("leader's view of the agent = %+v, want 20 batches taken and 20 duplicates", info)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// A batch the leader rejects is acknowledged with the reason, counted on
// both sides, and never sent again, even after a reconnect; the batches
// behind it still arrive. A batch the agent cannot read back is skipped.
func TestRejectedBatchIsCountedNotResent(t *testing.T) {
	clk := clock.NewVirtual(t0)
	sink := newSink()
	srv := newServer(t, sink, clk, Limits{})
	l := startLeader(t, srv, nil)
	buf, _ := openBuffer(t, clk)
	reg := prometheus.NewRegistry()
	sh, err := ship.New(ship.Config{AgentID: "agent-1", NodeID: "node-1", Buffer: buf, Resolve: newAddr(l.addr).resolve, Clock: clk, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	good1 := samplesAt(t0, 3)
	if _, err := sh.Enqueue(good1); err != nil {
		t.Fatal(err)
	}
	// An agent with a newer metric list than the leader's, say.
	bad := samplesAt(t0.Add(10*time.Second), 1)
	bad[0].Metric = "gpu_util"
	payload, err := proto.Marshal(wire.EncodeBlock(bad))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := buf.Append(payload, buffer.Meta{Samples: len(bad), MinTime: bad[0].Time, MaxTime: bad[0].Time}); err != nil {
		t.Fatal(err)
	}
	if _, err := buf.Append([]byte("\xff\xff not protobuf"), buffer.Meta{Samples: 1, MinTime: t0, MaxTime: t0}); err != nil {
		t.Fatal(err)
	}
	good2 := samplesAt(t0.Add(20*time.Second), 3)
	if _, err := sh.Enqueue(good2); err != nil {
		t.Fatal(err)
	}
	if _, err := sh.Enqueue(bad); err == nil {
		t.Fatal("Enqueue accepted an unknown metric")
	}

	stop := runWith(t, sh)
	eventually(t, clk, "every batch acknowledged", func() bool { return buf.Stats().Acked == 4 })
	stop()
	// Reconnect: only the new batch is sent; the rejected one is not.
	again, err := ship.New(ship.Config{AgentID: "agent-1", NodeID: "node-1", Buffer: buf, Resolve: newAddr(l.addr).resolve, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.Enqueue(samplesAt(t0.Add(30*time.Second), 1)); err != nil {
		t.Fatal(err)
	}
	stop = runWith(t, again)
	eventually(t, clk, "batch after reconnect acknowledged", func() bool { return buf.Stats().Acked == 5 })
	stop()

	sink.checkExactlyOnce(t, append(append(good1, good2...), samplesAt(t0.Add(30*time.Second), 1)...))
	info := srv.Agents()
	if info[0].Rejected != 1 || info[0].Batches != 3 {
		t.Fatalf("leader's view = %+v, want 1 rejected (seen once) and 3 taken", info[0])
	}
	if got := gathered(t, reg, "foresight_agent_rejected_batches_total"); got != 2 {
		t.Fatalf("agent's rejected batches = %v, want 2 (one by the leader, one unreadable)", got)
	}
	if got := testutil.ToFloat64(srv.rejected.WithLabelValues("malformed")); got != 1 {
		t.Fatalf("leader's malformed rejections = %v, want 1", got)
	}
}

func runWith(t *testing.T, sh *ship.Shipper) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("shipper Run: %v", err)
		}
	}
}

// The leader is unreachable for 10 simulated minutes while the agent keeps
// sampling every 10 s; when it is back, every sample taken in between
// arrives, once, and the counters on both ends agree.
func TestOutageTenSimulatedMinutesLosesNothing(t *testing.T) {
	clk := clock.NewVirtual(t0)
	sink := newSink()
	leaderReg, agentReg := prometheus.NewRegistry(), prometheus.NewRegistry()
	srv, err := NewServer(ServerConfig{Sink: sink, Clock: clk, Registerer: leaderReg, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	l := startLeader(t, srv, nil)
	buf, _ := openBuffer(t, clk)
	sh, _ := runShipper(t, ship.Config{Buffer: buf, Resolve: newAddr(l.addr).resolve, Clock: clk, Registerer: agentReg, MaxBackoff: 20 * time.Second})

	want := enqueueEvery(t, sh, clk, 6, 100, 10*time.Second) // a minute with the leader up
	eventually(t, nil, "first minute acknowledged", func() bool { return buf.Stats().Acked == 6 })

	l.stop()
	want = append(want, enqueueEvery(t, sh, clk, 60, 100, 10*time.Second)...) // ten minutes without it
	if acked := buf.Stats().Acked; acked != 6 {
		t.Fatalf("acked %d batches while the leader was down", acked)
	}
	l.start()
	eventually(t, clk, "outage backlog acknowledged", func() bool { return buf.Stats().Acked == 66 })

	sink.checkExactlyOnce(t, want)
	sampled := gathered(t, agentReg, "foresight_agent_samples_total")
	shipped := gathered(t, agentReg, "foresight_agent_shipped_samples_total")
	ingested := testutil.ToFloat64(srv.ingested)
	if sampled != float64(len(want)) || shipped != sampled || ingested != sampled {
		t.Fatalf("sampled %v, shipped %v, ingested %v; want all %d", sampled, shipped, ingested, len(want))
	}
	for reg, names := range map[*prometheus.Registry][]string{
		agentReg:  {"foresight_agent_samples_total", "foresight_agent_buffer_bytes", "foresight_agent_shipped_samples_total", "foresight_agent_evicted_samples_total"},
		leaderReg: {"foresight_leader_ingested_samples_total"},
	} {
		n, err := testutil.GatherAndCount(reg, names...)
		if err != nil || n != len(names) {
			t.Fatalf("metrics %v: found %d, err %v", names, n, err)
		}
	}
}

// A new leader (a new Server with an empty store) asks for replay: the agent
// streams its retained history, acknowledged batches included, and the new
// store holds each sample exactly once, also when replay is asked again and
// while new samples keep arriving.
func TestReplayAfterFailoverRebuildsHistoryOnce(t *testing.T) {
	clk := clock.NewVirtual(t0)
	oldSink := newSink()
	oldLeader := startLeader(t, newServer(t, oldSink, clk, Limits{}), nil)
	buf, _ := openBuffer(t, clk)
	addr := newAddr(oldLeader.addr)
	sh, _ := runShipper(t, ship.Config{Buffer: buf, Resolve: addr.resolve, Clock: clk, ResolveEvery: 5 * time.Second})

	history := enqueueEvery(t, sh, clk, 30, 20, 10*time.Second)
	eventually(t, nil, "history shipped to the old leader", func() bool { return buf.Stats().Acked == 30 })
	oldSink.checkExactlyOnce(t, history)

	// Failover: the lock moves to another agent's leader role.
	newSink := newSink()
	newSrv := newServer(t, newSink, clk, Limits{})
	newLeader := startLeader(t, newSrv, nil)
	newSrv.RequestReplay(t0)
	addr.set(newLeader.addr)
	live := samplesAt(clk.Now(), 20)
	if _, err := sh.Enqueue(live); err != nil {
		t.Fatal(err)
	}
	eventually(t, clk, "replay finished", func() bool {
		a := newSrv.Agents()
		return len(a) == 1 && a[0].Replayed && buf.Stats().Acked == 31
	})
	all := append(append([]telemetry.Sample(nil), history...), live...)
	newSink.checkExactlyOnce(t, all)

	newSrv.RequestReplay(t0)
	eventually(t, clk, "second replay finished", func() bool { return newSrv.Agents()[0].Replayed })
	newSink.checkExactlyOnce(t, all)
	if d := newSrv.Agents()[0].Duplicates; d < 31 {
		t.Fatalf("second replay: %d duplicates, want at least 31", d)
	}
	oldLeader.stop()
}

// Replay from a time sends only the batches that hold samples from then on.
func TestReplayFromTimeSendsOnlyLaterBatches(t *testing.T) {
	clk := clock.NewVirtual(t0.Add(time.Hour))
	buf, _ := openBuffer(t, clk)
	sh, err := ship.New(ship.Config{AgentID: "agent-1", NodeID: "node-1", Buffer: buf, Resolve: newAddr("").resolve, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	var later []telemetry.Sample
	for i := range 10 {
		batch := samplesAt(t0.Add(time.Duration(i)*time.Minute), 2)
		if _, err := sh.Enqueue(batch); err != nil {
			t.Fatal(err)
		}
		if i >= 6 {
			later = append(later, batch...)
		}
	}
	if err := buf.Ack(10); err != nil {
		t.Fatal(err)
	}
	sink := newSink()
	srv := newServer(t, sink, clk, Limits{})
	srv.RequestReplay(t0.Add(6 * time.Minute)) // before the agent connects
	l := startLeader(t, srv, nil)
	_, stop := runShipper(t, ship.Config{Buffer: buf, Resolve: newAddr(l.addr).resolve, Clock: clk})
	eventually(t, clk, "replay finished", func() bool { a := srv.Agents(); return len(a) == 1 && a[0].Replayed })
	stop()
	sink.checkExactlyOnce(t, later)
}

// Until the election key names a leader, the agent buffers; once it does,
// everything arrives.
func TestBuffersUntilLeaderResolves(t *testing.T) {
	clk := clock.NewVirtual(t0)
	sink := newSink()
	l := startLeader(t, newServer(t, sink, clk, Limits{}), nil)
	buf, _ := openBuffer(t, clk)
	addr := newAddr("")
	sh, _ := runShipper(t, ship.Config{Buffer: buf, Resolve: addr.resolve, Clock: clk})
	want := enqueueEvery(t, sh, clk, 5, 5, time.Minute)
	if sink.Total() != 0 || buf.Stats().Acked != 0 {
		t.Fatal("shipped without a leader")
	}
	addr.set(l.addr)
	eventually(t, clk, "buffer shipped", func() bool { return buf.Stats().Acked == 5 })
	sink.checkExactlyOnce(t, want)
}

// Enqueue refuses what the leader would reject, and writes nothing.
func TestEnqueueRefusesBadBatches(t *testing.T) {
	clk := clock.NewVirtual(t0)
	buf, _ := openBuffer(t, clk)
	sh, err := ship.New(ship.Config{AgentID: "agent-1", NodeID: "node-1", Buffer: buf, Resolve: newAddr("").resolve, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	nan := samplesAt(t0, 2)
	nan[13].Value = math.NaN()
	for name, samples := range map[string][]telemetry.Sample{
		"empty":          nil,
		"invalid sample": nan,
		"too many":       samplesAt(t0, wire.DefaultMaxBatchSamples/len(telemetry.Metrics())+1),
		"too many bytes": longAllocs(t0, 9000),
	} {
		if _, err := sh.Enqueue(samples); err == nil {
			t.Errorf("%s: enqueued", name)
		}
	}
	if st := buf.Stats(); st.NextSeq != 1 || st.Batches != 0 {
		t.Fatalf("refused batches changed the buffer: %+v", st)
	}
	if seq, err := sh.Enqueue(samplesAt(t0, 1)); err != nil || seq != 1 {
		t.Fatalf("valid batch: seq %d, err %v", seq, err)
	}
}

// longAllocs returns n samples, each of its own allocation with a 500-byte
// id, so that the batch is small in samples but large in bytes.
func longAllocs(at time.Time, n int) []telemetry.Sample {
	out := samplesAt(at, 1)[:1]
	for i := range n {
		sm := out[0]
		sm.Alloc = fmt.Sprintf("%0500d", i)
		out = append(out, sm)
	}
	return out
}

// enqueueEvery samples like an agent: a batch of tasks × every metric at the
// virtual clock's time, then the clock moves on by step. It returns every
// sample enqueued.
func enqueueEvery(t *testing.T, sh *ship.Shipper, clk *clock.Virtual, batches, tasks int, step time.Duration) []telemetry.Sample {
	t.Helper()
	var all []telemetry.Sample
	for range batches {
		batch := samplesAt(clk.Now(), tasks)
		if _, err := sh.Enqueue(batch); err != nil {
			t.Fatal(err)
		}
		all = append(all, batch...)
		clk.Advance(step)
	}
	return all
}

// hookSink calls hook after each Ingest, with the number of calls so far.
type hookSink struct {
	*countingSink
	calls int
	hook  func(calls int)
}

func (h *hookSink) Ingest(agentID string, samples []telemetry.Sample) error {
	err := h.countingSink.Ingest(agentID, samples)
	h.calls++ // Ingest runs under the Server's per-agent lock
	h.hook(h.calls)
	return err
}

// The leader's connections drop while batches are in flight, right after
// it stored one: acks are lost for batches it took. The agent resends them
// after reconnecting and the leader's deduplication keeps the store exact.
func TestConnectionCutMidFlightCountsOnce(t *testing.T) {
	clk := clock.NewVirtual(t0)
	cut := make(chan struct{})
	sink := &hookSink{countingSink: newSink(), hook: func(calls int) {
		if calls == 5 {
			close(cut)
		}
	}}
	srv := newServer(t, sink, clk, Limits{})
	l := startLeader(t, srv, nil)
	buf, _ := openBuffer(t, clk)
	sh, err := ship.New(ship.Config{AgentID: "agent-1", NodeID: "node-1", Buffer: buf, Resolve: newAddr(l.addr).resolve, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	want := enqueueEvery(t, sh, clk, 40, 50, 10*time.Second)
	stop := runWith(t, sh)
	defer stop()
	<-cut
	l.stop()
	l.start()
	eventually(t, clk, "every batch acknowledged", func() bool { return buf.Stats().Acked == 40 })
	sink.checkExactlyOnce(t, want)
	a := srv.Agents()[0]
	t.Logf("after the cut: %d batches taken, %d duplicates dropped", a.Batches, a.Duplicates)
	if a.Batches != 40 {
		t.Fatalf("leader took %d batches, want 40", a.Batches)
	}
}
