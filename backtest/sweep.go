package backtest

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

// Setting is one operating point of the predictive policy: the target
// utilisation its count is sized at, and how long it holds a burst's level
// (negative: never). The rest of Options stays as given.
type Setting struct {
	TargetUtilization float64       `json:"target_utilization"`
	BurstHold         time.Duration `json:"burst_hold"`
}

func (s Setting) String() string {
	hold := "no burst hold"
	if s.BurstHold > 0 {
		hold = "burst hold " + s.BurstHold.String()
	}
	return fmt.Sprintf("target utilisation %.2f, %s", s.TargetUtilization, hold)
}

// Settings are the operating points a sweep tries: from the most capacity
// per unit of forecast demand to the least, with and without the burst
// hold. The default setting is one of them.
var Settings = func() []Setting {
	var out []Setting
	for _, tu := range []float64{0.6, 0.7, 0.8, 0.9, 1.0} {
		for _, hold := range []time.Duration{DefaultBurstHold, -1} {
			out = append(out, Setting{TargetUtilization: tu, BurstHold: hold})
		}
	}
	return out
}()

func (s Setting) apply(opt Options) Options {
	opt.TargetUtilization, opt.BurstHold = s.TargetUtilization, s.BurstHold
	return opt
}

// Trial is one setting of a sweep, scored on the same minutes as the
// baselines, and the goals it meets there. IsDefault marks the setting the
// predictive policy ran with.
type Trial struct {
	Setting   Setting `json:"setting"`
	Result    Result  `json:"result"`
	Reactive  bool    `json:"meets_vs_reactive"`
	Static    bool    `json:"meets_vs_static"`
	IsDefault bool    `json:"default,omitempty"`
}

// sweep plays every setting through the trace, two at a time, and records
// what each scores against the report's baselines; the setting the
// predictive policy ran with (opt's) keeps that run's result. It is
// hindsight: it shows the trade-off Foresight's settings span on the trace
// and whether any of them meets the goals, not a setting that could have
// been chosen beforehand.
func (rep *Report) sweep(pl player, opt Options) error {
	ran := Setting{opt.TargetUtilization, opt.BurstHold}
	pr, havePr := rep.Result(PolicyPredictive)
	out := make([]Result, len(Settings))
	errs := make([]error, len(Settings))
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(1, min(2, runtime.GOMAXPROCS(0))))
	for i, s := range Settings {
		if havePr && s == ran {
			out[i] = pr
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r, err := pl.play(PolicyPredictive, s.apply(opt), nil)
			if err != nil {
				errs[i] = fmt.Errorf("setting %v: %w", s, err)
				return
			}
			out[i] = r.result()
		}()
	}
	wg.Wait()
	for i, s := range Settings {
		if errs[i] != nil {
			return errs[i]
		}
		t := Trial{Setting: s, Result: out[i], IsDefault: s == ran}
		for _, g := range rep.goalsOf(out[i]) {
			switch g.Name {
			case goalReactive:
				t.Reactive = g.Met
			case goalStatic:
				t.Static = g.Met
			}
		}
		rep.Sweep = append(rep.Sweep, t)
	}
	return nil
}
