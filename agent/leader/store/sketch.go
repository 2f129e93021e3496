package store

import (
	"math"
	"slices"
	"sort"
)

// The per-allocation distribution is kept as relative-error histograms in
// the manner of DDSketch (Masson, Rim and Lee, "DDSketch: A Fast and
// Fully-Mergeable Quantile Sketch with Relative-Error Guarantees", PVLDB
// 12(12), 2019): a value v > 0 is counted in bucket ceil(log_γ v) with
// γ = (1+α)/(1−α), so any quantile is returned within a relative error α of
// a value of the right rank. Sizing needs "p95 of per-allocation memory over
// the last N hours": one histogram per time window (an hour by default)
// makes windows cheap to merge and old ones cheap to drop.

const (
	// sketchAlpha is the relative accuracy of per-allocation quantiles.
	sketchAlpha = 0.01
	// sketchMinValue is the smallest value told apart from zero; usage
	// metrics below it (and negative readings) count as zero.
	sketchMinValue = 1e-9
	// sketchOverhead is the heap cost of a window beyond its counts.
	sketchOverhead = 64
)

var (
	sketchGamma   = (1 + sketchAlpha) / (1 - sketchAlpha)
	sketchLnGamma = math.Log(sketchGamma)
)

// sketch is a histogram with logarithmic buckets; counts[i] counts bucket
// offset+i, dense between the smallest and largest bucket seen, which is
// compact because one group's per-allocation values cluster.
type sketch struct {
	zero   uint64
	offset int32
	counts []uint32
	n      uint64
}

func sketchKey(v float64) int32 {
	return int32(math.Ceil(math.Log(v) / sketchLnGamma))
}

// add counts v and returns the change in the sketch's bytes.
func (s *sketch) add(v float64, times uint32) int64 {
	s.n += uint64(times)
	if !(v > sketchMinValue) {
		s.zero += uint64(times)
		return 0
	}
	return s.addKey(sketchKey(v), times)
}

// addKey counts times values in bucket k, leaving n to the caller.
func (s *sketch) addKey(k int32, times uint32) int64 {
	before := cap(s.counts)
	switch {
	case len(s.counts) == 0:
		s.offset = k
		s.counts = []uint32{0}
	case k < s.offset:
		grown := make([]uint32, int(s.offset-k)+len(s.counts))
		copy(grown[s.offset-k:], s.counts)
		s.counts, s.offset = grown, k
	case int(k-s.offset) >= len(s.counts):
		s.counts = append(s.counts, make([]uint32, int(k-s.offset)+1-len(s.counts))...)
	}
	i := k - s.offset
	if s.counts[i] > math.MaxUint32-times {
		s.counts[i] = math.MaxUint32 // saturate: a window this full is already exact enough
	} else {
		s.counts[i] += times
	}
	return int64(cap(s.counts)-before) * 4
}

// merge adds o's counts to s.
func (s *sketch) merge(o *sketch) {
	s.zero += o.zero
	s.n += o.n
	for i, c := range o.counts {
		if c > 0 {
			s.addKey(o.offset+int32(i), c)
		}
	}
}

// quantile returns the value of rank q·(n−1), within relative error α.
func (s *sketch) quantile(q float64) float64 {
	rank := uint64(q * float64(s.n-1))
	if rank < s.zero {
		return 0
	}
	seen := s.zero
	for i, c := range s.counts {
		seen += uint64(c)
		if seen > rank {
			// The bucket's midpoint in relative terms: 2γ^k/(γ+1).
			return 2 * math.Pow(sketchGamma, float64(s.offset+int32(i))) / (sketchGamma + 1)
		}
	}
	return 2 * math.Pow(sketchGamma, float64(s.offset+int32(len(s.counts)-1))) / (sketchGamma + 1)
}

func (s *sketch) bytes() int64 { return int64(cap(s.counts))*4 + sketchOverhead }

// sketchWindow is the distribution of per-allocation values over one window.
type sketchWindow struct {
	start int64
	s     sketch
}

// distribution is a series' per-allocation values, one sketch per window.
type distribution struct {
	step    int64
	windows []sketchWindow // by start
	bytes   int64          // heap held by the windows' sketches
}

// add counts v at t.
func (d *distribution) add(t int64, v float64) {
	start := floorTo(t, d.step)
	n := len(d.windows)
	i := n
	if n > 0 && d.windows[n-1].start >= start {
		i = sort.Search(n, func(i int) bool { return d.windows[i].start >= start })
	}
	if i == n || d.windows[i].start != start {
		d.windows = slices.Insert(d.windows, i, sketchWindow{start: start})
		d.bytes += sketchOverhead
	}
	d.bytes += d.windows[i].s.add(v, 1)
}

// over merges the windows that overlap [from, to).
func (d *distribution) over(from, to int64) sketch {
	var out sketch
	for i := range d.windows {
		w := &d.windows[i]
		if w.start+d.step > from && w.start < to {
			out.merge(&w.s)
		}
	}
	return out
}

// dropBefore removes windows that end before cutoff and returns how many.
func (d *distribution) dropBefore(cutoff int64) int {
	n := 0
	for n < len(d.windows) && d.windows[n].start+d.step <= cutoff {
		d.bytes -= d.windows[n].s.bytes()
		n++
	}
	if n > 0 {
		d.windows = slices.Delete(d.windows, 0, n)
	}
	return n
}

// oldest returns the end of the oldest window.
func (d *distribution) oldest() (int64, bool) {
	if len(d.windows) == 0 {
		return 0, false
	}
	return d.windows[0].start + d.step, true
}
