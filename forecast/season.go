package forecast

import (
	"math"
	"sync"

	"gonum.org/v1/gonum/dsp/fourier"
	"gonum.org/v1/gonum/floats"
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
//	I(k) = |Σ_{t<n} x_t e^{−2πikt/N}|²,  period N/k,
//
// of the series x with its linear trend removed, sampled at the frequencies
// k/N of N = smoothLen(n) ≥ n, the shortest length with no prime factor
// above 7 (x zero-padded to N: the same spectrum on a grid finer by under
// 6.5 % from 100 points on, computed by a fast mixed-radix transform; a
// prime n would cost the transform O(n²)); each is refined to the lag
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
	var bufs pathBuffers
	defer bufs.release()
	x := detrend(bufs.get(n), y)
	var ss float64
	for _, v := range x {
		ss += v * v
	}
	if ss == 0 || math.IsNaN(ss) || math.IsInf(ss, 0) {
		return Season{}
	}
	// Autocorrelations are needed at a few dozen lags only: computing them
	// directly, once each, is cheaper than a padded transform.
	memo := bufs.get(n)
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
		memo[lag] = floats.Dot(x[lag:], x[:n-lag]) / ss
		return memo[lag]
	}
	N := smoothLen(n)
	plan := getFFT(N)
	xp := bufs.get(N)
	copy(xp, x)
	clear(xp[n:])
	coef := plan.Coefficients(nil, xp)
	putFFT(N, plan)
	type peak struct {
		k   int
		pow float64
	}
	var peaks []peak
	for k := 1; k < len(coef); k++ {
		p := float64(N) / float64(k)
		if p < float64(minPeriod)*0.9 || p > float64(maxPeriod)*1.1 {
			continue
		}
		pw := power(coef[k])
		// local maxima of the periodogram only
		if k > 1 && power(coef[k-1]) > pw {
			continue
		}
		if k+1 < len(coef) && power(coef[k+1]) > pw {
			continue
		}
		peaks = append(peaks, peak{k, pw})
	}
	// the five strongest, strongest first (insertion into the first five)
	kept := 0
	for _, pk := range peaks {
		if kept == 5 && pk.pow <= peaks[4].pow {
			continue
		}
		j := min(kept, 4)
		for ; j > 0 && pk.pow > peaks[j-1].pow; j-- {
			peaks[j] = peaks[j-1]
		}
		peaks[j] = pk
		kept = min(kept+1, 5)
	}
	peaks = peaks[:kept]
	var confirmed []Season
	for _, pk := range peaks {
		p := float64(N) / float64(pk.k)
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

// detrend sets dst (of the length of y) to y minus its least-squares line
// and returns it.
func detrend(dst, y []float64) []float64 {
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
	for i, v := range y {
		dst[i] = v - a - b*float64(i)
	}
	return dst
}

// smoothLen returns the smallest N ≥ n whose prime factors are all 2, 3, 5
// or 7. Such numbers are dense (consecutive ones differ by a few per cent
// above a few hundred), and the mixed-radix FFT of such a length costs
// O(N log N).
func smoothLen(n int) int {
	for N := max(n, 1); ; N++ {
		m := N
		for _, p := range [...]int{2, 3, 5, 7} {
			for m%p == 0 {
				m /= p
			}
		}
		if m == 1 {
			return N
		}
	}
}

// fftPlans keeps idle FFT plans by length: building a plan computes its
// twiddle factors, which costs as much as the transform itself, and a plan
// is not safe for concurrent use. Unlike a sync.Pool it survives garbage
// collections; it holds at most fftIdleMax idle plans per length.
var fftPlans struct {
	sync.Mutex
	idle map[int][]*fourier.FFT
}

const fftIdleMax = 4

func getFFT(n int) *fourier.FFT {
	fftPlans.Lock()
	if l := fftPlans.idle[n]; len(l) > 0 {
		f := l[len(l)-1]
		fftPlans.idle[n] = l[:len(l)-1]
		fftPlans.Unlock()
		return f
	}
	fftPlans.Unlock()
	return fourier.NewFFT(n)
}

func putFFT(n int, f *fourier.FFT) {
	fftPlans.Lock()
	defer fftPlans.Unlock()
	if fftPlans.idle == nil {
		fftPlans.idle = map[int][]*fourier.FFT{}
	}
	if len(fftPlans.idle[n]) < fftIdleMax {
		fftPlans.idle[n] = append(fftPlans.idle[n], f)
	}
}

// power is |c|² = re² + im².
func power(c complex128) float64 { return real(c)*real(c) + imag(c)*imag(c) }
