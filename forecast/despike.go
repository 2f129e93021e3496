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
	med := make([]float64, n)
	res := make([]float64, n)
	win := make([]float64, 0, 2*despikeHalfWidth+1)
	for t := range y {
		win = append(win[:0], y[max(0, t-despikeHalfWidth):min(n, t+despikeHalfWidth+1)]...)
		// insertion sort: the window is tiny
		for i := 1; i < len(win); i++ {
			for j := i; j > 0 && win[j] < win[j-1]; j-- {
				win[j], win[j-1] = win[j-1], win[j]
			}
		}
		med[t] = win[len(win)/2]
		res[t] = math.Abs(y[t] - med[t])
	}
	abs := append([]float64(nil), res...)
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
