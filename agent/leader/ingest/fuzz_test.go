package ingest

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/telemetry/telemetrytest"
	"github.com/foresight-nomad/foresight/telemetry/wire"
	"github.com/foresight-nomad/foresight/telemetry/wire/ingestpb"
)

// FuzzDecodeBatch feeds arbitrary bytes to the leader's decoding of an agent
// message. It must never panic, and whatever it accepts must be valid
// samples that survive a round trip through the encoder unchanged.
func FuzzDecodeBatch(f *testing.F) {
	latest := t0.Add(5 * time.Minute)
	for _, blk := range []*ingestpb.SampleBlock{
		wire.EncodeBlock(samplesAt(t0, 3)),
		wire.EncodeBlock(samplesAt(t0.Add(-48*time.Hour), 1)),
		{Strings: []string{"a/b/c", "x", "cpu_mhz"}, BaseTimeMs: t0.UnixMilli(), TimeOffsetMs: []uint64{0}, Group: []uint32{0}, Alloc: []uint32{1}, Task: []uint32{1}, Metric: []uint32{2}, Value: []float64{1}},
		{Strings: []string{"a/b/c"}, TimeOffsetMs: []uint64{math.MaxUint64}, Group: []uint32{0}, Alloc: []uint32{0}, Task: []uint32{0}, Metric: []uint32{0}, Value: []float64{math.NaN()}},
	} {
		raw, err := proto.Marshal(batchMsg("a", 1, false, blk))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte{0x12, 0x03, 0x2a, 0x01, 0x0a})
	var d wire.Decoder
	sink := &discardSink{}
	srv, err := NewServer(ServerConfig{Sink: sink, Clock: clock.NewVirtual(t0), Limits: Limits{MaxBatchSamples: 1000, MaxSeriesPerAgent: 500}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m := &ingestpb.AgentMessage{}
		if err := proto.Unmarshal(data, m); err != nil {
			return
		}
		b := m.GetBatch()
		if b == nil {
			return
		}
		// The whole of the leader's handling, on a fresh agent: what it
		// takes reaches the sink in full, what it rejects not at all.
		a := &agentState{series: map[uint64]int64{}}
		before := sink.n.Load()
		ack := srv.take(context.Background(), a, &ingestpb.Hello{AgentId: "a", NodeId: "a"}, false, b)
		taken := sink.n.Load() - before
		samples, err := d.Decode(b.Samples, 1000, latest, nil)
		switch {
		case ack.Error == "" && (err != nil || taken != int64(len(samples))):
			t.Fatalf("leader took %d samples of a batch the decoder says is %d samples, err %v", taken, len(samples), err)
		case ack.Error != "" && taken != 0:
			t.Fatalf("leader rejected the batch (%s) but the sink took %d samples", ack.Error, taken)
		}
		if err != nil {
			return
		}
		for i, sm := range samples {
			if err := sm.Check(); err != nil {
				t.Fatalf("accepted sample %d is invalid: %v", i, err)
			}
			if sm.Time.After(latest) {
				t.Fatalf("accepted sample %d from %v, after %v", i, sm.Time, latest)
			}
		}
		raw, err := proto.Marshal(wire.EncodeBlock(samples))
		if err != nil {
			t.Fatalf("re-encode accepted samples: %v", err)
		}
		back := &ingestpb.SampleBlock{}
		if err := proto.Unmarshal(raw, back); err != nil {
			t.Fatal(err)
		}
		var d2 wire.Decoder
		again, err := d2.Decode(back, 1000, latest, nil)
		if err != nil {
			t.Fatalf("re-encoded accepted samples rejected: %v", err)
		}
		if !slices.EqualFunc(samples, again, telemetrytest.Same) {
			t.Fatal("accepted samples changed in a round trip")
		}
	})
}

// FuzzSeqSet checks the dedupe memory against a plain set: with no cap, the
// ranges must hold exactly the sequence numbers added and not forgotten,
// and stay sorted, disjoint and non-adjacent.
func FuzzSeqSet(f *testing.F) {
	f.Add([]byte{1, 2, 3, 10, 9, 8, 200, 5})
	f.Add([]byte{0, 255, 0, 7, 7, 128})
	f.Fuzz(func(t *testing.T, ops []byte) {
		var s seqSet
		model := map[uint64]bool{}
		for _, op := range ops {
			seq := uint64(op % 64)
			if op >= 192 { // a quarter of the ops forget
				s.forgetBelow(seq)
				for k := range model {
					if k < seq {
						delete(model, k)
					}
				}
				continue
			}
			s.add(seq)
			model[seq] = true
		}
		for seq := uint64(0); seq < 64; seq++ {
			if s.contains(seq) != model[seq] {
				t.Fatalf("contains(%d) = %v, model %v; ranges %v", seq, s.contains(seq), model[seq], s.ranges)
			}
		}
		for i, r := range s.ranges {
			if r.lo > r.hi || (i > 0 && s.ranges[i-1].hi+1 >= r.lo) {
				t.Fatalf("ranges not sorted, disjoint and non-adjacent: %v", s.ranges)
			}
		}
	})
}
