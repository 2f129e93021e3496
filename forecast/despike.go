package forecast

import "math"

// Despike parameters: the half-width of the running median, the number of
// robust standard deviations that makes a point a spike, and how many of
// the newest points are never judged (a jump at the very end may be a level
// shift that has just begun).
const (
	despikeHalfWidth = 3
	despikeSigmas    = 6
	despikeKeepLast  = 3
	// despikeMaxShare: when more points than this share look like spikes,
	// the bursts are the series' nature (a bursty network or disk), not
	// accidents, and nothing is replaced.
	despikeMaxShare = 0.02
)

// Despike returns a copy of y in which isolated spikes are replaced by the
// running median, and how many were replaced. With m_t the median of
// y_{t−3…t+3} and r_t = y_t − m_t, a point is a spike if
//
//	|r_t| > 6 · 1.4826 · median_t |r_t|,
//
// the robust (MAD) scale of the residuals. Series whose residuals are
// mostly zero (flat with bursts) have a zero scale and are left alone, as
// are the last three points, and so are series where more than 2 % of the
// points qualify: there the bursts are the signal. Spikes are set aside only for fitting; the
// forecaster is still judged and calibrated on the series as given.
func Despike(y []float64) ([]float64, int) {
	n := len(y)
	out := append([]float64(nil), y...)
	if n < 4*despikeHalfWidth+despikeKeepLast {
		return out, 0
	}
	var bufs pathBuffers
	defer bufs.release()
	med, res, abs := bufs.get(n), bufs.get(n), bufs.get(n)
	runningMedian(y, med, despikeHalfWidth)
	for t, v := range y {
		res[t] = math.Abs(v - med[t])
	}
	copy(abs, res)
	scale := 1.4826 * selectKth(abs, len(abs)/2)
	if scale == 0 || math.IsNaN(scale) {
		return out, 0
	}
	k := 0
	for t := 0; t < n-despikeKeepLast; t++ {
		if res[t] > despikeSigmas*scale {
			out[t] = med[t]
			k++
		}
	}
	if float64(k) > despikeMaxShare*float64(n) {
		return append(out[:0], y...), 0
	}
	return out, k
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
