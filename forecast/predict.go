package forecast

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"
)

// QuantileName is a quantile level's name, as the leader's API keys its
// forecasts: 0.9 is "p90", rounded to 1/100 of a percent so that 0.57 is
// "p57" and not "p56.99999999999999".
func QuantileName(q float64) string {
	return "p" + strconv.FormatFloat(math.Round(q*1e4)/100, 'f', -1, 64)
}

// Result is a forecast on the time grid, with the fitted forecaster that
// made it.
type Result struct {
	Fitted   *Fitted
	Forecast Forecast
	// Times[i] is the start of the i-th forecast step.
	Times []time.Time
	// Events describes the events applied, for -explain.
	Events []string
}

// Predict fits a forecaster to the grid and forecasts opt.Horizon steps
// after its end. With a calendar, past event windows are first taken out of
// the history (divided by, or reduced by, their effect) so that they do not
// distort the fit, and the forecast inside future event windows is scaled
// by the stated or learned effect (point and quantiles alike).
func Predict(g Grid, opt Options, levels []float64, cal *Calendar) (*Result, error) {
	if opt.Step == 0 {
		opt.Step = g.Step
	}
	if opt.Step != g.Step {
		return nil, fmt.Errorf("predict: options step %v differs from the grid step %v", opt.Step, g.Step)
	}
	y := append([]float64(nil), g.Values...)
	var learned map[string]eventEffect
	res := &Result{}
	if cal != nil && len(cal.Events) > 0 {
		P := 0
		if n := len(y); n >= 16 {
			z := append([]float64(nil), y...)
			FillGaps(z, -1)
			minP, maxP := seasonRange(g.Step)
			P = DetectSeason(z, minP, maxP).Period
		}
		learned = learnEffects(cal, g, P)
		for i := range y {
			f, a, _ := cal.effectAt(g.Time(i), g.Step, learned)
			if f > 0 && !math.IsNaN(y[i]) {
				y[i] = (y[i] - a) / f
			}
		}
		names := make([]string, 0, len(learned))
		for n := range learned {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			e := learned[n]
			res.Events = append(res.Events, fmt.Sprintf("%s: learned ×%.3g %+.4g from %d past window(s)", n, e.factor, e.add, e.learned))
		}
	}
	f, err := Fit(y, opt)
	if err != nil {
		return nil, err
	}
	fc, err := f.Forecast(opt.Horizon, levels)
	if err != nil {
		return nil, err
	}
	res.Fitted, res.Forecast = f, fc
	res.Times = make([]time.Time, opt.Horizon)
	n := len(g.Values)
	applied := map[string]bool{}
	for i := range res.Times {
		t := g.Time(n + i)
		res.Times[i] = t
		if cal == nil {
			continue
		}
		for _, e := range cal.Events {
			if _, ok := learned[e.Name]; !e.Known && !ok && e.covers(t, g.Step) && !applied[e.Name] {
				applied[e.Name] = true
				res.Events = append(res.Events, fmt.Sprintf("%s: not applied: no effect given and no earlier window in the history to learn it from", e.Name))
			}
		}
		fac, add, names := cal.effectAt(t, g.Step, learned)
		if len(names) == 0 {
			continue
		}
		fc.Mean[i] = fc.Mean[i]*fac + add
		for j := range fc.Quantiles {
			fc.Quantiles[j][i] = fc.Quantiles[j][i]*fac + add
		}
		for _, nm := range names {
			if !applied[nm] {
				applied[nm] = true
				res.Events = append(res.Events, fmt.Sprintf("%s: applied from %s", nm, t.Format(time.RFC3339)))
			}
		}
	}
	return res, nil
}
