package store

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/telemetry"
)

// outside is n full 5-minute buckets of constant demand v, from start.
func outside(start time.Time, n int, v float64) []telemetry.Point {
	return outsideAt(start, 5*time.Minute, n, v)
}

// outsideAt is n full buckets of width step and constant demand v.
func outsideAt(start time.Time, step time.Duration, n int, v float64) []telemetry.Point {
	pts := make([]telemetry.Point, n)
	for i := range pts {
		pts[i] = telemetry.Point{Time: start.Add(time.Duration(i) * step), Mean: v}
	}
	return pts
}

func mustProvenance(t *testing.T, s *Store, from, to time.Time) map[string]Span {
	t.Helper()
	spans, _, err := s.Provenance(group, "cpu_mhz", from, to)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Span{}
	for _, sp := range spans {
		out[sp.Source] = sp
	}
	return out
}

func TestBackfillFillsThePastBeforeTheAgents(t *testing.T) {
	// Agents start sampling at t0; a day of outside history comes in after.
	now := t0.Add(30 * time.Minute)
	clk := clock.NewVirtual(t0)
	s := newTestStore(t, clk, nil)
	for at := t0; at.Before(now); at = at.Add(10 * time.Second) {
		clk.Set(at)
		mustAppend(t, s, sample(at, "a1", "web", 500))
	}
	clk.Set(now)
	day := t0.Add(-24 * time.Hour)
	// Each downsampled tier is filled at its own step.
	n, err := s.Backfill(group, "cpu_mhz", "prometheus", 5*time.Minute, outside(day, 24*12+6, 200))
	if err != nil {
		t.Fatal(err)
	}
	// The six buckets from t0 on are the agents'; the rest are written.
	if n != 24*12 {
		t.Fatalf("backfilled %d points, want %d (the agents' buckets are theirs)", n, 24*12)
	}
	if n, err := s.Backfill(group, "cpu_mhz", "prometheus", time.Minute, outsideAt(day, time.Minute, 24*60+30, 200)); err != nil || n != 24*60 {
		t.Fatalf("backfilled %d 1-minute points (%v), want %d", n, err, 24*60)
	}
	pts := mustSeries(t, s, day, now, 5*time.Minute)
	for _, p := range pts {
		want := 200.0
		if !p.Time.Before(t0) {
			want = 500
		}
		if p.Slots == 0 || math.Abs(p.Mean-want) > 0.1 {
			t.Fatalf("at %s: mean %.1f over %d slots, want %.0f", p.Time, p.Mean, p.Slots, want)
		}
	}
	// A day back is read from the 1-minute tier.
	prov := mustProvenance(t, s, day, now)
	if p := prov["prometheus"]; p.Points != 24*60 || !p.From.Equal(day) || !p.To.Equal(t0.Add(-time.Minute)) {
		t.Errorf("prometheus span %+v", p)
	}
	if a := prov[SourceAgents]; a.Points == 0 || a.From.Before(t0) {
		t.Errorf("agents span %+v", a)
	}
	checkBytes(t, s)
}

func TestReplayedAgentSamplesReplaceBackfill(t *testing.T) {
	// A new leader: outside history arrives first, the agents' replay of
	// the last hour after it. The agents' data replaces the backfill, and
	// is not added to it. A raw tier of half an hour, so that the query
	// reads the 5-minute tier.
	clk := clock.NewVirtual(t0)
	s := newTestStore(t, clk, func(c *Config) {
		c.Tiers = []Tier{{Step: 10 * time.Second, Retention: 30 * time.Minute}, {Step: 5 * time.Minute, Retention: 35 * 24 * time.Hour, DropMax: true}}
	})
	start := t0.Add(-2 * time.Hour)
	// The last bucket, which ends after the open slots begin, is left out.
	n, err := s.Backfill(group, "cpu_mhz", "prometheus", 5*time.Minute, outside(start, 24, 999))
	if err != nil || n != 23 {
		t.Fatalf("backfill: %d points, %v", n, err)
	}
	var replay []telemetry.Sample
	for at := t0.Add(-time.Hour); at.Before(t0); at = at.Add(10 * time.Second) {
		replay = append(replay, sample(at, "a1", "web", 100))
	}
	mustAppend(t, s, replay...)
	pts := mustSeries(t, s, start, t0, 5*time.Minute)
	if len(pts) != 24 {
		t.Fatalf("%d points, want 24", len(pts))
	}
	for _, p := range pts {
		want := 999.0
		if !p.Time.Before(t0.Add(-time.Hour)) {
			want = 100
		}
		if math.Abs(p.Mean-want) > 0.1 {
			t.Errorf("at %s: mean %.1f, want %.0f", p.Time, p.Mean, want)
		}
	}
	prov := mustProvenance(t, s, start, t0)
	if prov["prometheus"].Points != 12 || prov[SourceAgents].Points != 12 {
		t.Errorf("provenance %+v, want 12 points from each", prov)
	}
	// Backfilling again writes nothing over the agents' buckets.
	if _, err := s.Backfill(group, "cpu_mhz", "prometheus", 5*time.Minute, outside(start, 24, 7)); err != nil {
		t.Fatal(err)
	}
	for _, p := range mustSeries(t, s, t0.Add(-time.Hour), t0, 5*time.Minute) {
		if math.Abs(p.Mean-100) > 0.1 {
			t.Fatalf("a second backfill changed the agents' bucket at %s to %.1f", p.Time, p.Mean)
		}
	}
	checkBytes(t, s)
}

func TestBackfillRefusesBadInput(t *testing.T) {
	clk := clock.NewVirtual(t0)
	s := newTestStore(t, clk, nil)
	ok := outside(t0.Add(-time.Hour), 3, 1)
	cases := []struct {
		name   string
		group  string
		metric string
		source string
		step   time.Duration
		pts    []telemetry.Point
		is     error
	}{
		{"agents are not an outside source", group, "cpu_mhz", SourceAgents, 5 * time.Minute, ok, nil},
		{"unknown metric", group, "cpu_percent", "prometheus", 5 * time.Minute, ok, nil},
		{"bad group", "web", "cpu_mhz", "prometheus", 5 * time.Minute, ok, nil},
		{"raw tier", group, "cpu_mhz", "prometheus", 10 * time.Second, ok, ErrNotDownsampled},
		{"no such tier", group, "cpu_mhz", "prometheus", 2 * time.Minute, ok, ErrNotDownsampled},
		{"unaligned", group, "cpu_mhz", "prometheus", 5 * time.Minute, []telemetry.Point{{Time: t0.Add(-time.Minute), Mean: 1}}, nil},
		{"negative", group, "cpu_mhz", "prometheus", 5 * time.Minute, []telemetry.Point{{Time: t0.Add(-time.Hour), Mean: -1}}, nil},
		{"NaN", group, "cpu_mhz", "prometheus", 5 * time.Minute, []telemetry.Point{{Time: t0.Add(-time.Hour), Mean: math.NaN()}}, nil},
		{"out of order", group, "cpu_mhz", "prometheus", 5 * time.Minute, []telemetry.Point{ok[1], ok[0]}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := s.Backfill(c.group, c.metric, c.source, c.step, c.pts)
			if err == nil || n != 0 || (c.is != nil && !errors.Is(err, c.is)) {
				t.Fatalf("Backfill = %d, %v; want an error", n, err)
			}
		})
	}
	if st := s.Stats(); st.Series != 0 {
		t.Fatalf("refused backfills left %d series", st.Series)
	}
}

func TestBackfillStaysOutOfOpenSlots(t *testing.T) {
	// A sample is pending (its slot not sealed yet) when the backfill
	// comes: the backfill stops before the first bucket that could still
	// take samples on the normal path, and fills it once they sealed. A raw
	// tier of a minute, so that queries read the 1-minute tier.
	clk := clock.NewVirtual(t0)
	s := newTestStore(t, clk, func(c *Config) {
		c.Tiers = []Tier{{Step: 10 * time.Second, Retention: time.Minute}, {Step: time.Minute, Retention: 3 * 24 * time.Hour}}
	})
	mustAppend(t, s, sample(t0, "a1", "web", 50))
	minutes := []telemetry.Point{{Time: t0.Add(-2 * time.Minute), Mean: 10}, {Time: t0.Add(-time.Minute), Mean: 10}, {Time: t0, Mean: 10}, {Time: t0.Add(time.Minute), Mean: 10}}
	n, err := s.Backfill(group, "cpu_mhz", "prometheus", time.Minute, minutes)
	if err != nil || n != 1 {
		t.Fatalf("backfill wrote %d points (%v), want the 1 bucket that ends before the lateness", n, err)
	}
	for at := t0.Add(10 * time.Second); at.Before(t0.Add(3 * time.Minute)); at = at.Add(10 * time.Second) {
		clk.Set(at)
		mustAppend(t, s, sample(at, "a1", "web", 50))
	}
	clk.Set(t0.Add(4 * time.Minute))
	// Its own bucket again, and the one before the agents' first.
	if n, err := s.Backfill(group, "cpu_mhz", "prometheus", time.Minute, minutes); err != nil || n != 2 {
		t.Fatalf("second backfill wrote %d points (%v), want 2", n, err)
	}
	pts, err := s.Series(group, "cpu_mhz", t0.Add(-2*time.Minute), t0.Add(3*time.Minute), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{10, 10, 50, 50, 50}
	if len(pts) != len(want) {
		t.Fatalf("%d points, want %d: %+v", len(pts), len(want), pts)
	}
	for i, p := range pts {
		if math.Abs(p.Mean-want[i]) > 0.01 {
			t.Errorf("at %s: %.2f, want %.0f", p.Time, p.Mean, want[i])
		}
	}
	checkBytes(t, s)
}

func TestFirstSampleIsTheAgentsEarliest(t *testing.T) {
	clk := clock.NewVirtual(t0)
	s := newTestStore(t, clk, nil)
	if _, ok := s.FirstSample(group, "cpu_mhz"); ok {
		t.Fatal("a first sample for an unknown series")
	}
	if _, err := s.Backfill(group, "cpu_mhz", "prometheus", 5*time.Minute, outside(t0.Add(-2*time.Hour), 6, 1)); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.FirstSample(group, "cpu_mhz"); ok {
		t.Fatal("backfilled history counted as the agents'")
	}
	mustAppend(t, s, sample(t0.Add(-time.Minute), "a1", "web", 1), sample(t0.Add(-40*time.Minute), "a2", "web", 1))
	if got, ok := s.FirstSample(group, "cpu_mhz"); !ok || !got.Equal(t0.Add(-40*time.Minute)) {
		t.Fatalf("FirstSample = %v, %v; want %v", got, ok, t0.Add(-40*time.Minute))
	}
}
