package profiles

import (
	"math"
	"sort"
	"strconv"
)

// Score is the affinity of a group for a class, on Nomad's affinity weight
// scale, with how much of it rests on evidence.
//
// For each class c the profiler holds the prior μ₀ (prior.go) and, when the
// group has run on c alongside other classes, the observed effect x̂
// (efficiency.go) from H compared allocation-hours whose residual RMS is ρ.
// They are combined as a normal prior and a normal observation are:
//
//	w  = H / (H + H₀·(1 + ρ²/ρ₀²))      the confidence
//	x  = w·x̂ + (1 − w)·μ₀               ln work per CPU vs the average class
//	score = 100 · tanh(x / S)
//
// H₀ (Config.EvidenceHours) is the evidence worth as much as the prior when
// it is consistent, ρ₀ (Config.NoiseScale) the disagreement that doubles
// what is needed, S (Config.ScoreScale) the ln-efficiency that scores 76.
// So confidence grows with observed allocation-hours and shrinks with
// inconsistent evidence, and a score moves from the prior to the evidence
// at that pace. x̂ of classes compared only among themselves (a component
// of the comparison graph) is centred on their mean prior, since evidence
// says nothing about how they stand against classes never compared.
type Score struct {
	// Group is "namespace/job/group".
	Group string `json:"group"`
	// Class is the class ID.
	Class string `json:"class"`
	// Value is the score, −100…100.
	Value float64 `json:"value"`
	// Confidence is w, 0…1: the share of Value that rests on evidence.
	Confidence float64 `json:"confidence"`
	// Efficiency is e^x: the work per CPU expected on the class relative
	// to the group's average class.
	Efficiency float64 `json:"efficiency"`
	// AllocHours is the allocation time observed on the class; Compared
	// the part of it spent next to allocations on other classes.
	AllocHours float64 `json:"alloc_hours"`
	Compared   float64 `json:"compared_hours"`
	// Reason explains the score in one line.
	Reason string `json:"reason"`
}

// Weight is Value as a Nomad affinity weight: an integer in −100…100.
// Nomad rejects a zero weight, so 0 means write no affinity.
func (s Score) Weight() int {
	return int(math.Round(math.Max(-100, math.Min(100, s.Value))))
}

// Scores returns the group's score for every current class, best first
// (ties by class ID). A group never observed is scored on the platform
// preference alone, with zero confidence.
func (p *Profiler) Scores(group string) []Score {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.scores(group, p.references())
}

// ScoreAll returns the scores of every observed group, by group.
func (p *Profiler) ScoreAll() map[string][]Score {
	p.mu.Lock()
	defer p.mu.Unlock()
	ref := p.references()
	out := make(map[string][]Score, len(p.groups))
	for g := range p.groups {
		out[g] = p.scores(g, ref)
	}
	return out
}

// scores computes one group's scores; p.mu is held.
func (p *Profiler) scores(group string, ref references) []Score {
	n := len(p.classes)
	if n == 0 {
		return nil
	}
	gs := p.groups[group]
	var nd needs
	var est estimate
	if gs != nil {
		nd = needsOf(gs.profile.intensity(ref))
		est = gs.evidence.solve(&p.solver)
	}
	terms := make([]priorTerms, n)
	prior := make([]float64, n)
	var mean float64
	for i := range p.classes {
		terms[i] = p.cfg.prior(nd, p.offers[i])
		prior[i] = terms[i].total()
		mean += prior[i]
	}
	mean /= float64(n)
	for i := range prior {
		prior[i] -= mean
	}
	// The level of each comparison component: its members' mean prior.
	var level map[int]float64
	if len(est.component) > 0 {
		level = map[int]float64{}
		count := map[int]int{}
		for i, idx := range p.classIdx {
			if comp, ok := est.component[idx]; ok {
				level[comp] += prior[i]
				count[comp]++
			}
		}
		for comp := range level {
			level[comp] /= float64(count[comp])
		}
	}
	noise := 1 + (est.rho*est.rho)/(p.cfg.NoiseScale*p.cfg.NoiseScale)
	out := make([]Score, n)
	buf := make([]byte, 0, 160)
	for i, c := range p.classes {
		idx := p.classIdx[i]
		s := Score{Group: group, Class: c.ID}
		x := prior[i]
		var ce *classEvidence
		var observed float64 // x̂ before levelling, for the reason
		if gs != nil {
			ce = gs.evidence.classes[idx]
		}
		if ce != nil {
			s.AllocHours, s.Compared = ce.hours, ce.compared
			if comp, ok := est.component[idx]; ok && ce.compared > 0 {
				observed = est.effect[idx]
				s.Confidence = ce.compared / (ce.compared + p.cfg.EvidenceHours*noise)
				x = s.Confidence*(observed+level[comp]) + (1-s.Confidence)*prior[i]
			}
		}
		s.Efficiency = math.Exp(x)
		s.Value = 100 * math.Tanh(x/p.cfg.ScoreScale)
		buf = reason(buf[:0], &s, ce, observed, terms[i], nd)
		s.Reason = string(buf)
		out[i] = s
	}
	sortScores(out)
	return out
}

// sortScores orders best first, ties by class ID.
func sortScores(s []Score) {
	sort.Slice(s, func(i, j int) bool {
		if s[i].Value != s[j].Value {
			return s[i].Value > s[j].Value
		}
		return s[i].Class < s[j].Class
	})
}

// reason writes the one-line explanation of s: the evidence when there is
// some (e^x̂ against the mean of the classes compared with it), then the
// strongest part of the prior.
func reason(b []byte, s *Score, ce *classEvidence, observed float64, t priorTerms, nd needs) []byte {
	f := func(b []byte, v float64, prec int) []byte { return strconv.AppendFloat(b, v, 'f', prec, 64) }
	switch {
	case s.Confidence > 0:
		b = append(b, "observed "...)
		b = f(b, math.Exp(observed), 2)
		b = append(b, "× the work per CPU of the classes it was compared with, over "...)
		b = f(b, s.Compared, 1)
		b = append(b, " compared alloc-hours"...)
		if ce.hours > 0 && ce.stall > 0.005*ce.hours {
			b = append(b, ", "...)
			b = f(b, 100*ce.stall/ce.hours, 0)
			b = append(b, "% stalled"...)
		}
	case ce != nil && ce.hours > 0:
		b = append(b, "ran "...)
		b = f(b, ce.hours, 1)
		b = append(b, " alloc-hours here but never beside another class"...)
	default:
		b = append(b, "never observed here"...)
	}
	b = append(b, "; prior: "...)
	type part struct {
		v           float64
		need        float64
		what        string
		heavy, lite string
		rich, poor  string
	}
	parts := [...]part{
		{t.memory, nd.memory, "memory", "heavy", "light", "memory-rich", "memory-lean"},
		{t.io, nd.io, "disk", "heavy", "light", "ssd", "hdd"},
		{t.network, nd.network, "network", "heavy", "light", "fast-link", "slow-link"},
	}
	best := -1
	for i, pt := range parts {
		if math.Abs(pt.v) > 1e-4 && (best < 0 || math.Abs(pt.v) > math.Abs(parts[best].v)) {
			best = i
		}
	}
	if best >= 0 {
		pt := parts[best]
		b = append(b, pt.what...)
		b = append(b, '-')
		if pt.need > 0 {
			b = append(b, pt.heavy...)
		} else {
			b = append(b, pt.lite...)
		}
		b = append(b, " group on "...)
		// The sign of the term and of the need tell the offer's sign.
		if (pt.v > 0) == (pt.need > 0) {
			b = append(b, pt.rich...)
		} else {
			b = append(b, pt.poor...)
		}
		b = append(b, " class"...)
	} else {
		b = append(b, "no trait stands out"...)
	}
	switch {
	case t.platform > 0:
		b = append(b, ", external capacity"...)
	case t.platform < 0:
		b = append(b, ", provider capacity"...)
	}
	return b
}

// Choose picks the class a group should be steered to, with hysteresis:
// it stays on current unless the best class beats it by more than margin
// score points. Without a current class (or when current is no longer
// scored) it takes the best. scores need not be sorted; of equal scores
// the one listed first is the best, so the caller orders ties (Scores
// lists them by class ID). It returns the chosen score and whether that is
// a move away from current.
//
// A margin turns two near-equal classes, whose order the noise of fresh
// evidence can swap from one round to the next, into a stable choice:
// the group moves only once the difference is larger than the noise.
func Choose(scores []Score, current string, margin float64) (Score, bool) {
	if len(scores) == 0 {
		return Score{}, false
	}
	best := 0
	cur := -1
	for i, s := range scores {
		if s.Value > scores[best].Value {
			best = i
		}
		if s.Class == current && cur < 0 {
			cur = i
		}
	}
	if cur < 0 {
		return scores[best], current != scores[best].Class
	}
	if scores[best].Value-scores[cur].Value > margin {
		return scores[best], true
	}
	return scores[cur], false
}
