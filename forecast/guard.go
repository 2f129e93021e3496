package forecast

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// Tuning holds the constants of the robust selection. They are properties
// of the method, the same for every series, and were chosen on some
// sources of traces and checked on others (`foresight forecast eval
// -loso`); Options.Tuning nil means DefaultTuning.
type Tuning struct {
	// Margin is the relative gain in validation loss over the default
	// (ETS) that a combination of candidates needs before it gets any
	// weight; it gets all of it at twice the margin, a share in between.
	Margin float64
	// OutlierSigmas is the distance from the running median, in robust
	// standard deviations, that makes a point an outlier for fitting
	// (cleanOutliers); +Inf cleans nothing.
	OutlierSigmas float64
	// ShiftSigmas is the smallest level shift, in robust standard
	// deviations of the noise, that moves the older history to the new
	// level for fitting (levelShifts); +Inf finds none.
	ShiftSigmas float64
	// HalfLife is the age, as a share of the history, at which a
	// validation origin weighs half as much as the newest; +Inf weighs
	// all origins alike.
	HalfLife float64
}

// DefaultTuning returns the tuning Fit uses when Options.Tuning is nil.
func DefaultTuning() Tuning {
	return Tuning{Margin: 0.1, OutlierSigmas: 6, ShiftSigmas: 8, HalfLife: 0.25}
}

// String names the tuning compactly, for tables.
func (t Tuning) String() string {
	return fmt.Sprintf("margin=%g outlier=%g shift=%g halflife=%g", t.Margin, t.OutlierSigmas, t.ShiftSigmas, t.HalfLife)
}

// guardTop is how many of the best candidates of a block are combined.
const guardTop = 3

// BlockChoice says how the forecast of one block of horizon steps was
// made: the default, the validation-weighted combination of the best
// candidates, and how much of the combination was kept.
type BlockChoice struct {
	// From and To are the first and last step of the block (1-based).
	From, To int
	// Default is the default forecaster and DefaultLoss its validation
	// loss (mean absolute error against the series without its outliers,
	// recent origins weighing more), in the series' units.
	Default     string
	DefaultLoss float64
	// Members and Weights are the combination of the best candidates,
	// weighted by inverse squared validation loss, and CombinationLoss
	// its loss.
	Members         []string
	Weights         []float64
	CombinationLoss float64
	// Gain is 1 − CombinationLoss/DefaultLoss.
	Gain float64
	// Share is the combination's weight in the forecast; the default has
	// 1 − Share. 0 means the guard kept the default.
	Share float64
}

// guardSelect is the selection step of Fit (see the package
// documentation), for each block of horizon steps (1, 2, 3–4, 5–8, …):
//
//  1. every candidate c has forecast from every origin o; errs[c] holds its
//     signed errors e_c(o,h) = a_{o+h} − ŷ_c(o,h) against a, the series
//     the models are fitted on (without outliers and shifts): a spike in
//     the actuals is foreseeable by no model and does not decide between
//     them, while a model's own wild forecast counts in full;
//  2. its loss L_c is the weighted mean of |e| over the origins and steps
//     of the block, origin o weighing 2^{−(n−o)/(HalfLife·n)}: recent
//     origins count more, since the newest behaviour of a series is the
//     likeliest to go on;
//  3. the best guardTop candidates are combined with weights ∝ 1/L_c²
//     (combinations weighted by validation error are robust: the M4
//     results), and the combination's loss L_C is taken the same way;
//  4. with the gain g = 1 − L_C/L_D over the default's loss L_D, the
//     combination gets the share λ = clamp((g − m)/m, 0, 1) for the margin
//     m = Margin, and the default 1 − λ: shrinkage toward the default
//     rather than winner-takes-all, since a validation gain smaller than
//     the margin is as likely noise as skill.
//
// Errors of a weighted forecaster are the same weighting of its members'
// errors (the weights sum to 1), so no path is recomputed. It sets final
// to the chosen forecaster's errors (o, h) and returns the forecaster and
// the block choices.
func guardSelect(cands []model, def int, errs [][]float64, final []float64, cnt []int, wo []float64, H int, tun Tuning, scale float64) (model, []BlockChoice) {
	blocks := horizonBlocks(H)
	no := len(wo)
	var choices []BlockChoice
	bw := make([][]float64, len(blocks)) // weights of the candidates, per block
	clear(final)
	loss := make([]float64, len(cands))
	order := make([]int, len(cands))
	for b, blk := range blocks {
		for c := range cands {
			loss[c] = blockLoss(errs, []int{c}, []float64{1}, wo, cnt, H, blk)
			order[c] = c
		}
		sort.SliceStable(order, func(i, j int) bool { return loss[order[i]] < loss[order[j]] })
		top := order[:min(guardTop, len(order))]
		wts := make([]float64, len(top))
		var sum float64
		floor := 1e-12 * (loss[top[len(top)-1]] + 1e-300)
		for i, c := range top {
			wts[i] = 1 / math.Pow(loss[c]+floor, 2)
			sum += wts[i]
		}
		for i := range wts {
			wts[i] /= sum
		}
		lc := blockLoss(errs, top, wts, wo, cnt, H, blk)
		ld := loss[def]
		gain := 0.0
		if ld > 0 {
			gain = 1 - lc/ld
		}
		share := 0.0
		switch {
		case tun.Margin <= 0 && gain > 0:
			share = 1
		case tun.Margin > 0:
			share = math.Max(0, math.Min(1, (gain-tun.Margin)/tun.Margin))
		}
		ch := BlockChoice{From: blk[0] + 1, To: blk[1], Default: cands[def].name(), DefaultLoss: ld * scale,
			CombinationLoss: lc * scale, Gain: gain, Share: share}
		weights := make([]float64, len(cands))
		weights[def] = 1 - share
		for i, c := range top {
			ch.Members = append(ch.Members, cands[c].name())
			ch.Weights = append(ch.Weights, wts[i])
			weights[c] += share * wts[i]
		}
		choices = append(choices, ch)
		bw[b] = weights
		for c, w := range weights {
			if w != 0 {
				addScaledBlock(final, errs[c], w, no, H, blk)
			}
		}
	}
	return newBlend(cands, blocks, bw), choices
}

// blockLoss is the loss of the forecaster Σ_j mw_j · errs[members_j] (one
// candidate, or a combination whose errors are not built): Σ_o w_o Σ_h |e|
// / Σ_o w_o·(known steps) over the steps h of the block whose actual is
// known (origin i knows step h when i < cnt[h]: origins ascend).
func blockLoss(errs [][]float64, members []int, mw, wo []float64, cnt []int, H int, blk [2]int) float64 {
	var s, sw float64
	for i, wi := range wo {
		hi := blk[0]
		for hi < blk[1] && i < cnt[hi] {
			hi++
		}
		var r float64
		if len(members) == 1 {
			for _, v := range errs[members[0]][i*H+blk[0] : i*H+hi] {
				r += math.Abs(v)
			}
		} else {
			for h := blk[0]; h < hi; h++ {
				var v float64
				for j, c := range members {
					v += mw[j] * errs[c][i*H+h]
				}
				r += math.Abs(v)
			}
		}
		s += wi * r
		sw += wi * float64(hi-blk[0])
	}
	if sw == 0 {
		return math.Inf(1)
	}
	return s / sw
}

// addScaledBlock adds w·src to dst over the steps of the block.
func addScaledBlock(dst, src []float64, w float64, no, H int, blk [2]int) {
	for i := 0; i < no; i++ {
		d := dst[i*H+blk[0] : i*H+blk[1]]
		for h, v := range src[i*H+blk[0] : i*H+blk[1]] {
			d[h] += w * v
		}
	}
}

// originWeights returns 2^{−(n−o)/(halfLife·n)} for each origin (1 for
// an infinite half-life).
func originWeights(origins []int, n int, halfLife float64) []float64 {
	w := make([]float64, len(origins))
	for i, o := range origins {
		w[i] = 1
		if halfLife > 0 && !math.IsInf(halfLife, 1) {
			w[i] = math.Exp2(-float64(n-o) / (halfLife * float64(n)))
		}
	}
	return w
}

// blendModel is the forecaster the guard chose: in each block of horizon
// steps a weighted sum of the same base models, the weights of a block
// summing to 1; steps past the last block take its weights. A forecast
// runs each base model once, whatever the number of blocks.
type blendModel struct {
	models []model
	from   []int       // first step (0-based) of each block
	w      [][]float64 // w[b][j]: weight of models[j] in block b
	bufs   [][]float64
}

// newBlend returns the forecaster with weights w[b][c] on cands[c] in
// blocks[b]: the candidate itself when one has all the weight everywhere.
// Neighbouring blocks with the same weights are merged.
func newBlend(cands []model, blocks [][2]int, w [][]float64) model {
	used := make([]bool, len(cands))
	for _, wb := range w {
		for c, v := range wb {
			used[c] = used[c] || v > 1e-9
		}
	}
	m := &blendModel{}
	var idx []int
	for c, u := range used {
		if u {
			idx = append(idx, c)
			m.models = append(m.models, cands[c])
		}
	}
	for b, wb := range w {
		row := make([]float64, len(idx))
		var sum float64
		for j, c := range idx {
			if wb[c] > 1e-9 {
				row[j] = wb[c]
			}
			sum += row[j]
		}
		for j := range row {
			row[j] /= sum
		}
		if n := len(m.w); n > 0 && sameWeights(m.w[n-1], row) {
			continue
		}
		m.from = append(m.from, blocks[b][0])
		m.w = append(m.w, row)
	}
	if len(m.models) == 1 {
		return m.models[0]
	}
	m.bufs = make([][]float64, len(m.models))
	return m
}

func sameWeights(a, b []float64) bool {
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-9 {
			return false
		}
	}
	return true
}

func (m *blendModel) name() string {
	var b strings.Builder
	if len(m.from) > 1 {
		b.WriteString("by horizon: ")
	}
	for k, row := range m.w {
		if k > 0 {
			b.WriteString("; ")
		}
		if len(m.from) > 1 {
			lo := m.from[k] + 1
			switch {
			case k+1 == len(m.from):
				fmt.Fprintf(&b, "steps %d+ ", lo)
			case m.from[k+1] == lo:
				fmt.Fprintf(&b, "step %d ", lo)
			default:
				fmt.Fprintf(&b, "steps %d–%d ", lo, m.from[k+1])
			}
		}
		var parts []string
		for j, v := range row {
			if v > 0 {
				parts = append(parts, fmt.Sprintf("%.2f %s", v, m.models[j].name()))
			}
		}
		if len(parts) == 1 {
			b.WriteString(m.models[slices.IndexFunc(row, func(v float64) bool { return v > 0 })].name())
		} else {
			b.WriteString("blend(" + strings.Join(parts, ", ") + ")")
		}
	}
	return b.String()
}

func (m *blendModel) path(t int, out []float64) {
	for j, mm := range m.models {
		if cap(m.bufs[j]) < len(out) {
			m.bufs[j] = make([]float64, len(out))
		}
		mm.path(t, m.bufs[j][:len(out)])
	}
	k := 0
	for i := range out {
		for k+1 < len(m.from) && i >= m.from[k+1] {
			k++
		}
		var v float64
		for j, w := range m.w[k] {
			if w != 0 {
				v += w * m.bufs[j][i]
			}
		}
		out[i] = v
	}
}

// explainChoices is the Reason of a guarded selection.
func explainChoices(choices []BlockChoice, no int, tun Tuning) string {
	def := choices[0].Default
	kept := true
	for _, c := range choices {
		kept = kept && c.Share == 0
	}
	best := choices[0]
	for _, c := range choices {
		if c.Gain > best.Gain {
			best = c
		}
	}
	if kept {
		return fmt.Sprintf("%s (default): no combination of candidates beat it by the %.0f %% margin on validation over %d origins "+
			"(best: %s better at %s)", def, 100*tun.Margin, no, pct(best.Gain), stepsName(best.From, best.To))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "per block of horizon steps, the default %s shrunk toward the validation-weighted combination of the best %d candidates "+
		"by how much that beat it over %d origins (none below a %.0f %% gain, all from %.0f %%): ", def, guardTop, no, 100*tun.Margin, 200*tun.Margin)
	for i, c := range choices {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s %s (gain %s)", stepsName(c.From, c.To), shareName(c.Share), pct(c.Gain))
	}
	return b.String()
}

func stepsName(from, to int) string {
	if from == to {
		return fmt.Sprintf("step %d", from)
	}
	return fmt.Sprintf("steps %d–%d", from, to)
}

func shareName(s float64) string {
	switch {
	case s == 0:
		return "default"
	case s == 1:
		return "combination"
	default:
		return fmt.Sprintf("%.0f %% combination", 100*s)
	}
}

func pct(g float64) string { return fmt.Sprintf("%.0f %%", 100*g) }
