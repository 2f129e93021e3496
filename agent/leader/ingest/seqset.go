package ingest

import "sort"

// seqSet remembers which sequence numbers of one agent the leader took, as
// sorted, disjoint, non-adjacent ranges. An agent ships in order and replays
// in order, and its buffer retains one contiguous range, so in practice the
// set is a handful of ranges: one per gap (a batch the leader rejected, or
// history not replayed yet). Memory is bounded twice: forgetBelow drops what
// the agent can never send again, and past maxRanges the oldest range is
// dropped.
type seqSet struct {
	ranges    []seqRange
	maxRanges int
}

type seqRange struct{ lo, hi uint64 } // inclusive

// contains reports whether seq was added and not forgotten.
func (s *seqSet) contains(seq uint64) bool {
	i := sort.Search(len(s.ranges), func(i int) bool { return s.ranges[i].hi >= seq })
	return i < len(s.ranges) && s.ranges[i].lo <= seq
}

// add records seq, merging it with the ranges it touches.
func (s *seqSet) add(seq uint64) {
	i := sort.Search(len(s.ranges), func(i int) bool { return s.ranges[i].hi >= seq })
	if i < len(s.ranges) && s.ranges[i].lo <= seq {
		return
	}
	joinsLeft := i > 0 && s.ranges[i-1].hi+1 == seq
	joinsRight := i < len(s.ranges) && seq+1 == s.ranges[i].lo
	switch {
	case joinsLeft && joinsRight:
		s.ranges[i-1].hi = s.ranges[i].hi
		s.ranges = append(s.ranges[:i], s.ranges[i+1:]...)
	case joinsLeft:
		s.ranges[i-1].hi = seq
	case joinsRight:
		s.ranges[i].lo = seq
	default:
		s.ranges = append(s.ranges, seqRange{})
		copy(s.ranges[i+1:], s.ranges[i:])
		s.ranges[i] = seqRange{seq, seq}
		if s.maxRanges > 0 && len(s.ranges) > s.maxRanges {
			s.ranges = append(s.ranges[:0], s.ranges[1:]...)
		}
	}
}

// forgetBelow drops every sequence number under seq.
func (s *seqSet) forgetBelow(seq uint64) {
	i := sort.Search(len(s.ranges), func(i int) bool { return s.ranges[i].hi >= seq })
	s.ranges = append(s.ranges[:0], s.ranges[i:]...)
	if len(s.ranges) > 0 && s.ranges[0].lo < seq {
		s.ranges[0].lo = seq
	}
}

// max returns the highest sequence number in the set, 0 if it is empty.
func (s *seqSet) max() uint64 {
	if len(s.ranges) == 0 {
		return 0
	}
	return s.ranges[len(s.ranges)-1].hi
}
