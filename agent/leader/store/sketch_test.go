package store

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// Every quantile is within the sketch's relative accuracy of a value of the
// right rank, for data spanning many orders of magnitude, zeros included.
func TestSketchQuantilesAreWithinAlpha(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	var s sketch
	var vs []float64
	for i := range 20_000 {
		v := math.Exp(rng.NormFloat64()*3 + 10)
		if i%50 == 0 {
			v = 0
		}
		vs = append(vs, v)
		s.add(v, 1)
	}
	slices.Sort(vs)
	for _, q := range []float64{0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1} {
		want := vs[int(q*float64(len(vs)-1))]
		got := s.quantile(q)
		if math.Abs(got-want) > sketchAlpha*want {
			t.Errorf("q%v = %v, want %v within %v%%", q, got, want, sketchAlpha*100)
		}
	}
}

// Merging the sketches of windows gives the sketch of all their values.
func TestSketchMergeEqualsOneSketch(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	var whole, a, b sketch
	for i := range 5000 {
		v := rng.ExpFloat64() * 1e6
		whole.add(v, 1)
		if i%3 == 0 {
			a.add(v, 1)
		} else {
			b.add(v, 1)
		}
	}
	var merged sketch
	merged.merge(&a)
	merged.merge(&b)
	for _, q := range []float64{0, 0.5, 0.95, 1} {
		if merged.quantile(q) != whole.quantile(q) {
			t.Errorf("q%v: merged %v, whole %v", q, merged.quantile(q), whole.quantile(q))
		}
	}
}

func TestDistributionWindows(t *testing.T) {
	d := distribution{step: 3600_000}
	d.add(7200_000+5, 10)    // window 2
	d.add(3600_000+5, 20)    // window 1, inserted before
	d.add(7200_000+9, 30)    // window 2 again
	d.add(10*3600_000+1, 40) // window 10
	if len(d.windows) != 3 || d.windows[0].start != 3600_000 {
		t.Fatalf("windows = %+v", d.windows)
	}
	if got := d.over(7200_000, 8*3600_000); got.n != 2 {
		t.Errorf("windows overlapping [2h, 8h): %d values, want 2", got.n)
	}
	before := d.bytes
	if n := d.dropBefore(3 * 3600_000); n != 2 || d.bytes >= before {
		t.Errorf("dropBefore(3h) dropped %d windows, bytes %d → %d", n, before, d.bytes)
	}
	if end, ok := d.oldest(); !ok || end != 11*3600_000 {
		t.Errorf("oldest window ends at %d, want 11h", end)
	}
}
