package forecast

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/lapack/lapack64"
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

// fourierDesign returns the design matrix of the regression over
// t = 0…n−1 by columns: X[0] = 1, X[1] = t/n, then cos(2πkt/P) and
// sin(2πkt/P) for each term and k = 1…K. The base angle of each term
// advances by a fixed rotation per step, and harmonic k+1 follows from k by
// cos((k+1)θ) = cos kθ cos θ − sin kθ sin θ (and likewise for the sine), so
// no point costs a Sincos. The columns share one buffer taken from bufs.
func fourierDesign(terms []fourierTerm, n, p int, bufs *pathBuffers) [][]float64 {
	data := bufs.get(n * p)
	X := make([][]float64, p)
	for i := range X {
		X[i] = data[i*n : (i+1)*n : (i+1)*n]
	}
	for t := range n {
		X[0][t] = 1
		X[1][t] = float64(t) / float64(n)
	}
	i := 2
	for _, term := range terms {
		if term.Harmonics == 0 {
			continue
		}
		c1, s1 := X[i], X[i+1]
		rs, rc := math.Sincos(2 * math.Pi / term.Period)
		c, sn := 1.0, 0.0
		for t := range n {
			c1[t], s1[t] = c, sn
			c, sn = c*rc-sn*rs, sn*rc+c*rs
		}
		for k := 1; k < term.Harmonics; k++ {
			pc, ps := X[i+2*k-2], X[i+2*k-1]
			nc, ns := X[i+2*k], X[i+2*k+1]
			for t := range n {
				nc[t] = pc[t]*c1[t] - ps[t]*s1[t]
				ns[t] = ps[t]*c1[t] + pc[t]*s1[t]
			}
		}
		i += 2 * term.Harmonics
	}
	return X
}

// fourierGram returns XᵀX of the design of fourierDesign in closed form.
// With ν the angular frequency of a harmonic column and the sums
//
//	G₀(ν) = Σ_{t<n} e^{iνt} = (1 − e^{iνn})/(1 − e^{iν}),
//	G₁(ν) = Σ_{t<n} t e^{iνt} = (e^{iν} − n e^{iνn} + (n−1)e^{iν(n+1)})/(1 − e^{iν})²,
//
// the entries are Σ1 = n, Σt/n = (n−1)/2, Σ(t/n)² = (n−1)(2n−1)/(6n),
// Σcos νt = Re G₀(ν), Σ(t/n)cos νt = Re G₁(ν)/n (Im for the sines), and by
// the product formulas
//
//	Σ cos at cos bt = ½Re[G₀(a−b) + G₀(a+b)],  Σ sin at sin bt = ½Re[G₀(a−b) − G₀(a+b)],
//	Σ cos at sin bt = ½Im[G₀(a+b) − G₀(a−b)].
//
// That costs O(p²) instead of the O(np²) of the dot products of the
// columns.
func fourierGram(terms []fourierTerm, n, p int) *mat.SymDense {
	nu := make([]float64, p)
	i := 2
	for _, term := range terms {
		for k := 1; k <= term.Harmonics; k++ {
			nu[i] = 2 * math.Pi * float64(k) / term.Period
			nu[i+1] = nu[i]
			i += 2
		}
	}
	g := mat.NewSymDense(p, nil)
	fn := float64(n)
	g.SetSym(0, 0, fn)
	g.SetSym(0, 1, (fn-1)/2)
	g.SetSym(1, 1, (fn-1)*(2*fn-1)/(6*fn))
	for i := 2; i < p; i += 2 {
		g0, g1 := geomSums(nu[i], n)
		g.SetSym(0, i, real(g0))
		g.SetSym(0, i+1, imag(g0))
		g.SetSym(1, i, real(g1)/fn)
		g.SetSym(1, i+1, imag(g1)/fn)
		for j := i; j < p; j += 2 {
			dm, _ := geomSums(nu[i]-nu[j], n)
			dp, _ := geomSums(nu[i]+nu[j], n)
			g.SetSym(i, j, (real(dm)+real(dp))/2)
			g.SetSym(i+1, j+1, (real(dm)-real(dp))/2)
			g.SetSym(i, j+1, (imag(dp)-imag(dm))/2)
			if j > i {
				// Σ sin at cos bt = ½Im[G₀(a+b) + G₀(a−b)]
				g.SetSym(i+1, j, (imag(dp)+imag(dm))/2)
			}
		}
	}
	return g
}

// geomSums returns G₀(ν) = Σ_{t<n} e^{iνt} and G₁(ν) = Σ_{t<n} t e^{iνt}, by
// the closed forms unless e^{iν} is within 10⁻³ of 1, where they lose
// precision and the sums are taken term by term.
func geomSums(nu float64, n int) (g0, g1 complex128) {
	fn := float64(n)
	if nu == 0 {
		return complex(fn, 0), complex(fn*(fn-1)/2, 0)
	}
	s, c := math.Sincos(nu)
	z := complex(c, s)
	d := 1 - z
	if real(d)*real(d)+imag(d)*imag(d) < 1e-6 {
		cr, sr := 1.0, 0.0
		for t := 0; t < n; t++ {
			g0 += complex(cr, sr)
			g1 += complex(float64(t)*cr, float64(t)*sr)
			cr, sr = cr*c-sr*s, sr*c+cr*s
		}
		return g0, g1
	}
	sn, cn := math.Sincos(nu * fn)
	zn := complex(cn, sn)
	g0 = (1 - zn) / d
	g1 = (z - complex(fn, 0)*zn + complex(fn-1, 0)*zn*z) / (d * d)
	return g0, g1
}

// fitFourier fits β by least squares, solving the normal equations
// (XᵀX + λI)β = Xᵀy by Cholesky, with XᵀX in closed form (fourierGram), Xᵀy
// from dot products of the design's columns, and a small ridge λ = 10⁻⁶n
// on the harmonics.
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
	var bufs pathBuffers
	defer bufs.release()
	X := fourierDesign(terms, n, p, &bufs)
	xtx := fourierGram(terms, n, p)
	// a small ridge keeps near-collinear harmonics (short windows) stable
	for i := 2; i < p; i++ {
		xtx.SetSym(i, i, xtx.At(i, i)+1e-6*float64(n))
	}
	// Cholesky factor and solve in place (LAPACK's potrf and potrs: the
	// condition estimate of mat.Cholesky would cost as much as the solve)
	chol, ok := lapack64.Potrf(xtx.RawSymmetric())
	if !ok {
		return nil, fmt.Errorf("fourier: singular design")
	}
	beta := make([]float64, p)
	for i := range beta {
		beta[i] = floats.Dot(X[i], y)
	}
	lapack64.Potrs(chol, blas64.General{Rows: p, Cols: 1, Stride: 1, Data: beta})
	for _, b := range beta {
		if math.IsNaN(b) || math.IsInf(b, 0) {
			return nil, fmt.Errorf("fourier: singular design")
		}
	}
	m := &fourierModel{h: h, terms: terms, beta: beta, row: make([]float64, p), n: n}
	// The fitted values x_tᵀβ = Σ_i β_i X_i, column by column.
	m.reg = make([]float64, n, n+64)
	for i, b := range m.beta {
		floats.AddScaled(m.reg, b, X[i])
	}
	var num, den float64
	prev := 0.0
	for t := 0; t < n; t++ {
		r := y[t] - m.reg[t]
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
