package forecast

import (
	"math"
	"math/cmplx"
	"sort"

	"gonum.org/v1/gonum/dsp/fourier"
)

// Season is a detected seasonal period.
type Season struct {
	// Period is the length of one cycle in steps; 0 means no season.
	Period int
	// ACF is the sample autocorrelation of the detrended series at Period.
	ACF float64
}

// seasonMinACF is the autocorrelation a periodogram candidate needs at its
// lag to be confirmed as a season. Below it a seasonal model rarely beats a
// level model out of sample.
const seasonMinACF = 0.25

// seasonHarmonicSlack is how much autocorrelation a longer multiple of a
// candidate period must add before it is preferred: a daily series
// correlates almost as well at two days as at one.
const seasonHarmonicSlack = 0.05

// seasonLagSlack is the autocorrelation difference below which two
// neighbouring lags count as equally good.
const seasonLagSlack = 0.002

// seasonLongerSlack is how much less autocorrelation a longer confirmed
// period may have than the best one and still be chosen.
const seasonLongerSlack = 0.1

// DetectSeason finds the dominant seasonal period of y, in steps, between
// minPeriod and maxPeriod (and at most len(y)/2, so that two full cycles are
// seen). Candidates are the strongest peaks of the periodogram
//
//	I(k) = |Σ_t x_t e^{−2πikt/n}|²,  period n/k,
//
// of the series x with its linear trend removed; each is refined to the lag
// with the highest sample autocorrelation
//
//	r(ℓ) = Σ_{t} (x_t − x̄)(x_{t+ℓ} − x̄) / Σ_t (x_t − x̄)²
//
// within ±10 % of n/k (the nearest to n/k among near-ties), and confirmed if
// r ≥ 0.25 and no neighbouring lag correlates clearly better.
// Harmonics are resolved over the multiples kP (k ≤ 7, within range): the
// shortest multiple whose autocorrelation is within 0.05 of the best
// multiple's is taken, so that a 24-hour cycle with a strong 12-hour
// harmonic is reported as 24 hours, and a daily cycle is not reported as
// two days. It returns Period 0 when nothing
// is confirmed.
func DetectSeason(y []float64, minPeriod, maxPeriod int) Season {
	n := len(y)
	if minPeriod < 2 {
		minPeriod = 2
	}
	if maxPeriod > n/2 {
		maxPeriod = n / 2
	}
	if n < 8 || maxPeriod < minPeriod {
		return Season{}
	}
	x := detrend(y)
	var ss float64
	for _, v := range x {
		ss += v * v
	}
	if ss == 0 || math.IsNaN(ss) || math.IsInf(ss, 0) {
		return Season{}
	}
	// Autocorrelations are needed at a few dozen lags only: computing them
	// directly, once each, is cheaper than a padded transform.
	memo := make([]float64, n)
	for i := range memo {
		memo[i] = math.NaN()
	}
	acf := func(lag int) float64 {
		if lag <= 0 || lag >= n {
			return 0
		}
		if !math.IsNaN(memo[lag]) {
			return memo[lag]
		}
		var s float64
		for t := lag; t < n; t++ {
			s += x[t] * x[t-lag]
		}
		memo[lag] = s / ss
		return memo[lag]
	}
	coef := fourier.NewFFT(n).Coefficients(nil, x)
	type peak struct {
		k   int
		pow float64
	}
	var peaks []peak
	for k := 1; k < len(coef); k++ {
		p := float64(n) / float64(k)
		if p < float64(minPeriod)*0.9 || p > float64(maxPeriod)*1.1 {
			continue
		}
		pw := cmplx.Abs(coef[k])
		pw *= pw
		// local maxima of the periodogram only
		if k > 1 && cmplx.Abs(coef[k-1])*cmplx.Abs(coef[k-1]) > pw {
			continue
		}
		if k+1 < len(coef) && cmplx.Abs(coef[k+1])*cmplx.Abs(coef[k+1]) > pw {
			continue
		}
		peaks = append(peaks, peak{k, pw})
	}
	sort.Slice(peaks, func(i, j int) bool { return peaks[i].pow > peaks[j].pow })
	if len(peaks) > 5 {
		peaks = peaks[:5]
	}
	var confirmed []Season
	for _, pk := range peaks {
		p := float64(n) / float64(pk.k)
		lo := max(minPeriod, int(math.Floor(p*0.9)))
		hi := min(maxPeriod, int(math.Ceil(p*1.1)))
		lag, r := refineLag(acf, p, lo, hi)
		if lag == 0 || r < seasonMinACF || acf(lag-1) > r+seasonLagSlack || acf(lag+1) > r+seasonLagSlack {
			continue
		}
		// Resolve harmonics: P may be a harmonic of the true cycle kP (a
		// 12-hour peak of a daily series). Take the shortest multiple whose
		// correlation is within seasonHarmonicSlack of the best multiple.
		mult := []int{lag}
		acfs := []float64{r}
		top := r
		for k := 2; k <= 7 && lag*k <= maxPeriod; k++ {
			// allow the multiple to sit one step off
			ml, mr := refineLag(acf, float64(lag*k), lag*k-1, min(lag*k+1, maxPeriod))
			mult = append(mult, ml)
			acfs = append(acfs, mr)
			top = math.Max(top, mr)
		}
		for i := range mult {
			if acfs[i] >= top-seasonHarmonicSlack {
				lag, r = mult[i], acfs[i]
				break
			}
		}
		confirmed = append(confirmed, Season{Period: lag, ACF: r})
	}
	// Several true cycles (hourly spikes within a daily pattern) each
	// give a peak; the longest that correlates nearly as well as the best
	// covers the shorter ones too.
	best := Season{}
	top := 0.0
	for _, c := range confirmed {
		top = math.Max(top, c.ACF)
	}
	for _, c := range confirmed {
		if c.ACF >= top-seasonLongerSlack && c.Period > best.Period {
			best = c
		}
	}
	return best
}

// refineLag returns the lag in lo…hi nearest to p among those whose
// autocorrelation is within seasonLagSlack of the highest: neighbouring lags
// correlate almost equally, and sampling noise should not move a period off
// the frequency the periodogram found.
func refineLag(acf func(int) float64, p float64, lo, hi int) (int, float64) {
	top := math.Inf(-1)
	for l := lo; l <= hi; l++ {
		top = math.Max(top, acf(l))
	}
	lag, r := 0, math.Inf(-1)
	for l := lo; l <= hi; l++ {
		a := acf(l)
		if a >= top-seasonLagSlack && (lag == 0 || math.Abs(float64(l)-p) < math.Abs(float64(lag)-p)) {
			lag, r = l, a
		}
	}
	return lag, r
}

// detrend returns y minus its least-squares line.
func detrend(y []float64) []float64 {
	n := float64(len(y))
	var sx, sy, sxx, sxy float64
	for i, v := range y {
		x := float64(i)
		sx += x
		sy += v
		sxx += x * x
		sxy += x * v
	}
	den := n*sxx - sx*sx
	b := 0.0
	if den != 0 {
		b = (n*sxy - sx*sy) / den
	}
	a := (sy - b*sx) / n
	out := make([]float64, len(y))
	for i, v := range y {
		out[i] = v - a - b*float64(i)
	}
	return out
}
