package forecast

import (
	"math"
	"strings"
	"testing"
)

// constModel is a stand-in forecaster for the guard: only its name and
// its validation errors matter.
type constModel string

func (m constModel) name() string              { return string(m) }
func (m constModel) path(_ int, out []float64) { clear(out) }

// TestGuardSelect: the combination of the best candidates gets no share
// below the margin, all of it from twice the margin and a share in between;
// the default keeps the rest, and the reason says which happened.
func TestGuardSelect(t *testing.T) {
	const no, H = 50, 2
	tun := Tuning{Margin: 0.1, HalfLife: math.Inf(1)}
	errsOf := func(scale float64) []float64 {
		e := make([]float64, no*H)
		for i := range e {
			e[i] = scale * float64(1-2*(i%2)) // ±scale
		}
		return e
	}
	cases := []struct {
		name        string
		other       float64 // |error| of the other candidates; the default's is 1
		share       float64 // expected share of the combination
		reasonWords string
	}{
		{"nothing better", 1.2, 0, "(default): no combination"},
		{"better by less than the margin", 0.95, 0, "(default): no combination"},
		{"better by one and a half margins", 1 / (1 + 0.15*1.1), -1, "shrunk toward"}, // a share in (0, 1)
		{"better by far", 0.5, 1, "combination"},
	}
	for _, c := range cases {
		cands := []model{constModel("ETS"), constModel("a"), constModel("b")}
		errs := [][]float64{errsOf(1), errsOf(c.other), errsOf(c.other)}
		cnt := []int{no, no}
		wo := originWeights(make([]int, no), no, tun.HalfLife)
		final := make([]float64, no*H)
		m, choices := guardSelect(cands, 0, errs, final, cnt, wo, H, tun, 1)
		for _, b := range choices {
			switch {
			case c.share >= 0 && math.Abs(b.Share-c.share) > 1e-9:
				t.Errorf("%s: step %d share %v, want %v (gain %v)", c.name, b.From, b.Share, c.share, b.Gain)
			case c.share < 0 && !(b.Share > 0 && b.Share < 1):
				t.Errorf("%s: step %d share %v, want between 0 and 1 (gain %v)", c.name, b.From, b.Share, b.Gain)
			}
			// the forecaster's errors are the shares' mix of the default's
			// and the combination's; the combination weighs its members
			// (both others and the default) by 1/loss²
			comb := (2/c.other + 1) / (2/(c.other*c.other) + 1)
			want := (1-b.Share)*1 + b.Share*comb
			if c.other > 1 {
				want = 1 // the default is the best: the combination holds it
			}
			if got := math.Abs(final[b.From-1]); c.other <= 1 && math.Abs(got-want) > 1e-9 {
				t.Errorf("%s: error of the chosen forecaster %v, want %v", c.name, got, want)
			}
		}
		if r := explainChoices(choices, no, tun); !strings.Contains(r, c.reasonWords) {
			t.Errorf("%s: reason %q lacks %q", c.name, r, c.reasonWords)
		}
		if c.share == 0 && m.name() != "ETS" {
			t.Errorf("%s: model %s, want the default", c.name, m.name())
		}
	}
}
