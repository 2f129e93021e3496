package forecast

import (
	"fmt"
	"math"
)

// ETSKind names a member of the additive-error exponential smoothing family:
// a trend (none or damped additive) and a season (none, additive or
// multiplicative).
type ETSKind struct {
	Damped bool
	Season byte // 'N', 'A' or 'M'
}

// String names the variant in the ETS(error,trend,season) notation.
func (k ETSKind) String() string {
	t := "N"
	if k.Damped {
		t = "Ad"
	}
	return fmt.Sprintf("ETS(A,%s,%c)", t, k.Season)
}

// ETS holds the fitted parameters of an exponential smoothing model.
type ETS struct {
	Kind   ETSKind
	Period int
	// Alpha, Beta, Gamma are the level, trend and season smoothing
	// parameters; Phi is the damping factor.
	Alpha, Beta, Gamma, Phi float64
	// SSE is the sum of squared one-step errors over the fit; AICc the
	// corrected Akaike criterion n·log(SSE/n) + 2k + 2k(k+1)/(n−k−1).
	SSE, AICc float64
}

// etsModel is a fitted ETS model with its state path (built by run):
// l[t], b[t] are the level and trend after y[:t]; s[t+m] is the season
// estimate for time t, s[0:m] the initial season.
type etsModel struct {
	ETS
	h       *history
	l, b, s []float64
	l0, b0  float64
	s0      []float64
}

// run builds the state path over the whole history from the initial
// states; only the model that is kept pays for it.
func (m *etsModel) run() {
	n := len(m.h.y)
	// room for the points Append adds before the next refit, so that the
	// first of them does not copy the whole state path
	room := n + 1 + max(64, n/4)
	m.l = make([]float64, 1, room)
	m.b = make([]float64, 1, room)
	m.s = make([]float64, m.Period, room+m.Period)
	m.l[0], m.b[0] = m.l0, m.b0
	copy(m.s, m.s0)
	for _, v := range m.h.y {
		m.step(v)
	}
}

func (m *etsModel) name() string {
	if m.Kind.Season == 'N' {
		return m.Kind.String()
	}
	return fmt.Sprintf("%s[%d]", m.Kind, m.Period)
}

// etsMaxEvals caps the Nelder-Mead function evaluations of one ETS fit
// after its start (the best point of a grid, or a simpler variant's fit):
// the objective is flat near its optimum, so a coarse optimum forecasts as
// well as a precise one at a fraction of the cost (30 and 50 evaluations
// score the same on the shared traces).
const etsMaxEvals = 30

// etsTol stops the Nelder-Mead search once the simplex's losses agree to
// this relative tolerance: a 0.1 % better in-sample loss does not forecast
// better.
const etsTol = 1e-3

// etsFitWindow is the longest stretch of recent points the smoothing
// parameters are estimated on (three seasons at least); older points still
// shape the states. 14 days of 15-minute points: half of that chose a
// smoothing that followed short bursts on the vm traces.
const etsFitWindow = 1344

// FitETS fits an additive-error ETS model of the given kind and period to y
// by minimising the sum of squared one-step errors over the smoothing
// parameters (Nelder-Mead, capped evaluations) with heuristic initial
// states. The recursions, with e_t = y_t − ŷ_t and φ = 1 without damping,
// are for additive season
//
//	ŷ_t = l + φb + s_{t−m},  l' = l + φb + αe,  b' = φb + βe,  s_t = s_{t−m} + γe
//
// and for multiplicative season
//
//	ŷ_t = (l + φb)s_{t−m},  l' = l + φb + αe/s_{t−m},  b' = φb + βe/s_{t−m},
//	s_t = s_{t−m} + γe/(l + φb).
//
// Parameters are kept in 0 < α < 1, 0 < β < α, 0 < γ < 1−α, 0.8 ≤ φ ≤ 0.98.
func FitETS(y []float64, kind ETSKind, period int) (ETS, error) {
	m, err := fitETS(&history{y: y}, kind, period, nil)
	if err != nil {
		return ETS{}, err
	}
	return m.ETS, nil
}

// fitETS fits one variant. Without from, the search starts from the best
// point of a coarse grid (etsGridStart); with from (a fitted simpler
// or related variant of the same series), from its α (and γ, if it has a
// season) with a simplex a third the size: the smoothing of a series
// changes little when a damped trend is added or the season is made
// multiplicative, so the search needs fewer evaluations.
func fitETS(h *history, kind ETSKind, period int, from *ETS) (*etsModel, error) {
	y := h.y
	n := len(y)
	if kind.Season == 'N' {
		period = 0
	}
	if period > 0 && n < 2*period+2 {
		return nil, fmt.Errorf("ets: %s needs %d points, have %d", kind, 2*period+2, n)
	}
	if n < 4 {
		return nil, fmt.Errorf("ets: need 4 points, have %d", n)
	}
	if kind.Season == 'M' {
		for _, v := range y {
			if v <= 0 {
				return nil, fmt.Errorf("ets: %s needs a positive series", kind)
			}
		}
	}
	// Parameters are estimated on the trailing etsFitWindow points (at
	// least three seasons); the state path then runs over all of y.
	fy := y
	if w := max(etsFitWindow, 3*period); len(fy) > w {
		fy = fy[len(fy)-w:]
	}
	fl0, fb0, fs0 := etsInit(fy, kind, period)
	l0, b0, s0 := etsInit(y, kind, period)
	m := &etsModel{ETS: ETS{Kind: kind, Period: period}, h: h}
	// x = logit-style unconstrained parameters
	decode := func(x []float64) (a, b, g, phi float64) {
		a = 0.0001 + 0.9998*sigmoid(x[0])
		phi = 1
		i := 1
		if kind.Damped {
			b = a * sigmoid(x[i])
			phi = 0.8 + 0.18*sigmoid(x[i+1])
			i += 2
		}
		if kind.Season != 'N' {
			g = (1 - a) * sigmoid(x[i])
		}
		return
	}
	dim := 1
	a0, g0, step := 0.3, 0.05, 1.5
	if from != nil {
		a0, step = (from.Alpha-0.0001)/0.9998, 0.5
		if from.Kind.Season != 'N' && from.Alpha < 1 {
			g0 = from.Gamma / (1 - from.Alpha)
		}
	}
	a0 = min(max(a0, 1e-6), 1-1e-6)
	g0 = min(max(g0, 1e-6), 1-1e-6)
	x0 := []float64{logit(a0)}
	if kind.Damped {
		dim += 2
		x0 = append(x0, logit(0.1), logit(0.5))
	}
	if kind.Season != 'N' {
		dim++
		x0 = append(x0, logit(g0))
	}
	var bufs pathBuffers
	defer bufs.release()
	sbuf := bufs.get(n + period)
	obj := func(x []float64, bound float64) float64 {
		a, b, g, phi := decode(x)
		return etsLoss(fy, kind, period, a, b, g, phi, fl0, fb0, fs0, sbuf, bound)
	}
	if from == nil {
		x0, step = etsGridStart(obj, x0, kind), 1
	}
	best, _ := nelderMead(obj, x0, step, etsMaxEvals, etsTol)
	m.Alpha, m.Beta, m.Gamma, m.Phi = decode(best)
	m.l0, m.b0, m.s0 = l0, b0, s0
	sse := etsLoss(y, kind, period, m.Alpha, m.Beta, m.Gamma, m.Phi, l0, b0, s0, sbuf, math.Inf(1))
	if math.IsInf(sse, 0) || math.IsNaN(sse) {
		return nil, fmt.Errorf("ets: %s: no stable fit", kind)
	}
	k := float64(dim + 1)
	if kind.Damped {
		k++
	}
	if period > 0 {
		k += float64(period - 1)
	}
	nn := float64(n)
	m.SSE = sse
	v := sse / nn
	if v < 1e-300 {
		v = 1e-300
	}
	m.AICc = nn*math.Log(v) + 2*k
	if nn-k-1 > 0 {
		m.AICc += 2 * k * (k + 1) / (nn - k - 1)
	} else {
		m.AICc = math.Inf(1)
	}
	return m, nil
}

// etsGridAlphas and etsGridGammas are the starting points tried for α and
// for γ/(1−α). The loss of a seasonal model often has two basins, a level
// that follows every point (α near 1, γ near 0) and a steady level under a
// season that adapts (α near 0, γ near ½); a simplex started in one rarely
// finds the other.
var (
	etsGridAlphas = [...]float64{0.01, 0.1, 0.3, 0.6, 0.95}
	etsGridGammas = [...]float64{0.05, 0.5}
)

// etsGridStart returns the point of the grid of etsGridAlphas (×
// etsGridGammas with a season) with the lowest loss, the other
// coordinates as in x0.
func etsGridStart(obj func(x []float64, bound float64) float64, x0 []float64, kind ETSKind) []float64 {
	gs := etsGridGammas[:1]
	if kind.Season != 'N' {
		gs = etsGridGammas[:]
	}
	best, bestv := x0, math.Inf(1)
	for _, a := range etsGridAlphas {
		for _, g := range gs {
			x := append([]float64(nil), x0...)
			x[0] = logit(a)
			if kind.Season != 'N' {
				x[len(x)-1] = logit(g)
			}
			if v := obj(x, bestv); v < bestv {
				best, bestv = x, v
			}
		}
	}
	return best
}

// step advances the state by one observation v.
func (m *etsModel) step(v float64) {
	t := len(m.l) - 1
	l, b := m.l[t], m.b[t]
	phi := m.Phi
	lb := l + phi*b
	var sPrev float64
	switch m.Kind.Season {
	case 'N':
		e := v - lb
		m.l = append(m.l, lb+m.Alpha*e)
		m.b = append(m.b, phi*b+m.Beta*e)
		return
	case 'A':
		sPrev = m.s[t]
		e := v - lb - sPrev
		m.l = append(m.l, lb+m.Alpha*e)
		m.b = append(m.b, phi*b+m.Beta*e)
		m.s = append(m.s, sPrev+m.Gamma*e)
	case 'M':
		sPrev = m.s[t]
		e := v - lb*sPrev
		if sPrev < 1e-6 {
			sPrev = 1e-6
		}
		nl := lb + m.Alpha*e/sPrev
		m.l = append(m.l, nl)
		m.b = append(m.b, phi*b+m.Beta*e/sPrev)
		den := lb
		if math.Abs(den) < 1e-9 {
			den = 1e-9
		}
		ns := m.s[t] + m.Gamma*e/den
		if ns < 1e-3 {
			ns = 1e-3
		}
		m.s = append(m.s, ns)
	}
}

func (m *etsModel) push() { m.step(m.h.y[len(m.h.y)-1]) }

func (m *etsModel) path(t int, out []float64) {
	l, b := m.l[t], m.b[t]
	phiH := 0.0
	pw := 1.0
	// j indexes the season estimate of step i: t…t+m−1, wrapping
	j := t
	for i := range out {
		pw *= m.Phi
		phiH += pw
		f := l + phiH*b
		switch m.Kind.Season {
		case 'A':
			f += m.s[j]
		case 'M':
			f *= m.s[j]
		}
		out[i] = f
		if j++; j == t+m.Period {
			j = t
		}
	}
	clampFinite(out, m.h.y[t-1])
}

// etsLoss runs the recursions and returns the sum of squared one-step errors
// (+Inf if the states blow up). sbuf holds n+period seasonal states. Once
// the running sum passes bound (checked every 64 points) it returns that
// partial sum, which is less than the total but already above bound; with
// bound = +Inf it always returns the total.
//
// The updates are those of FitETS, rearranged so that each new state is a
// short sum of products of the previous ones: with u_t the deseasonalised
// observation (y_t − s_{t−m}, or y_t/s_{t−m} for a multiplicative season)
// and e = u_t − (l + φb),
//
//	l' = (1−α)l + ((1−α)φb + αu_t),  b' = φ(1−β)b + (βu_t − βl),
//
// which is the same arithmetic (up to rounding) with the observation terms
// off the chain of dependent operations that bounds the speed of the loop.
func etsLoss(y []float64, kind ETSKind, period int, a, bb, g, phi, l, b float64, s0, sbuf []float64, bound float64) float64 {
	var sse float64
	a1 := 1 - a
	switch {
	case kind.Season == 'N' && !kind.Damped:
		for t, v := range y {
			e := v - l
			sse += e * e
			if t&63 == 63 && sse > bound {
				return sse
			}
			l = a1*l + a*v
		}
	case kind.Season == 'N':
		c1, pa := phi*(1-bb), a1*phi
		for t, v := range y {
			e := v - (l + phi*b)
			sse += e * e
			if t&63 == 63 && sse > bound {
				return sse
			}
			l, b = a1*l+(pa*b+a*v), c1*b+(bb*v-bb*l)
		}
	case kind.Season == 'A' && !kind.Damped:
		s := sbuf[:len(y)+period]
		copy(s, s0)
		for t, v := range y {
			sp := s[t]
			u := v - sp
			e := u - l
			sse += e * e
			if t&63 == 63 && sse > bound {
				return sse
			}
			l = a1*l + a*u
			s[t+period] = sp + g*e
		}
	case kind.Season == 'A':
		s := sbuf[:len(y)+period]
		copy(s, s0)
		c1, pa := phi*(1-bb), a1*phi
		for t, v := range y {
			sp := s[t]
			u := v - sp
			e := u - (l + phi*b)
			sse += e * e
			if t&63 == 63 && sse > bound {
				return sse
			}
			l, b = a1*l+(pa*b+a*u), c1*b+(bb*u-bb*l)
			s[t+period] = sp + g*e
		}
	case kind.Season == 'M':
		s := sbuf[:len(y)+period]
		copy(s, s0)
		for t, v := range y {
			lb := l + phi*b
			sp := s[t]
			if lb <= 0 || sp <= 0 {
				return math.Inf(1)
			}
			e := v - lb*sp
			sse += e * e
			if t&63 == 63 && sse > bound {
				return sse
			}
			u := v / sp
			l, b = a1*lb+a*u, phi*b+bb*(u-lb)
			s[t+period] = sp + g*e/lb
		}
	}
	if math.IsNaN(sse) || math.IsInf(sse, 0) {
		return math.Inf(1)
	}
	return sse
}

// etsInit returns heuristic initial states. Without season: the level is
// the mean of the first few points and the trend their mean change. With
// season: a line a + b·t is fitted to the means of the first k ≤ 4 full
// seasons; the season is the mean deviation (or ratio) of each phase from
// the line, centred to mean 0 (or 1), the level is a and the trend b, so a
// trend inside the first seasons does not leak into the season.
func etsInit(y []float64, kind ETSKind, period int) (l0, b0 float64, s0 []float64) {
	if period == 0 {
		w := min(len(y), 8)
		l0 = mean(y[:w])
		if kind.Damped && len(y) >= 2*w {
			b0 = (mean(y[w:2*w]) - l0) / float64(w)
		}
		return l0, b0, nil
	}
	k := min(len(y)/period, 4)
	// The line goes through the season means at the season centres: a
	// line fitted to the points themselves would be tilted by the cycle.
	means := make([]float64, k)
	for c := range means {
		means[c] = mean(y[c*period : (c+1)*period])
	}
	slope := 0.0
	if k > 1 {
		var sx, sy, sxx, sxy float64
		for c, v := range means {
			x := float64(c * period)
			sx += x
			sy += v
			sxx += x * x
			sxy += x * v
		}
		kk := float64(k)
		slope = (kk*sxy - sx*sy) / (kk*sxx - sx*sx)
	}
	icpt := mean(means) - slope*(float64((k-1)*period)/2+float64(period-1)/2)
	if kind.Season == 'M' && icpt <= 0 {
		slope, icpt = 0, mean(means)
	}
	s0 = make([]float64, period)
	var centre float64
	for j := 0; j < period; j++ {
		var acc float64
		for c := 0; c < k; c++ {
			t := c*period + j
			line := icpt + slope*float64(t)
			if kind.Season == 'M' {
				if line <= 0 {
					line = icpt
				}
				acc += y[t] / line
			} else {
				acc += y[t] - line
			}
		}
		s0[j] = acc / float64(k)
		centre += s0[j] / float64(period)
	}
	for j := range s0 {
		if kind.Season == 'M' {
			s0[j] /= centre
		} else {
			s0[j] -= centre
		}
	}
	l0 = icpt
	if kind.Damped {
		b0 = slope
	}
	return l0, b0, s0
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
func logit(p float64) float64   { return math.Log(p / (1 - p)) }

func mean(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	var s float64
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}
