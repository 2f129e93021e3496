package leader

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/foresight-nomad/foresight/forecast"
	"github.com/foresight-nomad/foresight/profiles"
	"github.com/foresight-nomad/foresight/telemetry"
)

// DefaultMaxGroups bounds the groups whose metrics the leader exports.
const DefaultMaxGroups = 100

// TelemetryConfig is the `telemetry` block: what the leader's /metrics may
// carry. Per-group metrics tell a job's usage to whoever can scrape the
// agent, so they are off unless the operator turns them on.
type TelemetryConfig struct {
	// PerGroupMetrics exports each group's demand, forecast quantiles and
	// decision (default false).
	PerGroupMetrics bool `hcl:"per_group_metrics,optional"`
	// MaxGroups bounds how many groups are exported, the first by key;
	// the others are counted in foresight_leader_group_metrics_dropped.
	MaxGroups *int `hcl:"max_groups,optional"`
}

// TelemetrySettings is the telemetry block resolved.
type TelemetrySettings struct {
	PerGroupMetrics bool
	MaxGroups       int
}

// Resolve applies the block's defaults and checks it; a nil block is all
// defaults.
func (c *TelemetryConfig) Resolve() (TelemetrySettings, error) {
	s := TelemetrySettings{MaxGroups: DefaultMaxGroups}
	if c == nil {
		return s, nil
	}
	s.PerGroupMetrics = c.PerGroupMetrics
	if c.MaxGroups != nil {
		if *c.MaxGroups < 1 {
			return s, fmt.Errorf("telemetry.max_groups must be at least 1, not %d", *c.MaxGroups)
		}
		s.MaxGroups = *c.MaxGroups
	}
	return s, nil
}

// The per-group metrics, and what bounds them. Per group: two demand
// gauges, two forecast gauges × len(exportedLevels) quantiles × two
// horizons, the decided and running counts and the decided class: 21
// series, so at most 21 × max_groups.
const (
	// horizonNext is the forecast's first step; horizonLead its last, the
	// horizon decisions plan for (the orchestrator's lead time plus one
	// decision interval).
	horizonNext = "next"
	horizonLead = "lead"
)

// exportedLevels are the quantiles exported for every group.
var exportedLevels = []float64{0.5, 0.9, 0.95, 0.99}

var (
	descCPUDemand = prometheus.NewDesc("foresight_group_cpu_demand_mhz",
		"A group's CPU demand (sum over its allocations) at the latest step the decision loop forecast from.", []string{"group"}, nil)
	descMemDemand = prometheus.NewDesc("foresight_group_memory_demand_bytes",
		"A group's memory demand (sum over its allocations) at the latest step the decision loop forecast from.", []string{"group"}, nil)
	descCPUForecast = prometheus.NewDesc("foresight_group_cpu_forecast_mhz",
		"The decision loop's forecast of a group's CPU demand: quantile p50…p99, horizon next (one step) or lead (the horizon decisions plan for).", []string{"group", "quantile", "horizon"}, nil)
	descMemForecast = prometheus.NewDesc("foresight_group_memory_forecast_bytes",
		"The decision loop's forecast of a group's memory demand: quantile p50…p99, horizon next (one step) or lead (the horizon decisions plan for).", []string{"group", "quantile", "horizon"}, nil)
	descCount = prometheus.NewDesc("foresight_group_decided_count",
		"The count the last decision wants for a group (written or not).", []string{"group", "mode"}, nil)
	descRunning = prometheus.NewDesc("foresight_group_running_count",
		"A group's count when it was last decided.", []string{"group"}, nil)
	descClass = prometheus.NewDesc("foresight_group_decided_class",
		"1 for the resource class the last decision steers a group to.", []string{"group", "class"}, nil)
	descDropped = prometheus.NewDesc("foresight_leader_group_metrics_dropped",
		"Groups whose metrics are not exported because telemetry.max_groups is reached.", nil, nil)

	descClassCPU = prometheus.NewDesc("foresight_class_cpu_mhz",
		"A resource class's CPU capacity.", []string{"class", "platform"}, nil)
	descClassFreeCPU = prometheus.NewDesc("foresight_class_free_cpu_mhz",
		"A resource class's CPU not reserved by allocations.", []string{"class", "platform"}, nil)
	descClassMem = prometheus.NewDesc("foresight_class_memory_mb",
		"A resource class's memory capacity.", []string{"class", "platform"}, nil)
	descClassFreeMem = prometheus.NewDesc("foresight_class_free_memory_mb",
		"A resource class's memory not reserved by allocations.", []string{"class", "platform"}, nil)
	descClassNodes = prometheus.NewDesc("foresight_class_nodes",
		"Ready, eligible nodes in a resource class.", []string{"class", "platform"}, nil)
)

// groupMetrics keeps what the decision loop last computed for each group
// and exports it on scrape: nothing is fitted for a scrape.
type groupMetrics struct {
	max int

	mu     sync.Mutex
	groups map[string]*groupState
}

// groupState is one group's last forecast and decision.
type groupState struct {
	demand   map[string]float64      // "cpu" or "memory" → latest demand
	forecast map[string][2][]float64 // kind → [next, lead] per exported level
	count    int
	running  int
	mode     string
	class    string
	decided  bool
}

func newGroupMetrics(s TelemetrySettings) *groupMetrics {
	if !s.PerGroupMetrics {
		return nil
	}
	return &groupMetrics{max: cmp.Or(s.MaxGroups, DefaultMaxGroups), groups: map[string]*groupState{}}
}

// kindOf names a metric's family: cpu or memory; "" for others.
func kindOf(metric string) string {
	switch {
	case metric == telemetry.CPUMHz:
		return "cpu"
	case strings.HasPrefix(metric, "mem_"):
		return "memory"
	}
	return ""
}

func (m *groupMetrics) state(group string) *groupState {
	g := m.groups[group]
	if g == nil {
		g = &groupState{demand: map[string]float64{}, forecast: map[string][2][]float64{}}
		m.groups[group] = g
	}
	return g
}

// levels are the quantiles a decision forecast asks for: the one it plans
// for and, when groups are exported, the exported ones. Asking for more
// levels does not change the fit, so the decision is the same either way.
func (m *groupMetrics) levels(q float64) []float64 {
	if m == nil {
		return []float64{q}
	}
	out := []float64{q}
	for _, l := range exportedLevels {
		if math.Abs(l-q) > 1e-9 {
			out = append(out, l)
		}
	}
	return out
}

// forecast records a decision forecast of a group's metric: the last value
// of its history and the exported quantiles at the first and last step.
func (m *groupMetrics) forecast(group, metric string, grid forecast.Grid, fc forecast.Forecast) {
	kind := kindOf(metric)
	if m == nil || kind == "" {
		return
	}
	var pair [2][]float64
	for _, l := range exportedLevels {
		j := slices.IndexFunc(fc.Levels, func(x float64) bool { return math.Abs(x-l) < 1e-9 })
		if j < 0 || len(fc.Quantiles[j]) == 0 {
			return
		}
		qs := fc.Quantiles[j]
		pair[0] = append(pair[0], qs[0])
		pair[1] = append(pair[1], qs[len(qs)-1])
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.state(group)
	g.forecast[kind] = pair
	for i := len(grid.Values) - 1; i >= 0; i-- {
		if !math.IsNaN(grid.Values[i]) {
			g.demand[kind] = grid.Values[i]
			break
		}
	}
}

// decided records a group's decision.
func (m *groupMetrics) decided(group string, count, running int, mode, class string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.state(group)
	g.count, g.running, g.mode, g.class, g.decided = count, running, mode, class, true
}

// keep forgets the groups not in groups: they left the store.
func (m *groupMetrics) keep(groups []string) {
	if m == nil {
		return
	}
	held := make(map[string]bool, len(groups))
	for _, g := range groups {
		held[g] = true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for g := range m.groups {
		if !held[g] {
			delete(m.groups, g)
		}
	}
}

// Describe satisfies prometheus.Collector.
func (m *groupMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCPUDemand, descMemDemand, descCPUForecast, descMemForecast, descCount, descRunning, descClass, descDropped} {
		ch <- d
	}
}

// Collect satisfies prometheus.Collector: the first max groups by key.
func (m *groupMetrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := slices.Sorted(maps.Keys(m.groups))
	dropped := max(0, len(keys)-m.max)
	keys = keys[:len(keys)-dropped]
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.GaugeValue, float64(dropped))
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, k := range keys {
		g := m.groups[k]
		for kind, d := range map[string][2]*prometheus.Desc{"cpu": {descCPUDemand, descCPUForecast}, "memory": {descMemDemand, descMemForecast}} {
			if v, ok := g.demand[kind]; ok {
				gauge(d[0], v, k)
			}
			pair, ok := g.forecast[kind]
			if !ok {
				continue
			}
			for i, l := range exportedLevels {
				gauge(d[1], pair[0][i], k, forecast.QuantileName(l), horizonNext)
				gauge(d[1], pair[1][i], k, forecast.QuantileName(l), horizonLead)
			}
		}
		if g.decided {
			gauge(descCount, float64(g.count), k, g.mode)
			gauge(descRunning, float64(g.running), k)
			if g.class != "" {
				gauge(descClass, 1, k, g.class)
			}
		}
	}
}

// classMetrics exports every resource class's capacity and what
// allocations reserve of it. It carries no job's usage, so it is always on.
type classMetrics struct {
	classes func() []profiles.Class
}

// Describe satisfies prometheus.Collector.
func (c classMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descClassCPU, descClassFreeCPU, descClassMem, descClassFreeMem, descClassNodes} {
		ch <- d
	}
}

// Collect satisfies prometheus.Collector.
func (c classMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, cl := range c.classes() {
		for d, v := range map[*prometheus.Desc]float64{
			descClassCPU: cl.CPUMHz, descClassFreeCPU: cl.FreeCPUMHz, descClassMem: cl.MemoryMB, descClassFreeMem: cl.FreeMemoryMB, descClassNodes: float64(cl.ReadyNodes),
		} {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, cl.ID, cl.Traits.Platform)
		}
	}
}
