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
//   - reactive: the Nomad Autoscaler's own target-value strategy plugin on
//     the allocations' mean CPU utilisation (70 % target, evaluated every
//     minute, 5 minutes' cooldown after each action), as nomad-apm reports
//     it: CPU used over CPU allocated, so at most 100 %;
//   - static: the count that holds the trace's 99th percentile, all the time
//     (sized with hindsight, as an operator sizes a fixed deployment);
//   - predictive: Foresight. The forecaster (refitted every Options.Refit on
//     the trailing Options.History, updated in O(1) by Append every minute
//     between refits) forecasts the next lead-time minutes (allocation start
//     plus provisioning plus the decision interval); the orchestrator's
//     Decide turns the peak of the policy quantile over them into a count,
//     with its headroom, steps and cooldowns.
//
// The first Options.Warmup of the trace is history for the forecaster: every
// policy runs through it, and only what follows is scored.
package backtest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
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
	// DefaultQuantile and DefaultHeadroom (with DefaultCooldownDown) were
	// chosen on the development traces, examples/traces, among quantiles
	// 0.95/0.98/0.99, headroom 0.05/0.1 and cooldown_down 5m/10m; they are
	// the same for every trace.
	DefaultQuantile = 0.99
	DefaultHeadroom = 0.05
	// DefaultTargetUtilization of the predictive policy is 1: the forecast
	// quantile and the headroom are its margin.
	DefaultTargetUtilization = 1.0
	// DefaultCooldownUp lets the predictive policy add allocations at
	// every decision; DefaultCooldownDown is the orchestrator's.
	DefaultCooldownUp   = step
	DefaultCooldownDown = orchestrator.DefaultCooldownDown
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
	// Series keeps the per-minute demand, capacity and forecast band in
	// the report, for plots.
	Series bool
}

func (o Options) withDefaults() Options {
	if len(o.Policies) == 0 {
		o.Policies = PolicyNames
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.AllocStart, DefaultAllocStart)
	def(&o.ProvisionDelay, DefaultProvisionDelay)
	def(&o.Warmup, DefaultWarmup)
	def(&o.Refit, DefaultRefit)
	def(&o.History, DefaultHistory)
	def(&o.CooldownUp, DefaultCooldownUp)
	def(&o.CooldownDown, DefaultCooldownDown)
	deff := func(f *float64, v float64) {
		if *f == 0 {
			*f = v
		}
	}
	deff(&o.Quantile, DefaultQuantile)
	deff(&o.Headroom, DefaultHeadroom)
	deff(&o.TargetUtilization, DefaultTargetUtilization)
	return o
}

func (o Options) check() error {
	for _, p := range o.Policies {
		if !validPolicy(p) {
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
	if !(o.TargetUtilization > 0 && o.TargetUtilization <= 1) {
		return fmt.Errorf("target utilisation %g must be in (0, 1]", o.TargetUtilization)
	}
	return nil
}

func validPolicy(p string) bool {
	for _, n := range PolicyNames {
		if p == n {
			return true
		}
	}
	return false
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
	// sim's trace does not say when it started; the forecaster's reader
	// does (the first reading, the same one sim plays at its start).
	obs, err := forecast.ReadCSV(bytes.NewReader(src), forecast.CSVOptions{ValueColumn: column})
	if err != nil {
		return nil, err
	}
	start := obs[0].Time
	// The last point's offset is the span; sim's loop period adds one step.
	span := tr.Period() - tr.Period()/time.Duration(tr.Len())
	return &Trace{tr: tr, start: start, minutes: int(span/step) + 1}, nil
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
	// LeadTime is the predictive policy's horizon.
	LeadTime time.Duration `json:"-"`
	Series   *Series       `json:"-"`
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
	p99 := percentile(raw, 0.99)
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
	// The runs are independent, so they go one after the other and only
	// one cluster is held at a time.
	seen := map[string]bool{}
	for _, name := range opt.Policies {
		if seen[name] {
			continue
		}
		seen[name] = true
		r, err := newRun(t, name, scale, opt, horizon)
		if err != nil {
			return nil, err
		}
		if s := rep.Series; s != nil {
			r.ready = make([]float64, t.minutes)
			s.Ready[name] = r.ready
			if r.pred != nil {
				r.pred.band = true
				s.Lower, s.Upper = nanSlice(t.minutes), nanSlice(t.minutes)
				r.pred.lower, r.pred.upper = s.Lower, s.Upper
			}
		}
		// Minute i's state is what sim measured at its step i; the
		// steps after the warm-up's last one are scored.
		for i := 0; i < t.minutes; i++ {
			switch i {
			case warm:
				r.base = r.cluster.Totals()
			case warm + 1:
				r.scoring = true
			}
			if err := r.minute(i, i == t.minutes-1); err != nil {
				return nil, fmt.Errorf("%s policy at %s: %w", name, r.cluster.Now().Format(time.RFC3339), err)
			}
		}
		rep.Results = append(rep.Results, r.result())
	}
	return rep, nil
}

func nanSlice(n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = math.NaN()
	}
	return s
}

// percentile is the q-quantile of x by linear interpolation (numpy's
// default), NaN-free input assumed.
func percentile(x []float64, q float64) float64 {
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	if len(s) == 0 {
		return math.NaN()
	}
	pos := q * float64(len(s)-1)
	lo := int(pos)
	if lo+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[lo] + (pos-float64(lo))*(s[lo+1]-s[lo])
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
	}
}
