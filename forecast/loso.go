package forecast

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// TuningGrid lists the values tried for each constant of Tuning.
type TuningGrid struct {
	Margin, OutlierSigmas, ShiftSigmas, HalfLife []float64
}

// DefaultTuningGrid is the grid `forecast eval -loso` searches.
func DefaultTuningGrid() TuningGrid {
	inf := math.Inf(1)
	return TuningGrid{
		Margin:        []float64{0, 0.05, 0.1, 0.2},
		OutlierSigmas: []float64{4, 6, 10, inf},
		ShiftSigmas:   []float64{6, 8, 12, inf},
		HalfLife:      []float64{0.1, 0.25, inf},
	}
}

// tuningFields names the constants of Tuning in the order the search
// visits them, with access to each.
var tuningFields = []struct {
	name string
	grid func(*TuningGrid) *[]float64
	val  func(*Tuning) *float64
}{
	{"margin", func(g *TuningGrid) *[]float64 { return &g.Margin }, func(t *Tuning) *float64 { return &t.Margin }},
	{"outlier", func(g *TuningGrid) *[]float64 { return &g.OutlierSigmas }, func(t *Tuning) *float64 { return &t.OutlierSigmas }},
	{"shift", func(g *TuningGrid) *[]float64 { return &g.ShiftSigmas }, func(t *Tuning) *float64 { return &t.ShiftSigmas }},
	{"halflife", func(g *TuningGrid) *[]float64 { return &g.HalfLife }, func(t *Tuning) *float64 { return &t.HalfLife }},
}

// ParseTuningGrid parses "margin=0,0.1;outlier=6,inf": for each named
// constant (margin, outlier, shift, halflife) the values to try;
// constants not named keep DefaultTuningGrid's values.
func ParseTuningGrid(s string) (TuningGrid, error) {
	g := DefaultTuningGrid()
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, vals, ok := strings.Cut(part, "=")
		if !ok {
			return g, fmt.Errorf("tuning grid %q: want name=v1,v2", part)
		}
		found := false
		for _, f := range tuningFields {
			if f.name != strings.TrimSpace(name) {
				continue
			}
			found = true
			var xs []float64
			for _, v := range strings.Split(vals, ",") {
				x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil || math.IsNaN(x) || x < 0 {
					return g, fmt.Errorf("tuning grid %s: %q is not a number ≥ 0 (inf allowed)", name, v)
				}
				xs = append(xs, x)
			}
			*f.grid(&g) = xs
		}
		if !found {
			return g, fmt.Errorf("tuning grid: unknown constant %q (want margin, outlier, shift or halflife)", name)
		}
	}
	return g, nil
}

// LOSOResult is the outcome of LeaveOneSourceOut.
type LOSOResult struct {
	// Reports score each source, held out, with the tuning chosen on the
	// other sources (SourceReport.Tuning names it).
	Reports []SourceReport
	// Results are the held-out series' scores with that tuning.
	Results []SeriesResult
	// Chosen is the tuning chosen without each source; All the one chosen
	// on all sources (what DefaultTuning should be).
	Chosen map[string]Tuning
	All    Tuning
	// Settings is the number of tunings evaluated.
	Settings int
}

// LeaveOneSourceOut measures generalisation rather than fit. For each
// source (the first folder of the series' names) it chooses the tuning on
// the other sources and scores the held-out source with it. A tuning is
// chosen by coordinate search over the grid, two rounds from
// DefaultTuning, a constant at a time, minimising
//
//	J = mean over sources and horizons of (mean MASE / baseline mean MASE
//	    + share of series worse than GoalWorstRatio × the baseline),
//
// or of the mean MASE alone without a baseline: robustness (no series far
// worse than the baseline) counts as much as the average. Every tuning is
// evaluated once on all series (opt.Methods is replaced by auto); log, if
// not nil, gets a line per tuning.
func LeaveOneSourceOut(series []EvalSeries, opt EvalOptions, grid TuningGrid, base *Baseline, log io.Writer) (*LOSOResult, error) {
	opt.defaults()
	opt.Methods = []string{ModelAuto}
	cache := map[Tuning][]SeriesResult{}
	run := func(t Tuning) []SeriesResult {
		if rs, ok := cache[t]; ok {
			return rs
		}
		o := opt
		o.Tuning = &t
		var rs []SeriesResult
		for _, s := range series {
			r, err := EvaluateSeries(s, o)
			if err != nil {
				continue // too short: the same for every tuning
			}
			rs = append(rs, r...)
		}
		cache[t] = rs
		if log != nil {
			fmt.Fprintf(log, "loso: evaluated %s\n", t)
		}
		return rs
	}
	srcSet := map[string]bool{}
	for _, s := range series {
		srcSet[SourceOf(s.Name)] = true
	}
	var sources []string
	for s := range srcSet {
		sources = append(sources, s)
	}
	sort.Strings(sources)
	if len(sources) < 2 {
		return nil, fmt.Errorf("loso: %d source(s) under the data folder; leaving one out needs at least 2", len(sources))
	}
	objective := func(t Tuning, keep func(string) bool) float64 {
		var rs []SeriesResult
		for _, r := range run(t) {
			if keep(SourceOf(r.Series)) {
				rs = append(rs, r)
			}
		}
		var j float64
		k := 0
		for _, rep := range CompareSources(rs, ModelAuto, base, opt.Horizons) {
			k++
			if rep.Compared == 0 {
				j += rep.MASEMean
				continue
			}
			j += rep.MeanRatio() + float64(rep.Above)/float64(rep.Compared)
		}
		if k == 0 {
			return math.Inf(1)
		}
		return j / float64(k)
	}
	choose := func(keep func(string) bool) Tuning {
		best := DefaultTuning()
		bestJ := objective(best, keep)
		for round := 0; round < 2; round++ {
			for _, f := range tuningFields {
				for _, v := range *f.grid(&grid) {
					t := best
					*f.val(&t) = v
					if j := objective(t, keep); j < bestJ-1e-9 {
						best, bestJ = t, j
					}
				}
			}
		}
		return best
	}
	res := &LOSOResult{Chosen: map[string]Tuning{}}
	for _, held := range sources {
		t := choose(func(s string) bool { return s != held })
		res.Chosen[held] = t
		var rs []SeriesResult
		for _, r := range run(t) {
			if SourceOf(r.Series) == held {
				rs = append(rs, r)
			}
		}
		res.Results = append(res.Results, rs...)
		for _, rep := range CompareSources(rs, ModelAuto, base, opt.Horizons) {
			rep.Tuning = t.String()
			res.Reports = append(res.Reports, rep)
		}
	}
	res.All = choose(func(string) bool { return true })
	res.Settings = len(cache)
	return res, nil
}
