package backtest

import (
	"math"
	"sort"
)

// hindsight is what a policy with perfect foresight could do on the scored
// minutes: it knows every minute's demand in advance, so it can have exactly
// the allocations each minute needs running by then, at 100 % utilisation,
// and it may spend its violation budget on the minutes that need the most,
// holding nothing in them.
//
// Its resource-hours are a lower bound on every policy's, at the same number
// of violation minutes: any policy holds at least the count a minute needs
// in each minute it does not violate, and at least none in the others;
// starting allocations, a minimum count, whole nodes and the scale-down an
// early scale-up forces only add to it. When even the bound is above a
// goal's resource-hours, no policy can meet that goal on the trace.
type hindsight struct {
	// total is the allocation-minutes when every minute holds its need.
	total int
	// saved[v] is what leaving the v neediest minutes without capacity
	// saves.
	saved []int
}

func newHindsight(need []int) *hindsight {
	h := &hindsight{saved: make([]int, len(need)+1)}
	s := append([]int(nil), need...)
	sort.Sort(sort.Reverse(sort.IntSlice(s)))
	for i, n := range s {
		h.total += n
		h.saved[i+1] = h.saved[i] + n
	}
	return h
}

// hours is the least resource-hours with at most v violation minutes.
func (h *hindsight) hours(v int) float64 {
	v = max(0, min(v, len(h.saved)-1))
	return float64(h.total-h.saved[v]) / 60
}

// needs is the allocations each demand (in MHz) needs so that it does not
// exceed their capacity, the violation rule sim scores by: none for no
// demand.
func needs(demandMHz []float64) []int {
	out := make([]int, len(demandMHz))
	for i, d := range demandMHz {
		out[i] = max(0, int(math.Ceil(d/AllocMHz-1e-9)))
	}
	return out
}
