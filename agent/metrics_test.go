package agent

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/foresight-nomad/foresight/agent/leader"
	"github.com/foresight-nomad/foresight/internal/wait"
)

// dashboardQueries returns every PromQL expression of a Grafana dashboard:
// panel targets and template variable queries, at any depth.
func dashboardQueries(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s is not JSON: %v", path, err)
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && (k == "expr" || k == "query" || k == "definition") {
					out = append(out, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	return out
}

// TestGrafanaDashboardQueriesExportedMetrics runs a leader with per-group
// metrics on and checks that every metric examples/grafana/foresight.json
// queries is on its /metrics, and that with them off none of a group's is.
func TestGrafanaDashboardQueriesExportedMetrics(t *testing.T) {
	queries := dashboardQueries(t, "../examples/grafana/foresight.json")
	names := map[string]bool{}
	for _, q := range queries {
		for _, n := range regexp.MustCompile(`\bforesight_[a-z_]+\b`).FindAllString(q, -1) {
			names[n] = true
		}
	}
	if len(names) < 10 {
		t.Fatalf("the dashboard queries only %v", names)
	}
	for _, perGroup := range []bool{true, false} {
		t.Run(map[bool]string{true: "per-group metrics on", false: "off"}[perGroup], func(t *testing.T) {
			// Profile rounds of a second, so that the classes are known
			// and decisions steer to one.
			agents, stop := startTestAgents(t, 2, time.Second, func(c *Config) {
				c.Orchestrator = &leader.OrchestratorConfig{DecisionInterval: "1s"}
				c.Telemetry = &leader.TelemetryConfig{PerGroupMetrics: perGroup}
			})
			defer stop()
			var exported map[string]bool
			wait.Until(t, time.Minute, "the leader's first forecasts on /metrics", func() bool {
				exported = map[string]bool{}
				for _, a := range agents {
					for n := range scrape(t, a.HTTPAddr()) {
						exported[n] = true
					}
				}
				return exported["foresight_group_decided_class"] == perGroup && exported["foresight_class_cpu_mhz"] &&
					(!perGroup || exported["foresight_group_cpu_forecast_mhz"] && exported["foresight_group_memory_forecast_bytes"])
			})
			for n := range names {
				if perGroup && !exported[n] {
					t.Errorf("the dashboard queries %s, which the leader does not export", n)
				}
				if !perGroup && strings.HasPrefix(n, "foresight_group_") && exported[n] {
					t.Errorf("%s is exported with per-group metrics off", n)
				}
			}
		})
	}
}

// scrape returns the metric names an agent's /metrics serves.
func scrape(t *testing.T, addr string) map[string]bool {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		out[name] = true
	}
	return out
}
