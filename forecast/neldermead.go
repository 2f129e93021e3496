package forecast

import "math"

// nelderMead minimises f from x0 with the simplex method of Nelder and Mead
// (Computer Journal 7, 1965), standard coefficients (reflection 1,
// expansion 2, contraction ½, shrink ½), an initial simplex of x0 plus step
// along each axis, and at most maxEval evaluations of f. It returns the best
// point found and its value. It allocates only the simplex, which keeps the
// many small fits of a forecast cheap.
//
// f(x, bound) may stop early and return any value above bound once it
// knows that f(x) > bound (a sum of squares can stop when its partial sum
// passes the bound). A trial point's value is only compared with the value
// it must beat to be kept, which is what bound is, so the search takes the
// same steps as with exact values; bound is +Inf where the value is kept
// regardless (the initial simplex and a shrink).
func nelderMead(f func(x []float64, bound float64) float64, x0 []float64, step float64, maxEval int, tol float64) ([]float64, float64) {
	d := len(x0)
	pts := make([][]float64, d+1)
	vals := make([]float64, d+1)
	for i := range pts {
		pts[i] = append([]float64(nil), x0...)
		if i > 0 {
			pts[i][i-1] += step
		}
		vals[i] = f(pts[i], math.Inf(1))
	}
	evals := d + 1
	cen := make([]float64, d)
	xr := make([]float64, d)
	xe := make([]float64, d)
	idx := make([]int, d+1)
	for evals < maxEval {
		// order the vertices by value (insertion sort: d+1 is tiny)
		for i := range idx {
			idx[i] = i
			for j := i; j > 0 && vals[idx[j]] < vals[idx[j-1]]; j-- {
				idx[j], idx[j-1] = idx[j-1], idx[j]
			}
		}
		best, worst, second := idx[0], idx[d], idx[max(d-1, 0)]
		if vals[worst]-vals[best] <= tol*(1e-12+math.Abs(vals[best])) {
			break
		}
		for j := range cen {
			cen[j] = 0
		}
		for _, i := range idx[:d] {
			for j := range cen {
				cen[j] += pts[i][j] / float64(d)
			}
		}
		for j := range xr {
			xr[j] = cen[j] + (cen[j] - pts[worst][j])
		}
		fr := f(xr, vals[worst])
		evals++
		switch {
		case fr < vals[best]:
			for j := range xe {
				xe[j] = cen[j] + 2*(cen[j]-pts[worst][j])
			}
			fe := f(xe, fr)
			evals++
			if fe < fr {
				copy(pts[worst], xe)
				vals[worst] = fe
			} else {
				copy(pts[worst], xr)
				vals[worst] = fr
			}
		case fr < vals[second]:
			copy(pts[worst], xr)
			vals[worst] = fr
		default:
			// contract towards the better of the worst and the reflection
			out := fr < vals[worst]
			for j := range xe {
				if out {
					xe[j] = cen[j] + 0.5*(xr[j]-cen[j])
				} else {
					xe[j] = cen[j] + 0.5*(pts[worst][j]-cen[j])
				}
			}
			bound := vals[worst]
			if out {
				bound = fr
			}
			fc := f(xe, bound)
			evals++
			if (out && fc <= fr) || (!out && fc < vals[worst]) {
				copy(pts[worst], xe)
				vals[worst] = fc
				continue
			}
			for _, i := range idx[1:] {
				for j := range pts[i] {
					pts[i][j] = pts[best][j] + 0.5*(pts[i][j]-pts[best][j])
				}
				vals[i] = f(pts[i], math.Inf(1))
				evals++
			}
		}
	}
	b := 0
	for i := range vals {
		if vals[i] < vals[b] {
			b = i
		}
	}
	return pts[b], vals[b]
}
