package sim

import (
	"bytes"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestMetricsServeNomadsAllocationGauges reads /v1/metrics in both formats
// as Prometheus and the official client do: per task, CPU ticks that add
// up to what the allocation stats say, and Nomad's labels.
func TestMetricsServeNomadsAllocationGauges(t *testing.T) {
	c, client := startCluster(t, "testdata/small.hcl")
	c.Advance(time.Minute)
	allocs, _, err := client.Allocations().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := 0.0
	running := 0
	for _, a := range allocs {
		if a.ClientStatus != api.AllocClientStatusRunning {
			continue
		}
		running++
		st, err := c.AllocStats(a.ID)
		if err != nil {
			t.Fatal(err)
		}
		want += st.ResourceUsage.CpuStats.TotalTicks
	}
	if running == 0 || want == 0 {
		t.Fatalf("%d running allocations using %v MHz: nothing to measure", running, want)
	}

	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/metrics?format=prometheus")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("not the Prometheus text format: %v\n%s", err, body)
	}
	ticks := families["nomad_client_allocs_cpu_total_ticks"]
	if ticks == nil || families["nomad_client_allocs_memory_rss"] == nil {
		t.Fatalf("families %v lack Nomad's allocation gauges", slices.Sorted(maps.Keys(families)))
	}
	got := 0.0
	for _, m := range ticks.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for _, name := range []string{"alloc_id", "job", "namespace", "task", "task_group"} {
			if labels[name] == "" {
				t.Fatalf("a gauge without %s: %v", name, labels)
			}
		}
		if labels["job"] != "app" || labels["task_group"] != "app" || labels["namespace"] != "default" {
			t.Fatalf("labels %v", labels)
		}
		got += m.GetGauge().GetValue()
	}
	if math.Abs(got-want) > 1e-6*want {
		t.Fatalf("total_ticks add up to %v, the allocation stats to %v", got, want)
	}

	// JSON, as `nomad operator metrics` reads it.
	summary, _, err := client.Operator().MetricsSummary(nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range summary.Gauges {
		if g.Name == "nomad.client.allocs.cpu.total_ticks" && g.DisplayLabels["task_group"] == "app" {
			n++
		}
	}
	if n != len(ticks.Metric) || summary.Timestamp == "" {
		t.Fatalf("JSON has %d total_ticks gauges (Prometheus %d), timestamp %q", n, len(ticks.Metric), summary.Timestamp)
	}
}
