package forecast

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/foresight-nomad/foresight/forecast/internal/cpuclock"
)

// BenchmarkFitForecast measures one fit plus a 6-hour forecast on 14 days of
// 15-minute points: the budget is 2 ms on one core. Besides wall time it
// reports the CPU time of the benchmark's thread (cpu-ms/fit), which other
// work on a shared machine does not inflate.
func BenchmarkFitForecast(b *testing.B) {
	for _, name := range []string{"crane/input1.csv", "nab/ec2_cpu_utilization_fe7f93.csv", "nab/rds_cpu_utilization_e47b3b.csv"} {
		b.Run(name, func(b *testing.B) {
			y := loadTrace(b, name)
			if len(y) > 1344 {
				y = y[len(y)-1344:]
			}
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpu := threadCPU()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				f, err := Fit(y, Options{Step: 15 * time.Minute, Horizon: 24})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := f.Forecast(24, []float64{0.5, 0.9, 0.95}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/fit")
			if cpu != nil {
				b.ReportMetric(float64(cpu())/1e6/float64(b.N), "cpu-ms/fit")
			}
		})
	}
}

// threadCPU returns the CPU time the calling thread has used since the
// call (lock the goroutine to its thread first), or nil where there is no
// such clock.
func threadCPU() func() time.Duration {
	clock, ok := cpuclock.Thread()
	if !ok {
		return nil
	}
	c0 := clock()
	return func() time.Duration { return clock() - c0 }
}

// fleet is a set of fitted series shared by the fleet benchmarks, built
// once: fitting 10,000 series is the setup, not what is measured.
var fleet struct {
	sync.Once
	fits []*Fitted
	next [][]float64 // points that arrive after the fit, per series
	hist [][]float64 // the history each series was fitted on
}

const (
	fleetSize    = 10000
	fleetHistory = 4 * 96 // four days of 15-minute points per series
)

func fleetSetup(b *testing.B) {
	fleet.Do(func() {
		for i := 0; i < fleetSize; i++ {
			period := 0
			if i%3 != 0 {
				period = 96
			}
			y := synth(fleetHistory+64, 10+float64(i%50), 0.001*float64(i%7), float64(i%11), period, 1+float64(i%5), uint64(i))
			f, err := Fit(y[:fleetHistory], Options{Step: step15, Horizon: 24})
			if err != nil {
				b.Fatal(err)
			}
			fleet.fits = append(fleet.fits, f)
			fleet.next = append(fleet.next, y[fleetHistory:])
			fleet.hist = append(fleet.hist, y[:fleetHistory])
		}
	})
}

// BenchmarkFleetUpdate measures what the leader does when every one of
// 10,000 series receives one new point: Append (an O(1) state update, no
// refit) and a fresh 6-hour forecast with p50 and p95, for all of them.
// Its unit is ms per 10,000 series, in wall time and in the CPU time of the
// benchmark's thread (which other work on a shared machine does not
// inflate); compare with BenchmarkFleetRefit.
func BenchmarkFleetUpdate(b *testing.B) {
	fleetSetup(b)
	levels := []float64{0.5, 0.95}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu := threadCPU()
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		for s, f := range fleet.fits {
			nx := fleet.next[s]
			if err := f.Append(nx[it%len(nx)]); err != nil {
				b.Fatal(err)
			}
			if _, err := f.Forecast(24, levels); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/10k-series")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/fleetSize, "ns/series")
	if cpu != nil {
		b.ReportMetric(float64(cpu())/1e6/float64(b.N), "cpu-ms/10k-series")
	}
}

// BenchmarkFleetRefit is the alternative BenchmarkFleetUpdate avoids: a
// full fit (season, candidates, validation, calibration) and forecast of a
// series after its new point. It runs over the same series and reports the
// cost scaled to 10,000 series.
func BenchmarkFleetRefit(b *testing.B) {
	fleetSetup(b)
	levels := []float64{0.5, 0.95}
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		s := it % fleetSize
		y := append(fleet.hist[s][1:len(fleet.hist[s]):len(fleet.hist[s])], fleet.next[s][0])
		f, err := Fit(y, Options{Step: step15, Horizon: 24})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Forecast(24, levels); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6*fleetSize, "ms/10k-series")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/series")
}

// BenchmarkProtocolFits runs the fits of `foresight forecast eval` over the
// shared traces: every series, 8 origins in the last 30 %, a trailing
// 14-day window, a 6-hour horizon and a p95 forecast. One op is all of
// them; cpu-ms/fit is the median thread CPU time of one fit and forecast
// (the figure the eval prints), ms/fit the mean wall time.
func BenchmarkProtocolFits(b *testing.B) {
	series, err := LoadEvalDir(sharedTraces(b), 15*time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	const H, day, history = 24, 96, 14 * 96
	var windows [][]float64
	for _, s := range series {
		n := len(s.Values)
		first, last := max(int(float64(n)*0.7), 3*day), n-H
		if last <= first {
			continue
		}
		for _, o := range linspaceInt(first, last, 8) {
			windows = append(windows, s.Values[max(0, o-history):o])
		}
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	clock, haveCPU := cpuclock.Thread()
	var cpu []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, w := range windows {
			var c0 time.Duration
			if haveCPU {
				c0 = clock()
			}
			f, err := Fit(w, Options{Step: 15 * time.Minute, Horizon: H})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := f.Forecast(H, []float64{0.95}); err != nil {
				b.Fatal(err)
			}
			if haveCPU {
				cpu = append(cpu, float64(clock()-c0)/1e6)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N*len(windows)), "ms/fit")
	if haveCPU {
		b.ReportMetric(SampleQuantile(cpu, 0.5), "cpu-ms/fit")
	}
}
