package forecast

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Goals a forecaster is held to against the baseline on every source, per
// horizon (issue 17): mean MASE at most GoalMeanRatio of the baseline's,
// median MASE and median over-provision at most the baseline's, no series
// worse than GoalWorstRatio times the baseline, and mean p95 coverage in
// [GoalCovLow, GoalCovHigh].
const (
	GoalMeanRatio  = 0.90
	GoalWorstRatio = 1.25
	GoalCovLow     = 0.94
	GoalCovHigh    = 0.97
)

// DefaultBaselineMethod is the method of shared/tools/baselines.py that
// forecasts are compared with: statsmodels ETS, best of four by AICc.
const DefaultBaselineMethod = "autoets_lite"

// BaselineScore is a reference method's score on one series at one
// horizon.
type BaselineScore struct {
	MASE, Cov95, Over float64
}

// Baseline holds a reference method's per-series scores as written by
// `baselines.py --csv` (columns series, method, horizon, …, mase, …,
// cov95, over, …; one row per series, method and horizon).
type Baseline struct {
	Method string
	exact  map[string]BaselineScore // by normalised name and horizon
	stem   map[string][]BaselineScore
}

// LoadBaseline reads the rows of method from a baselines.py CSV.
func LoadBaseline(r io.Reader, method string) (*Baseline, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	rows, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	if len(rows) == 0 {
		return nil, errors.New("baseline: empty file")
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[strings.TrimSpace(h)] = i
	}
	for _, c := range []string{"series", "method", "horizon", "mase", "cov95", "over"} {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("baseline: no %q column (want the CSV of baselines.py --csv)", c)
		}
	}
	b := &Baseline{Method: method, exact: map[string]BaselineScore{}, stem: map[string][]BaselineScore{}}
	num := func(row []string, c string) float64 {
		if col[c] >= len(row) {
			return math.NaN()
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(row[col[c]]), 64)
		if err != nil {
			return math.NaN()
		}
		return v
	}
	for i, row := range rows[1:] {
		if col["method"] >= len(row) || row[col["method"]] != method {
			continue
		}
		h, err := ParseSpan(row[col["horizon"]])
		if err != nil {
			return nil, fmt.Errorf("baseline: row %d: horizon %q: %w", i+2, row[col["horizon"]], err)
		}
		name := row[col["series"]]
		s := BaselineScore{MASE: num(row, "mase"), Cov95: num(row, "cov95"), Over: num(row, "over")}
		b.exact[baselineKey(normaliseName(name), h)] = s
		k := baselineKey(sourceStem(name), h)
		b.stem[k] = append(b.stem[k], s)
	}
	if len(b.exact) == 0 {
		return nil, fmt.Errorf("baseline: no rows of method %q", method)
	}
	return b, nil
}

// Lookup returns the baseline's score of a series (named as LoadEvalDir
// names it) at horizon h. Names match when equal without a .csv suffix, or
// else when their first folder (the source) and file stem are the same and
// only one baseline row has them, so a manifest may name
// "vm/azure_v1/x/y.csv" either "vm/azure_v1/x/y" or "vm/y".
func (b *Baseline) Lookup(series string, h time.Duration) (BaselineScore, bool) {
	if b == nil {
		return BaselineScore{}, false
	}
	if s, ok := b.exact[baselineKey(normaliseName(series), h)]; ok {
		return s, true
	}
	if ss := b.stem[baselineKey(sourceStem(series), h)]; len(ss) == 1 {
		return ss[0], true
	}
	return BaselineScore{}, false
}

func baselineKey(name string, h time.Duration) string { return name + "@" + h.String() }

func normaliseName(s string) string {
	return strings.TrimSuffix(path.Clean(strings.ReplaceAll(s, `\`, "/")), ".csv")
}

func sourceStem(s string) string {
	n := normaliseName(s)
	return SourceOf(n) + "/" + path.Base(n)
}

// SourceOf is the source of a series named by its path under the data
// folder: its first folder, or "." for a file directly in it.
func SourceOf(name string) string {
	name = strings.ReplaceAll(name, `\`, "/")
	if i := strings.IndexByte(name, '/'); i > 0 {
		return name[:i]
	}
	return "."
}

// SourceReport compares a method with the baseline on the series of one
// source at one horizon.
type SourceReport struct {
	Source  string
	Horizon time.Duration
	// Series is the number of series scored; Compared those the baseline
	// has a score for (the baseline columns and ratios are over those).
	Series, Compared int
	// The method's scores, over all its series.
	MASEMean, MASEMedian, Cov95Mean, OverMedian float64
	// The method's and the baseline's scores over the compared series
	// (NaN without a baseline).
	CmpMASEMean, CmpMASEMedian, CmpOverMedian   float64
	BaseMASEMean, BaseMASEMedian, BaseCov95Mean float64
	BaseOverMedian                              float64
	// Worst is the compared series with the highest MASE ratio to the
	// baseline, WorstRatio that ratio, and Above the number of series
	// whose ratio is above GoalWorstRatio.
	Worst      string
	WorstRatio float64
	Above      int
	// Tuning names the tuning the method ran with when it was chosen on
	// the other sources (leave-one-source-out); empty otherwise.
	Tuning string
}

// MeanRatio is the ratio of the mean MASE to the baseline's on the
// compared series.
func (r SourceReport) MeanRatio() float64 { return r.CmpMASEMean / r.BaseMASEMean }

// Verdicts says which goals the report meets, in the order of the goal
// constants: mean ratio, median, worst series, coverage, over-provision.
// Without a baseline only the coverage is judged.
func (r SourceReport) Verdicts() (mean, median, worst, cov, over bool) {
	cov = r.Cov95Mean >= GoalCovLow && r.Cov95Mean <= GoalCovHigh
	if r.Compared == 0 {
		return false, false, false, cov, false
	}
	return r.MeanRatio() <= GoalMeanRatio, r.CmpMASEMedian <= r.BaseMASEMedian, r.WorstRatio <= GoalWorstRatio,
		cov, r.CmpOverMedian <= r.BaseOverMedian
}

// CompareSources scores method per source and horizon against the
// baseline (nil: no comparison). Sources are sorted by name.
func CompareSources(rs []SeriesResult, method string, base *Baseline, horizons []time.Duration) []SourceReport {
	bySrc := map[string][]SeriesResult{}
	for _, r := range rs {
		if r.Method == method {
			bySrc[SourceOf(r.Series)] = append(bySrc[SourceOf(r.Series)], r)
		}
	}
	srcs := make([]string, 0, len(bySrc))
	for s := range bySrc {
		srcs = append(srcs, s)
	}
	sort.Strings(srcs)
	var out []SourceReport
	for _, s := range srcs {
		for _, h := range horizons {
			if rep, ok := compareOne(s, bySrc[s], h, base); ok {
				out = append(out, rep)
			}
		}
	}
	return out
}

func compareOne(src string, rs []SeriesResult, h time.Duration, base *Baseline) (SourceReport, bool) {
	rep := SourceReport{Source: src, Horizon: h}
	var mase, cov, over, cm, co, bm, bc, bo []float64
	for _, r := range rs {
		if r.Horizon != h {
			continue
		}
		mase = append(mase, r.MASE)
		cov = append(cov, r.Cov95)
		over = append(over, r.Over)
		b, ok := base.Lookup(r.Series, h)
		if !ok || math.IsNaN(b.MASE) || math.IsNaN(r.MASE) {
			continue
		}
		cm = append(cm, r.MASE)
		co = append(co, r.Over)
		bm = append(bm, b.MASE)
		bc = append(bc, b.Cov95)
		bo = append(bo, b.Over)
		if ratio := r.MASE / b.MASE; rep.Worst == "" || ratio > rep.WorstRatio {
			rep.Worst, rep.WorstRatio = r.Series, ratio
		}
		if r.MASE > GoalWorstRatio*b.MASE {
			rep.Above++
		}
	}
	if len(mase) == 0 {
		return rep, false
	}
	rep.Series, rep.Compared = len(mase), len(cm)
	rep.MASEMean, rep.MASEMedian, rep.Cov95Mean, rep.OverMedian = mean(mase), SampleQuantile(mase, 0.5), mean(cov), SampleQuantile(over, 0.5)
	rep.CmpMASEMean, rep.CmpMASEMedian, rep.CmpOverMedian = math.NaN(), math.NaN(), math.NaN()
	rep.BaseMASEMean, rep.BaseMASEMedian, rep.BaseCov95Mean, rep.BaseOverMedian = math.NaN(), math.NaN(), math.NaN(), math.NaN()
	if len(cm) > 0 {
		rep.CmpMASEMean, rep.CmpMASEMedian, rep.CmpOverMedian = mean(cm), SampleQuantile(cm, 0.5), SampleQuantile(co, 0.5)
		rep.BaseMASEMean, rep.BaseMASEMedian, rep.BaseCov95Mean, rep.BaseOverMedian = mean(bm), SampleQuantile(bm, 0.5), mean(bc), SampleQuantile(bo, 0.5)
	}
	return rep, true
}

// WriteSourceReports prints the reports as a Markdown table, with the
// baseline's figures and the goals when there is a baseline.
func WriteSourceReports(w io.Writer, reps []SourceReport, baseName string) error {
	loso := false
	for _, r := range reps {
		loso = loso || r.Tuning != ""
	}
	var b strings.Builder
	b.WriteString("| source | horizon | series | MASE mean | MASE median | cov95 mean | over % median |")
	if baseName != "" {
		fmt.Fprintf(&b, " %s MASE mean | %s MASE median | %s cov95 | %s over %% | mean ratio | worst series (ratio) | > %.2f× | goals |", baseName, baseName, baseName, baseName, GoalWorstRatio)
	}
	if loso {
		b.WriteString(" tuning (chosen on the other sources) |")
	}
	b.WriteString("\n|---|---|---|---|---|---|---|")
	if baseName != "" {
		b.WriteString("---|---|---|---|---|---|---|---|")
	}
	if loso {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, r := range reps {
		fmt.Fprintf(&b, "| %s | %s | %d | %.3f | %.3f | %.3f | %.1f |", r.Source, spanString(r.Horizon), r.Series, r.MASEMean, r.MASEMedian, r.Cov95Mean, r.OverMedian)
		if baseName != "" {
			if r.Compared == 0 {
				b.WriteString(" – | – | – | – | – | – | – | – |")
			} else {
				fmt.Fprintf(&b, " %.3f | %.3f | %.3f | %.1f | %.3f | %s (%.2f) | %d | %s |", r.BaseMASEMean, r.BaseMASEMedian, r.BaseCov95Mean, r.BaseOverMedian,
					r.MeanRatio(), r.Worst, r.WorstRatio, r.Above, verdictString(r))
			}
		}
		if loso {
			fmt.Fprintf(&b, " %s |", r.Tuning)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// verdictString marks each goal met (✓) or missed (✗): mean ≤ 0.90×,
// median ≤, worst ≤ 1.25×, coverage in band, over-provision ≤.
func verdictString(r SourceReport) string {
	mean, med, worst, cov, over := r.Verdicts()
	mark := func(ok bool, name string) string {
		if ok {
			return "✓" + name
		}
		return "✗" + name
	}
	parts := []string{mark(mean, "mean"), mark(med, "median"), mark(worst, "worst"), mark(cov, "cov"), mark(over, "over")}
	if r.Compared < r.Series {
		parts = append(parts, fmt.Sprintf("(%d of %d series compared)", r.Compared, r.Series))
	}
	return strings.Join(parts, " ")
}
