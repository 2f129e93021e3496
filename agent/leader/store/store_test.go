package store

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/telemetry"
)

var t0 = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

const group = "default/web/api"

func newTestStore(t *testing.T, clk clock.Clock, mod func(*Config)) *Store {
	t.Helper()
	cfg := Config{Clock: clk}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sample(at time.Time, alloc, task string, v float64) telemetry.Sample {
	return telemetry.Sample{Time: at, Group: group, Alloc: alloc, Task: task, Metric: "cpu_mhz", Value: v}
}

func mustAppend(t *testing.T, s *Store, batch ...telemetry.Sample) {
	t.Helper()
	if err := s.AppendBatch(batch); err != nil {
		t.Fatal(err)
	}
}

func mustSeries(t *testing.T, s *Store, from, to time.Time, step time.Duration) []telemetry.Point {
	t.Helper()
	pts, err := s.Series(group, "cpu_mhz", from, to, step)
	if err != nil {
		t.Fatal(err)
	}
	return pts
}

// checkBytes verifies that the store's running byte count is what its
// series hold: no change escaped the accounting.
func checkBytes(t *testing.T, s *Store) {
	t.Helper()
	var held int64
	for _, sr := range s.all() {
		sr.mu.Lock()
		held += sr.size()
		sr.mu.Unlock()
	}
	if got := s.Stats().Bytes; got != held {
		t.Errorf("Stats().Bytes = %d, but the series hold %d", got, held)
	}
}

func TestDemandIsTheSumOverAllocsAndTasks(t *testing.T) {
	clk := clock.NewVirtual(t0)
	s := newTestStore(t, clk, nil)
	// Two allocations with two tasks each, sampled off the grid.
	mustAppend(t, s,
		sample(t0.Add(1*time.Second), "a1", "web", 100),
		sample(t0.Add(3*time.Second), "a1", "sidecar", 10),
		sample(t0.Add(9*time.Second), "a2", "web", 200),
		sample(t0.Add(9999*time.Millisecond), "a2", "sidecar", 20),
		sample(t0.Add(11*time.Second), "a1", "web", 101),
		sample(t0.Add(12*time.Second), "a2", "web", 201),
	)
	// A slot is visible once the lateness has passed since its end.
	clk.Advance(10*time.Second + DefaultLateness - time.Millisecond)
	if pts := mustSeries(t, s, t0, t0.Add(time.Hour), 10*time.Second); len(pts) != 0 {
		t.Fatalf("slots visible before their lateness passed: %v", pts)
	}
	clk.Advance(time.Millisecond)
	if pts := mustSeries(t, s, t0, t0.Add(time.Hour), 10*time.Second); len(pts) != 1 {
		t.Fatalf("%d slots visible once the first was due, want 1: %v", len(pts), pts)
	}
	clk.Advance(10 * time.Second)
	want := []telemetry.Point{
		{Time: t0, Mean: 330, Max: 330, HasMax: true, Slots: 1},
		{Time: t0.Add(10 * time.Second), Mean: 302, Max: 302, HasMax: true, Slots: 1},
	}
	if got := mustSeries(t, s, t0, t0.Add(time.Hour), 10*time.Second); !slices.Equal(got, want) {
		t.Fatalf("demand = %v, want %v", got, want)
	}
	if got := s.Groups(); !slices.Equal(got, []string{group}) {
		t.Errorf("Groups() = %v", got)
	}
	if got := s.Metrics(group); !slices.Equal(got, []string{"cpu_mhz"}) {
		t.Errorf("Metrics() = %v", got)
	}
}

func TestResentSamplesDoNotDoubleCount(t *testing.T) {
	clk := clock.NewVirtual(t0)
	s := newTestStore(t, clk, nil)
	batch := []telemetry.Sample{
		sample(t0.Add(2*time.Second), "a1", "web", 100),
		sample(t0.Add(4*time.Second), "a2", "web", 50),
	}
	mustAppend(t, s, batch...)
	mustAppend(t, s, batch...) // re-sent while the slot is open
	clk.Advance(time.Minute)
	mustAppend(t, s, batch...) // re-sent after it was sealed
	mustAppend(t, s, batch[0]) // and once more alone
	want := []telemetry.Point{{Time: t0, Mean: 150, Max: 150, HasMax: true, Slots: 1}}
	if got := mustSeries(t, s, t0, t0.Add(time.Hour), 10*time.Second); !slices.Equal(got, want) {
		t.Fatalf("demand = %v, want %v", got, want)
	}
	st := s.Stats()
	if st.Duplicates != 5 || st.Samples != 7 || st.Late != 0 {
		t.Errorf("stats = %+v, want 5 duplicates of 7 samples, none late", st)
	}
}

// Two readings of a pair in one slot count once, with the earliest, whatever
// order they arrive in: the choice a rebuild from replayed batches makes.
func TestTwoReadingsInOneSlotKeepTheEarliest(t *testing.T) {
	clk := clock.NewVirtual(t0)
	s := newTestStore(t, clk, nil)
	mustAppend(t, s,
		sample(t0.Add(9*time.Second), "a1", "web", 90),
		sample(t0.Add(1*time.Second), "a1", "web", 10), // earlier, arrives later
	)
	mustAppend(t, s, sample(t0.Add(5*time.Second), "a1", "web", 50))
	clk.Advance(time.Minute)
	want := []telemetry.Point{{Time: t0, Mean: 10, Max: 10, HasMax: true, Slots: 1}}
	if got := mustSeries(t, s, t0, t0.Add(time.Hour), 10*time.Second); !slices.Equal(got, want) {
		t.Fatalf("demand = %v, want %v", got, want)
	}
}

func TestLateSamplesAreMergedIntoSealedSlots(t *testing.T) {
	clk := clock.NewVirtual(t0)
	s := newTestStore(t, clk, nil)
	for i := range 30 {
		if i != 12 { // a1 misses one slot
			mustAppend(t, s, sample(t0.Add(time.Duration(i)*10*time.Second+time.Second), "a1", "web", 100))
		}
	}
	clk.Advance(10 * time.Minute)
	if err := s.Seal(); err != nil {
		t.Fatal(err)
	}
	// a2's agent was cut off; its samples for the first minute arrive now,
	// including one for a slot no one else filled.
	var late []telemetry.Sample
	for i := range 6 {
		late = append(late, sample(t0.Add(time.Duration(i)*10*time.Second+5*time.Second), "a2", "web", 50))
	}
	late = append(late, sample(t0.Add(120*time.Second+5*time.Second), "a2", "web", 7))
	mustAppend(t, s, late...)
	mustAppend(t, s, late...) // and again: still duplicates after a merge

	raw := mustSeries(t, s, t0, t0.Add(time.Hour), 10*time.Second)
	if len(raw) != 30 {
		t.Fatalf("%d raw points, want 30", len(raw))
	}
	for i, p := range raw {
		want := 100.0
		switch {
		case i < 6:
			want = 150
		case i == 12:
			want = 7 // inserted into the gap
		}
		if p.Mean != want || !p.Time.Equal(t0.Add(time.Duration(i)*10*time.Second)) {
			t.Errorf("slot %d = %+v, want demand %v", i, p, want)
		}
	}
	perMinute := mustSeries(t, s, t0, t0.Add(time.Hour), time.Minute)
	if perMinute[0].Mean != 150 || perMinute[0].Slots != 6 || perMinute[2].Slots != 6 || perMinute[2].Mean != (5*100+7)/6.0 {
		t.Errorf("per-minute demand from raw = %+v", perMinute[:3])
	}
	st := s.Stats()
	if st.Late != 7 || st.Duplicates != 7 {
		t.Errorf("stats = %+v, want 7 late and 7 duplicates", st)
	}
}

func TestSamplesOlderThanTheReplayWindowAreDropped(t *testing.T) {
	clk := clock.NewVirtual(t0.Add(2 * time.Hour))
	s := newTestStore(t, clk, func(c *Config) { c.ReplayWindow = time.Hour })
	mustAppend(t, s,
		sample(t0, "a1", "web", 1),                                    // two hours old
		sample(t0.Add(90*time.Minute), "a1", "web", 2),                // half an hour old
		sample(t0.Add(90*time.Minute+10*time.Second), "a1", "web", 3), // and the next slot
	)
	pts := mustSeries(t, s, t0, t0.Add(3*time.Hour), 10*time.Second)
	if len(pts) != 2 || pts[0].Mean != 2 {
		t.Fatalf("demand = %+v, want the two samples inside the window", pts)
	}
	if st := s.Stats(); st.TooLate != 1 || st.Samples != 3 {
		t.Errorf("stats = %+v, want 1 of 3 samples too late", st)
	}
}

// tieredConfig keeps raw points for only 10 minutes so that queries further
// back read the 1-minute tier.
func tieredConfig(c *Config) {
	c.Tiers = []Tier{
		{Step: 10 * time.Second, Retention: 10 * time.Minute},
		{Step: time.Minute, Retention: 24 * time.Hour},
		{Step: 5 * time.Minute, Retention: 7 * 24 * time.Hour, DropMax: true},
	}
	c.ChunkSamples = 16
	c.SignificantDigits = -1
}

func TestQueriesReadTheFinestTierThatHoldsFrom(t *testing.T) {
	clk := clock.NewVirtual(t0)
	s := newTestStore(t, clk, tieredConfig)
	// One hour of a single task whose demand is its slot index, but with
	// slot 3 of each minute missing.
	for i := range 360 {
		if i%6 != 3 {
			mustAppend(t, s, sample(t0.Add(time.Duration(i)*10*time.Second), "a1", "web", float64(i)))
		}
		clk.Advance(10 * time.Second)
	}
	clk.Advance(time.Minute)
	end := t0.Add(time.Hour)

	recent := mustSeries(t, s, end.Add(-5*time.Minute), end, 10*time.Second)
	if len(recent) != 25 || recent[0].Mean != 330 {
		t.Fatalf("last 5 minutes at 10s: %d points starting %+v, want 25 from the raw tier", len(recent), recent[0])
	}

	old := mustSeries(t, s, t0, end, time.Minute)
	if len(old) != 60 {
		t.Fatalf("hour at 1m: %d points, want 60", len(old))
	}
	for m, p := range old {
		base := float64(6 * m)
		want := telemetry.Point{Time: t0.Add(time.Duration(m) * time.Minute), Mean: (6*base + 15 - (base + 3)) / 5, Max: base + 5, HasMax: true, Slots: 5}
		if p != want {
			t.Fatalf("minute %d = %+v, want %+v", m, p, want)
		}
	}
	// A step coarser than the tier aggregates its points by slot count.
	tenMin := mustSeries(t, s, t0, end, 10*time.Minute)
	if len(tenMin) != 6 || tenMin[0].Slots != 50 || tenMin[0].Max != 59 {
		t.Fatalf("hour at 10m = %+v", tenMin)
	}
	var sum float64
	for i := range 60 {
		if i%6 != 3 {
			sum += float64(i)
		}
	}
	if tenMin[0].Mean != sum/50 {
		t.Errorf("first 10 minutes mean %v, want %v", tenMin[0].Mean, sum/50)
	}
	// A step finer than the tier is widened to it.
	fine := mustSeries(t, s, t0, t0.Add(2*time.Minute), time.Second)
	if len(fine) != 2 || fine[1].Time != t0.Add(time.Minute) {
		t.Errorf("1s step on the 1m tier = %+v, want two 1-minute points", fine)
	}
	// The 5-minute tier keeps no max.
	c := s.cfg.Tiers
	if !c[2].DropMax {
		t.Fatal("the test config should drop the 5-minute max")
	}
	clk.Advance(25 * time.Hour)
	for _, p := range mustSeries(t, s, t0, end, 5*time.Minute) {
		if p.HasMax || p.Max != 0 || p.Slots != 25 {
			t.Fatalf("5-minute point %+v: want 25 slots and no max", p)
		}
	}
}

func TestRetentionExpiresOldChunks(t *testing.T) {
	clk := clock.NewVirtual(t0)
	s := newTestStore(t, clk, tieredConfig)
	for i := range 180 {
		mustAppend(t, s, sample(t0.Add(time.Duration(i)*10*time.Second), "a1", "web", 1))
		clk.Advance(10 * time.Second)
	}
	clk.Advance(2 * time.Hour)
	if err := s.Seal(); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Expired == 0 {
		t.Fatalf("nothing expired after the raw retention: %+v", st)
	}
	checkBytes(t, s)
	// The raw tier no longer holds the first half hour; the 1-minute tier does.
	pts := mustSeries(t, s, t0, t0.Add(30*time.Minute), 10*time.Second)
	if len(pts) != 30 || pts[0].Slots != 6 {
		t.Fatalf("after expiry: %d points, first %+v; want 30 one-minute points", len(pts), pts[0])
	}
}

func TestEvictionKeepsToTheBudget(t *testing.T) {
	clk := clock.NewVirtual(t0)
	const budget = 20_000
	s := newTestStore(t, clk, func(c *Config) {
		tieredConfig(c)
		c.MaxBytes = budget
		c.Tiers[0].Retention = 24 * time.Hour
	})
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		var batch []telemetry.Sample
		for a := range 3 {
			batch = append(batch, sample(at, fmt.Sprint("a", a), "web", rng.Float64()*1000))
		}
		mustAppend(t, s, batch...)
		clk.Advance(10 * time.Second)
	}
	checkBytes(t, s)
	st := s.Stats()
	if st.Evictions == 0 || st.Bytes > budget || st.Bytes <= 0 {
		t.Fatalf("stats = %+v, want evictions and bytes within %d", st, budget)
	}
	// The newest data is still there; the oldest raw data is gone.
	end := t0.Add(2000 * 10 * time.Second)
	if pts := mustSeries(t, s, end.Add(-10*time.Minute), end, 10*time.Second); len(pts) < 55 {
		t.Errorf("only %d of the last 60 raw points survived eviction", len(pts))
	}
	if pts := mustSeries(t, s, t0, t0.Add(10*time.Second), 10*time.Second); len(pts) != 0 && pts[0].Slots == 1 {
		t.Errorf("the oldest raw point survived eviction: %+v", pts)
	}
}

func TestAllocQuantile(t *testing.T) {
	clk := clock.NewVirtual(t0)
	s := newTestStore(t, clk, nil)
	// Ten allocations of two tasks; allocation k uses 100·(k+1) in total.
	for i := range 360 {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		var batch []telemetry.Sample
		for k := range 10 {
			alloc := fmt.Sprint("alloc-", k)
			batch = append(batch,
				telemetry.Sample{Time: at, Group: group, Alloc: alloc, Task: "main", Metric: "mem_rss_bytes", Value: 90 * float64(k+1)},
				telemetry.Sample{Time: at, Group: group, Alloc: alloc, Task: "log", Metric: "mem_rss_bytes", Value: 10 * float64(k+1)},
			)
		}
		mustAppend(t, s, batch...)
		clk.Advance(10 * time.Second)
	}
	clk.Advance(time.Minute)
	for _, tc := range []struct{ q, want float64 }{{0, 100}, {0.5, 500}, {0.95, 1000}, {1, 1000}} {
		got, err := s.AllocQuantile(group, "mem_rss_bytes", tc.q, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-tc.want) > sketchAlpha*tc.want {
			t.Errorf("p%v = %v, want %v within %v%%", tc.q*100, got, tc.want, sketchAlpha*100)
		}
	}
	// Two days later the hour is out of a one-hour window.
	clk.Advance(48 * time.Hour)
	if _, err := s.AllocQuantile(group, "mem_rss_bytes", 0.5, time.Hour); !errors.Is(err, ErrNoData) {
		t.Errorf("quantile over an empty window: %v, want ErrNoData", err)
	}
	if _, err := s.AllocQuantile(group, "mem_rss_bytes", 0.5, 72*time.Hour); err != nil {
		t.Errorf("quantile over three days: %v", err)
	}
	if _, err := s.AllocQuantile(group, "mem_rss_bytes", 1.5, time.Hour); err == nil {
		t.Error("q of 1.5 accepted")
	}
	if _, err := s.AllocQuantile("default/other/g", "mem_rss_bytes", 0.5, time.Hour); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown group: %v, want ErrNotFound", err)
	}
}

func TestBadSamplesChangeNothing(t *testing.T) {
	clk := clock.NewVirtual(t0)
	s := newTestStore(t, clk, nil)
	good := sample(t0, "a1", "web", 1)
	for name, bad := range map[string]func(*telemetry.Sample){
		"unknown metric": func(s *telemetry.Sample) { s.Metric = "cpu_percent" },
		"short group":    func(s *telemetry.Sample) { s.Group = "web/api" },
		"empty job":      func(s *telemetry.Sample) { s.Group = "default//api" },
		"no alloc":       func(s *telemetry.Sample) { s.Alloc = "" },
		"nan":            func(s *telemetry.Sample) { s.Value = math.NaN() },
		"inf":            func(s *telemetry.Sample) { s.Value = math.Inf(1) },
		"no time":        func(s *telemetry.Sample) { s.Time = time.Time{} },
	} {
		b := good
		bad(&b)
		if err := s.AppendBatch([]telemetry.Sample{good, b}); err == nil {
			t.Errorf("%s: batch accepted", name)
		}
	}
	if st := s.Stats(); st.Series != 0 || st.Samples != 0 {
		t.Errorf("rejected batches left %+v", st)
	}
}

func TestConfigValidation(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"step not multiple": func(c *Config) {
			c.Tiers = []Tier{{Step: 10 * time.Second, Retention: time.Hour}, {Step: 15 * time.Second, Retention: 2 * time.Hour}}
		},
		"finer second tier": func(c *Config) {
			c.Tiers = []Tier{{Step: time.Minute, Retention: time.Hour}, {Step: time.Minute, Retention: 2 * time.Hour}}
		},
		"retention under step": func(c *Config) { c.Tiers = []Tier{{Step: time.Minute, Retention: time.Second}} },
		"sub-ms step":          func(c *Config) { c.Tiers = []Tier{{Step: time.Microsecond, Retention: time.Hour}} },
		"short coarse tier": func(c *Config) {
			c.Tiers = []Tier{{Step: time.Second, Retention: time.Hour}, {Step: time.Minute, Retention: time.Minute}}
		},
		"negative lateness": func(c *Config) { c.Lateness = -time.Second },
		"one-sample chunks": func(c *Config) { c.ChunkSamples = 1 },
		"huge chunks":       func(c *Config) { c.ChunkSamples = MaxSamples },
		"huge tier chunks": func(c *Config) {
			c.Tiers = []Tier{{Step: time.Second, Retention: time.Hour, ChunkSamples: MaxSamples}}
		},
		"digits":       func(c *Config) { c.SignificantDigits = 18 },
		"distribution": func(c *Config) { c.DistributionRetention = time.Minute },
		"budget":       func(c *Config) { c.MaxBytes = -2 },
	} {
		cfg := Config{}
		mod(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: config accepted", name)
		}
	}
	if _, err := New(Config{}); err != nil {
		t.Errorf("default config: %v", err)
	}
}

func TestQueryRejectsBadRanges(t *testing.T) {
	s := newTestStore(t, clock.NewVirtual(t0), nil)
	mustAppend(t, s, sample(t0, "a1", "web", 1))
	if _, err := s.Series(group, "cpu_mhz", t0, t0, time.Minute); err == nil {
		t.Error("empty range accepted")
	}
	if _, err := s.Series(group, "cpu_mhz", t0, t0.Add(time.Hour), 0); err == nil {
		t.Error("zero step accepted")
	}
	if _, err := s.Series(group, "mem_rss_bytes", t0, t0.Add(time.Hour), time.Minute); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown metric: %v, want ErrNotFound", err)
	}
}

// Ingest writes from many goroutines while readers query; run with -race.
// Writer 0 drives the clock, so the others' samples are often late and
// merged into sealed slots. With a tight budget, chunks are evicted too.
func TestConcurrentAppendAndQuery(t *testing.T) {
	for _, budget := range []int64{-1, 3000} {
		t.Run(fmt.Sprint("budget ", budget), func(t *testing.T) {
			testConcurrentAppendAndQuery(t, budget)
		})
	}
}

func testConcurrentAppendAndQuery(t *testing.T, budget int64) {
	clk := clock.NewVirtual(t0)
	s := newTestStore(t, clk, func(c *Config) {
		tieredConfig(c)
		c.Tiers[0].Retention = 24 * time.Hour // late merges find their raw slot
		c.MaxBytes = budget
	})
	const writers, slots = 4, 300
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range slots {
				at := t0.Add(time.Duration(i) * 10 * time.Second)
				var batch []telemetry.Sample
				for g := range 3 {
					batch = append(batch, telemetry.Sample{Time: at, Group: fmt.Sprintf("default/job%d/g", g), Alloc: fmt.Sprint("w", w), Task: "t", Metric: "cpu_mhz", Value: float64(w + 1)})
				}
				if err := s.AppendBatch(batch); err != nil {
					t.Error(err)
					return
				}
				if w == 0 {
					clk.Advance(10 * time.Second)
				}
			}
		})
	}
	wg.Go(func() {
		for range 200 {
			for _, g := range s.Groups() {
				if _, err := s.Series(g, "cpu_mhz", t0, t0.Add(time.Hour), time.Minute); err != nil {
					t.Error(err)
					return
				}
				_, _ = s.AllocQuantile(g, "cpu_mhz", 0.9, time.Hour)
			}
			_ = s.Stats()
		}
	})
	wg.Wait()
	clk.Advance(time.Hour)
	if err := s.Seal(); err != nil {
		t.Fatal(err)
	}
	// Every slot got all four writers, however the appends interleaved.
	pts, err := s.Series("default/job0/g", "cpu_mhz", t0, t0.Add(time.Hour), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pts {
		// The max of a bucket whose raw slots were evicted before a late
		// sample came is only a lower bound.
		if p.Mean != 10 || p.Max > 10 || (budget < 0 && p.Max != 10) {
			t.Fatalf("minute %v: mean %v max %v, want 10 (1+2+3+4)", p.Time, p.Mean, p.Max)
		}
	}
	checkBytes(t, s)
	st := s.Stats()
	if budget < 0 && len(pts) != slots/6 {
		t.Errorf("%d minutes, want %d", len(pts), slots/6)
	}
	if budget > 0 && (st.Evictions == 0 || st.Bytes > budget) {
		t.Errorf("stats %+v: want evictions and bytes within %d", st, budget)
	}
}
