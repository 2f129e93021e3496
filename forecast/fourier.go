package forecast

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// fourierTerm is one seasonal period of a harmonic regression, with the
// number of sine/cosine pairs used for it.
type fourierTerm struct {
	Period    float64
	Harmonics int
}

// fourierModel is a multi-seasonal harmonic regression with a linear trend
// and an AR(1) correction of its residuals:
//
//	y_t = β_0 + β_1 t/n + Σ_P Σ_{k=1..K_P} [c_{P,k} cos(2πkt/P) + s_{P,k} sin(2πkt/P)] + r_t,
//	r_t = ρ r_{t−1} + ε_t,  ŷ_{t+h|t} = x_{t+h}ᵀβ + ρ^h r_t,
//
// with β by least squares over the window and ρ the lag-one autocorrelation
// of the residuals.
type fourierModel struct {
	h     *history
	terms []fourierTerm
	beta  []float64
	rho   float64
	n     int // points fitted on; the trend regressor is t/n
	row   []float64
	reg   []float64 // cached x_tᵀβ for t < len(reg)
}

func (m *fourierModel) name() string {
	s := "fourier("
	for i, t := range m.terms {
		if i > 0 {
			s += "+"
		}
		s += fmt.Sprintf("%g×%d", t.Period, t.Harmonics)
	}
	return s + ")"
}

// fourierRow writes the regressors of time t into row.
func fourierRow(terms []fourierTerm, t int, row []float64) {
	base := make([][2]float64, len(terms))
	for i, term := range terms {
		s, c := math.Sincos(2 * math.Pi * float64(t) / term.Period)
		base[i] = [2]float64{c, s}
	}
	fourierRowFrom(terms, base, row)
}

// fourierTrendRow writes the regressors of time t, trend included, with
// the trend regressor t/n.
func fourierTrendRow(terms []fourierTerm, t, n int, row []float64) {
	fourierRow(terms, t, row[1:])
	row[0] = 1
	row[1] = float64(t) / float64(n)
}

// fourierRowFrom writes the regressors given (cos θ, sin θ) of each term's
// base angle θ = 2πt/P, using (k+1)θ = kθ + θ for the harmonics.
func fourierRowFrom(terms []fourierTerm, base [][2]float64, row []float64) {
	row[0] = 1
	i := 1
	for ti, term := range terms {
		c1, s1 := base[ti][0], base[ti][1]
		c, s := c1, s1
		for k := 0; k < term.Harmonics; k++ {
			row[i], row[i+1] = c, s
			i += 2
			s, c = s*c1+c*s1, c*c1-s*s1
		}
	}
}

// fourierRows calls fn with the regressors (1, t/n, harmonics) of t = 0…n−1
// in row. The base angle of each term advances by a fixed rotation per
// step; rotating (cos, sin) avoids a Sincos per point and term.
func fourierRows(terms []fourierTerm, n int, row []float64, fn func(t int, row []float64)) {
	rot := make([][2]float64, len(terms))
	cur := make([][2]float64, len(terms))
	for i, term := range terms {
		s, c := math.Sincos(2 * math.Pi / term.Period)
		rot[i] = [2]float64{c, s}
		cur[i] = [2]float64{1, 0}
	}
	for t := 0; t < n; t++ {
		fourierRowFrom(terms, cur, row[1:])
		row[0], row[1] = 1, float64(t)/float64(n)
		for i := range cur {
			c, s := cur[i][0], cur[i][1]
			cur[i] = [2]float64{c*rot[i][0] - s*rot[i][1], s*rot[i][0] + c*rot[i][1]}
		}
		fn(t, row)
	}
}

func fitFourier(h *history, terms []fourierTerm) (*fourierModel, error) {
	y := h.y
	n := len(y)
	p := 2
	for _, t := range terms {
		p += 2 * t.Harmonics
	}
	if n < 2*p+2 {
		return nil, fmt.Errorf("fourier: %d regressors need %d points, have %d", p, 2*p+2, n)
	}
	xtx := mat.NewSymDense(p, nil)
	xty := mat.NewVecDense(p, nil)
	row := make([]float64, p)
	raw := xtx.RawSymmetric()
	fourierRows(terms, n, row, func(t int, row []float64) {
		yt := y[t]
		xv := xty.RawVector().Data
		for i := 0; i < p; i++ {
			ri := row[i]
			xv[i] += ri * yt
			d := raw.Data[i*raw.Stride:]
			for j := i; j < p; j++ {
				d[j] += ri * row[j]
			}
		}
	})
	// a small ridge keeps near-collinear harmonics (short windows) stable
	for i := 2; i < p; i++ {
		raw.Data[i*raw.Stride+i] += 1e-6 * float64(n)
	}
	var ch mat.Cholesky
	if ok := ch.Factorize(xtx); !ok {
		return nil, fmt.Errorf("fourier: singular design")
	}
	beta := mat.NewVecDense(p, nil)
	if err := ch.SolveVecTo(beta, xty); err != nil {
		return nil, fmt.Errorf("fourier: solve: %w", err)
	}
	m := &fourierModel{h: h, terms: terms, beta: beta.RawVector().Data, row: row, n: n}
	// Fill the cache of fitted values with the same rotations.
	m.reg = make([]float64, n, n+64)
	fourierRows(terms, n, row, func(t int, row []float64) {
		var f float64
		for i, b := range m.beta {
			f += b * row[i]
		}
		m.reg[t] = f
	})
	var num, den float64
	prev := 0.0
	for t := 0; t < n; t++ {
		r := y[t] - m.fit(t)
		if t > 0 {
			num += r * prev
			den += prev * prev
		}
		prev = r
	}
	if den > 0 {
		m.rho = math.Max(0, math.Min(0.999, num/den))
	}
	return m, nil
}

// fit is the regression value at time t.
func (m *fourierModel) fit(t int) float64 {
	for len(m.reg) <= t {
		m.reg = append(m.reg, m.eval(len(m.reg)))
	}
	return m.reg[t]
}

func (m *fourierModel) eval(t int) float64 {
	fourierTrendRow(m.terms, t, m.n, m.row)
	var f float64
	for i, b := range m.beta {
		f += b * m.row[i]
	}
	return f
}

func (m *fourierModel) path(t int, out []float64) {
	r := m.h.y[t-1] - m.fit(t-1)
	f := 1.0
	for i := range out {
		f *= m.rho
		out[i] = m.fit(t+i) + f*r
	}
	clampFinite(out, m.h.y[t-1])
}
