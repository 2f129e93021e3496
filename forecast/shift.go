package forecast

import "math"

// Level-shift screen parameters, in steps: the half-width of the windows
// whose medians are compared, and how many of the newest points a shift
// needs before it counts (fewer may be a burst that has just begun).
const (
	shiftHalfWidth = 4
	shiftMinAfter  = shiftHalfWidth + 1
)

// levelShifts finds lasting changes of level in y and returns the offsets
// that move the history before each of them to the level after it, so that
// y_t + off_t has no shift left and off is 0 over the newest segment; the
// second result is the number of shifts.
//
// With the windows of w = 2·4+1 steps on either side of t, a shift at t has
// size D_t = median(y_t…y_{t+w−1}) − median(y_{t−w}…y_{t−1}) (the window
// after t is shorter near the end, down to 5 points). A t is a shift when
//
//	|D_t| > k · σ,  σ = 1.4826 · median_t |y_t − m_t|,
//
// with m_t the running median of y over w points (σ is floored at
// 1.2533 · mean |y_t − m_t| and at 10⁻³ of the mean absolute value, so that
// a flat series with one plateau has a scale) and |D_t| is the largest
// within w steps either side, and the newest shift must still hold: the
// median of the last three points is at least half of it away from the
// level before it. Medians ignore spikes
// shorter than half a window, so spikes are never shifts; a burst longer
// than that is two shifts, up and down, and is levelled like a plateau.
//
// Why: a model fitted across a shift either reverts to a mean that mixes
// both levels (AR, regressions) or reads the jump as a trend (ETS with a
// trend); levelling the old history removes both. The forecast is judged
// and calibrated on the series as given, so the shifts still widen the
// quantiles at the rate they happen.
func levelShifts(y []float64, k float64) ([]float64, int) {
	n := len(y)
	const h = shiftHalfWidth
	w := 2*h + 1
	if n < 2*w+shiftMinAfter || !(k > 0) || math.IsInf(k, 1) {
		return nil, 0
	}
	var bufs pathBuffers
	defer bufs.release()
	med, abs := bufs.get(n), bufs.get(n)
	runningMedian(y, med, h)
	var sum, scale float64
	for t, v := range y {
		abs[t] = math.Abs(v - med[t])
		sum += abs[t]
		scale += math.Abs(v)
	}
	sigma := math.Max(1.4826*selectKth(abs, n/2), 1.2533*sum/float64(n))
	sigma = math.Max(sigma, 1e-3*scale/float64(n))
	if sigma == 0 || math.IsNaN(sigma) {
		return nil, 0
	}
	// D_t for t in [w, n−shiftMinAfter]: the centred median at t−h−1 is
	// that of the window before t; the one at t+h that of the window
	// after, while it is whole; near the end the window after is the rest
	// of the series.
	d := bufs.get(n)
	clear(d)
	tail := make([]float64, 0, w)
	for t := w; t <= n-shiftMinAfter; t++ {
		after := med[min(t+h, n-1)]
		if t+w > n {
			tail = append(tail[:0], y[t:]...)
			after = selectKth(tail, len(tail)/2)
		}
		d[t] = after - med[t-h-1]
	}
	thr := k * sigma
	var shifts []int
	for t := w; t <= n-shiftMinAfter; t++ {
		a := math.Abs(d[t])
		if a <= thr || !peakAt(d, t, w, n-shiftMinAfter) {
			continue
		}
		shifts = append(shifts, t)
	}
	// The newest shift must still hold at the end: a burst that has just
	// ended was a rise whose fall is too recent to be confirmed.
	if k := len(shifts); k > 0 {
		tau := shifts[k-1]
		var last [3]float64
		now := selectKth(append(last[:0], y[n-3:]...), 1)
		if math.Abs(now-med[tau-h-1]) < math.Abs(d[tau])/2 {
			shifts = shifts[:k-1]
		}
	}
	if len(shifts) == 0 {
		return nil, 0
	}
	off := make([]float64, n)
	acc := 0.0
	j := len(shifts) - 1
	for t := n - 1; t >= 0; t-- {
		for j >= 0 && t < shifts[j] {
			acc += d[shifts[j]]
			j--
		}
		off[t] = acc
	}
	return off, len(shifts)
}

// peakAt reports whether |d_t| is the largest of |d| within w steps either
// side (the first of equals), over the range [w, last].
func peakAt(d []float64, t, w, last int) bool {
	a := math.Abs(d[t])
	for u := max(w, t-w); u <= min(last, t+w); u++ {
		if b := math.Abs(d[u]); b > a || (b == a && u < t) {
			return false
		}
	}
	return true
}
