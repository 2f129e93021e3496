package profiles

import (
	"math"
	"sort"
)

// Observed efficiency: how much work a group gets per unit of CPU on each
// class, relative to the other classes it runs on.
//
// Within one round a group's allocations do the same work (they share its
// load) or report their throughput, so ln(work/CPU) of allocation i on
// class c is ℓᵢ = u_t + x_c + ε: a level u_t common to the round (the
// load, unknown), the class effect x_c and noise. Differences between the
// class means of one round cancel u_t:
//
//	d_ab,t = ℓ̄_a,t − ℓ̄_b,t = x_a − x_b + ε
//
// Every round adds, for every pair of classes present, d with the weight
// w = h_a·h_b/(h_a+h_b), where h is the class's allocation-hours in the
// round: the inverse variance of a difference of two means, so a pair seen
// with many allocations for long weighs more. The class effects are the
// weighted least-squares solution of all differences,
//
//	min Σ w_ab (x_a − x_b − d_ab)²,
//
// with every round's weight halved for each Config.EvidenceHalfLife of the
// group's observed time since (a group not observed keeps what it knew):
// the fixed-effects estimator of a paired comparison, solved from
// sufficient statistics (Σw, Σwd, Σwd² per pair) so that memory per group
// is bounded by its pairs of classes, not its history. Classes connected
// by comparisons form a component whose effects are known up to a common
// constant; each component is centred on zero.

// pairKey names an unordered pair of class indexes, a < b.
type pairKey struct{ a, b int32 }

// pairStats are the sufficient statistics of the differences x_a − x_b.
type pairStats struct{ w, wd, wdd float64 }

// classEvidence is what is known of a group on one class.
type classEvidence struct {
	hours    float64 // allocation-hours observed on the class
	compared float64 // of which in rounds where another class ran too
	stall    float64 // Σ stall·hours, for the reason
}

// evidence is a group's comparative evidence across classes.
type evidence struct {
	classes map[int32]*classEvidence
	pairs   map[pairKey]*pairStats
}

// roundClass is one class's part of a group's round.
type roundClass struct {
	class  int32
	hours  float64 // allocation-hours
	sumLog float64 // Σ ln(work/CPU)·hours
	stall  float64 // Σ stall·hours
	valid  float64 // hours with a usable efficiency
}

// addRound adds one round of a group; parts has one entry per class. What
// was known before is first discounted by decay (0…1], so that evidence
// fades with a half-life: a group that changed is relearned.
func (e *evidence) addRound(parts []roundClass, decay float64) {
	if e.classes == nil {
		e.classes = map[int32]*classEvidence{}
		e.pairs = map[pairKey]*pairStats{}
	}
	if decay < 1 {
		for _, ce := range e.classes {
			ce.hours *= decay
			ce.compared *= decay
			ce.stall *= decay
		}
		for _, ps := range e.pairs {
			ps.w *= decay
			ps.wd *= decay
			ps.wdd *= decay
		}
	}
	comparable := 0
	for _, p := range parts {
		if p.valid > 0 {
			comparable++
		}
	}
	for _, p := range parts {
		ce := e.classes[p.class]
		if ce == nil {
			ce = &classEvidence{}
			e.classes[p.class] = ce
		}
		ce.hours += p.hours
		ce.stall += p.stall
		if comparable > 1 && p.valid > 0 {
			ce.compared += p.valid
		}
	}
	if comparable < 2 {
		return
	}
	for i := range parts {
		for j := i + 1; j < len(parts); j++ {
			a, b := parts[i], parts[j]
			if a.valid <= 0 || b.valid <= 0 {
				continue
			}
			d := a.sumLog/a.valid - b.sumLog/b.valid
			if a.class > b.class {
				a, b, d = b, a, -d
			}
			w := a.valid * b.valid / (a.valid + b.valid)
			k := pairKey{a.class, b.class}
			ps := e.pairs[k]
			if ps == nil {
				ps = &pairStats{}
				e.pairs[k] = ps
			}
			ps.w += w
			ps.wd += w * d
			ps.wdd += w * d * d
		}
	}
}

// estimate is the solved evidence of one group.
type estimate struct {
	// effect is x_c, ln of work per CPU relative to the mean of the
	// class's component; component numbers the connected components.
	effect    map[int32]float64
	component map[int32]int
	// rho is the weighted RMS of the residuals d − (x_a − x_b): how
	// consistent the evidence is, in ln units.
	rho float64
}

// solve fits the class effects. Work is O(k³) per component of k classes
// with scratch reused across calls through s.
func (e *evidence) solve(s *solver) estimate {
	est := estimate{effect: map[int32]float64{}, component: map[int32]int{}}
	if len(e.pairs) == 0 {
		return est
	}
	// Pairs in a fixed order, so that sums (and so scores) do not depend
	// on map iteration.
	s.keys = s.keys[:0]
	for k := range e.pairs {
		s.keys = append(s.keys, k)
	}
	sort.Slice(s.keys, func(i, j int) bool {
		if s.keys[i].a != s.keys[j].a {
			return s.keys[i].a < s.keys[j].a
		}
		return s.keys[i].b < s.keys[j].b
	})
	// Connected components by union-find over the compared classes.
	s.reset()
	for _, k := range s.keys {
		s.union(k.a, k.b)
	}
	comps := map[int32][]int32{}
	for c := range s.parent {
		r := s.find(c)
		comps[r] = append(comps[r], c)
	}
	roots := make([]int32, 0, len(comps))
	for r, m := range comps {
		sort.Slice(m, func(i, j int) bool { return m[i] < m[j] })
		roots = append(roots, r)
	}
	sort.Slice(roots, func(i, j int) bool { return comps[roots[i]][0] < comps[roots[j]][0] })
	for ci, r := range roots {
		members := comps[r]
		pos := make(map[int32]int, len(members))
		for i, c := range members {
			pos[c] = i
			est.component[c] = ci
		}
		m := len(members)
		a, rhs := s.system(m)
		// (L + 11ᵀ/m) x = r has the zero-mean solution of L x = r when
		// the component is connected, and is positive definite.
		for i := range a {
			a[i] = 1 / float64(m)
		}
		for _, k := range s.keys {
			ps := e.pairs[k]
			i, ok := pos[k.a]
			if !ok {
				continue
			}
			j := pos[k.b]
			a[i*m+i] += ps.w
			a[j*m+j] += ps.w
			a[i*m+j] -= ps.w
			a[j*m+i] -= ps.w
			rhs[i] += ps.wd
			rhs[j] -= ps.wd
		}
		x := choleskySolve(a, rhs, m)
		for i, c := range members {
			est.effect[c] = x[i]
		}
	}
	var ss, w float64
	for _, k := range s.keys {
		ps := e.pairs[k]
		diff := est.effect[k.a] - est.effect[k.b]
		ss += ps.wdd - 2*diff*ps.wd + diff*diff*ps.w
		w += ps.w
	}
	if w > 0 {
		est.rho = math.Sqrt(math.Max(0, ss/w))
	}
	return est
}

// solver holds scratch space for solve.
type solver struct {
	parent map[int32]int32
	keys   []pairKey
	a, rhs []float64
}

func (s *solver) reset() {
	if s.parent == nil {
		s.parent = map[int32]int32{}
	}
	clear(s.parent)
}

func (s *solver) find(c int32) int32 {
	p, ok := s.parent[c]
	if !ok {
		s.parent[c] = c
		return c
	}
	if p == c {
		return c
	}
	r := s.find(p)
	s.parent[c] = r
	return r
}

func (s *solver) union(a, b int32) {
	ra, rb := s.find(a), s.find(b)
	if ra != rb {
		s.parent[ra] = rb
	}
}

// system returns a zeroed m×m matrix and m-vector.
func (s *solver) system(m int) (a, rhs []float64) {
	if cap(s.a) < m*m {
		s.a = make([]float64, m*m)
		s.rhs = make([]float64, m)
	}
	a, rhs = s.a[:m*m], s.rhs[:m]
	clear(a)
	clear(rhs)
	return a, rhs
}

// choleskySolve solves a·x = b in place for a symmetric positive definite
// m×m matrix a (row-major), returning x (b's storage). It is the textbook
// LLᵀ factorisation; a pivot that is not positive (which the 11ᵀ/m term
// rules out up to rounding) is clamped so the result stays finite.
func choleskySolve(a, b []float64, m int) []float64 {
	for j := 0; j < m; j++ {
		d := a[j*m+j]
		for k := 0; k < j; k++ {
			d -= a[j*m+k] * a[j*m+k]
		}
		d = math.Sqrt(math.Max(d, 1e-12))
		a[j*m+j] = d
		for i := j + 1; i < m; i++ {
			v := a[i*m+j]
			for k := 0; k < j; k++ {
				v -= a[i*m+k] * a[j*m+k]
			}
			a[i*m+j] = v / d
		}
	}
	for i := 0; i < m; i++ {
		v := b[i]
		for k := 0; k < i; k++ {
			v -= a[i*m+k] * b[k]
		}
		b[i] = v / a[i*m+i]
	}
	for i := m - 1; i >= 0; i-- {
		v := b[i]
		for k := i + 1; k < m; k++ {
			v -= a[k*m+i] * b[k]
		}
		b[i] = v / a[i*m+i]
	}
	return b
}
