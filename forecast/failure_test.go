package forecast

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/foresight-nomad/foresight/internal/shared"
)

// The failure kinds of issue 17 (isolated spike, burst cluster, level
// shift up and down, long flat stretch), each built from a base series with
// the event added: the forecast right after the event must stay within a
// stated bound of where it belongs, and the p95 must keep covering while
// the event recurs at its rate. The bases are two real traces from
// ../shared (a daily cycle and none), whose subtests skip with a message
// when ../shared is absent, and a synthetic daily cycle that always runs.
// Events recur at irregular gaps: at a fixed period they would be a season.
//
// Sizes are in units of the base's noise U: the robust standard deviation
// of its residuals from a running median of 7 points (1.4826 · MAD, at
// least 1.2533 · their mean absolute value), over its 14 days of history.
// Spikes and bursts are taller than anything in the history by 12U and 6U,
// shifts are 10U, whatever the base's own scale and cycle. The engine of
// the commit before issue 17 fails 10 of these 15 cases (measured).

// failureCase is one kind of event.
type failureCase struct {
	name string
	// add puts the event into y (the history ends at o, the future
	// follows) and returns the level shift it made (0 for none, NaN when
	// the series went flat: the forecast then belongs at the flat level)
	// and the event's size (height of a spike or burst, size of a shift,
	// drop to the flat level).
	add func(y []float64, o int, u float64) (shift, size float64)
	// bound is the largest allowed distance of the forecast from where it
	// belongs, at any step of the horizon, in units of U: the base's own
	// forecast; after a shift, the forecast of the base had it always been
	// at the new level (a shift must move the level, not the trend); after
	// the series went flat, the flat level.
	bound float64
	// seasonal is the bound on a base with a daily cycle, as a share of the
	// event's size (0: bound applies). There the engine levels no shifts
	// and cleans no run longer than three points: both fired on the
	// changing daily shapes of the crane traces and made forecasts worse
	// (measured); the level follows a shift through the seasonal models'
	// smoothing, and a burst is partly kept by the seasonal naive and the
	// profile. The bound says how much of the event may still show.
	seasonal float64
	// cover is the lowest allowed p95 coverage over the rolling origins
	// after the event (target 0.95; 16 origins × 24 steps).
	cover float64
}

// eventTimes returns the times of events at irregular gaps (uniform in
// [gap/2, 3gap/2), from a fixed seed: events at a fixed period would be a
// season) before and after o, the first of them at o − back.
func eventTimes(n, o, back, gap int, seed uint64) []int {
	r := rand.New(rand.NewPCG(seed, 7))
	ts := []int{o - back}
	for t := o - back; t >= 0; {
		t -= gap/2 + r.IntN(gap)
		if t >= 0 {
			ts = append(ts, t)
		}
	}
	for t := o - back; ; {
		t += gap/2 + r.IntN(gap)
		if t >= n {
			break
		}
		ts = append(ts, t)
	}
	return ts
}

// tall is the height of a spike that is an outlier on any base: k noise
// units above the highest point of the history.
func tall(y []float64, o int, u, k float64) float64 {
	top := y[0]
	for _, v := range y[:o] {
		top = math.Max(top, v)
	}
	return top - SampleQuantile(y[:o], 0.5) + k*u
}

var failureCases = []failureCase{
	{
		// A spike taller than anything in the history about every 37 hours,
		// the last one at the newest point.
		name: "isolated spike",
		add: func(y []float64, o int, u float64) (float64, float64) {
			a := tall(y, o, u, 12)
			for _, t := range eventTimes(len(y), o, 1, 148, 1) {
				y[t] += a
			}
			return 0, a
		},
		bound: 1.5, cover: 0.92,
	},
	{
		// A burst of six raised points (1.5 h), as tall, about every two
		// days, the last one ending two points before the newest.
		name: "burst cluster",
		add: func(y []float64, o int, u float64) (float64, float64) {
			a := tall(y, o, u, 6)
			for _, end := range eventTimes(len(y), o, 2, 192, 2) {
				for t := max(0, end-6); t < min(end, len(y)); t++ {
					y[t] += a
				}
			}
			return 0, a
		},
		bound: 1.5, seasonal: 0.3, cover: 0.92,
	},
	{
		// The level rises by 10U a day before the newest point and stays.
		name: "level shift up",
		add: func(y []float64, o int, u float64) (float64, float64) {
			for t := o - 96; t < len(y); t++ {
				y[t] += 10 * u
			}
			return 10 * u, 10 * u
		},
		bound: 1.5, seasonal: 0.5, cover: 0.9,
	},
	{
		// The level falls by 10U a day before the newest point and stays
		// (demand may go below zero: the forecaster does not know it
		// cannot).
		name: "level shift down",
		add: func(y []float64, o int, u float64) (float64, float64) {
			for t := o - 96; t < len(y); t++ {
				y[t] -= 10 * u
			}
			return -10 * u, 10 * u
		},
		bound: 1.5, seasonal: 0.5, cover: 0.9,
	},
	{
		// The series goes idle: the last three days of history and all of
		// the future are flat at the base's 5th percentile, with a tall
		// spike about every 15 hours, as on a VM that waits for work.
		name: "long flat stretch",
		add: func(y []float64, o int, u float64) (float64, float64) {
			low := append([]float64(nil), y[:o]...)
			sort.Float64s(low)
			flat, a := low[len(low)/20], tall(y, o, u, 12)
			drop := low[len(low)/2] - flat
			for t := o - 3*96; t < len(y); t++ {
				y[t] = flat
			}
			for _, t := range eventTimes(len(y), o, 30, 60, 3) {
				if t >= o-3*96 {
					y[t] += a
				}
			}
			return math.NaN(), drop
		},
		bound: 1.5, seasonal: 0.25, cover: 0.93,
	},
}

// failureBase is a series to add events to: at least 14 days of history
// and 2 days after.
type failureBase struct {
	name     string
	seasonal bool // it has a daily cycle
	y        func(t *testing.T) []float64
}

var failureBases = []failureBase{
	{"synthetic daily cycle", true, func(t *testing.T) []float64 {
		y := synth(18*96, 100, 0, 20, 96, 3, 91)
		for i := range y {
			y[i] = math.Max(y[i], 0)
		}
		return y
	}},
	{"crane/input1 (real, daily cycle)", true, func(t *testing.T) []float64 {
		return realBase(t, "crane", "input1.csv")
	}},
	{"nab/ec2_cpu_utilization_fe7f93 (real, no season)", false, func(t *testing.T) []float64 {
		return realBase(t, "nab", "ec2_cpu_utilization_fe7f93.csv")
	}},
}

// realBase loads a shared trace, regularised as the protocol does; the
// subtest skips with a message when ../shared is absent (the synthetic
// base still runs).
func realBase(t *testing.T, src, file string) []float64 {
	y, err := loadEvalFile(shared.Path(t, "data", "traces", src, file), step15)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

// TestFailureKinds: for each base and kind, fit on the history up to the
// origin right after the event and compare the forecast with where it
// belongs (see failureCase.bound); then roll 16 origins over the two days
// after it and count how often the p95 covers.
func TestFailureKinds(t *testing.T) {
	const H, history = 24, 14 * 96
	for _, base := range failureBases {
		for _, c := range failureCases {
			t.Run(base.name+"/"+c.name, func(t *testing.T) {
				y0 := base.y(t)
				n := min(len(y0), history+2*96)
				y0 = y0[len(y0)-n:]
				o := n - 2*96
				u := noiseScale(y0[max(0, o-history):o])
				y := append([]float64(nil), y0...)
				shift, size := c.add(y, o, u)
				bound := c.bound * u
				if base.seasonal && c.seasonal > 0 {
					bound = math.Max(bound, c.seasonal*size)
				}
				ref := append([]float64(nil), y0[max(0, o-history):o]...)
				for i := range ref {
					ref[i] += shift // NaN for the flat case: not used
				}
				want, err := pointForecast(ref, H)
				if err != nil && !math.IsNaN(shift) {
					t.Fatal(err)
				}
				got, err := pointForecast(y[max(0, o-history):o], H)
				if err != nil {
					t.Fatal(err)
				}
				var worst float64
				for i := range got {
					if math.IsNaN(shift) {
						worst = math.Max(worst, math.Abs(got[i]-y[o-1]))
					} else {
						worst = math.Max(worst, math.Abs(got[i]-want[i]))
					}
				}
				if worst > bound {
					t.Errorf("forecast after the event is %.2fU from where it belongs (bound %.2fU; the event is %.1fU)", worst/u, bound/u, size/u)
				}
				cov, err := rollingCoverage(y, o, history, H, 16)
				if err != nil {
					t.Fatal(err)
				}
				if cov < c.cover || cov > 1 {
					t.Errorf("p95 covers %.3f of the actuals after the event, want ≥ %.2f", cov, c.cover)
				}
				t.Logf("%.2fU from where it belongs (bound %.2fU; the event is %.1fU), p95 coverage %.3f", worst/u, bound/u, size/u, cov)
			})
		}
	}
}

// noiseScale is U (see above), at least a thousandth of the mean absolute
// value of y.
func noiseScale(y []float64) float64 {
	med, res := make([]float64, len(y)), make([]float64, len(y))
	runningMedian(y, med, 3)
	for i, v := range y {
		res[i] = math.Abs(v - med[i])
	}
	return math.Max(math.Max(1.4826*SampleQuantile(res, 0.5), 1.2533*mean(res)), 1e-3*meanAbs(y))
}

func pointForecast(y []float64, H int) ([]float64, error) {
	f, err := Fit(y, Options{Step: step15, Horizon: H})
	if err != nil {
		return nil, err
	}
	fc, err := f.Forecast(H, []float64{0.95})
	if err != nil {
		return nil, err
	}
	return fc.Mean, nil
}

// rollingCoverage fits at k origins spread from o to the last that has H
// actuals after it (each on the trailing history) and returns the share of
// actuals at or below the p95.
func rollingCoverage(y []float64, o, history, H, k int) (float64, error) {
	var in, all int
	for _, oo := range linspaceInt(o, len(y)-H, k) {
		f, err := Fit(y[max(0, oo-history):oo], Options{Step: step15, Horizon: H})
		if err != nil {
			return 0, fmt.Errorf("origin %d: %w", oo, err)
		}
		fc, err := f.Forecast(H, []float64{0.95})
		if err != nil {
			return 0, err
		}
		for i, q := range fc.Quantiles[0] {
			all++
			if y[oo+i] <= q {
				in++
			}
		}
	}
	return float64(in) / float64(all), nil
}
