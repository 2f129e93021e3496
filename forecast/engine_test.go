package forecast

import (
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

const step15 = 15 * time.Minute

// synth returns n points of level + slope·t + amp·sin(2πt/period) plus
// Gaussian noise of the given standard deviation, from a fixed seed.
func synth(n int, level, slope, amp float64, period int, noise float64, seed uint64) []float64 {
	r := rand.New(rand.NewPCG(seed, 1))
	y := make([]float64, n)
	for t := range y {
		y[t] = level + slope*float64(t) + noise*r.NormFloat64()
		if period > 0 {
			y[t] += amp * math.Sin(2*math.Pi*float64(t)/float64(period))
		}
	}
	return y
}

func TestDetectSeason(t *testing.T) {
	daily := synth(1344, 50, 0, 10, 96, 2, 1)
	// a strong 12-hour harmonic on a 24-hour cycle must still read 24 h
	harmonic := synth(1344, 50, 0, 4, 96, 1, 2)
	for i := range harmonic {
		harmonic[i] += 8 * math.Sin(2*math.Pi*float64(i)/48)
	}
	weekly := make([]float64, 1344)
	r := rand.New(rand.NewPCG(3, 3))
	for i := range weekly {
		day := (i / 96) % 7
		weekly[i] = 20 + r.NormFloat64()
		if day < 5 {
			weekly[i] += 30
		}
	}
	cases := []struct {
		name string
		y    []float64
		want int
	}{
		{"daily", daily, 96},
		{"12h harmonic of a daily cycle", harmonic, 96},
		{"weekday/weekend", weekly, 672},
		{"white noise", synth(1344, 5, 0, 0, 0, 1, 4), 0},
		{"trend only", synth(1344, 5, 0.1, 0, 0, 0.5, 5), 0},
		{"too short for the cycle", synth(150, 0, 0, 5, 96, 0.1, 6), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := DetectSeason(c.y, 4, 672)
			if got.Period != c.want {
				t.Fatalf("period = %d (acf %.2f), want %d", got.Period, got.ACF, c.want)
			}
		})
	}
}

func TestFitRecoversSeasonAndTrend(t *testing.T) {
	const n, H = 1344 + 48, 48
	y := synth(n, 100, 0.05, 15, 96, 1, 7)
	train, test := y[:n-H], y[n-H:]
	f, err := Fit(train, Options{Step: step15, Horizon: H})
	if err != nil {
		t.Fatal(err)
	}
	if f.Season.Period != 96 {
		t.Fatalf("season %d, want 96", f.Season.Period)
	}
	fc, err := f.Forecast(H, []float64{0.5, 0.95})
	if err != nil {
		t.Fatal(err)
	}
	var mae float64
	covered := 0
	for i, v := range test {
		truth := 100 + 0.05*float64(n-H+i) + 15*math.Sin(2*math.Pi*float64(n-H+i)/96)
		mae += math.Abs(fc.Mean[i]-truth) / H
		if v <= fc.Quantiles[1][i] {
			covered++
		}
	}
	// noise sd 1: a forecaster that has the season and the trend is within
	// a fraction of it; one that misses the season is off by about 10, one
	// that misses the trend (2.4 over the horizon) by more than 1.2.
	if mae > 0.8 {
		t.Errorf("MAE to the noiseless truth %.3f > 0.8 (model %s)", mae, f.Model)
	}
	if covered < H*8/10 {
		t.Errorf("p95 covered %d of %d", covered, H)
	}
}

func TestFitEdgeCases(t *testing.T) {
	gappy := synth(800, 40, 0, 10, 96, 1, 8)
	for i := 100; i < 800; i += 7 {
		gappy[i] = math.NaN()
	}
	for i := 300; i < 340; i++ {
		gappy[i] = math.NaN()
	}
	huge := synth(1000, 5e12, 0, 1e12, 96, 1e11, 9)
	negative := synth(1000, -500, 0, 50, 96, 5, 10)
	shifted := synth(1000, 10, 0, 3, 96, 0.5, 11)
	for i := 700; i < len(shifted); i++ {
		shifted[i] += 40
	}
	cases := []struct {
		name     string
		y        []float64
		model    string // substring expected in the chosen model, if any
		warning  string // substring expected in a warning, if any
		near     float64
		nearTol  float64
		spreadOK func(lo, hi float64) bool
	}{
		{name: "constant", y: []float64{7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7}, model: "naive", near: 7, nearTol: 1e-12,
			spreadOK: func(lo, hi float64) bool { return lo == 7 && hi == 7 }},
		{name: "short", y: []float64{1, 2, 3, 2, 1}, model: "naive", warning: "too little history", near: 1, nearTol: 1e-12},
		{name: "single point", y: []float64{4.5}, model: "naive", warning: "too little history", near: 4.5, nearTol: 1e-12},
		{name: "gappy", y: gappy, warning: "missing step", near: 40, nearTol: 15},
		{name: "negative", y: negative, near: -500, nearTol: 80},
		{name: "huge", y: huge, near: 5e12, nearTol: 1.6e12},
		{name: "level shift", y: shifted, near: 50, nearTol: 6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := Fit(c.y, Options{Step: step15, Horizon: 12})
			if err != nil {
				t.Fatal(err)
			}
			if c.model != "" && !strings.Contains(f.Model, c.model) {
				t.Errorf("model %q, want %q", f.Model, c.model)
			}
			if c.warning != "" && !strings.Contains(strings.Join(f.Warnings, "; "), c.warning) {
				t.Errorf("warnings %q, want one about %q", f.Warnings, c.warning)
			}
			fc, err := f.Forecast(12, []float64{0.05, 0.5, 0.95})
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range fc.Mean {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("step %d: mean %v", i, v)
				}
				if math.Abs(v-c.near) > c.nearTol {
					t.Errorf("step %d: mean %g, want %g ± %g", i, v, c.near, c.nearTol)
				}
				lo, hi := fc.Quantiles[0][i], fc.Quantiles[2][i]
				if !(lo <= fc.Quantiles[1][i] && fc.Quantiles[1][i] <= hi) {
					t.Errorf("step %d: quantiles %g, %g, %g not ordered", i, lo, fc.Quantiles[1][i], hi)
				}
				if c.spreadOK != nil && !c.spreadOK(lo, hi) {
					t.Errorf("step %d: spread [%g, %g] unexpected", i, lo, hi)
				}
			}
		})
	}
}

func TestFitRejectsBadInput(t *testing.T) {
	cases := []struct {
		name string
		y    []float64
		opt  Options
		want string
	}{
		{"empty", nil, Options{Step: step15, Horizon: 4}, "no values"},
		{"all missing", []float64{math.NaN(), math.NaN()}, Options{Step: step15, Horizon: 4}, "no values"},
		{"infinite", []float64{1, math.Inf(1), 2}, Options{Step: step15, Horizon: 4}, "infinite"},
		{"no horizon", []float64{1, 2}, Options{Step: step15}, "horizon"},
		{"no step", []float64{1, 2}, Options{Horizon: 2}, "step"},
		{"unknown model", []float64{1, 2}, Options{Step: step15, Horizon: 2, Model: "prophet"}, "unknown model"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Fit(c.y, c.opt)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestQuantilesMonotoneInLevel(t *testing.T) {
	levels := []float64{0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99}
	for seed := uint64(0); seed < 6; seed++ {
		y := synth(600+int(seed)*100, 20, 0.001*float64(seed), float64(seed), 96, 1+float64(seed), seed)
		f, err := Fit(y, Options{Step: step15, Horizon: 24})
		if err != nil {
			t.Fatal(err)
		}
		// beyond the calibrated horizon too
		fc, err := f.Forecast(40, levels)
		if err != nil {
			t.Fatal(err)
		}
		for i := range fc.Mean {
			for j := 1; j < len(levels); j++ {
				if fc.Quantiles[j][i] < fc.Quantiles[j-1][i] {
					t.Fatalf("seed %d step %d: p%g %g < p%g %g", seed, i, 100*levels[j], fc.Quantiles[j][i], 100*levels[j-1], fc.Quantiles[j-1][i])
				}
			}
		}
	}
	if _, err := (&Fitted{}).Forecast(0, nil); err == nil {
		t.Error("zero horizon accepted")
	}
}

// TestCoverageAR1 checks calibration out of sample: over many origins of an
// AR(1) series with a daily cycle, the p95 must cover about 95 % and the
// p50 about half.
func TestCoverageAR1(t *testing.T) {
	r := rand.New(rand.NewPCG(42, 42))
	n := 3000
	y := make([]float64, n)
	e := 0.0
	for i := range y {
		e = 0.8*e + r.NormFloat64()
		y[i] = 30 + 5*math.Sin(2*math.Pi*float64(i)/96) + e
	}
	const H = 8
	var in95, in50, total int
	for o := 1400; o+H <= n; o += 41 {
		f, err := Fit(y[o-1344:o], Options{Step: step15, Horizon: H})
		if err != nil {
			t.Fatal(err)
		}
		fc, err := f.Forecast(H, []float64{0.5, 0.95})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < H; i++ {
			total++
			if y[o+i] <= fc.Quantiles[0][i] {
				in50++
			}
			if y[o+i] <= fc.Quantiles[1][i] {
				in95++
			}
		}
	}
	c95, c50 := float64(in95)/float64(total), float64(in50)/float64(total)
	if c95 < 0.9 || c95 > 0.995 {
		t.Errorf("p95 coverage %.3f over %d points", c95, total)
	}
	if c50 < 0.38 || c50 > 0.62 {
		t.Errorf("p50 coverage %.3f over %d points", c50, total)
	}
}

func TestFitModelFamilies(t *testing.T) {
	y := synth(1000, 50, 0, 10, 96, 1, 12)
	for _, m := range ModelNames {
		t.Run(m, func(t *testing.T) {
			f, err := Fit(y, Options{Step: step15, Horizon: 8, Model: m})
			if err != nil {
				t.Fatal(err)
			}
			if m == ModelAuto {
				return
			}
			// every base model of the choice belongs to the family
			prefix := map[string][]string{ModelNaive: {"naive"}, ModelSNaive: {"snaive"}, ModelProfile: {"profile"},
				ModelETS: {"ETS"}, ModelARIMA: {"arima", "ar("}, ModelFourier: {"fourier"}}[m]
			for _, leaf := range leaves(f.chosen) {
				ok := false
				for _, p := range prefix {
					ok = ok || strings.HasPrefix(leaf.name(), p)
				}
				if !ok {
					t.Errorf("%s in the choice %s for family %s", leaf.name(), f.Model, m)
				}
			}
		})
	}
	// a family that needs a season falls back, and says so
	f, err := Fit(synth(500, 5, 0, 0, 0, 1, 13), Options{Step: step15, Horizon: 8, Model: ModelSNaive})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Warnings) == 0 {
		t.Errorf("no warning for snaive without a season (model %s)", f.Model)
	}
}

// TestAppendMatchesFullPass checks the incremental path: a model fitted on
// a prefix and advanced point by point with Append holds the same ETS state
// as running the recursions over the whole series.
func TestAppendMatchesFullPass(t *testing.T) {
	y := synth(900, 20, 0.01, 4, 96, 0.5, 14)
	f, err := Fit(y[:800], Options{Step: step15, Horizon: 8, Model: ModelETS})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range y[800:] {
		if err := f.Append(v); err != nil {
			t.Fatal(err)
		}
	}
	if f.Appended() != 100 || f.Len() != 900 {
		t.Fatalf("appended %d, len %d", f.Appended(), f.Len())
	}
	var ets *etsModel
	for _, m := range leaves(f.chosen) {
		if e, ok := m.(*etsModel); ok {
			ets = e
		}
	}
	if ets == nil {
		t.Fatalf("no ETS in %s", f.Model)
	}
	ref := &etsModel{ETS: ets.ETS, h: &history{y: f.h.y}}
	ref.l, ref.b = []float64{ets.l[0]}, []float64{ets.b[0]}
	ref.s = append([]float64(nil), ets.s[:ets.Period]...)
	for _, v := range f.h.y {
		ref.step(v)
	}
	if len(ref.l) != len(ets.l) {
		t.Fatalf("state length %d, want %d", len(ets.l), len(ref.l))
	}
	for i := range ref.l {
		if math.Abs(ref.l[i]-ets.l[i]) > 1e-9 || math.Abs(ref.b[i]-ets.b[i]) > 1e-9 {
			t.Fatalf("state %d differs: %v/%v vs %v/%v", i, ets.l[i], ets.b[i], ref.l[i], ref.b[i])
		}
	}
	a, _ := f.Forecast(8, []float64{0.9})
	want := make([]float64, 8)
	ref.path(len(f.h.y), want)
	if m, ok := f.chosen.(*etsModel); ok && m == ets {
		for i := range want {
			if math.Abs(a.Mean[i]-want[i]*f.scale) > 1e-9 {
				t.Fatalf("step %d: forecast %g, want %g", i, a.Mean[i], want[i]*f.scale)
			}
		}
	}
	if err := f.Append(math.Inf(1)); err == nil {
		t.Error("infinite value appended")
	}
}

func TestFitETSRecoversAlpha(t *testing.T) {
	// local level model: l_t = l_{t−1} + α e_t, y_t = l_{t−1} + e_t
	r := rand.New(rand.NewPCG(15, 15))
	y := make([]float64, 600)
	l := 10.0
	for i := range y {
		e := r.NormFloat64()
		y[i] = l + e
		l += 0.4 * e
	}
	m, err := FitETS(y, ETSKind{Season: 'N'}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if m.Alpha < 0.25 || m.Alpha > 0.55 {
		t.Errorf("alpha %.3f, want about 0.4", m.Alpha)
	}
	if _, err := FitETS([]float64{1, 2, -1, 3, 4, 5, 6, 7, 8, 9}, ETSKind{Season: 'M'}, 2); err == nil {
		t.Error("multiplicative season accepted a non-positive series")
	}
}

func TestLevinsonAR2(t *testing.T) {
	// autocovariances of y_t = 0.5 y_{t−1} + 0.3 y_{t−2} + ε_t
	a1, a2 := 0.5, 0.3
	r1 := a1 / (1 - a2)
	r2 := a1*r1 + a2
	r3 := a1*r2 + a2*r1
	coef, v := Levinson([]float64{1, r1, r2, r3})
	if math.Abs(coef[2][0]-a1) > 1e-12 || math.Abs(coef[2][1]-a2) > 1e-12 {
		t.Errorf("AR(2) coefficients %v, want [%v %v]", coef[2], a1, a2)
	}
	if math.Abs(coef[3][2]) > 1e-12 {
		t.Errorf("third partial autocorrelation %v, want 0", coef[3][2])
	}
	if !(v[2] < v[1] && v[1] < v[0]) {
		t.Errorf("innovation variances %v not decreasing", v)
	}
}

func TestSelectKth(t *testing.T) {
	r := rand.New(rand.NewPCG(16, 16))
	for trial := 0; trial < 200; trial++ {
		n := 1 + r.IntN(50)
		x := make([]float64, n)
		for i := range x {
			x[i] = float64(r.IntN(10))
		}
		k := r.IntN(n)
		got := selectKth(append([]float64(nil), x...), k)
		below, equal := 0, 0
		for _, v := range x {
			if v < got {
				below++
			} else if v == got {
				equal++
			}
		}
		if !(below <= k && k < below+equal) {
			t.Fatalf("selectKth(%v, %d) = %v", x, k, got)
		}
	}
	// NaN values make the answer meaningless but must not stall selection
	x := make([]float64, 100)
	for i := range x {
		x[i] = math.NaN()
		if i%3 == 0 {
			x[i] = float64(i)
		}
	}
	for k := range x {
		selectKth(append([]float64(nil), x...), k)
	}
}

// TestFitRobustToSpikes: rare huge spikes (1 % of points, 130 × the noise)
// must neither hide the daily cycle nor drag the forecast.
func TestFitRobustToSpikes(t *testing.T) {
	const n, H = 1344 + 24, 24
	y := synth(n, 100, 0, 15, 96, 1, 7)
	for i := 50; i < n-H; i += 97 {
		y[i] += 2000
	}
	f, err := Fit(y[:n-H], Options{Step: step15, Horizon: H})
	if err != nil {
		t.Fatal(err)
	}
	if f.Season.Period != 96 {
		t.Errorf("season %d, want 96", f.Season.Period)
	}
	if !strings.Contains(strings.Join(f.Warnings, ";"), "outlier") {
		t.Errorf("warnings %q do not mention the spikes", f.Warnings)
	}
	fc, err := f.Forecast(H, []float64{0.95})
	if err != nil {
		t.Fatal(err)
	}
	var mae float64
	for i := 0; i < H; i++ {
		truth := 100 + 15*math.Sin(2*math.Pi*float64(n-H+i)/96)
		mae += math.Abs(fc.Mean[i]-truth) / H
	}
	if mae > 1 {
		t.Errorf("MAE to the noiseless truth %.2f (model %s)", mae, f.Model)
	}
}

// TestDespike: the outlier screen replaces isolated spikes inside the
// series, and at its end only where the series' earlier jumps did not
// last; bursts that are a large share of the points are the signal.
func TestDespike(t *testing.T) {
	noisy := synth(500, 10, 0, 2, 50, 0.5, 30)
	steps := synth(500, 10, 0, 0, 0, 0.5, 32)
	for i := range steps {
		steps[i] += 20 * float64(i/100) // a lasting jump every 100 points
	}
	bursty := synth(400, 1, 0, 0, 0, 0.1, 31)
	for i := 0; i < len(bursty); i += 4 {
		bursty[i] += 50
	}
	cases := []struct {
		name  string
		y     []float64
		set   map[int]float64 // values put into y
		clean []int           // indices that must be replaced
		kept  []int           // indices that must stay as given
		total int             // points replaced in all
	}{
		{"isolated spikes inside", noisy, map[int]float64{100: 500, 300: -400}, []int{100, 300}, nil, 2},
		{"spike at the end of a series whose jumps do not last", noisy, map[int]float64{100: 500, 300: -400, 499: 900}, []int{100, 300, 499}, nil, 3},
		{"jump at the end of a series whose jumps last", steps, map[int]float64{499: 200}, nil, []int{499}, 0},
		{"bursts in a quarter of the points", bursty, nil, nil, []int{0, 4, 8}, 0},
		{"one spike on a flat zero line", make([]float64, 200), map[int]float64{50: 9}, []int{50}, nil, 1},
	}
	for _, c := range cases {
		y := append([]float64(nil), c.y...)
		for i, v := range c.set {
			y[i] = v
		}
		given := append([]float64(nil), y...)
		clean, k := Despike(y)
		if k != c.total {
			t.Errorf("%s: replaced %d, want %d", c.name, k, c.total)
		}
		for _, i := range c.clean {
			if clean[i] == y[i] {
				t.Errorf("%s: point %d (%v) kept", c.name, i, y[i])
			}
		}
		for _, i := range c.kept {
			if clean[i] != y[i] {
				t.Errorf("%s: point %d replaced: %v → %v", c.name, i, y[i], clean[i])
			}
		}
		for i := range y {
			if y[i] != given[i] {
				t.Fatalf("%s: input modified", c.name)
			}
		}
	}
}

// TestFitConcurrentAndDeterministic: fits share only the pool of scratch
// buffers, so concurrent fits of different series give exactly the
// forecasts of sequential ones.
func TestFitConcurrentAndDeterministic(t *testing.T) {
	series := make([][]float64, 8)
	want := make([][]float64, len(series))
	for i := range series {
		series[i] = synth(700, 20+float64(i), 0, float64(i), 96, 1, uint64(100+i))
		f, err := Fit(series[i], Options{Step: step15, Horizon: 12})
		if err != nil {
			t.Fatal(err)
		}
		fc, _ := f.Forecast(12, []float64{0.9})
		want[i] = append(fc.Mean, fc.Quantiles[0]...)
	}
	got := make([][]float64, len(series))
	var wg sync.WaitGroup
	for i := range series {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := Fit(series[i], Options{Step: step15, Horizon: 12})
			if err != nil {
				t.Error(err)
				return
			}
			fc, _ := f.Forecast(12, []float64{0.9})
			got[i] = append(fc.Mean, fc.Quantiles[0]...)
		}()
	}
	wg.Wait()
	for i := range series {
		for j := range want[i] {
			if got[i][j] != want[i][j] {
				t.Fatalf("series %d value %d: concurrent %v, sequential %v", i, j, got[i][j], want[i][j])
			}
		}
	}
}

// TestFourierGramClosedForm checks the closed-form XᵀX of the harmonic
// regression against the dot products of the design's columns, including
// coinciding frequencies (a period of half a week with the weekly term),
// a period of 4 (whose second harmonic sums to the Nyquist frequency) and
// short windows.
func TestFourierGramClosedForm(t *testing.T) {
	cases := []struct {
		n     int
		terms []fourierTerm
	}{
		{1344, []fourierTerm{{96, 4}, {672, 2}}},
		{1344, []fourierTerm{{336, 4}, {672, 2}}},
		{1100, []fourierTerm{{97, 4}}},
		{300, []fourierTerm{{4, 2}}},
		{50, []fourierTerm{{12.5, 3}}},
	}
	for _, c := range cases {
		p := 2
		for _, tm := range c.terms {
			p += 2 * tm.Harmonics
		}
		var bufs pathBuffers
		X := fourierDesign(c.terms, c.n, p, &bufs)
		g := fourierGram(c.terms, c.n, p)
		for i := 0; i < p; i++ {
			for j := i; j < p; j++ {
				var want float64
				for k := range X[i] {
					want += X[i][k] * X[j][k]
				}
				if got := g.At(i, j); math.Abs(got-want) > 1e-9*float64(c.n) {
					t.Errorf("n=%d %v: (%d,%d) = %v, want %v", c.n, c.terms, i, j, got, want)
				}
			}
		}
		bufs.release()
	}
}

// TestConformalQuantileTails checks the conformal order statistic against
// a full sort, with ties and trending errors, at tail and central levels.
func TestConformalQuantileTails(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 41))
	for trial := 0; trial < 500; trial++ {
		n := 1 + r.IntN(500)
		x := make([]float64, n)
		for i := range x {
			x[i] = math.Round(5 * r.NormFloat64())
			if trial%3 == 0 {
				x[i] += float64(i) / 10 // trending errors
			}
		}
		s := append([]float64(nil), x...)
		sort.Float64s(s)
		for _, q := range []float64{0.01, 0.05, 0.5, 0.9, 0.95, 0.99} {
			k := max(0, min(n-1, int(math.Ceil(float64(n+1)*q))-1))
			if got := conformalQuantile(append([]float64(nil), x...), q); got != s[k] {
				t.Fatalf("n=%d q=%v: got %v, want %v", n, q, got, s[k])
			}
		}
	}
}

// TestRunningMedian checks the sliding median against sorting each window,
// at the series' ends too.
func TestRunningMedian(t *testing.T) {
	r := rand.New(rand.NewPCG(42, 42))
	for _, n := range []int{1, 2, 3, 6, 7, 8, 200} {
		y := make([]float64, n)
		for i := range y {
			y[i] = math.Round(3 * r.NormFloat64())
		}
		med := make([]float64, n)
		runningMedian(y, med, 3)
		for i := range y {
			win := append([]float64(nil), y[max(0, i-3):min(n, i+4)]...)
			sort.Float64s(win)
			if med[i] != win[len(win)/2] {
				t.Fatalf("n=%d t=%d: median %v, want %v", n, i, med[i], win[len(win)/2])
			}
		}
	}
}

// TestNelderMeadEarlyStop: an objective that stops early once it is above
// the bound must lead the search through exactly the same points as the
// exact objective.
func TestNelderMeadEarlyStop(t *testing.T) {
	const terms = 200
	// a sum of squares over many terms, like an ETS loss
	f := func(x []float64, bound float64) float64 {
		var s float64
		for i := 0; i < terms; i++ {
			u := float64(i) / terms
			e := x[0]*u + x[1]*u*u + x[2] - math.Sin(3*u)
			s += e * e
			if s > bound {
				return s
			}
		}
		return s
	}
	exact := func(x []float64, _ float64) float64 { return f(x, math.Inf(1)) }
	calls := 0
	counted := func(x []float64, bound float64) float64 { calls++; return f(x, bound) }
	for _, x0 := range [][]float64{{0, 0, 0}, {3, -2, 1}, {-5, 5, 0.5}} {
		b1, v1 := nelderMead(exact, append([]float64(nil), x0...), 1.5, 60, 1e-6)
		b2, v2 := nelderMead(counted, append([]float64(nil), x0...), 1.5, 60, 1e-6)
		if v1 != v2 || b1[0] != b2[0] || b1[1] != b2[1] || b1[2] != b2[2] {
			t.Errorf("from %v: exact %v (%v), early stop %v (%v)", x0, b1, v1, b2, v2)
		}
	}
	if calls == 0 {
		t.Fatal("objective not called")
	}
}

// TestDetectSeasonAnyLength: the periodogram is taken on a grid of a fast
// transform length, so a daily cycle is found whatever the series length,
// prime lengths included (to within a step: with this much noise the
// neighbouring lags correlate equally well).
func TestDetectSeasonAnyLength(t *testing.T) {
	for _, n := range []int{941, 1103, 1321, 1344} {
		y := synth(n, 50, 0, 10, 96, 2, uint64(n))
		if got := DetectSeason(y, 4, 672); got.Period < 95 || got.Period > 97 {
			t.Errorf("n=%d: period %d, want 96 ± 1", n, got.Period)
		}
		if N := smoothLen(n); N < n || float64(N) > 1.065*float64(n) {
			t.Errorf("smoothLen(%d) = %d", n, N)
		}
	}
}
