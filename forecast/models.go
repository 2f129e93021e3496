package forecast

import "fmt"

// history is the series a fitted model forecasts from. Models keep a pointer
// to it so that points appended later (Fitted.Append) are seen by every
// model, including the members of a combination.
type history struct {
	y []float64
}

// model is a fitted forecaster that can forecast from any origin of its
// history: path(t, out) writes the forecasts of y[t], y[t+1], …,
// y[t+len(out)−1] made with y[:t] only (and the fitted parameters). Origin
// t = len(y) is the forecast of the future.
type model interface {
	name() string
	path(t int, out []float64)
}

// stateful is a model with a state path of its own (ETS): push extends it
// in O(1) after a point was appended to the history. Other models read the
// history directly.
type stateful interface {
	push()
}

// leaves returns the distinct base models of m (the members of a blend),
// each once.
func leaves(m model) []model {
	var out []model
	seen := map[model]bool{}
	var walk func(model)
	walk = func(m model) {
		switch v := m.(type) {
		case *blendModel:
			for _, c := range v.models {
				walk(c)
			}
		default:
			if !seen[m] {
				seen[m] = true
				out = append(out, m)
			}
		}
	}
	walk(m)
	return out
}

// naiveModel forecasts the last value: ŷ_{t+h|t} = y_t.
type naiveModel struct{ h *history }

func (m *naiveModel) name() string { return "naive" }
func (m *naiveModel) path(t int, out []float64) {
	v := m.h.y[t-1]
	for i := range out {
		out[i] = v
	}
}

// snaiveModel forecasts the value one season ago:
// ŷ_{t+h|t} = y_{t+h−m(⌊(h−1)/m⌋+1)}.
type snaiveModel struct {
	h *history
	m int
}

func (m *snaiveModel) name() string { return fmt.Sprintf("snaive(%d)", m.m) }
func (m *snaiveModel) path(t int, out []float64) {
	// j runs over the last season, t−m…t−1, and wraps
	j := t - m.m
	for i := range out {
		out[i] = m.h.y[j]
		if j++; j == t {
			j = t - m.m
		}
	}
}

// profileModel forecasts the mean of the same phase over the last k seasons:
//
//	ŷ_{t+h|t} = (1/k) Σ_{j=1..k} y_{τ − (j+c)m},  τ = t+h−1, c = ⌊(h−1)/m⌋,
//
// using fewer seasons when the history is shorter. The sums come from the
// per-phase running sums C_j = y_j + C_{j−m} (C_j = y_j for j < m), so that
// a forecast costs O(1) per step whatever k:
//
//	Σ_{i<k} y_{j−im} = C_j − C_{j−km}  (C_{j−km} = 0 when j < km).
type profileModel struct {
	h    *history
	m, k int
	csum []float64 // C_j for j < len(csum), extended as the history grows
}

func (m *profileModel) name() string { return fmt.Sprintf("profile(%d×%d)", m.m, m.k) }

// sums returns C_j for j < t at least.
func (m *profileModel) sums(t int) []float64 {
	y := m.h.y
	for j := len(m.csum); j < t; j++ {
		v := y[j]
		if j >= m.m {
			v += m.csum[j-m.m]
		}
		m.csum = append(m.csum, v)
	}
	return m.csum
}

func (m *profileModel) path(t int, out []float64) {
	c := m.sums(t)
	// j is the newest time before t in the phase of t+i: it runs over
	// t−m…t−1 and wraps
	j := t - m.m
	for i := range out {
		switch {
		case j < 0:
			out[i] = m.h.y[t-1]
		case j >= m.k*m.m:
			out[i] = (c[j] - c[j-m.k*m.m]) / float64(m.k)
		default:
			out[i] = c[j] / float64(j/m.m+1)
		}
		if j++; j == t {
			j = t - m.m
		}
	}
}

// clampFinite replaces non-finite forecasts by fallback. (v − v is 0 for
// a finite v and NaN for ±Inf and NaN.)
func clampFinite(out []float64, fallback float64) {
	for i, v := range out {
		if v-v != 0 {
			out[i] = fallback
		}
	}
}
