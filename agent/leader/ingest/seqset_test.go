package ingest

import (
	"slices"
	"testing"
)

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
