package store

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/foresight-nomad/foresight/telemetry"
)

// SourceAgents names the history the agents' own samples built.
const SourceAgents = "agents"

// How history from elsewhere joins the agents' (Backfill). A fresh store
// knows nothing before its first sample, so a forecast has too little
// history for hours; an outside source that kept the group's usage (a
// Prometheus that scraped Nomad's allocation metrics) can fill the past.
// The promise:
//
//   - the agents win: a backfilled point is written only into a bucket of a
//     downsampled tier that holds no agent data, and agent samples that
//     arrive later for such a bucket (a new leader's replay, a late agent)
//     replace the backfilled point instead of adding to it;
//   - backfill never reaches the present: only buckets that end before the
//     series' first slot still open to agent samples (its sealed boundary,
//     or the earliest pending slot) are written, so every later sample of
//     the agents takes the path above;
//   - the raw tier and the per-allocation distributions are the agents'
//     alone: a backfilled series forecasts, it does not size allocations;
//   - which buckets were backfilled is remembered per tier until they age
//     out, so that Provenance can say where each point came from.

// ErrNotDownsampled is returned for a backfill at a step no downsampled
// tier keeps.
var ErrNotDownsampled = errors.New("no downsampled tier has that step")

// Backfill writes history from source into the downsampled tier whose step
// is step. Each point's Time is the start of its bucket (aligned to step),
// Mean the group's mean demand over the bucket, Max (when HasMax) its
// highest, and Slots how many raw slots the mean stands for (0: a full
// bucket). Points outside the tier's retention, at or after the series'
// open boundary, or on a bucket the agents already filled are skipped. It
// returns how many points were written; see "How history from elsewhere
// joins" above for what is promised.
func (s *Store) Backfill(group, metric, source string, step time.Duration, pts []telemetry.Point) (int, error) {
	if source == "" || source == SourceAgents {
		return 0, fmt.Errorf("backfill %s %s: source %q is not an outside source", group, metric, source)
	}
	if err := telemetry.CheckMetric(metric); err != nil {
		return 0, fmt.Errorf("backfill %s %s: %w", group, metric, err)
	}
	if _, err := telemetry.ParseGroup(group); err != nil {
		return 0, fmt.Errorf("backfill %s %s: %w", group, metric, err)
	}
	ti := slices.IndexFunc(s.cfg.Tiers, func(t Tier) bool { return t.Step == step })
	if ti <= 0 {
		return 0, fmt.Errorf("backfill %s %s at %v: %w", group, metric, step, ErrNotDownsampled)
	}
	w := step.Milliseconds()
	for i, p := range pts {
		switch t := p.Time.UnixMilli(); {
		case floorTo(t, w) != t:
			return 0, fmt.Errorf("backfill %s %s: point %d at %v is not aligned to %v", group, metric, i+1, p.Time, step)
		case math.IsNaN(p.Mean) || math.IsInf(p.Mean, 0) || p.Mean < 0:
			return 0, fmt.Errorf("backfill %s %s: point %d at %v has mean %v", group, metric, i+1, p.Time, p.Mean)
		case i > 0 && !p.Time.After(pts[i-1].Time):
			return 0, fmt.Errorf("backfill %s %s: point %d at %v is not after the one before", group, metric, i+1, p.Time)
		}
	}
	if len(pts) == 0 {
		return 0, nil
	}
	sr := s.getOrCreate(seriesKey{group, metric})
	now := s.cfg.Clock.Now().UnixMilli()
	sr.mu.Lock()
	before := sr.size()
	n, err := sr.backfill(ti, source, pts, &s.cfg, now)
	ch := change{bytes: sr.size() - before}
	sr.mu.Unlock()
	s.record(ch)
	s.evict()
	if err != nil {
		return n, fmt.Errorf("backfill %s %s: %w", group, metric, err)
	}
	return n, nil
}

// backfill writes pts into tier ti; see Store.Backfill.
func (s *series) backfill(ti int, source string, pts []telemetry.Point, cfg *Config, now int64) (int, error) {
	raw := s.tiers[0].step
	tr := s.tiers[ti]
	// end is where agent samples still take the normal path: every sample
	// before it is late from now on and goes through mergeLate, which
	// knows backfilled buckets.
	end := s.sealedUntil
	if end == math.MinInt64 {
		end = floorTo(now-cfg.Lateness.Milliseconds(), raw)
		for slot := range s.pending {
			end = min(end, slot)
		}
	}
	// The first bucket the tier holds, and no earlier than the points.
	lo := floorTo(now-tr.retention, tr.step)
	if lo < now-tr.retention {
		lo += tr.step
	}
	lo = max(lo, pts[0].Time.UnixMilli())
	hi := end
	if tr.acc.open {
		hi = min(hi, tr.acc.start)
	}
	held, err := tr.points(lo, hi)
	if err != nil {
		return 0, err
	}
	agents := map[int64]bool{}
	for _, p := range held {
		if !tr.filled.has(p.t) {
			agents[p.t] = true
		}
	}
	full := float64(tr.step / raw)
	byTime := map[int64]point{}
	var ts []int64
	for _, p := range pts {
		t := p.Time.UnixMilli()
		if t < lo || t+tr.step > hi || t <= tr.lost || agents[t] {
			continue
		}
		count := full
		if p.Slots > 0 {
			count = min(float64(p.Slots), full)
		}
		top := p.Mean
		if p.HasMax {
			top = max(p.Max, p.Mean)
		}
		byTime[t] = point{sum: p.Mean * count, count: count, max: top}
		ts = append(ts, t)
	}
	if len(ts) == 0 {
		return 0, nil
	}
	if err := tr.update(ts, func(t int64, _ point, _ bool) point { return byTime[t] }); err != nil {
		return 0, err
	}
	for _, t := range ts {
		tr.filled.add(t, tr.step)
	}
	s.source = source
	s.sealedUntil = max(s.sealedUntil, end)
	return len(ts), nil
}

// Span is a stretch of a series' history from one source: the first and
// last point's bucket starts, and how many points.
type Span struct {
	Source   string
	From, To time.Time
	Points   int
}

// Provenance says where a group's demand for a metric over [from, to)
// came from, as Series would read it: one span per source, the agents'
// last. It reads the same tier as Series for from, and its step is
// returned beside.
func (s *Store) Provenance(group, metric string, from, to time.Time) ([]Span, time.Duration, error) {
	sr, err := s.lookup(group, metric)
	if err != nil {
		return nil, 0, err
	}
	now := s.cfg.Clock.Now().UnixMilli()
	lo, hi := from.UnixMilli(), to.UnixMilli()
	sr.mu.Lock()
	tr := sr.readTier(lo, now)
	pts, err := tr.points(lo, hi)
	var spans []Span
	if err == nil {
		spans = provenance(pts, tr, sr.source)
	}
	step := time.Duration(tr.step) * time.Millisecond
	sr.mu.Unlock()
	if err != nil {
		return nil, 0, fmt.Errorf("provenance %s %s: %w", group, metric, err)
	}
	return spans, step, nil
}

// provenance groups a tier's points by where they came from.
func provenance(pts []point, tr *tier, source string) []Span {
	var outside, agents Span
	outside.Source, agents.Source = source, SourceAgents
	for _, p := range pts {
		sp := &agents
		if tr.filled.has(p.t) {
			sp = &outside
		}
		at := time.UnixMilli(p.t).UTC()
		if sp.Points == 0 {
			sp.From = at
		}
		sp.To = at
		sp.Points++
	}
	var out []Span
	for _, sp := range []Span{outside, agents} {
		if sp.Points > 0 {
			out = append(out, sp)
		}
	}
	return out
}

// Tiers returns the store's tiers, finest first, its defaults applied.
func (s *Store) Tiers() []Tier { return slices.Clone(s.cfg.Tiers) }

// FirstSample is the start of the earliest raw slot the agents filled for
// a group's metric that the store still remembers (as far back as its
// replay window), pending slots included; false when there is none.
func (s *Store) FirstSample(group, metric string) (time.Time, bool) {
	sr, err := s.lookup(group, metric)
	if err != nil {
		return time.Time{}, false
	}
	sr.mu.Lock()
	defer sr.mu.Unlock()
	first := int64(math.MaxInt64)
	for _, c := range sr.covered {
		if len(c.runs) > 0 {
			first = min(first, c.runs[0].lo)
		}
	}
	for slot := range sr.pending {
		first = min(first, slot)
	}
	if first == math.MaxInt64 {
		return time.Time{}, false
	}
	return time.UnixMilli(first).UTC(), true
}
