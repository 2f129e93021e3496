package forecast

import (
	"math"
	"strings"
	"testing"
	"time"
)

// baselineCSV is the shape of `baselines.py --csv`: one row per series,
// method and horizon.
const baselineCSV = `series,method,horizon,n_origins,fails,ms,mase,smape,cov95,over,short
nab/a,autoets_lite,1h,8,0,100,0.5,10,0.97,20,1
nab/a,autoets_lite,6h,8,0,100,1.0,10,0.96,30,1
nab/a,naive,1h,8,0,1,0.9,10,0.9,25,1
vm/b,autoets_lite,1h,8,0,100,2.0,10,0.95,50,1
vm/b,autoets_lite,6h,8,0,100,2.0,10,0.95,60,1
vm/c,autoets_lite,1h,8,0,100,1.0,10,0.95,50,1
`

func TestLoadBaselineAndLookup(t *testing.T) {
	b, err := LoadBaseline(strings.NewReader(baselineCSV), DefaultBaselineMethod)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		series string
		h      time.Duration
		mase   float64
		ok     bool
	}{
		{"nab/a.csv", time.Hour, 0.5, true},                  // same name, .csv dropped
		{"nab/a.csv", 6 * time.Hour, 1.0, true},              // other horizon
		{"vm/azure/b.csv", time.Hour, 2.0, true},             // source and stem
		{"vm/other/c.csv", time.Hour, 1.0, true},             // source and stem
		{"nab/b.csv", time.Hour, 0, false},                   // stem of another source
		{"vm/c.csv", 6 * time.Hour, 0, false},                // horizon the baseline lacks
		{"crane/a.csv", time.Hour, 0, false},                 // unknown source
		{"nab/a.csv", 2 * time.Hour, 0, false},               // unknown horizon
		{"nab/sub/a.csv", time.Hour, 0.5, true},              // stem match within the source
		{"nab\\a.csv", time.Hour, 0.5, true},                 // Windows separators
		{"vm/b", time.Hour, 2.0, true},                       // exact without suffix
		{"vm/b.csv.csv", time.Hour, 0, false},                // only one suffix is dropped
		{"vm/x/y/b.csv", 6 * time.Hour, 2.0, true},           // deeper folders
		{"nab/a.csv", time.Hour + time.Nanosecond, 0, false}, // exact horizons only
	}
	for _, c := range cases {
		s, ok := b.Lookup(c.series, c.h)
		if ok != c.ok || (ok && s.MASE != c.mase) {
			t.Errorf("Lookup(%q, %v) = %v, %v; want %v, %v", c.series, c.h, s.MASE, ok, c.mase, c.ok)
		}
	}
	if _, err := LoadBaseline(strings.NewReader(baselineCSV), "nosuch"); err == nil {
		t.Error("a method without rows loaded")
	}
	if _, err := LoadBaseline(strings.NewReader("series,mase\nx,1\n"), DefaultBaselineMethod); err == nil {
		t.Error("a CSV without the baselines.py columns loaded")
	}
}

func TestCompareSources(t *testing.T) {
	b, err := LoadBaseline(strings.NewReader(baselineCSV), DefaultBaselineMethod)
	if err != nil {
		t.Fatal(err)
	}
	h := time.Hour
	rs := []SeriesResult{
		{Series: "nab/a.csv", Method: ModelAuto, Horizon: h, MASE: 0.4, Cov95: 0.95, Over: 10},
		{Series: "vm/b.csv", Method: ModelAuto, Horizon: h, MASE: 1.0, Cov95: 0.90, Over: 40},
		{Series: "vm/c.csv", Method: ModelAuto, Horizon: h, MASE: 1.5, Cov95: 1.00, Over: 70},
		{Series: "vm/d.csv", Method: ModelAuto, Horizon: h, MASE: 9, Cov95: 1.00, Over: 70}, // no baseline
		{Series: "vm/b.csv", Method: "ref-naive", Horizon: h, MASE: 5},
	}
	reps := CompareSources(rs, ModelAuto, b, []time.Duration{h, 6 * time.Hour})
	if len(reps) != 2 || reps[0].Source != "nab" || reps[1].Source != "vm" {
		t.Fatalf("reports %+v", reps)
	}
	vm := reps[1]
	if vm.Series != 3 || vm.Compared != 2 {
		t.Errorf("series %d compared %d, want 3 and 2", vm.Series, vm.Compared)
	}
	if math.Abs(vm.MeanRatio()-1.25/1.5) > 1e-12 || vm.Worst != "vm/c.csv" || vm.WorstRatio != 1.5 || vm.Above != 1 {
		t.Errorf("ratio %v worst %s (%v) above %d", vm.MeanRatio(), vm.Worst, vm.WorstRatio, vm.Above)
	}
	mean, median, worst, cov, over := vm.Verdicts()
	// mean 0.83 ≤ 0.9, median 1.25 ≤ 1.5, worst 1.5 > 1.25, cov 0.967 in band, over 55 ≤ 50? no
	if !mean || !median || worst || !cov || over {
		t.Errorf("verdicts %v %v %v %v %v", mean, median, worst, cov, over)
	}
	if got := CompareSources(rs, ModelAuto, nil, []time.Duration{h}); got[1].Compared != 0 || !math.IsNaN(got[1].BaseMASEMean) {
		t.Errorf("without a baseline: %+v", got[1])
	}
}

func TestParseTuningGrid(t *testing.T) {
	g, err := ParseTuningGrid("margin=0, 0.2; shift=inf")
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Margin) != 2 || g.Margin[1] != 0.2 || len(g.ShiftSigmas) != 1 || !math.IsInf(g.ShiftSigmas[0], 1) {
		t.Errorf("grid %+v", g)
	}
	if len(g.OutlierSigmas) != len(DefaultTuningGrid().OutlierSigmas) {
		t.Error("a constant not named lost its default values")
	}
	for _, bad := range []string{"margin", "margin=x", "speed=1", "margin=-1"} {
		if _, err := ParseTuningGrid(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestLeaveOneSourceOut: each source is scored with a tuning chosen on
// the others; with one value per constant that is the plain evaluation.
func TestLeaveOneSourceOut(t *testing.T) {
	var series []EvalSeries
	for i, name := range []string{"a/x.csv", "a/y.csv", "b/z.csv"} {
		series = append(series, EvalSeries{Name: name, Values: synth(6*96, 10+float64(i), 0, 3, 96, 0.5, uint64(40+i))})
	}
	opt := EvalOptions{Origins: 3}
	d := DefaultTuning()
	one := TuningGrid{Margin: []float64{d.Margin}, OutlierSigmas: []float64{d.OutlierSigmas}, ShiftSigmas: []float64{d.ShiftSigmas},
		HalfLife: []float64{d.HalfLife}}
	res, err := LeaveOneSourceOut(series, opt, one, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Settings != 1 || len(res.Reports) != 4 || res.All != DefaultTuning() {
		t.Fatalf("settings %d, reports %d, all %v", res.Settings, len(res.Reports), res.All)
	}
	var plain []SeriesResult
	for _, s := range series {
		rs, err := EvaluateSeries(s, EvalOptions{Origins: 3, Methods: []string{ModelAuto}})
		if err != nil {
			t.Fatal(err)
		}
		plain = append(plain, rs...)
	}
	want := CompareSources(plain, ModelAuto, nil, []time.Duration{time.Hour, 6 * time.Hour})
	for i, r := range res.Reports {
		if r.MASEMean != want[i].MASEMean || r.Cov95Mean != want[i].Cov95Mean || r.Tuning != DefaultTuning().String() {
			t.Errorf("report %d: %+v, want %+v", i, r, want[i])
		}
	}
	two := one
	two.Margin = []float64{0, 0.2}
	res, err = LeaveOneSourceOut(series, opt, two, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for src, tun := range res.Chosen {
		if tun.Margin != 0 && tun.Margin != 0.2 && tun != d {
			t.Errorf("%s: chose %v, outside the grid", src, tun)
		}
	}
	if _, err := LeaveOneSourceOut(series[:2], opt, one, nil, nil); err == nil {
		t.Error("one source left out of one")
	}
}
