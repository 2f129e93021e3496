package ingest

import (
	"math"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/foresight-nomad/foresight/agent/ingest/ingestpb"
	"github.com/foresight-nomad/foresight/agent/store"
)

func TestBlockRoundTrip(t *testing.T) {
	in := samplesAt(t0, 100)
	in[5].Time = t0.Add(-3 * time.Second)
	in[9].Time = t0.Add(1234 * time.Millisecond)
	in[7].Value = -0.5
	blk := EncodeBlock(in)
	if len(blk.Strings) != 7+100+1+len(Metrics) {
		t.Fatalf("string table holds %d strings, want each distinct string once", len(blk.Strings))
	}
	wire, err := proto.Marshal(blk)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d samples in %d bytes (%.1f bytes/sample)", len(in), len(wire), float64(len(wire))/float64(len(in)))
	back := &ingestpb.SampleBlock{}
	if err := proto.Unmarshal(wire, back); err != nil {
		t.Fatal(err)
	}
	var d blockDecoder
	out, err := d.decode(back, len(in), t0.Add(time.Minute), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(in, out, sameSample) {
		t.Fatal("samples changed in the round trip")
	}
}

func sameSample(a, b store.Sample) bool {
	return a.Time.Equal(b.Time) && a.Group == b.Group && a.Alloc == b.Alloc && a.Task == b.Task && a.Metric == b.Metric &&
		math.Float64bits(a.Value) == math.Float64bits(b.Value)
}

func TestCheckSample(t *testing.T) {
	ok := samplesAt(t0, 1)[0]
	for _, c := range []struct {
		name string
		edit func(*store.Sample)
	}{
		{"group with two parts", func(s *store.Sample) { s.Group = "default/web" }},
		{"group with four parts", func(s *store.Sample) { s.Group = "a/b/c/d" }},
		{"group with an empty part", func(s *store.Sample) { s.Group = "a//c" }},
		{"no alloc", func(s *store.Sample) { s.Alloc = "" }},
		{"no task", func(s *store.Sample) { s.Task = "" }},
		{"unknown metric", func(s *store.Sample) { s.Metric = "cpu" }},
		{"NaN", func(s *store.Sample) { s.Value = math.NaN() }},
		{"no time", func(s *store.Sample) { s.Time = time.Time{} }},
		{"long alloc", func(s *store.Sample) { s.Alloc = string(make([]byte, maxIDBytes+1)) }},
	} {
		sm := ok
		c.edit(&sm)
		if err := CheckSample(sm); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
	if err := CheckSample(ok); err != nil {
		t.Fatalf("valid sample refused: %v", err)
	}
}

func TestSeqSet(t *testing.T) {
	var s seqSet
	for _, seq := range []uint64{5, 7, 6, 1, 2, 10, 9} {
		s.add(seq)
	}
	if got, want := s.ranges, []seqRange{{1, 2}, {5, 7}, {9, 10}}; !slices.Equal(got, want) {
		t.Fatalf("ranges = %v, want %v", got, want)
	}
	for seq, want := range map[uint64]bool{0: false, 1: true, 3: false, 6: true, 8: false, 10: true, 11: false} {
		if s.contains(seq) != want {
			t.Errorf("contains(%d) = %v", seq, !want)
		}
	}
	s.forgetBelow(6)
	if got, want := s.ranges, []seqRange{{6, 7}, {9, 10}}; !slices.Equal(got, want) || s.max() != 10 {
		t.Fatalf("after forgetBelow(6): ranges %v, max %d", got, s.max())
	}
	capped := seqSet{maxRanges: 2}
	for _, seq := range []uint64{1, 3, 5} {
		capped.add(seq)
	}
	if got, want := capped.ranges, []seqRange{{3, 3}, {5, 5}}; !slices.Equal(got, want) {
		t.Fatalf("capped ranges = %v, want the oldest dropped: %v", got, want)
	}
}
