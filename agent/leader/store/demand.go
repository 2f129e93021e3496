package store

import (
	"cmp"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/foresight-nomad/foresight/telemetry"
)

// How a demand series is built. Samples land in the slot of the raw grid
// that holds their time (10 s by default); the demand of a slot is the sum,
// over the group's (alloc, task) pairs, of each pair's reading in that slot.
// A pair read twice in one slot (agents sample every 10 s but not on the
// grid, so jitter can put two readings in a slot) counts once, with its
// earliest reading: the one a rebuild from replayed batches, which arrive in
// time order and keep the first reading of a slot, also takes.
//
// A slot stays open while samples may still be on their way: it is sealed
// once the clock passes its end by the configured lateness, and only then
// written to the tiers and the per-allocation distribution, so queries
// never see a half-summed slot. A sample for a slot that is already sealed
// (an agent that was cut off, or a new leader rebuilding from every agent's
// replay) is not dropped: it is added into the stored demand, rewriting the
// closed chunks that hold the slot once per batch. To make replays
// idempotent, each series remembers, per (alloc, task), the runs of slots
// that pair has filled; a sample for a slot its pair already filled is a
// duplicate and ignored.
//
// So the history after a replay matches the history before, whatever order
// the agents replay in, within these limits, which only late samples meet:
//   - slot sums are added in another order, so they agree up to float
//     rounding (exactly, for integer readings);
//   - a downsampled sum is rounded to the configured significant digits
//     each time it is written, so a bucket changed by late samples in k
//     batches can differ by k+1 half-units of its last digit (each 0.05% at
//     most with the default 4 digits);
//   - a downsampled bucket whose raw slots have expired can only raise its
//     max to a late sample's own value, so that max is a lower bound;
//   - an allocation's per-allocation value for a slot is taken once, from
//     the first batch that brings any of its tasks for the slot: exact as
//     long as an agent ships all of an allocation's tasks of one sampling
//     round in one batch, which callers must keep to;
//   - samples older than the replay window are dropped (Stats.TooLate).
type series struct {
	mu     sync.Mutex
	group  string
	metric string

	tiers []*tier
	dist  distribution

	pending     map[int64]map[pairKey]reading // open slots
	sealedUntil int64                         // slots before this are sealed
	covered     map[pairKey]*coverage         // sealed slots per pair
	// source names where the tiers' backfilled buckets came from.
	source string
}

// pairKey names one task of one allocation: the unit that reports samples.
type pairKey struct{ alloc, task string }

// reading is a pair's earliest reading in a slot.
type reading struct {
	t int64
	v float64
}

// change is what an operation on a series did, for the store's counters.
type change struct {
	bytes      int64
	duplicates int64
	late       int64
	tooLate    int64
	expired    int64
}

func (c *change) add(o change) {
	c.bytes += o.bytes
	c.duplicates += o.duplicates
	c.late += o.late
	c.tooLate += o.tooLate
	c.expired += o.expired
}

// size is what the series holds on the heap, as counted against the
// budget: tier chunks and heads, and distribution windows. Open slots and
// coverage are left out: they are bounded by the lateness and by the
// number of allocations.
func (s *series) size() int64 {
	n := s.dist.bytes
	for _, tr := range s.tiers {
		n += tr.size()
	}
	return n
}

func newSeries(group, metric string, cfg *Config) *series {
	s := &series{
		group:       group,
		metric:      metric,
		dist:        distribution{step: cfg.DistributionStep.Milliseconds()},
		sealedUntil: math.MinInt64,
	}
	for i, t := range cfg.Tiers {
		cols, digits := 3, cfg.SignificantDigits
		switch {
		case i == 0:
			cols, digits = 1, 0
		case t.DropMax:
			cols = 2
		}
		s.tiers = append(s.tiers, newTier(t.Step.Milliseconds(), t.Retention.Milliseconds(), cols, digits, cmp.Or(t.ChunkSamples, cfg.ChunkSamples)))
	}
	return s
}

// ingest takes the series' samples of one batch, in any order.
func (s *series) ingest(batch []telemetry.Sample, cfg *Config, now int64) (change, error) {
	var ch change
	step := s.tiers[0].step
	late := map[int64]map[pairKey]reading{}
	oldest := now - cfg.ReplayWindow.Milliseconds()
	for i := range batch {
		sm := &batch[i]
		t := sm.Time.UnixMilli()
		if t < oldest {
			ch.tooLate++
			continue
		}
		slot := floorTo(t, step)
		k := pairKey{sm.Alloc, sm.Task}
		if s.pending == nil {
			s.pending = map[int64]map[pairKey]reading{}
		}
		dst := s.pending
		if slot < s.sealedUntil {
			if c := s.covered[k]; c != nil && c.has(slot) {
				ch.duplicates++
				continue
			}
			dst = late
		}
		readings := dst[slot]
		if readings == nil {
			readings = map[pairKey]reading{}
			dst[slot] = readings
		}
		if old, ok := readings[k]; ok {
			if old.t == t && old.v == sm.Value {
				ch.duplicates++
			}
			if old.t <= t {
				continue
			}
		}
		readings[k] = reading{t, sm.Value}
	}
	if len(late) > 0 {
		n, err := s.mergeLate(late, cfg, now)
		ch.add(n)
		if err != nil {
			return ch, err
		}
	}
	n, err := s.seal(cfg, now)
	ch.add(n)
	return ch, err
}

// seal closes every open slot that ended at least the lateness ago, in time
// order, and drops what has outlived its retention.
func (s *series) seal(cfg *Config, now int64) (change, error) {
	var ch change
	step := s.tiers[0].step
	boundary := floorTo(now-cfg.Lateness.Milliseconds(), step) // slots before it are due
	var due []int64
	for slot := range s.pending {
		if slot < boundary {
			due = append(due, slot)
		}
	}
	slices.Sort(due)
	for _, slot := range due {
		readings := s.pending[slot]
		delete(s.pending, slot)
		demand, allocs := s.sumSlot(slot, readings)
		for _, a := range allocs {
			s.dist.add(slot, a.v)
		}
		if err := s.tiers[0].appendPoint(point{t: slot, sum: demand}); err != nil {
			return ch, err
		}
		for _, tr := range s.tiers[1:] {
			if err := tr.addSlot(slot, demand); err != nil {
				return ch, err
			}
		}
		s.sealedUntil = slot + step
	}
	if len(due) > 0 {
		ch.add(s.expire(cfg, now))
	}
	return ch, nil
}

// allocValue is one allocation's value in a slot: the sum over its tasks.
type allocValue struct {
	alloc string
	v     float64
}

// sumSlot returns a slot's demand and per-allocation values, summing in a
// fixed order so that the result does not depend on arrival order, and
// marks the slot covered for every pair.
func (s *series) sumSlot(slot int64, readings map[pairKey]reading) (float64, []allocValue) {
	keys := make([]pairKey, 0, len(readings))
	for k := range readings {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b pairKey) int {
		return cmp.Or(cmp.Compare(a.alloc, b.alloc), cmp.Compare(a.task, b.task))
	})
	var demand float64
	var allocs []allocValue
	for _, k := range keys {
		v := readings[k].v
		demand += v
		if n := len(allocs); n > 0 && allocs[n-1].alloc == k.alloc {
			allocs[n-1].v += v
		} else {
			allocs = append(allocs, allocValue{k.alloc, v})
		}
		c := s.covered[k]
		if c == nil {
			if s.covered == nil {
				s.covered = map[pairKey]*coverage{}
			}
			c = &coverage{}
			s.covered[pairKey{strings.Clone(k.alloc), strings.Clone(k.task)}] = c
		}
		c.add(slot, s.tiers[0].step)
	}
	return demand, allocs
}

// mergeLate adds samples for sealed slots into the stored history.
func (s *series) mergeLate(late map[int64]map[pairKey]reading, cfg *Config, now int64) (change, error) {
	var ch change
	slots := make([]int64, 0, len(late))
	for slot := range late {
		slots = append(slots, slot)
	}
	slices.Sort(slots)
	type slotMerge struct {
		delta   float64
		newSlot bool
		value   float64 // the slot's new total, NaN while unknown
	}
	merged := make(map[int64]*slotMerge, len(slots))
	for _, slot := range slots {
		readings := late[slot]
		ch.late += int64(len(readings))
		// Which allocations and which slot were already known, before
		// sumSlot marks them covered.
		seenAlloc := map[string]bool{}
		newSlot := true
		for k, c := range s.covered {
			if c.has(slot) {
				newSlot = false
				seenAlloc[k.alloc] = true
			}
		}
		delta, allocs := s.sumSlot(slot, readings)
		for _, a := range allocs {
			if !seenAlloc[a.alloc] && slot >= now-cfg.DistributionRetention.Milliseconds() {
				s.dist.add(slot, a.v)
			}
		}
		m := &slotMerge{delta: delta, newSlot: newSlot, value: math.NaN()}
		if newSlot {
			m.value = delta
		}
		merged[slot] = m
	}
	raw := s.tiers[0]
	held := slots[sort.Search(len(slots), func(i int) bool { return raw.holds(slots[i], now) }):]
	err := raw.update(held, func(t int64, old point, ok bool) point {
		m := merged[t]
		m.value = m.delta
		if ok {
			m.value = old.sum + m.delta
		}
		return point{sum: m.value}
	})
	if err != nil {
		return ch, err
	}
	for _, tr := range s.tiers[1:] {
		buckets := map[int64]*bucketDelta{}
		for _, slot := range slots {
			m := merged[slot]
			start := floorTo(slot, tr.step)
			if tr.acc.open && start == tr.acc.start {
				tr.acc.sum += m.delta
				if m.newSlot {
					tr.acc.count++
				}
				if !math.IsNaN(m.value) {
					tr.acc.max = max(tr.acc.max, m.value)
				}
				continue
			}
			if !tr.holds(start, now) {
				continue
			}
			bd := buckets[start]
			if bd == nil {
				bd = &bucketDelta{max: math.Inf(-1)}
				buckets[start] = bd
			}
			bd.sum += m.delta
			if m.newSlot {
				bd.slots++
			}
			if math.IsNaN(m.value) {
				bd.max = max(bd.max, m.delta) // the raw slot is gone: a lower bound
			} else {
				bd.max = max(bd.max, m.value)
			}
		}
		// One rewrite per closed chunk and bucket, so that a bucket's sum is
		// rounded once per batch rather than once per slot.
		err := tr.update(slices.Sorted(maps.Keys(buckets)), func(t int64, old point, ok bool) point {
			bd := buckets[t]
			if ok && tr.filled.has(t) {
				// The agents win over a backfill: their data replaces it.
				ok = false
				tr.filled.remove(t, tr.step)
			}
			if !ok {
				return point{sum: bd.sum, count: max(bd.slots, 1), max: bd.max}
			}
			return point{sum: old.sum + bd.sum, count: old.count + bd.slots, max: max(old.max, bd.max)}
		})
		if err != nil {
			return ch, err
		}
	}
	return ch, nil
}

// bucketDelta is what late slots add to a closed bucket.
type bucketDelta struct {
	sum   float64
	slots float64 // slots that had no data before
	max   float64 // highest new slot total, or a lower bound of it
}

// expire drops chunks, windows and coverage that outlived their retention.
func (s *series) expire(cfg *Config, now int64) change {
	var ch change
	for _, tr := range s.tiers {
		ch.expired += int64(tr.dropBefore(now - tr.retention))
	}
	ch.expired += int64(s.dist.dropBefore(now - cfg.DistributionRetention.Milliseconds()))
	// Coverage is needed as long as a replayed sample is accepted.
	keep := floorTo(now-cfg.ReplayWindow.Milliseconds(), s.tiers[0].step)
	for k, c := range s.covered {
		if c.dropBefore(keep) {
			delete(s.covered, k)
		}
	}
	return ch
}

// evictOldest drops the oldest closed chunk or distribution window, the one
// whose data ends first, and reports whether there was one.
func (s *series) evictOldest() bool {
	best, which := int64(math.MaxInt64), -2
	for i, tr := range s.tiers {
		if t, ok := tr.oldest(); ok && t < best {
			best, which = t, i
		}
	}
	if t, ok := s.dist.oldest(); ok && t < best {
		best, which = t, -1
	}
	switch {
	case which == -1:
		s.dist.dropBefore(best)
		return true
	case which >= 0:
		s.tiers[which].dropBefore(best + 1)
		return true
	}
	return false
}

// oldest returns the time at which the series' oldest evictable data ends.
func (s *series) oldest() (int64, bool) {
	best, found := int64(math.MaxInt64), false
	for _, tr := range s.tiers {
		if t, ok := tr.oldest(); ok && t < best {
			best, found = t, true
		}
	}
	if t, ok := s.dist.oldest(); ok && t < best {
		best, found = t, true
	}
	return best, found
}

// coverage is a set of slots, as sorted runs of consecutive slots.
type coverage struct {
	runs []run
}

// run is the slots lo, lo+step, …, hi.
type run struct{ lo, hi int64 }

func (c *coverage) has(slot int64) bool {
	i := sort.Search(len(c.runs), func(i int) bool { return c.runs[i].hi >= slot })
	return i < len(c.runs) && c.runs[i].lo <= slot
}

func (c *coverage) add(slot, step int64) {
	i := sort.Search(len(c.runs), func(i int) bool { return c.runs[i].hi >= slot })
	if i < len(c.runs) && c.runs[i].lo <= slot {
		return
	}
	joinsPrev := i > 0 && c.runs[i-1].hi+step == slot
	joinsNext := i < len(c.runs) && c.runs[i].lo-step == slot
	switch {
	case joinsPrev && joinsNext:
		c.runs[i-1].hi = c.runs[i].hi
		c.runs = slices.Delete(c.runs, i, i+1)
	case joinsPrev:
		c.runs[i-1].hi = slot
	case joinsNext:
		c.runs[i].lo = slot
	default:
		c.runs = slices.Insert(c.runs, i, run{slot, slot})
	}
}

// remove takes slot out of the set.
func (c *coverage) remove(slot, step int64) {
	i := sort.Search(len(c.runs), func(i int) bool { return c.runs[i].hi >= slot })
	if i == len(c.runs) || c.runs[i].lo > slot {
		return
	}
	r := c.runs[i]
	switch {
	case r.lo == slot && r.hi == slot:
		c.runs = slices.Delete(c.runs, i, i+1)
	case r.lo == slot:
		c.runs[i].lo += step
	case r.hi == slot:
		c.runs[i].hi -= step
	default:
		c.runs[i].hi = slot - step
		c.runs = slices.Insert(c.runs, i+1, run{slot + step, r.hi})
	}
}

// dropBefore forgets slots before cutoff and reports whether none are left.
func (c *coverage) dropBefore(cutoff int64) bool {
	n := 0
	for n < len(c.runs) && c.runs[n].hi < cutoff {
		n++
	}
	c.runs = c.runs[n:]
	if len(c.runs) > 0 && c.runs[0].lo < cutoff {
		c.runs[0].lo = cutoff
	}
	return len(c.runs) == 0
}
