package forecast

import (
	"math"
	"slices"
)

// SampleQuantile is the q-quantile (0 ≤ q ≤ 1) of the sample x by linear
// interpolation between order statistics, numpy's default (Hyndman and
// Fan's type 7): with s the sorted sample of n values and h = q·(n−1),
//
//	Q(q) = s[⌊h⌋] + (h − ⌊h⌋)·(s[⌊h⌋+1] − s[⌊h⌋])
//
// so q = 0.5 is the median and q = 1 the maximum. An empty sample has no
// quantile: the answer is NaN, which every comparison rejects, so a caller
// that forgets the case cannot mistake it for a measured zero. x is not
// changed; the sample must hold no NaN.
func SampleQuantile(x []float64, q float64) float64 {
	return SortedQuantile(slices.Sorted(slices.Values(x)), q)
}

// SortedQuantile is SampleQuantile of a sample already sorted in
// ascending order, for callers that ask several quantiles of one sample
// or sort a scratch buffer in place to stay free of garbage.
func SortedQuantile(s []float64, q float64) float64 {
	n := len(s)
	if n == 0 {
		return math.NaN()
	}
	h := q * float64(n-1)
	i := int(math.Floor(h))
	switch {
	case i < 0:
		return s[0]
	case i >= n-1:
		return s[n-1]
	}
	return s[i] + (h-float64(i))*(s[i+1]-s[i])
}
