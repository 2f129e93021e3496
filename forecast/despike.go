package forecast

import "math"

// Outlier screen parameters: the half-width of the running median, and
// the number of robust standard deviations that makes a point an outlier
// by default.
const (
	despikeHalfWidth = 3
	despikeSigmas    = 6
)

// Despike returns a copy of y in which isolated spikes are replaced by the
// running median, and how many were replaced: Despike(y) is
// cleanOutliers(y, 0, 6), see there.
func Despike(y []float64) ([]float64, int) {
	return cleanOutliers(y, 0, despikeSigmas)
}

// cleanOutliers returns a copy of y in which outliers are replaced, and
// how many were replaced.
//
// Inside the series, with m_t the median of y_{t−3…t+3} and
// r_t = y_t − m_t, a point is an outlier if
//
//	|r_t| > k · σ,  σ = 1.4826 · median_t |r_t|,
//
// the robust (MAD) scale of the residuals, floored at 1.2533 · mean_t |r_t|
// (the same scale for Gaussian noise) so that a series that is mostly flat
// (zero MAD) with bursts still has one; it is replaced by m_t.
//
// The last three points have no centred window, and a median clipped to
// the series lags behind a steep but genuine move, so there a point is an
// outlier only if it is all of: k·σ away from the median of the six points
// before it (as cleaned), a jump from the point before it (as cleaned) of
// more than k·σ_d with σ_d the same robust scale of the first differences,
// and a jump of a kind that does not last in this series: of the earlier
// jumps at least half its size, fewer than half lasted (jumpsThatLast).
// It is replaced by that trailing median. A spike at the very end is
// then not extrapolated where spikes are what the series does, and a new
// level is followed where jumps are.
//
// For a seasonal series of period P a point must also be k·σ away from the
// median of the same phase one and two seasons before and after (those
// that exist): a spike that recurs at the same time every day is the
// season, not an outlier. A burst longer than three steps moves the
// running median and is kept; the level-shift screen (levelShifts)
// handles those.
//
// Why: one spike pulls a least-squares fit (a trend, a season, an
// autoregression) towards it, and the model then extrapolates it. Outliers
// are set aside for fitting only: the forecaster is still judged and its
// quantiles calibrated on the series as given, so p95 and p99 still cover
// spikes at the rate they happen.
func cleanOutliers(y []float64, period int, k float64) ([]float64, int) {
	return screenOutliers(y, nil, period, k)
}

// screenOutliers is cleanOutliers with the running median of y over 7
// points given (nil: computed), so that screening a series twice, without
// and with its season, computes it once.
func screenOutliers(y, med []float64, period int, k float64) ([]float64, int) {
	n := len(y)
	out := append([]float64(nil), y...)
	const h = despikeHalfWidth
	if n < 4*h+1 || !(k > 0) || math.IsInf(k, 1) {
		return out, 0
	}
	var bufs pathBuffers
	defer bufs.release()
	if med == nil {
		med = bufs.get(n)
		runningMedian(y, med, h)
	}
	res := bufs.get(n)
	for t, v := range y {
		res[t] = math.Abs(v - med[t])
	}
	thr := k * robustSigma(res, bufs.get(n))
	if thr == 0 || math.IsNaN(thr) {
		return out, 0
	}
	cnt := 0
	for t := 0; t < n-h; t++ {
		if res[t] > thr && !seasonal(y, t, period, thr) {
			out[t] = med[t]
			cnt++
		}
	}
	// the end: trailing medians and jumps, see above
	var win [2 * h]float64
	jump := -1.0 // k·σ_d, once a point needs it
	for t := n - h; t < n; t++ {
		ref := win[:0]
		ref = append(ref, out[t-2*h:t]...)
		m := selectKth(ref, len(ref)/2)
		if math.Abs(y[t]-m) <= thr {
			continue
		}
		if jump < 0 {
			diffs := bufs.get(n - 1)
			for u := 1; u < n; u++ {
				diffs[u-1] = math.Abs(y[u] - y[u-1])
			}
			jump = k * robustSigma(diffs, bufs.get(n-1))
		}
		if math.Abs(y[t]-out[t-1]) <= jump || seasonal(y, t, period, thr) {
			continue
		}
		if jumpsThatLast(y[:n-h], math.Max(jump, math.Abs(y[t]-m)/2), period, thr) < 0.5 {
			out[t] = m
			cnt++
		}
	}
	return out, cnt
}

// robustSigma is 1.4826 · median |r|, at least 1.2533 · mean |r|, for
// non-negative r; scratch (of the length of r) is overwritten.
func robustSigma(r, scratch []float64) float64 {
	var sum float64
	for _, v := range r {
		sum += v
	}
	copy(scratch, r)
	return math.Max(1.4826*selectKth(scratch, len(scratch)/2), 1.2533*sum/float64(len(r)))
}

// seasonal reports whether y_t is within thr of the median of the same
// phase one and two seasons before and after (those that exist).
func seasonal(y []float64, t, period int, thr float64) bool {
	if period <= 0 || period >= len(y) {
		return false
	}
	var buf [4]float64
	s := buf[:0]
	for _, u := range [...]int{t - 2*period, t - period, t + period, t + 2*period} {
		if u >= 0 && u < len(y) {
			s = append(s, y[u])
		}
	}
	if len(s) == 0 {
		return false
	}
	ref := selectKth(s, len(s)/2)
	if len(s)%2 == 0 {
		ref = (ref + selectKth(s, len(s)/2-1)) / 2
	}
	return math.Abs(y[t]-ref) <= thr
}

// jumpsThatLast is the share of the jumps in y of more than size that
// lasted. With b_t the median of the five points before t and a_t that of
// y_t…y_{t+4}, t is a jump if |y_t − b_t| > size, and it lasted if
// |a_t − b_t| is more than half of it: a spike and the fall back from it
// make one jump that did not last. The caller asks about jumps at least
// half as big as the one in question, since a series whose level steps
// often can still have spikes far taller than its steps; jumps to where
// the season is anyway (seasonal, within thr) are not counted, since the
// daily rise of a busy period says nothing about a spike. It is 1 when y
// has no such jump (nothing says a jump is a spike).
func jumpsThatLast(y []float64, size float64, period int, thr float64) float64 {
	var w [5]float64
	stayed, all := 0, 0
	for t := 5; t+5 <= len(y); t++ {
		b := selectKth(append(w[:0], y[t-5:t]...), 2)
		d := math.Abs(y[t] - b)
		if d <= size || seasonal(y, t, period, thr) {
			continue
		}
		all++
		if math.Abs(selectKth(append(w[:0], y[t:t+5]...), 2)-b) > d/2 {
			stayed++
		}
	}
	if all == 0 {
		return 1
	}
	return float64(stayed) / float64(all)
}

// runningMedian sets med[t] to the median of y[t−w…t+w] (clipped to the
// series; the upper median when the clipped window is even). The window is
// kept sorted as it slides, so each step removes one value and inserts one
// in O(w) instead of sorting the window afresh.
func runningMedian(y, med []float64, w int) {
	n := len(y)
	win := make([]float64, 0, 2*w+1)
	for t := -w; t < n; t++ {
		// leave y[t−w−1]: find it (bit for bit) and close the gap
		if old := t - w - 1; old >= 0 {
			i := 0
			for i < len(win)-1 && math.Float64bits(win[i]) != math.Float64bits(y[old]) {
				i++
			}
			for ; i < len(win)-1; i++ {
				win[i] = win[i+1]
			}
			win = win[:len(win)-1]
		}
		// enter y[t+w] at its place
		if t+w < n {
			v := y[t+w]
			i := len(win)
			win = append(win, v)
			for ; i > 0 && win[i-1] > v; i-- {
				win[i] = win[i-1]
			}
			win[i] = v
		}
		if t >= 0 {
			med[t] = win[len(win)/2]
		}
	}
}
