package forecast

import (
	"math"
	"slices"
	"testing"
)

func TestSampleQuantile(t *testing.T) {
	for _, c := range []struct {
		name string
		x    []float64
		q    float64
		want float64
	}{
		{"numpy's linear interpolation", []float64{1, 2, 3, 4}, 0.95, 3.85},
		{"unsorted input", []float64{4, 1, 3, 2}, 0.95, 3.85},
		{"median of an even sample", []float64{1, 2, 3, 10}, 0.5, 2.5},
		{"median of an odd sample", []float64{5, 1, 3}, 0.5, 3},
		{"minimum", []float64{3, 1, 2}, 0, 1},
		{"maximum", []float64{3, 1, 2}, 1, 3},
		{"one value", []float64{7}, 0.99, 7},
		{"empty: no quantile", nil, 0.5, math.NaN()},
	} {
		t.Run(c.name, func(t *testing.T) {
			x := slices.Clone(c.x)
			got := SampleQuantile(x, c.q)
			if math.IsNaN(c.want) != math.IsNaN(got) || !math.IsNaN(c.want) && math.Abs(got-c.want) > 1e-12 {
				t.Fatalf("SampleQuantile(%v, %v) = %v, want %v", c.x, c.q, got, c.want)
			}
			if !slices.Equal(x, c.x) {
				t.Fatalf("the sample was changed: %v, was %v", x, c.x)
			}
		})
	}
}
