// Package backtest answers "what would Foresight have done on this trace":
// it replays a utilisation trace as the demand of one service in sim, on a
// stepped virtual clock, once per scaling policy, and measures each run the
// same way.
//
// The simulated cluster has a fixed external pool and an elastic provider
// pool. Allocations take Options.AllocStart to start and provider nodes take
// Options.ProvisionDelay to join, so capacity beyond the external pool
// arrives late. Every policy sets the group's count through sim's job
// scaling; the same cluster rule then buys or releases provider nodes for
// the allocations the external pool cannot hold. The policies:
//
//   - reactive: the Nomad Autoscaler's own target-value strategy plugin
//     (70 % target, evaluated every minute, 5 minutes' cooldown after each
//     action: the handler acts again at the first evaluation after the
//     cooldown has passed, 6 minutes on) on the load per running allocation: demand ÷ ready capacity,
//     uncapped, as a requests-per-instance metric (or CPU that may burst
//     past its reservation) reads it, so that when demand exceeds capacity
//     the autoscaler sees by how much. Options.ReactiveCapped observes CPU
//     used ÷ allocated instead, at most 100 % (nomad-apm on a CPU that
//     cannot burst): a weaker baseline that grows at most 1/0.7 ≈ 1.43×
//     per cooldown and leaves demand unmet, kept for comparison only;
//   - static: the count that holds the trace's 99th percentile, all the time
//     (sized with hindsight, as an operator sizes a fixed deployment);
//   - predictive: Foresight. The forecaster (refitted every Options.Refit on
//     the trailing Options.History, updated in O(1) by Append every minute
//     between refits) forecasts the next lead-time minutes (allocation start
//     plus provisioning plus the decision interval). The demand handed to
//     the orchestrator's Decide is the peak of the forecast's
//     Options.Quantile over that horizon, or the demand measured now when
//     higher, or, for an hour after demand outran the one-step forecast's
//     99th percentile (a burst the model did not foresee; bursts cluster),
//     that burst's level. Decide turns it into a count with its headroom
//     and target utilisation, changing it at every decision (1-minute
//     cooldowns, no scale-down band): the peak over the lead time already
//     keeps capacity that could not come back in time.
//
// The first Options.Warmup of the trace is history for the forecaster: every
// policy runs through it, and only what follows is scored.
//
// Two measures say what the goals ask of a trace. The hindsight bound (see
// hindsight) is the least resource-hours any policy, even one that knows
// the future, spends within a goal's violation minutes: where it exceeds
// the goal's resource-hours, no policy can meet the goal. Options.Sweep
// plays the predictive policy at every one of Settings: whether any of its
// operating points meets the goals on the trace, in hindsight.
package backtest

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/foresight-nomad/foresight/forecast"
	"github.com/foresight-nomad/foresight/orchestrator"
	"github.com/foresight-nomad/foresight/sim"
)

// Policy names.
const (
	PolicyPredictive = "predictive"
	PolicyReactive   = "reactive"
	PolicyStatic     = "static"
)

// PolicyNames lists every policy, in the order reports show them.
var PolicyNames = []string{PolicyPredictive, PolicyReactive, PolicyStatic}

// The shape of the simulated cluster. Demand is scaled so that the trace's
// 99th percentile needs StaticAllocs allocations; nodes hold NodeAllocs
// allocations each, and the external pool holds half the static size.
const (
	// AllocMHz and AllocMemoryMB are what one allocation reserves.
	AllocMHz      = 500
	AllocMemoryMB = 256
	// StaticAllocs is the count that holds the trace's p99.
	StaticAllocs = 48
	// NodeAllocs is how many allocations one node holds (4 cores × 1000 MHz).
	NodeAllocs = 8
	// ExternalNodes is the size of the fixed external pool.
	ExternalNodes = 3
	// MaxCount bounds every policy's count, MaxCount/NodeAllocs the
	// provider pool.
	MaxCount = 4 * StaticAllocs
)

// step is the decision interval and the sim's workload step.
const step = time.Minute

// Defaults of Options.
const (
	DefaultAllocStart     = time.Minute
	DefaultProvisionDelay = 4 * time.Minute
	DefaultWarmup         = 24 * time.Hour
	DefaultRefit          = time.Hour
	DefaultHistory        = 3 * 24 * time.Hour
	// The predictive policy's settings were chosen on the development
	// traces only (examples/traces: crane input0, input2, input9), among
	// quantile 0.8–0.99, target utilisation 0.8–1, cooldown_down 1m–10m,
	// burst hold off/40m/1h and scale-down band 0–0.2; they are the same
	// for every trace.
	//
	// DefaultQuantile is the forecast quantile whose peak over the lead
	// time (or the current demand, when higher) the count holds, with
	// DefaultHeadroom at DefaultTargetUtilization: ⌈peak × 1.05 / (500 MHz
	// × 0.9)⌉, so that mean utilisation lands near reactive's 0.7.
	DefaultQuantile          = 0.8
	DefaultHeadroom          = 0.05
	DefaultTargetUtilization = 0.9
	// DefaultBurstLevel and DefaultBurstHold: demand above the one-step
	// forecast's 99th percentile is a burst the model did not foresee;
	// bursts come in clusters, so its level is held for an hour.
	DefaultBurstLevel = 0.99
	DefaultBurstHold  = time.Hour
	// DefaultCooldownUp and DefaultCooldownDown let the predictive policy
	// change the count at every decision: the forecast's peak over the
	// lead time already keeps capacity through a dip shorter than the
	// time it takes to bring it back, and a longer hold keeps capacity
	// through troughs (crane input2's hourly cycle).
	DefaultCooldownUp   = step
	DefaultCooldownDown = step
	// DefaultScaleDownBand is, in effect, no scale-down hysteresis (the
	// orchestrator reads 0 as its own default, 0.1): on the development
	// traces the band's 10 % (or 5 %) held capacity that cost 3–8 % more
	// resource-hours for no fewer violations, for the same reason as a
	// long cooldown_down.
	DefaultScaleDownBand = 1e-9
	// Reactive policy, as the Nomad Autoscaler is commonly configured.
	ReactiveTarget   = 70.0
	ReactiveCooldown = 5 * time.Minute
)

// Options configure a backtest. The zero value means every default.
type Options struct {
	// Policies to run; empty means all of them.
	Policies []string
	// AllocStart is how long an allocation takes from placement to running.
	AllocStart time.Duration
	// ProvisionDelay is how long a provider node takes to join.
	ProvisionDelay time.Duration
	// Warmup is the start of the trace that is history only, not scored.
	Warmup time.Duration
	// Refit is how often the predictive policy refits its forecaster, and
	// History how much trailing demand it fits on.
	Refit, History time.Duration
	// Quantile, Headroom, TargetUtilization and the cooldowns are the
	// predictive policy's orchestrator settings.
	Quantile, Headroom, TargetUtilization float64
	CooldownUp, CooldownDown              time.Duration
	// ScaleDownBand is the orchestrator's scale-down hysteresis.
	ScaleDownBand float64
	// MaxStep bounds how many allocations one predictive action adds or
	// removes (default MaxCount: no bound).
	MaxStep int
	// BurstLevel and BurstHold: when demand outruns the one-step
	// forecast's BurstLevel quantile, the predictive policy holds capacity
	// for that demand for BurstHold (negative: never).
	BurstLevel float64
	BurstHold  time.Duration
	// IgnoreCurrent makes the predictive policy size for the forecast
	// alone, not for at least the demand it measures now.
	IgnoreCurrent bool
	// ReactiveCapped makes the reactive policy observe CPU utilisation
	// capped at 100 % (used ÷ allocated, as nomad-apm reports a CPU that
	// cannot burst past its reservation) instead of the load per running
	// allocation, demand ÷ ready capacity, uncapped.
	ReactiveCapped bool
	// Sweep also plays the predictive policy at every one of Settings and
	// scores each against the baselines (Report.Sweep). It needs all
	// three policies.
	Sweep bool
	// Series keeps the per-minute demand, capacity and forecast band in
	// the report, for plots.
	Series bool
}

func (o Options) withDefaults() Options {
	if len(o.Policies) == 0 {
		o.Policies = PolicyNames
	}
	o.AllocStart = cmp.Or(o.AllocStart, DefaultAllocStart)
	o.ProvisionDelay = cmp.Or(o.ProvisionDelay, DefaultProvisionDelay)
	o.Warmup = cmp.Or(o.Warmup, DefaultWarmup)
	o.Refit = cmp.Or(o.Refit, DefaultRefit)
	o.History = cmp.Or(o.History, DefaultHistory)
	o.CooldownUp = cmp.Or(o.CooldownUp, DefaultCooldownUp)
	o.CooldownDown = cmp.Or(o.CooldownDown, DefaultCooldownDown)
	o.MaxStep = cmp.Or(o.MaxStep, MaxCount)
	o.Quantile = cmp.Or(o.Quantile, DefaultQuantile)
	o.BurstLevel = cmp.Or(o.BurstLevel, DefaultBurstLevel)
	o.BurstHold = cmp.Or(o.BurstHold, DefaultBurstHold)
	o.Headroom = cmp.Or(o.Headroom, DefaultHeadroom)
	o.ScaleDownBand = cmp.Or(o.ScaleDownBand, DefaultScaleDownBand)
	o.TargetUtilization = cmp.Or(o.TargetUtilization, DefaultTargetUtilization)
	return o
}

func (o Options) check() error {
	for _, p := range o.Policies {
		if !slices.Contains(PolicyNames, p) {
			return fmt.Errorf("unknown policy %q (want %s or all)", p, strings.Join(PolicyNames, ", "))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"alloc start", o.AllocStart}, {"provision delay", o.ProvisionDelay}, {"warm-up", o.Warmup}, {"refit interval", o.Refit}, {"history", o.History}} {
		if d.v < 0 {
			return fmt.Errorf("%s %v must not be negative", d.name, d.v)
		}
	}
	if o.Refit < step || o.History < step {
		return fmt.Errorf("refit interval and history must be at least %v", step)
	}
	if !(o.Quantile > 0 && o.Quantile < 1) {
		return fmt.Errorf("quantile %g must be in (0, 1)", o.Quantile)
	}
	if o.Headroom < 0 || o.Headroom > 10 {
		return fmt.Errorf("headroom %g must be in [0, 10]", o.Headroom)
	}
	if !(o.BurstLevel > 0 && o.BurstLevel < 1) {
		return fmt.Errorf("burst level %g must be in (0, 1)", o.BurstLevel)
	}
	if o.ScaleDownBand < 0 || o.ScaleDownBand >= 1 {
		return fmt.Errorf("scale-down band %g must be in [0, 1)", o.ScaleDownBand)
	}
	if !(o.TargetUtilization > 0 && o.TargetUtilization <= 1) {
		return fmt.Errorf("target utilisation %g must be in (0, 1]", o.TargetUtilization)
	}
	return nil
}

// ReactiveDescription says what the reactive baseline is and what metric it
// observes.
func ReactiveDescription(capped bool) string {
	metric := "load per running allocation = demand ÷ ready capacity, uncapped"
	if capped {
		metric = "CPU used ÷ allocated, capped at 100 %"
	}
	return fmt.Sprintf("Nomad Autoscaler target-value, target %g %%, every %v, cooldown %v, on %s",
		ReactiveTarget, step, ReactiveCooldown, metric)
}

// Trace is a demand trace read for a backtest.
type Trace struct {
	// Name is the file's base name.
	Name string
	tr   *sim.Trace
	// start is the time of its first point.
	start time.Time
	// minutes is how many whole minutes it spans.
	minutes int
}

// LoadTrace reads a CSV trace as `foresight forecast` does: column names
// the value column (empty: the second), the first column is the time.
func LoadTrace(path, column string) (*Trace, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := ReadTrace(src, column)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t.Name = filepath.Base(path)
	return t, nil
}

// ReadTrace reads a CSV trace from src; see LoadTrace.
func ReadTrace(src []byte, column string) (*Trace, error) {
	tr, err := sim.ReadTrace(bytes.NewReader(src), "", column)
	if err != nil {
		return nil, err
	}
	// The last point's offset is the span; sim's loop period adds one step.
	span := tr.Period() - tr.Period()/time.Duration(tr.Len())
	return &Trace{tr: tr, start: tr.Start(), minutes: int(span/step) + 1}, nil
}

// Duration is how long the trace lasts, in whole minutes.
func (t *Trace) Duration() time.Duration { return time.Duration(t.minutes) * step }

// Result is one policy's score over the scored part of a run.
type Result struct {
	Policy string `json:"policy"`
	// ViolationMinutes counts the minutes when demand exceeded the ready
	// capacity (running allocations).
	ViolationMinutes int `json:"violation_minutes"`
	// UnmetDemandPct is the share of the demand (MHz·minutes) no running
	// allocation could serve.
	UnmetDemandPct float64 `json:"unmet_demand_pct"`
	// ResourceHours is allocation-hours: allocations holding resources on
	// a node (starting or running), summed over time.
	ResourceHours float64 `json:"resource_hours"`
	// ScalingActions counts count changes.
	ScalingActions int `json:"scaling_actions"`
	// MeanUtilization is the demand served over the ready capacity.
	MeanUtilization float64 `json:"mean_utilization"`
	// ProviderNodeHours is the provider nodes held (ready or joining).
	ProviderNodeHours float64 `json:"provider_node_hours"`
}

// Series is the per-minute record of a run, for plots.
type Series struct {
	// Start is the time of minute 0; Scored the first scored minute.
	Start  time.Time
	Scored int
	// Demand in allocations' worth (MHz / AllocMHz).
	Demand []float64
	// Ready is each policy's running allocations, by policy name.
	Ready map[string][]float64
	// Lower and Upper are the predictive policy's forecast band for each
	// minute, made lead-time minutes before it (NaN where none).
	Lower, Upper []float64
}

// Report is the outcome of a backtest.
type Report struct {
	Trace   string   `json:"trace"`
	Minutes int      `json:"minutes"`
	Scored  int      `json:"scored_minutes"`
	Results []Result `json:"results"`
	// Reactive says what the reactive baseline observed, when it ran.
	Reactive string `json:"reactive,omitempty"`
	// LeadTime is the predictive policy's horizon.
	LeadTime time.Duration `json:"-"`
	Series   *Series       `json:"-"`
	// Sweep is every setting of the predictive policy on the same
	// minutes, with Options.Sweep.
	Sweep []Trial `json:"sweep,omitempty"`
	// hind bounds every policy's resource-hours on the scored minutes.
	hind *hindsight
}

// Result returns the named policy's result.
func (r *Report) Result(policy string) (Result, bool) {
	for _, res := range r.Results {
		if res.Policy == policy {
			return res, true
		}
	}
	return Result{}, false
}

// minScored is the least scored time a backtest accepts.
const minScored = time.Hour

// Run backtests every policy of opt on t, each on its own simulated
// cluster, and scores them.
func Run(t *Trace, opt Options) (*Report, error) {
	opt = opt.withDefaults()
	if err := opt.check(); err != nil {
		return nil, err
	}
	warm := int(opt.Warmup / step)
	if t.minutes-warm < int(minScored/step) {
		return nil, fmt.Errorf("trace too short: %v of data, need the %v warm-up plus at least %v to score", t.Duration(), opt.Warmup, minScored)
	}
	raw := make([]float64, t.minutes)
	for i := range raw {
		raw[i] = t.tr.At(time.Duration(i) * step)
	}
	p99 := forecast.SampleQuantile(raw, 0.99)
	if !(p99 > 0) {
		return nil, errors.New("trace has no demand: its 99th percentile is not positive")
	}
	scale := StaticAllocs * AllocMHz / p99
	lead := opt.AllocStart + opt.ProvisionDelay + step
	horizon := int(math.Ceil(float64(lead) / float64(step)))

	rep := &Report{Trace: t.Name, Minutes: t.minutes, Scored: t.minutes - 1 - warm, LeadTime: lead}
	if opt.Series {
		rep.Series = &Series{Start: t.start, Scored: warm + 1, Demand: make([]float64, t.minutes), Ready: map[string][]float64{}}
		for i, v := range raw {
			rep.Series.Demand[i] = v * scale / AllocMHz
		}
	}
	// Scoring starts where the warm-up's last minute ends.
	scored := make([]float64, rep.Scored)
	for i := range scored {
		scored[i] = raw[warm+1+i] * scale
	}
	rep.hind = newHindsight(needs(scored))
	pl := player{t: t, scale: scale, horizon: horizon, warm: warm}
	// The policies go one after the other, so that only one cluster is
	// held at a time; a sweep plays its settings two at a time.
	seen := map[string]bool{}
	for _, name := range opt.Policies {
		if seen[name] {
			continue
		}
		seen[name] = true
		if name == PolicyReactive {
			rep.Reactive = ReactiveDescription(opt.ReactiveCapped)
		}
		r, err := pl.play(name, opt, rep.Series)
		if err != nil {
			return nil, err
		}
		rep.Results = append(rep.Results, r.result())
	}
	if opt.Sweep {
		if !seen[PolicyReactive] || !seen[PolicyStatic] {
			return nil, fmt.Errorf("a sweep compares settings with the %s and %s policies: run all three", PolicyReactive, PolicyStatic)
		}
		if err := rep.sweep(pl, opt); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// player plays one trace under one policy at a time, scoring the minutes
// after the warm-up's last one, warm.
type player struct {
	t       *Trace
	scale   float64
	horizon int
	warm    int
}

// play runs the named policy through the whole trace on its own cluster,
// recording its capacity and forecast band into series when not nil.
func (pl player) play(name string, opt Options, series *Series) (*run, error) {
	r, err := newRun(pl.t, name, pl.scale, opt, pl.horizon)
	if err != nil {
		return nil, err
	}
	if series != nil {
		r.ready = make([]float64, pl.t.minutes)
		series.Ready[name] = r.ready
		if r.pred != nil {
			r.pred.band = true
			series.Lower, series.Upper = nanSlice(pl.t.minutes), nanSlice(pl.t.minutes)
			r.pred.lower, r.pred.upper = series.Lower, series.Upper
		}
	}
	// Minute i's state is what sim measured at its step i; the steps
	// after the warm-up's last one are scored.
	for i := 0; i < pl.t.minutes; i++ {
		switch i {
		case pl.warm:
			r.base = r.cluster.Totals()
		case pl.warm + 1:
			r.scoring = true
		}
		if err := r.minute(i, i == pl.t.minutes-1); err != nil {
			return nil, fmt.Errorf("%s policy at %s: %w", name, r.cluster.Now().Format(time.RFC3339), err)
		}
	}
	return r, nil
}

func nanSlice(n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = math.NaN()
	}
	return s
}

// orchestratorConfig is the predictive policy's operator config.
func orchestratorConfig(opt Options) orchestrator.Config {
	return orchestrator.Config{
		Mode:              orchestrator.ModeEnforce,
		MinCount:          1,
		MaxCount:          MaxCount,
		Quantile:          opt.Quantile,
		Headroom:          opt.Headroom,
		TargetUtilization: opt.TargetUtilization,
		CooldownUp:        opt.CooldownUp,
		CooldownDown:      opt.CooldownDown,
		MaxStep:           opt.MaxStep,
		ScaleDownBand:     opt.ScaleDownBand,
	}
}
