package forecast

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strings"
	"sync"
	"time"
)

// Model names accepted by Options.Model.
const (
	ModelAuto    = "auto"
	ModelNaive   = "naive"
	ModelSNaive  = "snaive"
	ModelProfile = "profile"
	ModelETS     = "ets"
	ModelARIMA   = "arima"
	ModelFourier = "fourier"
)

// ModelNames lists the values Options.Model accepts.
var ModelNames = []string{ModelAuto, ModelNaive, ModelSNaive, ModelProfile, ModelETS, ModelARIMA, ModelFourier}

// Options configure Fit.
type Options struct {
	// Step is the grid step of the series; it sets the daily and weekly
	// periods of the Fourier model and the range searched for a season.
	Step time.Duration
	// Horizon is the number of steps the fit is validated and calibrated
	// for; forecasts beyond it widen their quantiles by √(h/Horizon).
	Horizon int
	// Model is ModelAuto (the default when empty) or one model family.
	Model string
	// Tuning overrides the constants of the robust selection (nil:
	// DefaultTuning); `forecast eval -loso` uses it to choose them.
	Tuning *Tuning
}

func (o Options) tuning() Tuning {
	if o.Tuning != nil {
		return *o.Tuning
	}
	return DefaultTuning()
}

// Tuning of the validation, as fractions and counts of steps. These are
// properties of the method, the same for every series.
const (
	// minFitPoints is the shortest history that gets a fitted model; below
	// it the forecast is the last value.
	minFitPoints = 16
	// maxValOrigins bounds the rolling origins used to validate and
	// calibrate, which bounds the cost of a fit.
	maxValOrigins = 400
	// minValOrigins is the fewest origins worth validating on; with fewer
	// the engine falls back to a simple model and says so.
	minValOrigins = 8
	// profileSeasons is how many past seasons the profile averages.
	profileSeasons = 7
)

// Fitted is a forecaster fitted to one series. It is not safe for
// concurrent use.
type Fitted struct {
	// Model is the name of the chosen forecaster.
	Model string
	// Season is the detected season (Period 0: none).
	Season Season
	// ValidationMAE is the chosen forecaster's mean absolute error per step
	// over the validation origins and the horizon, in the series' units.
	ValidationMAE float64
	// Origins is the number of rolling origins validated on.
	Origins int
	// Reason says why this forecaster was chosen, for -explain.
	Reason string
	// Warnings lists fallbacks and data problems (too little history, gaps).
	Warnings []string
	// Candidates is the validation MAE of every forecaster tried, by name.
	Candidates map[string]float64
	// Blocks says, per block of horizon steps, how the guard weighed the
	// default against the combination of the best candidates.
	Blocks []BlockChoice

	h       *history  // the cleaned, level-adjusted series the models read
	raw     []float64 // the series as given (scaled), that quantiles are calibrated on
	off     []float64 // what levelled the shifts of raw for fitting (nil: none)
	chosen  model
	leaves  []model // base models of chosen, whose state Append advances
	scale   float64
	horizon int
	resid   [][]float64 // calibration errors y − ŷ per horizon step (scaled units), unordered
	added   int
	recent  [][]float64           // errors of the newest third of the origins, per step
	qcache  map[float64][]float64 // quantile offsets per level
}

// Fit fits a forecaster to y, a series on a regular grid (NaN cells are
// gaps and are interpolated). With Options.Model "auto" it detects the
// season, fits every candidate model, scores them and the means of the best
// two and three by rolling-origin validation (up to 400 origins spread over
// y), keeps for each block of horizon steps the one with the lowest mean
// absolute error, and calibrates the quantiles from the same out-of-sample
// errors (see the package documentation). Too short a history falls back
// to the last value (or seasonal naive) and says so in Warnings.
func Fit(y []float64, opt Options) (*Fitted, error) {
	if opt.Horizon <= 0 {
		return nil, fmt.Errorf("fit: horizon %d steps must be positive", opt.Horizon)
	}
	if opt.Step <= 0 {
		return nil, fmt.Errorf("fit: step %v must be positive", opt.Step)
	}
	if opt.Model == "" {
		opt.Model = ModelAuto
	}
	if !validModel(opt.Model) {
		return nil, fmt.Errorf("fit: unknown model %q (want one of %s)", opt.Model, strings.Join(ModelNames, ", "))
	}
	f := &Fitted{horizon: opt.Horizon, Candidates: map[string]float64{}}
	z := make([]float64, len(y))
	gaps := 0
	for i, v := range y {
		if math.IsInf(v, 0) {
			return nil, fmt.Errorf("fit: value %d is infinite", i)
		}
		if math.IsNaN(v) {
			gaps++
		}
		z[i] = v
	}
	if gaps == len(z) {
		return nil, errors.New("fit: no values")
	}
	if gaps > 0 {
		FillGaps(z, -1)
		f.Warnings = append(f.Warnings, fmt.Sprintf("%d missing step(s) filled by linear interpolation", gaps))
	}
	// Work in units of the mean absolute value so that tiny and huge series
	// behave the same numerically.
	f.scale = meanAbs(z)
	if f.scale == 0 || math.IsNaN(f.scale) || math.IsInf(f.scale, 0) {
		f.scale = 1
	}
	for i := range z {
		z[i] /= f.scale
	}
	f.raw = z
	tun := opt.tuning()
	n := len(z)
	// Spikes and level shifts are set aside for fitting and scoring (see
	// cleanOutliers and levelShifts); the quantiles are calibrated on the
	// series as given.
	clean, spikes := f.prepare(z, opt.Step, tun)
	P := f.Season.Period
	if spikes > 0 {
		f.Warnings = append(f.Warnings, fmt.Sprintf("%d outlier(s) replaced by the local median for fitting; the quantiles are still calibrated on them", spikes))
	}
	f.h = &history{y: clean}

	if n < minFitPoints {
		f.chosen = &naiveModel{h: f.h}
		f.Model = f.chosen.name()
		f.Warnings = append(f.Warnings, fmt.Sprintf("too little history (%d points, want %d): fell back to the last value", n, minFitPoints))
		f.Reason = "too little history to fit or validate a model"
		f.calibrateAll(1)
		return f, nil
	}

	if isConstant(z) {
		f.chosen = &naiveModel{h: f.h}
		f.Model = f.chosen.name()
		f.Reason = "constant series: the last value is the forecast, with no spread"
		f.resid = make([][]float64, opt.Horizon)
		for i := range f.resid {
			f.resid[i] = []float64{0}
		}
		return f, nil
	}
	stepsPerDay := int(math.Round(float64(24*time.Hour) / float64(opt.Step)))
	cands, def, notes := candidates(f.h, opt, P, stepsPerDay)
	f.Warnings = append(f.Warnings, notes...)

	burn := 8
	if P > 0 {
		burn = max(burn, P+1)
	}
	origins := validationOrigins(burn, n)
	if len(origins) < minValOrigins || len(cands) == 0 {
		f.chosen = &naiveModel{h: f.h}
		start := 1
		if P > 0 && n > P && (opt.Model == ModelAuto || opt.Model == ModelSNaive) {
			f.chosen = &snaiveModel{h: f.h, m: P}
			start = P
		}
		f.Model = f.chosen.name()
		if len(cands) == 0 {
			f.Reason = fmt.Sprintf("no %s model could be fitted", opt.Model)
		} else {
			f.Reason = fmt.Sprintf("too little history to validate candidates (%d points)", n)
		}
		f.Warnings = append(f.Warnings, f.Reason+": fell back to "+f.Model)
		f.calibrateAll(start)
		return f, nil
	}
	f.selectAndCalibrate(cands, def, origins, opt.Horizon, tun)
	return f, nil
}

// prepare finds the season (f.Season) and the level shifts of the scaled
// series z, sets f.off to the offsets that remove the shifts (nil for
// none), and returns the series the models are fitted on (z + off without
// its outliers) with the number of outliers replaced.
//
// The season is detected on the series without its outliers
// (cleanOutliers without a season), or, when that finds none and outliers
// were replaced, on the series as given: a spike at the same time every
// day is an outlier to a screen that does not know the season yet, but
// random spikes do not make a season. Level shifts are looked for only in a series without a
// season: there the edges of a cycle whose shape changes from day to day
// pass for shifts (measured on the crane traces), and a seasonal model's
// level follows a shift anyway. If some were removed the season is looked
// for again, since a shift can pass for a long season.
func (f *Fitted) prepare(z []float64, step time.Duration, tun Tuning) ([]float64, int) {
	minP, maxP := seasonRange(step)
	var bufs pathBuffers
	defer bufs.release()
	med := bufs.get(len(z))
	runningMedian(z, med, despikeHalfWidth)
	clean, k := screenOutliers(z, med, 0, tun.OutlierSigmas)
	if f.Season = DetectSeason(clean, minP, maxP); f.Season.Period == 0 && k > 0 {
		f.Season = DetectSeason(z, minP, maxP)
	}
	if f.Season.Period > 0 {
		return screenOutliers(z, med, f.Season.Period, tun.OutlierSigmas)
	}
	off, shifts := levelShifts(z, tun.ShiftSigmas)
	if shifts == 0 {
		return clean, k
	}
	f.off = off
	adj := make([]float64, len(z))
	for i, v := range z {
		adj[i] = v + off[i]
	}
	f.Warnings = append(f.Warnings, fmt.Sprintf("%d level shift(s): the history before each was moved to the level after it for fitting and scoring", shifts))
	clean, k = cleanOutliers(adj, 0, tun.OutlierSigmas)
	if f.Season = DetectSeason(clean, minP, maxP); f.Season.Period > 0 {
		return cleanOutliers(adj, f.Season.Period, tun.OutlierSigmas)
	}
	return clean, k
}

// seasonRange is the range of periods searched for a season, in steps:
// from an hour (at least 4 steps) to a week.
func seasonRange(step time.Duration) (minP, maxP int) {
	minP = max(4, int(math.Ceil(float64(time.Hour)/float64(step))))
	maxP = max(minP, int(math.Round(float64(7*24*time.Hour)/float64(step))))
	return minP, maxP
}

func validModel(m string) bool {
	for _, n := range ModelNames {
		if n == m {
			return true
		}
	}
	return false
}

// candidates fits the models of the requested family (or all for auto).
// Models that cannot be fitted are skipped with a note. The second result
// is the index of the default the guard shrinks towards: ETS for auto
// (the last value if ETS cannot be fitted), −1 for one family (its best
// member on validation).
func candidates(h *history, opt Options, P, stepsPerDay int) ([]model, int, []string) {
	var out []model
	var notes []string
	def := -1
	want := func(fam string) bool { return opt.Model == ModelAuto || opt.Model == fam }
	n := len(h.y)
	if want(ModelNaive) {
		out = append(out, &naiveModel{h: h})
	}
	if P > 0 && n > P {
		if want(ModelSNaive) {
			out = append(out, &snaiveModel{h: h, m: P})
		}
		if want(ModelProfile) {
			out = append(out, &profileModel{h: h, m: P, k: profileSeasons})
		}
	} else if opt.Model == ModelSNaive || opt.Model == ModelProfile {
		notes = append(notes, fmt.Sprintf("%s needs a detected season; none found", opt.Model))
	}
	if want(ModelETS) {
		if m, err := fitETSAuto(h, P); err == nil {
			if opt.Model == ModelAuto {
				def = len(out)
			}
			out = append(out, m)
		} else {
			notes = append(notes, err.Error())
		}
	}
	if want(ModelARIMA) {
		if m, err := fitAR(h, true); err == nil {
			out = append(out, m)
		} else {
			notes = append(notes, err.Error())
		}
		if m, err := fitAR(h, false); err == nil {
			out = append(out, m)
		} else {
			notes = append(notes, err.Error())
		}
	}
	if want(ModelFourier) {
		var terms []fourierTerm
		if P > 0 {
			terms = append(terms, fourierTerm{Period: float64(P), Harmonics: min(4, P/2)})
		} else if stepsPerDay >= 4 && n >= 2*stepsPerDay {
			terms = append(terms, fourierTerm{Period: float64(stepsPerDay), Harmonics: min(4, stepsPerDay/2)})
		}
		if week := 7 * stepsPerDay; n >= 2*week && P != week && stepsPerDay > 0 {
			terms = append(terms, fourierTerm{Period: float64(week), Harmonics: 2})
		}
		if len(terms) > 0 {
			if m, err := fitFourier(h, terms); err == nil {
				out = append(out, m)
			} else {
				notes = append(notes, err.Error())
			}
		} else if opt.Model == ModelFourier {
			notes = append(notes, "fourier needs at least two days of history")
		}
	}
	if opt.Model == ModelAuto && def < 0 {
		def = 0 // naive
	}
	return out, def, notes
}

// fitETSAuto fits the ETS variants that the data allow and returns the one
// with the lowest AICc. A damped variant starts its search from the
// smoothing fitted to the undamped variant with the same season, and the
// multiplicative season from the additive one's (see fitETS).
func fitETSAuto(h *history, P int) (*etsModel, error) {
	type variant struct {
		kind ETSKind
		from int // index of the variant to start from, −1 for none
	}
	vs := []variant{{ETSKind{false, 'N'}, -1}, {ETSKind{true, 'N'}, 0}}
	if P > 0 && len(h.y) >= 2*P+2 {
		vs = append(vs, variant{ETSKind{false, 'A'}, -1}, variant{ETSKind{true, 'A'}, 2})
		pos := true
		for _, v := range h.y {
			if v <= 0 {
				pos = false
				break
			}
		}
		if pos {
			vs = append(vs, variant{ETSKind{false, 'M'}, 2})
		}
	}
	fits := make([]*etsModel, len(vs))
	var best *etsModel
	var errs []string
	for i, v := range vs {
		var from *ETS
		if v.from >= 0 && fits[v.from] != nil {
			from = &fits[v.from].ETS
		}
		m, err := fitETS(h, v.kind, P, from)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		fits[i] = m
		if best == nil || m.AICc < best.AICc {
			best = m
		}
	}
	if best == nil {
		return nil, fmt.Errorf("ets: no variant fitted: %s", strings.Join(errs, "; "))
	}
	best.run()
	return best, nil
}

// selectAndCalibrate scores every candidate by rolling-origin validation
// over the origins, weighs the default against the combination of the best
// for each block of horizon steps (guardSelect), and calibrates the
// quantiles from the chosen forecaster's errors on the series as given.
func (f *Fitted) selectAndCalibrate(cands []model, def int, origins []int, H int, tun Tuning) {
	// Candidates are scored on the series they are fitted on, without its
	// outliers and shifts: a spike in the actuals is foreseeable by no
	// model and should not decide between them, while a model's own wild
	// forecast counts in full.
	a := f.h.y
	n := len(a)
	no := len(origins)
	cnt := stepCounts(n, origins, H)
	errs := make([][]float64, len(cands))
	var bufs pathBuffers
	defer bufs.release()
	row := make([]float64, H)
	for c, m := range cands {
		e := bufs.get(no * H)
		for i, o := range origins {
			m.path(o, row)
			signedErrors(e[i*H:(i+1)*H], a, row, o)
		}
		errs[c] = e
	}
	// The error on the series as given, that the quantiles are calibrated
	// on, adds the outlier at the target and the shifts between the origin
	// and the target (off is 0 over the newest level): y_{o+h} −
	// (ŷ − off_{o−1}) = e + (y_{o+h} − a_{o+h} + off_{o−1}).
	corr := bufs.get(no * H)
	for i, o := range origins {
		base := 0.0
		if f.off != nil {
			base = f.off[o-1]
		}
		for h := 0; h < H; h++ {
			corr[i*H+h] = 0
			if o+h < n {
				corr[i*H+h] = f.raw[o+h] - a[o+h] + base
			}
		}
	}
	maes := make([]float64, len(cands))
	for c, m := range cands {
		maes[c] = rawMAE(errs[c], corr, cnt, no, H)
		f.Candidates[m.name()] = maes[c] * f.scale
	}
	if def < 0 {
		def = 0
		for c := range cands {
			if maes[c] < maes[def] {
				def = c
			}
		}
	}
	final := bufs.get(no * H)
	chosen, choices := guardSelect(cands, def, errs, final, cnt, originWeights(origins, n, tun.HalfLife), H, tun, f.scale)
	f.chosen = chosen
	f.Model = chosen.name()
	f.Blocks = choices
	f.ValidationMAE = rawMAE(final, corr, cnt, no, H) * f.scale
	f.Origins = no
	f.resid = make([][]float64, H)
	f.recent = make([][]float64, H)
	all := make([]float64, 0, no*H+no*H/3+H)
	for h := 0; h < H; h++ {
		r := all[len(all) : len(all) : len(all)+cnt[h]]
		for i := 0; i < cnt[h]; i++ {
			r = append(r, final[i*H+h]+corr[i*H+h])
		}
		all = all[:len(all)+len(r)]
		f.resid[h] = r
	}
	for h, r := range f.resid {
		if len(r) >= 3*minValOrigins {
			k := len(r) / 3
			f.recent[h] = append(all[len(all):len(all):len(all)+k], r[len(r)-k:]...)
			all = all[:len(all)+k]
		}
	}
	f.Reason = explainChoices(choices, no, tun)
}

// signedErrors sets e[h] = y_{o+h} − row[h] where the actual is known, 0
// elsewhere.
func signedErrors(e, y, row []float64, o int) {
	clear(e)
	act := y[o:min(len(y), o+len(row))]
	for h, v := range act {
		e[h] = v - row[h]
	}
}

// rawMAE is the mean absolute error on the series as given, from the
// errors e on the series without outliers and shifts and the terms corr
// that turn them into errors on the series as given, over the known steps
// (origin i knows step h when i < cnt[h]).
func rawMAE(e, corr []float64, cnt []int, no, H int) float64 {
	var s float64
	k := 0
	for i := 0; i < no; i++ {
		known := H
		for known > 0 && i >= cnt[known-1] {
			known--
		}
		d := corr[i*H : i*H+known]
		for h, v := range e[i*H : i*H+known] {
			s += math.Abs(v + d[h])
		}
		k += known
	}
	if k == 0 {
		return math.Inf(1)
	}
	return s / float64(k)
}

// validationOrigins spreads at most maxValOrigins origins evenly over
// burn…n−1, always including the last ones: errors of neighbouring origins
// are strongly correlated, so a stride loses little and bounds the cost.
func validationOrigins(burn, n int) []int {
	if n <= burn {
		return nil
	}
	stride := (n - burn + maxValOrigins - 1) / maxValOrigins
	var out []int
	for o := n - 1; o >= burn; o -= stride {
		out = append(out, o)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// stepCounts is the number of origins with a known actual at each step:
// those with o+h < n. Origins ascend, so only the last H can miss one.
func stepCounts(n int, origins []int, H int) []int {
	out := make([]int, H)
	tail := origins[max(0, len(origins)-H):]
	for h := range out {
		out[h] = len(origins) - len(tail)
		for _, o := range tail {
			if o+h < n {
				out[h]++
			}
		}
	}
	return out
}

// calibrateAll sets the quantile errors of a fallback forecaster from its
// errors at every origin from start on (for the last value: the h-step
// changes of the series). It is used when there is too little history to
// hold some of it out for validation.
func (f *Fitted) calibrateAll(start int) {
	y := f.raw
	n := len(y)
	f.resid = make([][]float64, f.horizon)
	p := make([]float64, f.horizon)
	for t := max(1, start); t < n; t++ {
		f.chosen.path(t, p)
		for h := 0; h < f.horizon && t+h < n; h++ {
			f.resid[h] = append(f.resid[h], y[t+h]-p[h])
		}
	}
	for h := range f.resid {
		switch {
		case len(f.resid[h]) > 0:
		case h > 0:
			f.resid[h] = append([]float64(nil), f.resid[h-1]...)
		default:
			f.resid[h] = []float64{0}
		}
	}
}

// Forecast is a forecast of the next steps of a series.
type Forecast struct {
	// Mean is the point forecast for steps 1…h.
	Mean []float64
	// Levels are the quantile levels, in the order asked.
	Levels []float64
	// Quantiles[j][i] is the Levels[j] quantile at step i+1.
	Quantiles [][]float64
}

// Forecast forecasts h steps after the end of the series with the given
// quantile levels (each in (0, 1)). A quantile at step i is the point
// forecast plus the conformal quantile of the validation errors at that
// step: with N sorted errors e_(1) ≤ … ≤ e_(N), the level-q quantile is
// e_(⌈(N+1)q⌉) (clamped to 1…N), which covers a new error with probability
// at least q when errors are exchangeable. Because they are not quite (the
// volatility of real series drifts), a tail moves half-way towards that of
// the newest third of the origins when it is wider, and the offsets of the
// upper (lower) quantiles never shrink (grow) with the step. Quantiles are
// non-decreasing in the level. Steps beyond the fitted horizon reuse the
// last step's errors scaled by √(h/H).
func (f *Fitted) Forecast(h int, levels []float64) (Forecast, error) {
	if h <= 0 {
		return Forecast{}, fmt.Errorf("forecast: horizon %d steps must be positive", h)
	}
	if f.chosen == nil {
		return Forecast{}, errors.New("forecast: not fitted (use Fit)")
	}
	for _, q := range levels {
		if !(q > 0 && q < 1) {
			return Forecast{}, fmt.Errorf("forecast: quantile level %v must be in (0, 1)", q)
		}
	}
	n := len(f.h.y)
	pt := make([]float64, h)
	f.chosen.path(n, pt)
	clampFinite(pt, f.h.y[n-1])
	out := Forecast{Mean: make([]float64, h), Levels: append([]float64(nil), levels...), Quantiles: make([][]float64, len(levels))}
	for i := range pt {
		out.Mean[i] = pt[i] * f.scale
	}
	for j, q := range levels {
		off := f.offsets(q, h)
		qs := make([]float64, h)
		for i := range qs {
			qs[i] = (pt[i] + off[i]) * f.scale
		}
		out.Quantiles[j] = qs
	}
	return out, nil
}

// offsets returns the level-q offsets from the point forecast for steps
// 1…h (scaled units), cached per level until the next fit.
func (f *Fitted) offsets(q float64, h int) []float64 {
	if off, ok := f.qcache[q]; ok && len(off) >= h {
		return off
	}
	off := make([]float64, h)
	prev := 0.0
	for i := range off {
		k := min(i, len(f.resid)-1)
		e := conformalQuantile(f.resid[k], q)
		// Errors are not exchangeable when volatility drifts: where the
		// newest third of the origins has the wider tail, the offset moves
		// half-way to it (as if those errors counted double).
		if k < len(f.recent) && len(f.recent[k]) > 0 && q != 0.5 {
			r := conformalQuantile(f.recent[k], q)
			if (q > 0.5 && r > e) || (q < 0.5 && r < e) {
				e = (e + r) / 2
			}
		}
		if i > k {
			e *= math.Sqrt(float64(i+1) / float64(k+1))
		}
		// Uncertainty does not shrink with the horizon: an upper quantile's
		// offset is at least the previous step's (a lower one's at most),
		// which also smooths the sampling noise of the per-step calibration.
		if i > 0 && ((q > 0.5 && e < prev) || (q < 0.5 && e > prev)) {
			e = prev
		}
		prev = e
		off[i] = e
	}
	if f.qcache == nil {
		f.qcache = map[float64][]float64{}
	}
	f.qcache[q] = off
	return off
}

// conformalQuantile returns e_(⌈(N+1)q⌉), the order statistic of the
// errors e, partially reordering e in place (selection, O(N) on average).
func conformalQuantile(e []float64, q float64) float64 {
	n := len(e)
	if n == 0 {
		return 0
	}
	k := int(math.Ceil(float64(n+1)*q)) - 1
	k = max(0, min(n-1, k))
	return selectKth(e, k)
}

// selectKth reorders x so that x[k] is its k-th smallest element (0-based)
// and returns it. Each round splits the range around the median p of its
// first, middle and last values into the values below p and those equal
// to p (and above) by Lomuto's scheme, swapping every value and advancing
// the split by the sign bit of v − p instead of by a comparison: in random
// data a compare-and-branch is mispredicted half of the time, which costs
// more than the swaps. Ranges of 8 or fewer are finished by insertion. If
// a round makes no progress (NaN values), it falls back to hoareSelect.
func selectKth(x []float64, k int) float64 {
	lo, hi := 0, len(x)
	for hi-lo > 8 {
		a, b, c := x[lo], x[lo+(hi-lo)/2], x[hi-1]
		p := max(min(a, b), min(max(a, b), c))
		// [lo, j) < p ≤ [j, hi)
		j := lo
		for i := lo; i < hi; i++ {
			v := x[i]
			x[i] = x[j]
			x[j] = v
			j += int(math.Float64bits(v-p) >> 63)
		}
		if j == hi {
			return hoareSelect(x[lo:hi], k-lo)
		}
		if k < j {
			hi = j
			continue
		}
		// [j, e) = p < [e, hi)
		e := j
		for i := j; i < hi; i++ {
			v := x[i]
			x[i] = x[e]
			x[e] = v
			e += 1 - int(math.Float64bits(p-v)>>63)
		}
		if e == j {
			return hoareSelect(x[lo:hi], k-lo)
		}
		if k < e {
			return p
		}
		lo = e
	}
	for i := lo + 1; i < hi; i++ {
		for j := i; j > lo && x[j] < x[j-1]; j-- {
			x[j], x[j-1] = x[j-1], x[j]
		}
	}
	return x[k]
}

// hoareSelect is selectKth by Hoare's selection with a median-of-three
// pivot.
func hoareSelect(x []float64, k int) float64 {
	lo, hi := 0, len(x)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if x[mid] < x[lo] {
			x[mid], x[lo] = x[lo], x[mid]
		}
		if x[hi] < x[lo] {
			x[hi], x[lo] = x[lo], x[hi]
		}
		if x[hi] < x[mid] {
			x[hi], x[mid] = x[mid], x[hi]
		}
		pivot := x[mid]
		i, j := lo, hi
		for i <= j {
			for x[i] < pivot {
				i++
			}
			for x[j] > pivot {
				j--
			}
			if i <= j {
				x[i], x[j] = x[j], x[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return x[k]
		}
	}
	return x[k]
}

// Append adds one new observation after the fitted series and updates the
// chosen forecaster's state in O(1), so the next Forecast starts from it.
// Parameters, the model choice and the quantile calibration stay as
// fitted; Appended says how many points arrived since, so the caller can
// refit on its own schedule (for example once per season). A NaN value
// repeats the last observation.
func (f *Fitted) Append(v float64) error {
	if f.chosen == nil {
		return errors.New("append: not fitted (use Fit)")
	}
	if math.IsInf(v, 0) {
		return errors.New("append: infinite value")
	}
	z := v / f.scale
	if math.IsNaN(v) {
		z = f.h.y[len(f.h.y)-1]
	}
	f.h.y = append(f.h.y, z)
	f.raw = append(f.raw, z)
	if f.leaves == nil {
		f.leaves = leaves(f.chosen)
	}
	for _, m := range f.leaves {
		if s, ok := m.(stateful); ok {
			s.push()
		}
	}
	f.added++
	return nil
}

// Appended is the number of observations added with Append since Fit.
func (f *Fitted) Appended() int { return f.added }

// Len is the number of observations the forecaster holds.
func (f *Fitted) Len() int { return len(f.h.y) }

func meanAbs(y []float64) float64 {
	var s float64
	for _, v := range y {
		s += math.Abs(v)
	}
	return s / float64(len(y))
}

func isConstant(y []float64) bool {
	for _, v := range y[1:] {
		if math.Abs(v-y[0]) > 1e-12*(1+math.Abs(y[0])) {
			return false
		}
	}
	return true
}

// horizonBlocks splits steps 0…H−1 into blocks [0,1), [1,2), [2,4), [4,8), …
func horizonBlocks(H int) [][2]int {
	var out [][2]int
	for lo := 0; lo < H; {
		hi := min(H, max(lo*2, lo+1))
		out = append(out, [2]int{lo, hi})
		lo = hi
	}
	return out
}

// pathPools recycle the scratch buffers of fits (validation paths, the
// design of the Fourier regression, working copies of the series): a fit
// fills about a megabyte of them and drops them when it returns, and a
// leader refitting thousands of series would otherwise spend its time in
// the allocator and the garbage collector. Pool k holds buffers of
// capacity 2^k, so that a request never gets a buffer too small for it.
var pathPools [48]sync.Pool

// pathBuffers hands out buffers from pathPools and returns them all on
// release. A buffer's contents are arbitrary: every user overwrites it.
type pathBuffers struct{ held []*[]float64 }

func (b *pathBuffers) get(n int) []float64 {
	k := bits.Len(uint(max(n, 1) - 1))
	v, ok := pathPools[k].Get().(*[]float64)
	if !ok {
		s := make([]float64, 1<<k)
		v = &s
	}
	b.held = append(b.held, v)
	return (*v)[:n]
}

func (b *pathBuffers) release() {
	for _, v := range b.held {
		pathPools[bits.Len(uint(cap(*v)-1))].Put(v)
	}
	b.held = nil
}
