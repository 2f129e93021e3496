package backtest

import (
	"fmt"
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
// plugin, run every minute on the last minute's mean CPU utilisation, and
// the policy's cooldown after every action.
type reactive struct {
	strategy strategy.Strategy
	config   map[string]string
	cooldown time.Duration
	last     time.Time
}

func newReactive() *reactive {
	return &reactive{
		strategy: plugin.NewTargetValuePlugin(hclog.NewNullLogger()),
		config:   map[string]string{"target": strconv.FormatFloat(ReactiveTarget, 'f', -1, 64)},
		cooldown: ReactiveCooldown,
	}
}

func (p *reactive) decide(obs observation, count int) (int, error) {
	if !p.last.IsZero() && obs.now.Sub(p.last) < p.cooldown {
		return count, nil
	}
	if obs.running == 0 {
		// nomad-apm has no allocation to average over: no metric, no action.
		return count, nil
	}
	eval := &sdk.ScalingCheckEvaluation{
		Check:   &sdk.ScalingPolicyCheck{Name: "cpu", Strategy: &sdk.ScalingPolicyStrategy{Name: "target-value", Config: p.config}},
		Metrics: sdk.TimestampedMetrics{{Timestamp: obs.now, Value: obs.utilization}},
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
		cfg:     orchestratorConfig(opt),
		opt:     forecast.Options{Step: step, Horizon: horizon},
		levels:  []float64{1 - opt.Quantile, opt.Quantile},
		q:       opt.Quantile,
		refit:   int(opt.Refit / step),
		history: int(opt.History / step),
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
