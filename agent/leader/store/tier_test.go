package store

import (
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// checkTier verifies a tier's invariants and returns its points by time.
func checkTier(t *testing.T, tr *tier) map[int64]point {
	t.Helper()
	got := map[int64]point{}
	prevHi := int64(math.MinInt64)
	for i, r := range tr.refs {
		if r.lo > r.hi || r.lo <= prevHi {
			t.Fatalf("chunk %d spans %d..%d after %d", i, r.lo, r.hi, prevHi)
		}
		if int(r.points) > tr.perChunk {
			t.Fatalf("chunk %d has %d points, more than %d", i, r.points, tr.perChunk)
		}
		prevHi = r.hi
		c := tr.chunk(i)
		rows, err := readAll(c)
		if err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		if len(rows) != int(r.points) || rows[0].t != r.lo || rows[len(rows)-1].t != r.hi {
			t.Fatalf("chunk %d: %d rows from %d to %d, ref says %d from %d to %d", i, len(rows), rows[0].t, rows[len(rows)-1].t, r.points, r.lo, r.hi)
		}
	}
	pts, err := tr.points(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pts {
		if i > 0 && p.t <= pts[i-1].t {
			t.Fatalf("points out of order at %d: %d after %d", i, p.t, pts[i-1].t)
		}
		got[p.t] = p
	}
	return got
}

// TestTierUpdateMatchesAModel changes and inserts random sets of points
// anywhere in a tier (before its first chunk, in chunks, in gaps, in the
// head, after its end) and checks the result against a map.
func TestTierUpdateMatchesAModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for round := range 200 {
		cols := 1 + rng.IntN(2)*2 // 1 or 3
		tr := newTier(10, math.MaxInt64/2, cols, 0, 2+rng.IntN(8))
		model := map[int64]point{}
		var at int64 = 1000
		for range rng.IntN(60) {
			at += 10 * int64(1+rng.IntN(3))
			p := point{t: at, sum: float64(rng.IntN(100)), count: 1}
			p.max = p.sum
			if cols == 3 {
				p.count, p.max = float64(1+rng.IntN(6)), p.sum+1
			}
			if err := tr.appendPoint(p); err != nil {
				t.Fatal(err)
			}
			model[at] = p
		}
		for range 3 {
			set := map[int64]bool{}
			for range 1 + rng.IntN(12) {
				set[10*int64(rng.IntN(int(at/10)+5))] = true
			}
			ts := slices.Sorted(maps.Keys(set))
			err := tr.update(ts, func(ti int64, old point, ok bool) point {
				if want, had := model[ti]; had != ok || (ok && old != want) {
					t.Fatalf("round %d: update at %d got old %+v (%v), model has %+v (%v)", round, ti, old, ok, want, had)
				}
				p := point{t: ti, sum: old.sum + 1000, count: old.count + 1, max: old.max + 1000}
				if cols == 1 {
					p.count, p.max = 1, p.sum
				}
				model[ti] = p
				return p
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := checkTier(t, tr); !maps.Equal(got, model) {
				t.Fatalf("round %d: tier holds %d points, model %d:\n%v\n%v", round, len(got), len(model), got, model)
			}
		}
	}
}

func TestTierDropBeforeReclaimsBytes(t *testing.T) {
	tr := newTier(10, 1000, 1, 0, 4)
	for i := range 40 {
		if err := tr.appendPoint(point{t: int64(i) * 10, sum: float64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	before := tr.size()
	if n := tr.dropBefore(200); n != 5 {
		t.Fatalf("dropped %d chunks before 200, want 5", n)
	}
	if tr.size() >= before {
		t.Errorf("size %d after dropping half, was %d", tr.size(), before)
	}
	if tr.holds(190, 0) || !tr.holds(200, 0) {
		t.Errorf("holds: lost is %d, want 190", tr.lost)
	}
	got := checkTier(t, tr)
	if len(got) != 20 {
		t.Errorf("%d points left, want 20", len(got))
	}
}

func TestRoundSig(t *testing.T) {
	for _, tc := range []struct {
		v      float64
		digits int
		want   float64
	}{
		{1234.5, 4, 1235},
		{1234.5, 3, 1230},
		{0.012345, 3, 0.0123},
		{-98765, 2, -99000},
		{9.999, 3, 10},
		{1.5e9 + 12345, 4, 1.5e9},
		{42, 0, 42},
		{0, 3, 0},
	} {
		if got := roundSig(tc.v, tc.digits); got != tc.want {
			t.Errorf("roundSig(%v, %d) = %v, want %v", tc.v, tc.digits, got, tc.want)
		}
	}
}
