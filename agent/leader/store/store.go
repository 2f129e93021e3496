// Package store is the leader's memory of what every task group used: per
// group and metric, the demand series (the sum over the group's allocations
// and tasks on a 10 s grid) in tiers of falling resolution, and the
// distribution of per-allocation values that sizing asks quantiles of.
//
// Series are stored in compressed chunks modelled on Prometheus' tsdb
// chunkenc and the Gorilla paper (see chunk.go and xor.go). The store keeps
// to a byte budget by evicting the oldest closed chunks first, it is safe
// for concurrent use, and it takes its time from a clock, never the wall.
package store

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/telemetry"
)

// Tier is one resolution of the demand series and how long it is kept.
type Tier struct {
	// Step is the width of a point; the first tier's is the raw grid.
	Step time.Duration
	// Retention is how far back the tier keeps points.
	Retention time.Duration
	// ChunkSamples is how many points a chunk holds before it is closed;
	// 0 takes Config.ChunkSamples.
	ChunkSamples int
	// DropMax leaves out the per-point maximum of a downsampled tier, which
	// costs about as much memory as the mean; queries then have no Max.
	DropMax bool
}

// DefaultTiers keeps 10 s points for 6 hours, 1-minute points with maxima
// for 3 days and 5-minute means for 35 days. Coarse tiers have larger
// chunks, which spread the cost of a chunk's first point over more points.
var DefaultTiers = []Tier{
	{Step: 10 * time.Second, Retention: 6 * time.Hour},
	{Step: time.Minute, Retention: 3 * 24 * time.Hour, ChunkSamples: 240},
	{Step: 5 * time.Minute, Retention: 35 * 24 * time.Hour, ChunkSamples: 288, DropMax: true},
}

// Defaults for the zero fields of Config.
const (
	// DefaultLateness is how long a slot waits for samples after it ends.
	DefaultLateness = 30 * time.Second
	// DefaultChunkSamples is how many points a chunk holds.
	DefaultChunkSamples = 120
	// DefaultSignificantDigits is the precision of downsampled values.
	DefaultSignificantDigits = 4
	// DefaultDistributionStep is the window of one per-allocation histogram.
	DefaultDistributionStep = time.Hour
	// DefaultDistributionRetention is how long histograms are kept.
	DefaultDistributionRetention = 7 * 24 * time.Hour
	// DefaultReplayWindow is how far back replayed samples are merged.
	DefaultReplayWindow = 3 * 24 * time.Hour
	// DefaultMaxBytes is the memory budget: 1 GiB.
	DefaultMaxBytes = 1 << 30
)

// Config says how a Store keeps its series. Zero fields take the defaults.
type Config struct {
	// Clock tells the time that seals slots and ages data; clock.Real{} by default.
	Clock clock.Clock
	// Tiers are the resolutions, finest first; each step a multiple of the first.
	Tiers []Tier
	// Lateness is how long after its end a slot waits for samples before it
	// is sealed. Later samples are still merged, at a higher cost.
	Lateness time.Duration
	// ChunkSamples is how many points a chunk holds before it is closed.
	ChunkSamples int
	// SignificantDigits is the precision of downsampled sums and maxima
	// (relative error under 5·10^-digits); -1 keeps them exact.
	SignificantDigits int
	// DistributionStep is the window of one per-allocation histogram, and so
	// the granularity of AllocQuantile's window.
	DistributionStep time.Duration
	// DistributionRetention is how long per-allocation histograms are kept.
	DistributionRetention time.Duration
	// ReplayWindow is how far back a late or replayed sample is still
	// merged; older ones are dropped and counted in Stats.TooLate. It bounds
	// what recognising re-sent samples costs: per series and (alloc, task),
	// the runs of slots it filled within the window. Agents should retain
	// no more history than this.
	ReplayWindow time.Duration
	// MaxBytes bounds the heap held by chunks and histograms; -1 means no
	// bound. Open slots and per-series bookkeeping come on top.
	MaxBytes int64
}

func (c Config) withDefaults() (Config, error) {
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if len(c.Tiers) == 0 {
		c.Tiers = DefaultTiers
	}
	c.Tiers = slices.Clone(c.Tiers)
	c.Lateness = cmp.Or(c.Lateness, DefaultLateness)
	c.ChunkSamples = cmp.Or(c.ChunkSamples, DefaultChunkSamples)
	c.SignificantDigits = cmp.Or(c.SignificantDigits, DefaultSignificantDigits)
	c.DistributionStep = cmp.Or(c.DistributionStep, DefaultDistributionStep)
	c.DistributionRetention = cmp.Or(c.DistributionRetention, DefaultDistributionRetention)
	c.MaxBytes = cmp.Or(c.MaxBytes, DefaultMaxBytes)
	c.ReplayWindow = cmp.Or(c.ReplayWindow, DefaultReplayWindow)
	raw := c.Tiers[0].Step
	for i, t := range c.Tiers {
		switch {
		case t.Step < time.Millisecond || t.Step%time.Millisecond != 0:
			return c, fmt.Errorf("tier %d: step %v is not a positive whole number of milliseconds", i, t.Step)
		case t.Step%raw != 0:
			return c, fmt.Errorf("tier %d: step %v is not a multiple of the raw step %v", i, t.Step, raw)
		case i > 0 && t.Step <= c.Tiers[i-1].Step:
			return c, fmt.Errorf("tier %d: step %v is not coarser than tier %d's %v", i, t.Step, i-1, c.Tiers[i-1].Step)
		case t.Retention < t.Step:
			return c, fmt.Errorf("tier %d: retention %v is shorter than its step %v", i, t.Retention, t.Step)
		case t.ChunkSamples != 0 && (t.ChunkSamples < 2 || t.ChunkSamples > maxChunkSamples):
			return c, fmt.Errorf("tier %d: chunk samples %d is not between 2 and %d", i, t.ChunkSamples, maxChunkSamples)
		}
	}
	switch {
	case len(c.Tiers) > 1 && c.Tiers[len(c.Tiers)-1].Retention < c.Tiers[0].Retention:
		return c, fmt.Errorf("the coarsest tier keeps %v, less than the raw tier's %v", c.Tiers[len(c.Tiers)-1].Retention, c.Tiers[0].Retention)
	case c.Lateness < 0:
		return c, fmt.Errorf("lateness %v is negative", c.Lateness)
	case c.ChunkSamples < 2 || c.ChunkSamples > maxChunkSamples:
		return c, fmt.Errorf("chunk samples %d is not between 2 and %d", c.ChunkSamples, maxChunkSamples)
	case c.SignificantDigits < -1 || c.SignificantDigits > 17:
		return c, fmt.Errorf("significant digits %d is not between -1 and 17", c.SignificantDigits)
	case c.DistributionStep < time.Millisecond:
		return c, fmt.Errorf("distribution step %v is under a millisecond", c.DistributionStep)
	case c.DistributionRetention < c.DistributionStep:
		return c, fmt.Errorf("distribution retention %v is shorter than its step %v", c.DistributionRetention, c.DistributionStep)
	case c.ReplayWindow < c.Lateness:
		return c, fmt.Errorf("replay window %v is shorter than the lateness %v", c.ReplayWindow, c.Lateness)
	case c.MaxBytes < -1:
		return c, fmt.Errorf("max bytes %d is negative", c.MaxBytes)
	}
	return c, nil
}

// Stats describes what the store holds and has done.
type Stats struct {
	// Series is the number of (group, metric) series.
	Series int
	// Samples is the number of valid samples appended since the store was
	// made, duplicates and too-late ones included.
	Samples int64
	// Duplicates is how many samples were ignored because their (alloc,
	// task) had already filled their slot: re-sent or replayed twice.
	Duplicates int64
	// Late is how many samples were merged into already sealed slots.
	Late int64
	// TooLate is how many samples were dropped for being older than the
	// replay window.
	TooLate int64
	// Points is the number of points held in the chunks of all tiers.
	Points int64
	// Chunks is the number of closed chunks.
	Chunks int
	// Bytes is what counts against the budget: chunks, their index and
	// per-allocation histograms, as allocated on the heap.
	Bytes int64
	// Evictions is how many chunks and histograms were dropped to keep to
	// the budget.
	Evictions int64
	// Expired is how many chunks and histograms were dropped at the end of
	// their retention.
	Expired int64
}

// ErrNotFound is returned for a group and metric the store has no series of.
var ErrNotFound = errors.New("no such series")

// ErrNoData is returned when a series has no data in the asked range.
var ErrNoData = errors.New("no data in range")

type seriesKey struct{ group, metric string }

// Store holds the demand series and per-allocation distributions of every
// group. It is safe for concurrent use.
type Store struct {
	cfg Config

	mu     sync.RWMutex
	series map[seriesKey]*series

	bytes      atomic.Int64
	samples    atomic.Int64
	duplicates atomic.Int64
	late       atomic.Int64
	tooLate    atomic.Int64
	evictions  atomic.Int64
	expired    atomic.Int64
	evicting   sync.Mutex
}

// New returns an empty store.
func New(cfg Config) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("store config: %w", err)
	}
	return &Store{cfg: cfg, series: map[seriesKey]*series{}}, nil
}

// Append stores one sample; see AppendBatch.
func (s *Store) Append(sm telemetry.Sample) error {
	return s.AppendBatch([]telemetry.Sample{sm})
}

// AppendBatch stores samples in any order. If any sample is invalid it
// stores none and says which. A sample identical to one stored before, or
// for a slot its (alloc, task) already filled, is counted as a duplicate and
// changes nothing, so replays are safe.
func (s *Store) AppendBatch(batch []telemetry.Sample) error {
	for i := range batch {
		if err := batch[i].Check(); err != nil {
			return fmt.Errorf("sample %d of %d: %w", i+1, len(batch), err)
		}
	}
	bySeries := map[seriesKey][]telemetry.Sample{}
	for _, sm := range batch {
		k := seriesKey{sm.Group, sm.Metric}
		bySeries[k] = append(bySeries[k], sm)
	}
	now := s.cfg.Clock.Now().UnixMilli()
	var errs []error
	for k, samples := range bySeries {
		sr := s.getOrCreate(k)
		sr.mu.Lock()
		before := sr.size()
		ch, err := sr.ingest(samples, &s.cfg, now)
		ch.bytes = sr.size() - before
		sr.mu.Unlock()
		s.record(ch)
		if err != nil {
			errs = append(errs, fmt.Errorf("series %s %s: %w", k.group, k.metric, err))
		}
	}
	s.samples.Add(int64(len(batch)))
	s.evict()
	return errors.Join(errs...)
}

func (s *Store) record(ch change) {
	s.bytes.Add(ch.bytes)
	s.duplicates.Add(ch.duplicates)
	s.late.Add(ch.late)
	s.tooLate.Add(ch.tooLate)
	s.expired.Add(ch.expired)
}

func (s *Store) getOrCreate(k seriesKey) *series {
	s.mu.RLock()
	sr := s.series[k]
	s.mu.RUnlock()
	if sr != nil {
		return sr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sr = s.series[k]; sr == nil {
		// Copies, so a long-lived key does not pin the caller's decode buffer.
		k = seriesKey{strings.Clone(k.group), strings.Clone(k.metric)}
		sr = newSeries(k.group, k.metric, &s.cfg)
		s.series[k] = sr
	}
	return sr
}

func (s *Store) lookup(group, metric string) (*series, error) {
	s.mu.RLock()
	sr := s.series[seriesKey{group, metric}]
	s.mu.RUnlock()
	if sr == nil {
		return nil, fmt.Errorf("group %q metric %q: %w", group, metric, ErrNotFound)
	}
	return sr, nil
}

func (s *Store) all() []*series {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*series, 0, len(s.series))
	for _, sr := range s.series {
		out = append(out, sr)
	}
	return out
}

// Seal closes, in every series, the slots whose lateness has passed, and
// drops data past its retention. Appends and queries seal the series they
// touch; the leader calls Seal periodically so idle series age too.
func (s *Store) Seal() error {
	now := s.cfg.Clock.Now().UnixMilli()
	var errs []error
	for _, sr := range s.all() {
		sr.mu.Lock()
		before := sr.size()
		ch, err := sr.seal(&s.cfg, now)
		if err == nil {
			ch.add(sr.expire(&s.cfg, now))
		}
		ch.bytes = sr.size() - before
		sr.mu.Unlock()
		s.record(ch)
		if err != nil {
			errs = append(errs, fmt.Errorf("seal %s %s: %w", sr.group, sr.metric, err))
		}
	}
	s.evict()
	return errors.Join(errs...)
}

// Groups returns the groups with at least one series, sorted.
func (s *Store) Groups() []string {
	s.mu.RLock()
	seen := map[string]bool{}
	for k := range s.series {
		seen[k.group] = true
	}
	s.mu.RUnlock()
	out := make([]string, 0, len(seen))
	for g := range seen {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

// Metrics returns the metrics stored for a group, sorted.
func (s *Store) Metrics(group string) []string {
	s.mu.RLock()
	var out []string
	for k := range s.series {
		if k.group == group {
			out = append(out, k.metric)
		}
	}
	s.mu.RUnlock()
	slices.Sort(out)
	return out
}

// Series returns a group's demand for a metric over [from, to), one point
// per step that has data, steps aligned to the Unix epoch (so the first may
// start before from). It reads the finest tier that still holds from, and a
// step finer than that tier's is widened to it. Slots still open for late
// samples are not included.
func (s *Store) Series(group, metric string, from, to time.Time, step time.Duration) ([]telemetry.Point, error) {
	if !from.Before(to) {
		return nil, fmt.Errorf("series %s %s: from %v is not before to %v", group, metric, from, to)
	}
	if step < time.Millisecond {
		return nil, fmt.Errorf("series %s %s: step %v is under a millisecond", group, metric, step)
	}
	sr, err := s.lookup(group, metric)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Clock.Now().UnixMilli()
	lo, hi := from.UnixMilli(), to.UnixMilli()

	sr.mu.Lock()
	before := sr.size()
	ch, err := sr.seal(&s.cfg, now)
	ch.bytes = sr.size() - before
	if err != nil {
		sr.mu.Unlock()
		s.record(ch)
		return nil, fmt.Errorf("series %s %s: %w", group, metric, err)
	}
	tr := sr.readTier(lo, now)
	snap := tr.snapshot()
	sr.mu.Unlock()
	s.record(ch)

	pts, err := snap.points(lo, hi)
	if err != nil {
		return nil, fmt.Errorf("series %s %s: %w", group, metric, err)
	}
	width := max(step.Milliseconds(), tr.step)
	var out []telemetry.Point
	var sum float64
	for _, p := range pts {
		start := floorTo(p.t, width)
		if n := len(out); n == 0 || out[n-1].Time.UnixMilli() != start {
			if n > 0 {
				out[n-1].Mean = sum / float64(out[n-1].Slots)
			}
			out = append(out, telemetry.Point{Time: time.UnixMilli(start).UTC(), Max: p.max})
			sum = 0
		}
		last := &out[len(out)-1]
		sum += p.sum
		last.Slots += int(p.count)
		last.Max = max(last.Max, p.max) // NaN, if the tier keeps no max, stays
	}
	if n := len(out); n > 0 {
		out[n-1].Mean = sum / float64(out[n-1].Slots)
	}
	for i := range out {
		out[i].HasMax = !math.IsNaN(out[i].Max)
		if !out[i].HasMax {
			out[i].Max = 0
		}
	}
	return out, nil
}

// readTier is the tier a query from lo reads: the finest that still holds
// lo, else the coarsest.
func (s *series) readTier(lo, now int64) *tier {
	for _, t := range s.tiers {
		if t.holds(lo, now) {
			return t
		}
	}
	return s.tiers[len(s.tiers)-1]
}

// AllocQuantile returns the q-quantile (0 ≤ q ≤ 1) of per-allocation values
// of a group's metric over the last window, within 1% relative error. A
// per-allocation value is an allocation's sum over its tasks in one raw
// slot; the window is widened to whole distribution steps.
func (s *Store) AllocQuantile(group, metric string, q float64, window time.Duration) (float64, error) {
	if !(q >= 0 && q <= 1) {
		return 0, fmt.Errorf("alloc quantile %s %s: q %v is not between 0 and 1", group, metric, q)
	}
	if window <= 0 {
		return 0, fmt.Errorf("alloc quantile %s %s: window %v is not positive", group, metric, window)
	}
	sr, err := s.lookup(group, metric)
	if err != nil {
		return 0, err
	}
	now := s.cfg.Clock.Now().UnixMilli()
	sr.mu.Lock()
	before := sr.size()
	ch, err := sr.seal(&s.cfg, now)
	ch.bytes = sr.size() - before
	merged := sr.dist.over(now-window.Milliseconds(), math.MaxInt64)
	sr.mu.Unlock()
	s.record(ch)
	if err != nil {
		return 0, fmt.Errorf("alloc quantile %s %s: %w", group, metric, err)
	}
	if merged.n == 0 {
		return 0, fmt.Errorf("alloc quantile %s %s over %v: %w", group, metric, window, ErrNoData)
	}
	return merged.quantile(q), nil
}

// Stats returns counts of what the store holds and has done.
func (s *Store) Stats() Stats {
	st := Stats{
		Samples:    s.samples.Load(),
		Duplicates: s.duplicates.Load(),
		Late:       s.late.Load(),
		TooLate:    s.tooLate.Load(),
		Bytes:      s.bytes.Load(),
		Evictions:  s.evictions.Load(),
		Expired:    s.expired.Load(),
	}
	for _, sr := range s.all() {
		st.Series++
		sr.mu.Lock()
		for _, tr := range sr.tiers {
			st.Chunks += len(tr.refs)
			for _, r := range tr.refs {
				st.Points += int64(r.points)
			}
			if tr.head != nil {
				st.Points += int64(tr.head.NumSamples())
			}
		}
		sr.mu.Unlock()
	}
	return st
}

// evict drops the oldest closed chunks and histograms, across all series,
// until the store is back under 90% of its budget; the slack keeps
// eviction rounds rare. One goroutine evicts at a time; others go on.
func (s *Store) evict() {
	if s.cfg.MaxBytes < 0 || s.bytes.Load() <= s.cfg.MaxBytes || !s.evicting.TryLock() {
		return
	}
	defer s.evicting.Unlock()
	target := s.cfg.MaxBytes / 10 * 9
	type candidate struct {
		sr  *series
		end int64
	}
	for s.bytes.Load() > target {
		var cands []candidate
		for _, sr := range s.all() {
			sr.mu.Lock()
			if end, ok := sr.oldest(); ok {
				cands = append(cands, candidate{sr, end})
			}
			sr.mu.Unlock()
		}
		if len(cands) == 0 {
			return // only heads and open slots left: bounded per series
		}
		sort.Slice(cands, func(i, j int) bool { return cands[i].end < cands[j].end })
		for _, c := range cands {
			if s.bytes.Load() <= target {
				return
			}
			c.sr.mu.Lock()
			before := c.sr.size()
			ok := c.sr.evictOldest()
			s.bytes.Add(c.sr.size() - before)
			c.sr.mu.Unlock()
			if ok {
				s.evictions.Add(1)
			}
		}
	}
}
