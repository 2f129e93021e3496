package leader

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/foresight-nomad/foresight/forecast"
	"github.com/foresight-nomad/foresight/telemetry"
)

func TestGroupMetricsAreBoundedAndOffByDefault(t *testing.T) {
	off, err := (*TelemetryConfig)(nil).Resolve()
	if err != nil || off.PerGroupMetrics || newGroupMetrics(off) != nil {
		t.Fatalf("per-group metrics are not off by default: %+v, %v", off, err)
	}
	zero := 0
	if _, err := (&TelemetryConfig{MaxGroups: &zero}).Resolve(); err == nil || !strings.Contains(err.Error(), "telemetry.max_groups") {
		t.Fatalf("max_groups = 0 accepted (%v)", err)
	}
	two := 2
	s, err := (&TelemetryConfig{PerGroupMetrics: true, MaxGroups: &two}).Resolve()
	if err != nil {
		t.Fatal(err)
	}
	m := newGroupMetrics(s)
	grid := forecast.Grid{Start: time.Unix(0, 0), Step: time.Minute, Values: []float64{1, 2, math.NaN()}}
	fc := forecast.Forecast{Levels: m.levels(0.95), Quantiles: make([][]float64, 4)}
	for j := range fc.Quantiles {
		fc.Quantiles[j] = []float64{10 * fc.Levels[j], 20 * fc.Levels[j]}
	}
	for _, g := range []string{"default/a/a", "default/b/b", "default/c/c"} {
		m.forecast(g, telemetry.CPUMHz, grid, fc)
		m.decided(g, 3, 2, "recommend", "fast")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	// Two groups × (1 demand + 8 forecasts + 2 counts + 1 class), and the
	// dropped count.
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 2*12+1 {
		t.Fatalf("%d series (%v), want %d", n, err, 2*12+1)
	}
	want := `
# HELP foresight_leader_group_metrics_dropped Groups whose metrics are not exported because telemetry.max_groups is reached.
# TYPE foresight_leader_group_metrics_dropped gauge
foresight_leader_group_metrics_dropped 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "foresight_leader_group_metrics_dropped"); err != nil {
		t.Fatal(err)
	}
	// What is left of a group that stays: its history's last value, and
	// each exported quantile at the first and last step.
	m.keep([]string{"default/a/a"})
	want = `
# HELP foresight_group_cpu_demand_mhz A group's CPU demand (sum over its allocations) at the latest step the decision loop forecast from.
# TYPE foresight_group_cpu_demand_mhz gauge
foresight_group_cpu_demand_mhz{group="default/a/a"} 2
# HELP foresight_group_cpu_forecast_mhz The decision loop's forecast of a group's CPU demand: quantile p50…p99, horizon next (one step) or lead (the horizon decisions plan for).
# TYPE foresight_group_cpu_forecast_mhz gauge
foresight_group_cpu_forecast_mhz{group="default/a/a",horizon="lead",quantile="p50"} 10
foresight_group_cpu_forecast_mhz{group="default/a/a",horizon="lead",quantile="p90"} 18
foresight_group_cpu_forecast_mhz{group="default/a/a",horizon="lead",quantile="p95"} 19
foresight_group_cpu_forecast_mhz{group="default/a/a",horizon="lead",quantile="p99"} 19.8
foresight_group_cpu_forecast_mhz{group="default/a/a",horizon="next",quantile="p50"} 5
foresight_group_cpu_forecast_mhz{group="default/a/a",horizon="next",quantile="p90"} 9
foresight_group_cpu_forecast_mhz{group="default/a/a",horizon="next",quantile="p95"} 9.5
foresight_group_cpu_forecast_mhz{group="default/a/a",horizon="next",quantile="p99"} 9.9
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "foresight_group_cpu_demand_mhz", "foresight_group_cpu_forecast_mhz"); err != nil {
		t.Fatal(err)
	}
}
