package ingest

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/telemetry"
	"github.com/foresight-nomad/foresight/telemetry/wire"
	"github.com/foresight-nomad/foresight/telemetry/wire/ingestpb"
)

// Every bad batch is rejected in its ack with a reason that names the
// problem, the store is untouched, and the same stream goes on to take a
// good batch.
func TestServerRejectsBadBatchesAndChangesNothing(t *testing.T) {
	clk := clock.NewVirtual(t0)
	good := func() *ingestpb.SampleBlock { return wire.EncodeBlock(samplesAt(t0, 2)) }
	cases := []struct {
		name   string
		agent  string
		seq    uint64
		blk    func() *ingestpb.SampleBlock
		reason string
		want   string
	}{
		{"no samples", "a", 1, func() *ingestpb.SampleBlock { return nil }, "malformed", "no samples"},
		{"ragged columns", "a", 1, func() *ingestpb.SampleBlock { b := good(); b.Task = b.Task[1:]; return b }, "malformed", "columns disagree"},
		{"string index out of range", "a", 1, func() *ingestpb.SampleBlock { b := good(); b.Alloc[3] = 99; return b }, "malformed", "alloc index 99 outside"},
		{"unknown metric", "a", 1, func() *ingestpb.SampleBlock { b := good(); b.Strings[b.Metric[0]] = "gpu_util"; return b }, "malformed", `unknown metric "gpu_util"`},
		{"metric string used as group", "a", 1, func() *ingestpb.SampleBlock { b := good(); b.Group[5] = b.Metric[0]; return b }, "malformed", "is not namespace/job/group"},
		{"empty task", "a", 1, func() *ingestpb.SampleBlock { b := good(); b.Strings[b.Task[0]] = ""; return b }, "malformed", "empty task"},
		{"NaN value", "a", 1, func() *ingestpb.SampleBlock { b := good(); b.Value[7] = math.NaN(); return b }, "malformed", "not a finite number"},
		{"infinite value", "a", 1, func() *ingestpb.SampleBlock { b := good(); b.Value[0] = math.Inf(-1); return b }, "malformed", "not a finite number"},
		{"time far in the future", "a", 1, func() *ingestpb.SampleBlock {
			b := good()
			b.TimeOffsetMs[2] = uint64(time.Hour.Milliseconds())
			return b
		}, "malformed", "later than"},
		{"time before 2000", "a", 1, func() *ingestpb.SampleBlock { b := good(); b.BaseTimeMs = 0; return b }, "malformed", "base time"},
		{"huge string table", "a", 1, func() *ingestpb.SampleBlock {
			b := good()
			b.Strings = append(b.Strings, make([]string, 200)...)
			return b
		}, "malformed", "strings for"},
		{"too many samples", "a", 1, func() *ingestpb.SampleBlock { return wire.EncodeBlock(samplesAt(t0, 10)) }, "limit", "exceed the limit of 100 per batch"},
		{"too many series", "a", 1, func() *ingestpb.SampleBlock { return wire.EncodeBlock(samplesAt(t0, 6)) }, "limit", "series within"},
		{"other agent's id", "b", 1, good, "malformed", `agent id "b" differs`},
		{"sequence number 0", "a", 0, good, "malformed", "no sequence number"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sink := newSink()
			srv := newServer(t, sink, clk, Limits{MaxBatchSamples: 100, MaxSeriesPerAgent: 60})
			l := startLeader(t, srv, nil)
			st, err := rawStream(t, context.Background(), l.addr, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Send(helloMsg("a", 7, 1)); err != nil {
				t.Fatal(err)
			}
			ack := sendAndAck(t, st, batchMsg(c.agent, c.seq, false, c.blk()))
			if !strings.Contains(ack.Error, c.want) || ack.Seq != c.seq {
				t.Fatalf("ack = %+v, want seq %d and an error containing %q", ack, c.seq, c.want)
			}
			if sink.Total() != 0 {
				t.Fatalf("rejected batch reached the store: %d samples", sink.Total())
			}
			if got := srv.Agents()[0]; got.Rejected != 1 || got.Batches != 0 || got.Watermark != 0 {
				t.Fatalf("agent after rejection = %+v", got)
			}
			if got := testutilCount(srv, c.reason); got != 1 {
				t.Fatalf("rejections with reason %q = %v, want 1", c.reason, got)
			}
			// The stream goes on, and the rejected seq is still free.
			ack = sendAndAck(t, st, batchMsg("a", 1, false, good()))
			if ack.Error != "" || ack.Duplicate {
				t.Fatalf("good batch after a rejected one: ack %+v", ack)
			}
			if sink.Total() != 22 {
				t.Fatalf("store holds %d samples, want the good batch's 22", sink.Total())
			}
		})
	}
}

func testutilCount(srv *Server, reason string) float64 {
	return testutil.ToFloat64(srv.rejected.WithLabelValues(reason))
}

// A store that refuses a batch makes the leader reject it, so the agent
// learns why; the batch is not marked as seen.
func TestServerRejectsWhatTheSinkRefuses(t *testing.T) {
	clk := clock.NewVirtual(t0)
	sink := newSink()
	sink.fail = errors.New("disk full")
	l := startLeader(t, newServer(t, sink, clk, Limits{}), nil)
	st, err := rawStream(t, context.Background(), l.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(helloMsg("a", 7, 1)); err != nil {
		t.Fatal(err)
	}
	blk := wire.EncodeBlock(samplesAt(t0, 2))
	if ack := sendAndAck(t, st, batchMsg("a", 1, false, blk)); !strings.Contains(ack.Error, "store: disk full") {
		t.Fatalf("ack = %+v, want the store's error", ack)
	}
	sink.mu.Lock()
	sink.fail = nil
	sink.mu.Unlock()
	if ack := sendAndAck(t, st, batchMsg("a", 1, false, blk)); ack.Error != "" || ack.Duplicate || sink.Total() != 22 {
		t.Fatalf("resend after the store recovered: ack %+v, store %d samples", ack, sink.Total())
	}
}

// Protocol violations and oversized messages end the stream with a clear
// status and change nothing.
func TestServerRefusesBadStreams(t *testing.T) {
	clk := clock.NewVirtual(t0)
	cases := []struct {
		name  string
		msgs  []*ingestpb.AgentMessage
		code  codes.Code
		want  string
		agent bool // whether the leader should know the agent afterwards
	}{
		{"batch before hello", []*ingestpb.AgentMessage{batchMsg("a", 1, false, wire.EncodeBlock(samplesAt(t0, 1)))}, codes.InvalidArgument, "must be a Hello", false},
		{"hello without agent id", []*ingestpb.AgentMessage{helloMsg("", 1, 1)}, codes.InvalidArgument, "empty agent id", false},
		{"second hello", []*ingestpb.AgentMessage{helloMsg("a", 1, 1), helloMsg("a", 1, 1)}, codes.InvalidArgument, "unexpected", true},
		{"oversized batch", []*ingestpb.AgentMessage{helloMsg("a", 1, 1), batchMsg("a", 1, false, wire.EncodeBlock(samplesAt(t0, 200)))}, codes.ResourceExhausted, "larger than max", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sink := newSink()
			srv := newServer(t, sink, clk, Limits{MaxMessageBytes: 16 << 10})
			l := startLeader(t, srv, nil)
			st, err := rawStream(t, context.Background(), l.addr, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range c.msgs {
				if err := st.Send(m); err != nil {
					break // the server may have ended the stream already
				}
			}
			_, err = st.Recv()
			if s, _ := status.FromError(err); s.Code() != c.code || !strings.Contains(s.Message(), c.want) {
				t.Fatalf("stream ended with %v, want %v containing %q", err, c.code, c.want)
			}
			if sink.Total() != 0 {
				t.Fatal("a refused stream reached the store")
			}
			if got := len(srv.Agents()); (got == 1) != c.agent {
				t.Fatalf("leader knows %d agents", got)
			}
		})
	}
}

// A wiped agent buffer restarts sequence numbers; the leader must take the
// new batches rather than drop them as duplicates of the old ones.
func TestServerForgetsSequenceOfAWipedBuffer(t *testing.T) {
	clk := clock.NewVirtual(t0)
	sink := newSink()
	l := startLeader(t, newServer(t, sink, clk, Limits{}), nil)
	for i, bufferID := range []uint64{11, 11, 12} {
		st, err := rawStream(t, context.Background(), l.addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Send(helloMsg("a", bufferID, 1)); err != nil {
			t.Fatal(err)
		}
		ack := sendAndAck(t, st, batchMsg("a", 1, false, wire.EncodeBlock(samplesAt(t0.Add(time.Duration(i)*time.Second), 1))))
		if wantDup := i == 1; ack.Duplicate != wantDup || ack.Error != "" {
			t.Fatalf("stream %d (buffer %d): ack %+v, want duplicate=%v", i, bufferID, ack, wantDup)
		}
	}
	if sink.Total() != 22 {
		t.Fatalf("store holds %d samples, want 22 (two batches of 11)", sink.Total())
	}
}

// The series limit counts only series seen within the window of the
// agent's newest sample, so alloc churn over days is not punished.
func TestSeriesLimitSlidesWithTime(t *testing.T) {
	clk := clock.NewVirtual(t0.Add(3 * time.Hour))
	sink := newSink()
	l := startLeader(t, newServer(t, sink, clk, Limits{MaxSeriesPerAgent: 30, SeriesWindow: time.Hour}), nil)
	st, err := rawStream(t, context.Background(), l.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(helloMsg("a", 1, 1)); err != nil {
		t.Fatal(err)
	}
	first := samplesAt(t0, 2) // 22 series
	if ack := sendAndAck(t, st, batchMsg("a", 1, false, wire.EncodeBlock(first))); ack.Error != "" {
		t.Fatal(ack.Error)
	}
	churned := samplesAt(t0.Add(time.Minute), 2)
	for i := range churned {
		churned[i].Alloc += "-new"
	}
	if ack := sendAndAck(t, st, batchMsg("a", 2, false, wire.EncodeBlock(churned))); !strings.Contains(ack.Error, "44 series") {
		t.Fatalf("ack = %+v, want the series limit", ack)
	}
	for i := range churned {
		churned[i].Time = t0.Add(2 * time.Hour)
	}
	if ack := sendAndAck(t, st, batchMsg("a", 2, false, wire.EncodeBlock(churned))); ack.Error != "" {
		t.Fatalf("after the old series aged out: %s", ack.Error)
	}
}

// noteSink is a countingSink that also keeps the notes it is given.
type noteSink struct {
	*countingSink
	notes []telemetry.Note
	at    time.Time
}

func (n *noteSink) IngestNotes(_ string, at time.Time, notes []telemetry.Note) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.notes = append(n.notes, notes...)
	n.at = at
}

// Notes ride with a batch: a store that takes notes gets them once the
// batch is taken, stamped with its newest sample; a bad note rejects the
// whole batch, which changes nothing.
func TestServerHandsNotesToTheSink(t *testing.T) {
	clk := clock.NewVirtual(t0)
	sink := &noteSink{countingSink: newSink()}
	l := startLeader(t, newServer(t, sink, clk, Limits{}), nil)
	st, err := rawStream(t, context.Background(), l.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(helloMsg("a", 7, 1)); err != nil {
		t.Fatal(err)
	}
	samples := samplesAt(t0, 2)
	note := telemetry.Note{Group: samples[0].Group, Metric: telemetry.NetRxBPS, Reason: telemetry.AbsentHostNetwork}
	bad := wire.EncodeBlock(samples, note)
	bad.NoteMetric[0] = bad.Group[0] // a group name where a metric belongs
	if ack := sendAndAck(t, st, batchMsg("a", 1, false, bad)); !strings.Contains(ack.Error, "note 0") || sink.Total() != 0 {
		t.Fatalf("bad note: ack %+v, store %d samples", ack, sink.Total())
	}
	if ack := sendAndAck(t, st, batchMsg("a", 1, false, wire.EncodeBlock(samples, note))); ack.Error != "" {
		t.Fatalf("ack = %+v", ack)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.notes) != 1 || sink.notes[0] != note || !sink.at.Equal(t0) {
		t.Fatalf("sink got notes %+v at %v", sink.notes, sink.at)
	}
}
