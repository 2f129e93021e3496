package backtest

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad-autoscaler/plugins/builtin/strategy/target-value/plugin"
	"github.com/hashicorp/nomad-autoscaler/plugins/strategy"
	"github.com/hashicorp/nomad-autoscaler/sdk"

	"github.com/foresight-nomad/foresight/forecast"
	"github.com/foresight-nomad/foresight/orchestrator"
)

// staticPolicy keeps one count.
type staticPolicy struct{ count int }

func (p staticPolicy) decide(observation, int) (int, error) { return p.count, nil }

// reactive is the Nomad Autoscaler on one group: its target-value strategy
// plugin (factor = metric ÷ target, new count = ⌈count × factor⌉, no action
// within the default threshold 0.01 of factor 1), evaluated every minute on
// the last minute's load per running allocation, with the policy handler's
// cooldown after every action.
//
// The metric is the load per instance over what one allocation reserves:
// demand ÷ ready capacity, above 100 % when demand exceeds it, as a
// requests-per-instance metric or a CPU metric that bursts past its
// reservation reads. With capped set it is nomad-apm's CPU used ÷
// allocated, at most 100 %: then the autoscaler cannot see how much demand
// is unmet and grows at most 1/0.7 ≈ 1.43× per cooldown.
type reactive struct {
	strategy strategy.Strategy
	config   map[string]string
	cooldown time.Duration
	capped   bool
	last     time.Time
}

func newReactive(capped bool) *reactive {
	return &reactive{
		strategy: plugin.NewTargetValuePlugin(hclog.NewNullLogger()),
		config:   map[string]string{"target": strconv.FormatFloat(ReactiveTarget, 'f', -1, 64)},
		cooldown: ReactiveCooldown,
		capped:   capped,
	}
}

func (p *reactive) decide(obs observation, count int) (int, error) {
	// The handler leaves cooldown once the clock is after the action's
	// time plus the cooldown. An action is submitted a little after the
	// evaluation tick that computed it, so the tick exactly one cooldown
	// later is still inside it: the next action comes at the tick after.
	if !p.last.IsZero() && obs.now.Sub(p.last) <= p.cooldown {
		return count, nil
	}
	if obs.running == 0 {
		// No running allocation to average over: no metric, no action.
		return count, nil
	}
	metric := obs.utilization
	if p.capped {
		metric = obs.capped
	}
	eval := &sdk.ScalingCheckEvaluation{
		Check:   &sdk.ScalingPolicyCheck{Name: "load", Strategy: &sdk.ScalingPolicyStrategy{Name: "target-value", Config: p.config}},
		Metrics: sdk.TimestampedMetrics{{Timestamp: obs.now, Value: metric}},
		Action:  &sdk.ScalingAction{},
	}
	out, err := p.strategy.Run(eval, int64(count))
	if err != nil {
		return 0, fmt.Errorf("target-value strategy: %w", err)
	}
	if out == nil || out.Action.Direction == sdk.ScaleDirectionNone {
		return count, nil
	}
	want := max(1, min(MaxCount, int(out.Action.Count)))
	if want != count {
		p.last = obs.now
	}
	return want, nil
}

// predictive is Foresight: the forecaster's quantile over the lead time,
// turned into a count by the orchestrator.
type predictive struct {
	cfg     orchestrator.Config
	opt     forecast.Options
	levels  []float64
	q       float64
	refit   int
	history int
	current bool
	// burstQ is the level whose one-step quantile, outrun, marks a burst
	// the forecast did not foresee; the count then holds that burst's
	// demand for burstHold minutes (bursts come in clusters).
	burstQ     float64
	burstHold  int
	nextUpper  float64
	burst      float64
	burstUntil int

	hist     []float64
	fit      *forecast.Fitted
	fittedAt int
	damping  orchestrator.Damping

	// band records the forecast band for each minute (horizon minutes
	// ahead) into lower and upper.
	band         bool
	lower, upper []float64
	// fits counts the refits.
	fits int
}

func newPredictive(opt Options, horizon int) *predictive {
	return &predictive{
		cfg:       orchestratorConfig(opt),
		opt:       forecast.Options{Step: step, Horizon: horizon},
		levels:    []float64{1 - opt.Quantile, opt.Quantile, opt.BurstLevel},
		q:         opt.Quantile,
		refit:     int(opt.Refit / step),
		history:   int(opt.History / step),
		current:   !opt.IgnoreCurrent,
		burstQ:    opt.BurstLevel,
		burstHold: int(opt.BurstHold / step),
		nextUpper: math.Inf(1),
	}
}

func (p *predictive) decide(obs observation, count int) (int, error) {
	p.hist = append(p.hist, obs.demand)
	n := len(p.hist)
	if p.fit == nil || n-p.fittedAt >= p.refit {
		f, err := forecast.Fit(p.hist[max(0, n-p.history):], p.opt)
		if err != nil {
			return 0, fmt.Errorf("forecast: %w", err)
		}
		p.fits++
		p.fit, p.fittedAt = f, n
	} else if err := p.fit.Append(obs.demand); err != nil {
		return 0, fmt.Errorf("forecast: %w", err)
	}
	fc, err := p.fit.Forecast(p.opt.Horizon, p.levels)
	if err != nil {
		return 0, fmt.Errorf("forecast: %w", err)
	}
	if p.band {
		// The forecast for minute n−1+H, made now.
		if i := n - 1 + p.opt.Horizon; i < len(p.upper) {
			h := p.opt.Horizon - 1
			p.lower[i] = fc.Quantiles[0][h] / AllocMHz
			p.upper[i] = fc.Quantiles[1][h] / AllocMHz
		}
	}
	peak, err := orchestrator.PeakDemand(fc, p.q)
	if err != nil {
		return 0, err
	}
	if p.current {
		peak = math.Max(peak, obs.demand)
	}
	if p.burstHold > 0 {
		if obs.demand > p.nextUpper {
			p.burst, p.burstUntil = math.Max(obs.demand, p.burst), n+p.burstHold
		}
		if n < p.burstUntil {
			peak = math.Max(peak, p.burst)
		} else {
			p.burst = 0
		}
		p.nextUpper = fc.Quantiles[2][0]
	}
	d := orchestrator.Decide(p.cfg, orchestrator.Input{
		Group:    namespace + "/" + jobID + "/" + groupName,
		Count:    count,
		Reserved: orchestrator.Resources{CPUMHz: AllocMHz, MemoryMB: AllocMemoryMB},
		Demand:   &orchestrator.Resources{CPUMHz: peak},
		Damping:  p.damping,
		Now:      obs.now,
	})
	if d.Hold != "" {
		return 0, fmt.Errorf("orchestrator holds the group: %s", d.Hold)
	}
	if d.Count != count {
		p.damping.LastScale = obs.now
	}
	return d.Count, nil
}
