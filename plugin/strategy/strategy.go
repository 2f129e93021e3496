package strategy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad-autoscaler/plugins/base"
	asstrategy "github.com/hashicorp/nomad-autoscaler/plugins/strategy"
	"github.com/hashicorp/nomad-autoscaler/sdk"

	"github.com/foresight-nomad/foresight/forecast"
	"github.com/foresight-nomad/foresight/leaderapi"
	"github.com/foresight-nomad/foresight/plugin/internal/leaderconf"
	"github.com/foresight-nomad/foresight/telemetry"
)

// StrategyName is foresight-strategy's plugin name.
const StrategyName = "foresight-strategy"

// Strategy config keys (a check's `strategy "foresight-strategy" { … }`).
const (
	StrategyTarget       = "target"         // per-instance target of the metric; required
	StrategyHorizon      = "horizon"        // how far ahead to provision; default 15m
	StrategyQuantile     = "quantile"       // forecast quantile; default 0.9
	StrategyMaxScaleUp   = "max_scale_up"   // most instances added per action
	StrategyMaxScaleDown = "max_scale_down" // most instances removed per action
	StrategySource       = "source"         // "metrics" (default) or "leader"
	StrategyStep         = "step"           // forecast grid step; default 1m (metrics), 5m (leader)
	StrategyHistory      = "history"        // metrics kept per check; default 14d
	StrategyRefit        = "refit"          // new data between refits; default 1h; 0: refit on every run
	StrategyGroup        = "group"          // source=leader: namespace/job/group
	StrategyMetric       = "metric"         // source=leader: metric; default cpu_mhz
)

// Sources of the forecast.
const (
	SourceMetrics = "metrics"
	SourceLeader  = "leader"
)

// Defaults of the strategy config.
const (
	defaultHorizon      = 15 * time.Minute
	defaultQuantile     = 0.9
	defaultMetricsStep  = time.Minute
	defaultLeaderStep   = 5 * time.Minute
	defaultHistory      = 14 * 24 * time.Hour
	defaultRefit        = time.Hour
	defaultLeaderMetric = telemetry.CPUMHz
	// minHistorySteps is the least history (in steps, and at least twice
	// the horizon) the strategy forecasts from; with less it behaves like
	// target-value.
	minHistorySteps = 32
)

// Strategy is foresight-strategy: the count is the forecast quantile of
// the check's metric (the group's total demand) over the coming horizon,
// divided by the per-instance target, within the step limits; the policy's
// min and max are left to the autoscaler. With too little history it
// scales on the latest value, as the target-value strategy does, and says
// so in the action's reason.
//
// With source = "metrics" the forecast is made here from the check's own
// metrics, so any APM works: the strategy keeps each check's metrics (up to
// `history`), fits a forecaster to them and appends new points to the
// cached fit until `refit` worth of new data has arrived. With source =
// "leader" it asks the Foresight leader for the group's forecast.
type Strategy struct {
	log hclog.Logger

	mu     sync.Mutex
	checks map[string]*checkState
	// def is the plugin block's leader, for checks that name none.
	def     *leaderapi.Client
	leaders leaderconf.Cache
}

var _ asstrategy.Strategy = (*Strategy)(nil)

// New returns foresight-strategy.
func New(log hclog.Logger) *Strategy {
	return &Strategy{log: log, checks: map[string]*checkState{}}
}

// PluginInfo satisfies base.Base.
func (s *Strategy) PluginInfo() (*base.PluginInfo, error) {
	return &base.PluginInfo{Name: StrategyName, PluginType: sdk.PluginTypeStrategy}, nil
}

// SetConfig satisfies base.Base. The plugin block's config is the default
// for the leader's address; everything else is per check.
func (s *Strategy) SetConfig(config map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if config[leaderconf.Address] != "" || config[leaderconf.ConsulAddress] != "" {
		l, err := leaderconf.New(config)
		if err != nil {
			return err
		}
		s.def = l
	}
	return nil
}

// strategyConfig is a check's parsed strategy config.
type strategyConfig struct {
	target         float64
	horizon        time.Duration
	quantile       float64
	maxUp, maxDown int64 // < 0: no limit
	source         string
	step           time.Duration
	history, refit time.Duration
	group, metric  string
	leader         map[string]string
}

// parseStrategyConfig reads and checks a check's strategy config.
func parseStrategyConfig(c map[string]string) (strategyConfig, error) {
	cfg := strategyConfig{horizon: defaultHorizon, quantile: defaultQuantile, maxUp: -1, maxDown: -1,
		source: SourceMetrics, history: defaultHistory, refit: defaultRefit, metric: defaultLeaderMetric}
	t, ok := c[StrategyTarget]
	if !ok || t == "" {
		return cfg, fmt.Errorf("missing required field `%s` (the per-instance target of the metric)", StrategyTarget)
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || !(v > 0) || math.IsInf(v, 0) {
		return cfg, fmt.Errorf("invalid value for `%s`: %q is not a positive number", StrategyTarget, t)
	}
	cfg.target = v
	if s := c[StrategyQuantile]; s != "" {
		q, err := strconv.ParseFloat(s, 64)
		if err != nil || !(q > 0 && q < 1) {
			return cfg, fmt.Errorf("invalid value for `%s`: %q is not a level between 0 and 1 such as 0.9", StrategyQuantile, s)
		}
		cfg.quantile = q
	}
	durations := []struct {
		key  string
		dst  *time.Duration
		zero bool
	}{{StrategyHorizon, &cfg.horizon, false}, {StrategyStep, &cfg.step, false}, {StrategyHistory, &cfg.history, false}, {StrategyRefit, &cfg.refit, true}}
	for _, d := range durations {
		s := c[d.key]
		if s == "" {
			continue
		}
		v, err := forecast.ParseSpan(s)
		if err != nil || v < 0 || (v == 0 && !d.zero) {
			return cfg, fmt.Errorf("invalid value for `%s`: %q is not a positive duration such as 15m", d.key, s)
		}
		*d.dst = v
	}
	for _, l := range []struct {
		key string
		dst *int64
	}{{StrategyMaxScaleUp, &cfg.maxUp}, {StrategyMaxScaleDown, &cfg.maxDown}} {
		s := c[l.key]
		if s == "" {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return cfg, fmt.Errorf("invalid value for `%s`: %q is not a whole number ≥ 0", l.key, s)
		}
		*l.dst = n
	}
	if s := c[StrategySource]; s != "" {
		cfg.source = s
	}
	switch cfg.source {
	case SourceMetrics:
		if cfg.step == 0 {
			cfg.step = defaultMetricsStep
		}
	case SourceLeader:
		if cfg.step == 0 {
			cfg.step = defaultLeaderStep
		}
		cfg.group = c[StrategyGroup]
		if _, err := telemetry.ParseGroup(cfg.group); err != nil {
			return cfg, fmt.Errorf("source %q needs `%s` = \"<namespace>/<job>/<group>\": %v", SourceLeader, StrategyGroup, err)
		}
		if m := c[StrategyMetric]; m != "" {
			cfg.metric = m
		}
		if err := telemetry.CheckMetric(cfg.metric); err != nil {
			return cfg, fmt.Errorf("invalid value for `%s`: %v", StrategyMetric, err)
		}
		cfg.leader = map[string]string{}
		for _, k := range leaderconf.Keys {
			if v := c[k]; v != "" {
				cfg.leader[k] = v
			}
		}
	default:
		return cfg, fmt.Errorf("invalid value for `%s`: %q (want %q or %q)", StrategySource, cfg.source, SourceMetrics, SourceLeader)
	}
	if cfg.step > cfg.horizon {
		return cfg, fmt.Errorf("`%s` %s is longer than `%s` %s", StrategyStep, cfg.step, StrategyHorizon, cfg.horizon)
	}
	return cfg, nil
}

// steps is the horizon in grid steps.
func (c strategyConfig) steps() int { return int((c.horizon + c.step - 1) / c.step) }

// minHistory is the fewest steps of history the strategy forecasts from.
func (c strategyConfig) minHistory() int { return max(minHistorySteps, 2*c.steps()) }

// demand is what a run scales on: a forecast peak, or the latest value
// when the forecast had to fall back.
type demand struct {
	value    float64
	fallback string // why the latest value is used, "" for a forecast
	detail   string // the model, for the reason
}

// Run satisfies strategy.Runner.
func (s *Strategy) Run(eval *sdk.ScalingCheckEvaluation, count int64) (*sdk.ScalingCheckEvaluation, error) {
	if eval == nil || eval.Check == nil || eval.Check.Strategy == nil {
		return nil, errors.New("foresight-strategy: evaluation without a check strategy")
	}
	if eval.Action == nil {
		eval.Action = &sdk.ScalingAction{}
	}
	cfg, err := parseStrategyConfig(eval.Check.Strategy.Config)
	if err != nil {
		return nil, err
	}
	var d demand
	switch cfg.source {
	case SourceMetrics:
		d, err = s.fromMetrics(checkKey(eval.Check, cfg), eval.Metrics, cfg)
	case SourceLeader:
		d, err = s.fromLeader(eval.Metrics, cfg)
	}
	if err != nil {
		return nil, err
	}
	if !finite(d.value) {
		eval.Action.Direction = sdk.ScaleDirectionNone
		eval.Action.Count = count
		eval.Action.Reason = "no metric to scale on"
		return eval, nil
	}
	newCount := desiredCount(d.value, cfg.target, count, cfg.maxUp, cfg.maxDown)
	s.log.Debug("strategy result", "check", eval.Check.Name, "count", count, "new_count", newCount,
		"demand", d.value, "fallback", d.fallback, "detail", d.detail)
	eval.Action.Count = newCount
	switch {
	case newCount > count:
		eval.Action.Direction = sdk.ScaleDirectionUp
	case newCount < count:
		eval.Action.Direction = sdk.ScaleDirectionDown
	default:
		eval.Action.Direction = sdk.ScaleDirectionNone
	}
	if d.fallback != "" {
		eval.Action.Reason = fmt.Sprintf("%s: scaling on the latest value %.4g like target-value, %d at a target of %g per instance",
			d.fallback, d.value, newCount, cfg.target)
	} else {
		eval.Action.Reason = fmt.Sprintf("forecast %s of %.4g over the next %s (%s) needs %d at a target of %g per instance",
			forecast.QuantileName(cfg.quantile), d.value, cfg.horizon, d.detail, newCount, cfg.target)
	}
	return eval, nil
}

// desiredCount is ⌈demand ÷ target⌉ moved from count by at most maxUp
// instances up and maxDown down (a negative limit: none). The policy's min
// and max are the autoscaler's to apply.
func desiredCount(demand, target float64, count, maxUp, maxDown int64) int64 {
	want := int64(math.Ceil(math.Max(0, demand)/target - 1e-9))
	if maxUp >= 0 && want > count+maxUp {
		want = count + maxUp
	}
	if maxDown >= 0 && want < count-maxDown {
		want = count - maxDown
	}
	return max(want, 0)
}

// latest is the newest finite value of the metrics.
func latest(ms sdk.TimestampedMetrics) (float64, bool) {
	for i := len(ms) - 1; i >= 0; i-- {
		if finite(ms[i].Value) {
			return ms[i].Value, true
		}
	}
	return math.NaN(), false
}

// fromLeader asks the leader for the group's forecast.
func (s *Strategy) fromLeader(ms sdk.TimestampedMetrics, cfg strategyConfig) (demand, error) {
	l, err := s.leader(cfg.leader)
	if err != nil {
		return demand{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), leaderconf.Timeout)
	defer cancel()
	f, err := l.Forecast(ctx, cfg.group, cfg.metric, []float64{cfg.quantile}, cfg.horizon, cfg.step)
	var se *leaderapi.StatusError
	switch {
	case errors.As(err, &se) && (se.Code == 404 || se.Code == 422):
		v, _ := latest(ms)
		return demand{value: v, fallback: "no forecast from the leader (" + se.Msg + ")"}, nil
	case err != nil:
		return demand{}, err
	}
	for _, w := range f.Warnings {
		if strings.Contains(w, "too little history") {
			v, _ := latest(ms)
			return demand{value: v, fallback: "the leader has too little history (" + w + ")"}, nil
		}
	}
	values, err := f.Quantile(cfg.quantile)
	if err != nil {
		return demand{}, err
	}
	return demand{value: peak(values), detail: "leader, " + f.Model}, nil
}

// leader returns the leader client for a check's config, made once; a
// check that names no leader uses the plugin block's.
func (s *Strategy) leader(cfg map[string]string) (*leaderapi.Client, error) {
	if !leaderconf.Names(cfg) {
		s.mu.Lock()
		def := s.def
		s.mu.Unlock()
		if def != nil {
			return def, nil
		}
	}
	return s.leaders.Get(cfg)
}

func peak(v []float64) float64 {
	m := math.Inf(-1)
	for _, x := range v {
		if finite(x) && x > m {
			m = x
		}
	}
	if math.IsInf(m, -1) {
		return math.NaN()
	}
	return m
}

// checkKey names a check's series: the same source, query and step share
// the history and the fit.
func checkKey(c *sdk.ScalingPolicyCheck, cfg strategyConfig) string {
	return c.Source + "\x00" + c.Query + "\x00" + cfg.step.String()
}

// checkState is what the strategy keeps per check: its metrics, as the
// sum and count of the values in each step of the grid (so an APM that
// answers a point a second costs no more than one a minute), and the
// forecaster fitted to them.
type checkState struct {
	mu     sync.Mutex
	first  int64     // grid cell (steps since the Unix epoch) of sums[0]
	sums   []float64 // per cell, from first
	counts []int
	lastT  time.Time // the newest metric held
	last   float64   // and its value

	fit     *forecast.Fitted
	fitEnd  time.Time // start of the first step after what fit holds
	fitH    int       // the horizon fit was calibrated for, in steps
	refitAt int       // Appended() at which to refit
}

// fromMetrics forecasts the check's demand from its own metrics.
func (s *Strategy) fromMetrics(key string, ms sdk.TimestampedMetrics, cfg strategyConfig) (demand, error) {
	s.mu.Lock()
	st, ok := s.checks[key]
	if !ok {
		st = &checkState{}
		s.checks[key] = st
	}
	s.mu.Unlock()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.merge(ms, cfg.step, cfg.history)
	if len(st.sums) == 0 {
		return demand{value: math.NaN()}, nil
	}
	// The newest step may still be filling: the fit holds the complete
	// steps, and the forecast covers the newest step and the horizon.
	g := st.grid(cfg.step)
	if n, want := len(g.Values), cfg.minHistory(); n < want {
		return demand{value: st.last, fallback: fmt.Sprintf("too little history (%d steps of %s, want %d)", n, cfg.step, want)}, nil
	}
	H := cfg.steps() + 1
	if err := st.update(g, H, cfg); err != nil {
		return demand{}, err
	}
	f, err := st.fit.Forecast(H, []float64{cfg.quantile})
	if err != nil {
		return demand{}, err
	}
	return demand{value: peak(f.Quantiles[0]), detail: st.fit.Model}, nil
}

// cellOf is the grid cell of t: whole steps since the Unix epoch, as
// forecast.Resample aligns them.
func cellOf(t time.Time, step time.Duration) int64 {
	ns := t.UnixNano()
	c := ns / int64(step)
	if ns%int64(step) < 0 {
		c--
	}
	return c
}

// merge adds the metrics newer than the newest held and drops the cells
// older than the history window.
func (st *checkState) merge(ms sdk.TimestampedMetrics, step, window time.Duration) {
	if !sort.IsSorted(ms) {
		ms = append(sdk.TimestampedMetrics(nil), ms...)
		sort.Sort(ms)
	}
	keep := max(int64(window/step), 1)
	i := 0
	if len(st.sums) > 0 {
		i = sort.Search(len(ms), func(i int) bool { return ms[i].Timestamp.After(st.lastT) })
	}
	for _, m := range ms[i:] {
		if !finite(m.Value) {
			continue
		}
		c := cellOf(m.Timestamp, step)
		if len(st.sums) == 0 || c-st.first-int64(len(st.sums)) > keep {
			// the first metric, or one after a gap longer than the window
			st.first, st.sums, st.counts = c, st.sums[:0], st.counts[:0]
		}
		for int64(len(st.sums)) <= c-st.first {
			st.sums = append(st.sums, 0)
			st.counts = append(st.counts, 0)
		}
		st.sums[c-st.first] += m.Value
		st.counts[c-st.first]++
		st.lastT, st.last = m.Timestamp, m.Value
	}
	if drop := int64(len(st.sums)) - keep; drop > 0 {
		st.sums, st.counts = st.sums[drop:], st.counts[drop:]
		st.first += drop
		if cap(st.sums) > 2*len(st.sums)+1024 { // let go of the dropped cells now and then
			st.sums, st.counts = append([]float64(nil), st.sums...), append([]int(nil), st.counts...)
		}
	}
}

// grid is the complete cells held: all but the newest, NaN where no metric
// fell.
func (st *checkState) grid(step time.Duration) forecast.Grid {
	n := len(st.sums) - 1
	g := forecast.Grid{Start: time.Unix(0, st.first*int64(step)).UTC(), Step: step, Values: make([]float64, n)}
	for i := range n {
		if st.counts[i] == 0 {
			g.Values[i] = math.NaN()
		} else {
			g.Values[i] = st.sums[i] / float64(st.counts[i])
		}
	}
	return g
}

// update brings the fit up to the end of g: new steps are appended to the
// cached fit, and the forecaster is refitted when refit worth of steps
// arrived since the last fit, when the horizon changed, or when g does not
// continue what the fit holds.
func (st *checkState) update(g forecast.Grid, H int, cfg strategyConfig) error {
	end := g.End()
	if st.fit != nil && st.fitH == H && !end.Before(st.fitEnd) && !st.fitEnd.Before(g.Start) {
		for i := int(st.fitEnd.Sub(g.Start) / g.Step); i < len(g.Values); i++ {
			if err := st.fit.Append(g.Values[i]); err != nil {
				return err
			}
		}
		st.fitEnd = end
		if st.fit.Appended() < st.refitAt {
			return nil
		}
	}
	f, err := forecast.Fit(g.Values, forecast.Options{Step: g.Step, Horizon: H})
	if err != nil {
		return err
	}
	st.fit, st.fitEnd, st.fitH = f, end, H
	st.refitAt = max(1, int(cfg.refit/g.Step))
	if cfg.refit == 0 {
		st.refitAt = 0
	}
	return nil
}

// finite says whether v is a usable number.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
