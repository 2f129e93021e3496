package store

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/telemetry"
)

// heapGroups is the number of groups BenchmarkHeap35Days fills; the goal
// is stated for 10,000 (× 6 metrics × 35 days in at most 1 GiB). A smaller
// number gives a quicker estimate: the heap grows linearly with it.
var heapGroups = flag.Int("store.heapgroups", 10_000, "groups BenchmarkHeap35Days fills")

const (
	heapMetrics = 6
	heapDays    = 35
)

// heapMetricBase gives each benchmarked metric a realistic scale.
var heapMetricBase = []struct {
	name string
	base float64
}{
	{"cpu_mhz", 1200},
	{"mem_rss_bytes", 1.5e9},
	{"mem_usage_bytes", 2.1e9},
	{"net_rx_bps", 4e6},
	{"net_tx_bps", 2.5e6},
	{"psi_cpu_some", 3.5},
}

// BenchmarkHeap35Days measures the leader's heap for 35 days of 5-minute
// history of 10,000 groups × 6 metrics: the Go heap in use after GC, before
// and after the store is filled. The history is written straight into the
// 5-minute tier (the raw and 1-minute tiers only ever hold hours and days)
// as sealing would produce it: per bucket the summed demand of its 30 slots,
// the slot count and the max. "default" is DefaultTiers, whose 5-minute tier
// drops the max; "with-max" keeps it, to show what the max would cost.
//
// The values are synthetic but shaped like real demand: random 64-bit
// floats would not compress, and real metrics are not like that. Each
// series follows a daily cycle (±40% around a per-group level) with 2%
// noise from bucket to bucket, at three significant digits. The max is
// what 30 slots with 5% noise give: about two standard deviations above
// the mean, varying as the largest of 30 draws does (±0.4σ).
// It takes minutes, so it runs only under -bench.
func BenchmarkHeap35Days(b *testing.B) {
	withMax := slices.Clone(DefaultTiers)
	withMax[len(withMax)-1].DropMax = false
	for _, bc := range []struct {
		name  string
		tiers []Tier
	}{{"default", DefaultTiers}, {"with-max", withMax}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				benchHeap(b, bc.tiers, *heapGroups)
			}
		})
	}
}

func benchHeap(b *testing.B, tiers []Tier, groups int) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)

	s, err := New(Config{Clock: clock.NewVirtual(t0), Tiers: tiers, MaxBytes: -1})
	if err != nil {
		b.Fatal(err)
	}
	buckets := heapDays * 24 * 12
	var points atomic.Int64
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for g := w; g < groups; g += workers {
				for m, metric := range heapMetricBase {
					n, err := fillHeapSeries(s, g, m, metric.name, metric.base, buckets)
					if err != nil {
						b.Error(err)
						return
					}
					points.Add(n)
				}
			}
		})
	}
	wg.Wait()

	runtime.GC()
	runtime.ReadMemStats(&after)
	inuse := float64(after.HeapInuse) - float64(before.HeapInuse)
	st := s.Stats()
	b.ReportMetric(inuse/(1<<20), "heap-MiB")
	b.ReportMetric(float64(st.Bytes)/(1<<20), "budgeted-MiB")
	b.ReportMetric(inuse/float64(points.Load()), "heap-bytes/point")
	b.ReportMetric(float64(groups*heapMetrics*buckets)*16/(1<<20), "raw-16B-MiB")
	b.ReportMetric(float64(st.Series), "series")
	runtime.KeepAlive(s)
}

// fillHeapSeries writes buckets 5-minute points of one synthetic series
// ending now, sealed and closed as the store would, and returns how many.
func fillHeapSeries(s *Store, g, m int, metric string, base float64, buckets int) (int64, error) {
	rng := rand.New(rand.NewPCG(uint64(g), uint64(m)))
	level := base * (0.5 + rng.Float64())
	phase := rng.Float64() * 2 * math.Pi
	sr := s.getOrCreate(seriesKey{fmt.Sprintf("default/job-%d/group", g), metric})
	tr := sr.tiers[len(sr.tiers)-1]
	step := tr.step
	end := floorTo(s.cfg.Clock.Now().UnixMilli(), step)
	start := end - int64(buckets)*step
	sr.mu.Lock()
	defer sr.mu.Unlock()
	before := sr.size()
	for i := range buckets {
		t := start + int64(i)*step
		day := 2 * math.Pi * float64(t%86_400_000) / 86_400_000
		mean := sig3(level * (1 + 0.4*math.Sin(day+phase)) * (1 + 0.02*rng.NormFloat64()))
		peak := sig3(mean * (1 + 0.05*(2+0.4*rng.NormFloat64())))
		if err := tr.appendPoint(point{t: t, sum: 30 * mean, count: 30, max: peak}); err != nil {
			return 0, err
		}
	}
	s.bytes.Add(sr.size() - before)
	return int64(buckets), nil
}

// sig3 rounds v to three significant digits, the precision of the readings.
func sig3(v float64) float64 { return roundSig(v, 3) }

// BenchmarkAppendParallel measures ingest throughput. Each parallel writer
// plays an agent: every 10 s of data time it ships one batch, a sampling
// round of its 5 groups × 4 allocations × 2 tasks × 6 metrics (240
// samples). The store's clock follows the data, so slots are sealed, chunks
// closed and distributions filled as they would be live.
func BenchmarkAppendParallel(b *testing.B) {
	clk := &followClock{}
	clk.now.Store(t0.UnixMilli())
	s, err := New(Config{Clock: clk})
	if err != nil {
		b.Fatal(err)
	}
	metrics := []string{"cpu_mhz", "mem_rss_bytes", "mem_usage_bytes", "net_rx_bps", "net_tx_bps", "psi_cpu_some"}
	var writer atomic.Int64
	var total atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		w := writer.Add(1)
		rng := rand.New(rand.NewPCG(uint64(w), 1))
		type pair struct{ group, alloc string }
		var pairs []pair
		for g := range 5 {
			for a := range 4 {
				pairs = append(pairs, pair{fmt.Sprintf("default/agent%d/g%d", w, g), fmt.Sprintf("alloc-%d-%d-%d", w, g, a)})
			}
		}
		batch := make([]telemetry.Sample, 0, len(pairs)*2*len(metrics))
		for round := 0; pb.Next(); round++ {
			at := t0.Add(time.Duration(round)*10*time.Second + time.Duration(w)*time.Second)
			batch = batch[:0]
			for _, p := range pairs {
				for _, task := range []string{"main", "sidecar"} {
					for _, m := range metrics {
						batch = append(batch, telemetry.Sample{Time: at, Group: p.group, Alloc: p.alloc, Task: task, Metric: m, Value: sig3(100 + rng.Float64()*900)})
					}
				}
			}
			clk.advance(at.UnixMilli())
			if err := s.AppendBatch(batch); err != nil {
				b.Error(err)
				return
			}
			total.Add(int64(len(batch)))
		}
	})
	b.ReportMetric(float64(total.Load())/b.Elapsed().Seconds(), "samples/s")
}

// followClock reads the latest time any writer has reached.
type followClock struct{ now atomic.Int64 }

func (c *followClock) Now() time.Time { return time.UnixMilli(c.now.Load()) }

func (c *followClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- c.Now().Add(d)
	return ch
}

func (c *followClock) advance(ms int64) {
	for {
		cur := c.now.Load()
		if ms <= cur || c.now.CompareAndSwap(cur, ms) {
			return
		}
	}
}
