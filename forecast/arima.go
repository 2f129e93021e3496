package forecast

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/floats"
)

// arMaxOrder is the largest autoregressive order tried.
const arMaxOrder = 5

// Levinson solves the Yule-Walker equations for autoregressive coefficients
// of orders 1…p from autocovariances c[0..p], by the Levinson-Durbin
// recursion
//
//	k_j = (c_j − Σ_{i<j} a_{j−1,i} c_{j−i}) / v_{j−1},
//	a_{j,i} = a_{j−1,i} − k_j a_{j−1,j−i},  a_{j,j} = k_j,  v_j = v_{j−1}(1 − k_j²),
//
// It returns the coefficients of every order (coef[j] has length j) and the
// innovation variances v[0..p].
func Levinson(c []float64) (coef [][]float64, v []float64) {
	p := len(c) - 1
	coef = make([][]float64, p+1)
	v = make([]float64, p+1)
	v[0] = c[0]
	coef[0] = nil
	prev := []float64{}
	for j := 1; j <= p; j++ {
		if v[j-1] <= 0 {
			for ; j <= p; j++ {
				coef[j] = append([]float64(nil), prev...)
				coef[j] = append(coef[j], 0)
				prev = coef[j]
				v[j] = v[j-1]
			}
			break
		}
		acc := c[j]
		for i := 1; i < j; i++ {
			acc -= prev[i-1] * c[j-i]
		}
		k := acc / v[j-1]
		if k > 0.999 {
			k = 0.999
		} else if k < -0.999 {
			k = -0.999
		}
		cur := make([]float64, j)
		for i := 1; i < j; i++ {
			cur[i-1] = prev[i-1] - k*prev[j-i-1]
		}
		cur[j-1] = k
		v[j] = v[j-1] * (1 - k*k)
		coef[j] = cur
		prev = cur
	}
	return coef, v
}

// arModel is an autoregression on a transformed series. With diff it is
// ARIMA(p,1,0) without drift: the differences d_t = y_t − y_{t−1} follow
// d_t = Σ a_i d_{t−i} + ε_t. Without diff it is a mean-reverting AR(p) around
// the window mean μ: y_t − μ = Σ a_i (y_{t−i} − μ) + ε_t. The order p ≤ 5 is
// chosen by AIC, n·log v_p + 2p, from the Yule-Walker fits.
type arModel struct {
	h    *history
	diff bool
	mu   float64
	a    []float64
	buf  []float64
}

func (m *arModel) name() string {
	if m.diff {
		return fmt.Sprintf("arima(%d,1,0)", len(m.a))
	}
	return fmt.Sprintf("ar(%d)", len(m.a))
}

func fitAR(h *history, diff bool) (*arModel, error) {
	y := h.y
	var z []float64
	mu := 0.0
	var bufs pathBuffers
	defer bufs.release()
	if diff {
		z = bufs.get(len(y) - 1)
		for i := 1; i < len(y); i++ {
			z[i-1] = y[i] - y[i-1]
		}
	} else {
		mu = mean(y)
		z = bufs.get(len(y))
		for i, v := range y {
			z[i] = v - mu
		}
	}
	n := len(z)
	if n < 3*arMaxOrder {
		return nil, fmt.Errorf("ar: need %d points, have %d", 3*arMaxOrder+1, len(y))
	}
	c := make([]float64, arMaxOrder+1)
	for lag := 0; lag <= arMaxOrder; lag++ {
		c[lag] = floats.Dot(z[lag:], z[:n-lag]) / float64(n)
	}
	coef, v := Levinson(c)
	best, bestAIC := 0, math.Inf(1)
	for p := 0; p <= arMaxOrder; p++ {
		if v[p] <= 0 {
			break
		}
		if aic := float64(n)*math.Log(v[p]) + 2*float64(p); aic < bestAIC {
			best, bestAIC = p, aic
		}
	}
	return &arModel{h: h, diff: diff, mu: mu, a: coef[best]}, nil
}

func (m *arModel) path(t int, out []float64) {
	y := m.h.y
	p := len(m.a)
	// The recursion runs in registers: z1…z5 are the transformed values at
	// lags 1…5 (zero beyond the order or the start of the history), and the
	// coefficients are padded with zeros to order 5, so that only one
	// multiply-add of each step waits for the previous step's forecast.
	var a [arMaxOrder]float64
	copy(a[:], m.a)
	var z [arMaxOrder]float64
	for k := 0; k < p; k++ {
		j := t - 1 - k
		switch {
		case m.diff && j >= 1:
			z[k] = y[j] - y[j-1]
		case !m.diff && j >= 0:
			z[k] = y[j] - m.mu
		}
	}
	z1, z2, z3, z4, z5 := z[0], z[1], z[2], z[3], z[4]
	last, base := y[t-1], m.mu
	for i := range out {
		f := (a[4]*z5 + a[3]*z4) + (a[2]*z3 + a[1]*z2) + a[0]*z1
		z5, z4, z3, z2, z1 = z4, z3, z2, z1, f
		if m.diff {
			last += f
			out[i] = last
		} else {
			out[i] = base + f
		}
	}
	clampFinite(out, y[t-1])
}
