package apm

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad-autoscaler/sdk"

	"github.com/foresight-nomad/foresight/forecast"
)

// fakeLeader serves the series and forecast endpoints from fixed answers
// and records the queries it was asked.
func fakeLeader(t *testing.T) (*httptest.Server, *[]string) {
	t.Helper()
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.URL.Path+"?"+r.URL.RawQuery)
		t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
		switch r.URL.Path {
		case "/v1/group/default/web/web/series":
			json.NewEncoder(w).Encode(map[string]any{"Points": []map[string]any{
				{"Time": t0, "Mean": 100.0, "Slots": 6},
				{"Time": t0.Add(time.Minute), "Mean": 0.0, "Slots": 0},
				{"Time": t0.Add(2 * time.Minute), "Mean": 120.0, "Slots": 6},
			}})
		case "/v1/group/default/web/web/forecast":
			json.NewEncoder(w).Encode(map[string]any{"Model": "snaive(288)", "Points": []map[string]any{
				{"Time": t0.Add(5 * time.Minute), "Quantiles": map[string]float64{"p90": 150}},
				{"Time": t0.Add(10 * time.Minute), "Quantiles": map[string]float64{"p90": 175}},
			}})
		default:
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(map[string]string{"error": `no telemetry for group "` + strings.TrimPrefix(r.URL.Path, "/v1/group/") + `"`})
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &asked
}

func TestAPMUsage(t *testing.T) {
	srv, asked := fakeLeader(t)
	a := New(hclog.NewNullLogger())
	if err := a.SetConfig(map[string]string{"address": srv.URL}); err != nil {
		t.Fatal(err)
	}
	to := time.Date(2026, 1, 5, 10, 3, 30, 0, time.UTC)
	ms, err := a.Query("usage:default/web/web:cpu_mhz", sdk.TimeRange{From: to.Add(-time.Hour), To: to})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Value != 100 || ms[1].Value != 120 {
		t.Fatalf("metrics %+v: want the two steps with data", ms)
	}
	if q := (*asked)[0]; !strings.Contains(q, "metric=cpu_mhz") || !strings.Contains(q, "step=1m0s") ||
		!strings.Contains(q, "from=2026-01-05T09%3A03%3A00Z") || !strings.Contains(q, "to=2026-01-05T10%3A03%3A30Z") {
		t.Fatalf("asked %q", q)
	}
	// An instant query gets the latest point.
	ms, err = a.Query("usage:default/web/web:cpu_mhz", sdk.TimeRange{From: to, To: to})
	if err != nil || len(ms) != 1 || ms[0].Value != 120 {
		t.Fatalf("instant: %+v, %v", ms, err)
	}
	// A fortnight's window is asked at a step the leader serves.
	if _, err := a.Query("usage:default/web/web:cpu_mhz", sdk.TimeRange{From: to.Add(-14 * 24 * time.Hour), To: to}); err != nil {
		t.Fatal(err)
	}
	if q := (*asked)[2]; !strings.Contains(q, "step=2m0s") {
		t.Fatalf("14 days asked as %q", q)
	}
}

func TestAPMForecast(t *testing.T) {
	srv, asked := fakeLeader(t)
	a := New(hclog.NewNullLogger())
	if err := a.SetConfig(map[string]string{"address": srv.URL}); err != nil {
		t.Fatal(err)
	}
	ms, err := a.Query("forecast:default/web/web:cpu_mhz:0.9:10m", sdk.TimeRange{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[1].Value != 175 || !ms[1].Timestamp.Equal(time.Date(2026, 1, 5, 10, 10, 0, 0, time.UTC)) {
		t.Fatalf("metrics %+v", ms)
	}
	if q := (*asked)[0]; !strings.Contains(q, "quantiles=0.9") || !strings.Contains(q, "horizon=10m0s") || !strings.Contains(q, "step=5m0s") {
		t.Fatalf("asked %q", q)
	}
	multi, err := a.QueryMultiple("forecast:default/web/web:cpu_mhz:0.9:10m", sdk.TimeRange{})
	if err != nil || len(multi) != 1 || len(multi[0]) != 2 {
		t.Fatalf("QueryMultiple: %v, %v", multi, err)
	}
}

func TestAPMErrors(t *testing.T) {
	srv, _ := fakeLeader(t)
	a := New(hclog.NewNullLogger())
	if _, err := a.Query("usage:default/web/web:cpu_mhz", sdk.TimeRange{}); err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Fatalf("unconfigured: %v", err)
	}
	if err := a.SetConfig(map[string]string{"address": srv.URL}); err != nil {
		t.Fatal(err)
	}
	_, err := a.Query("taskgroup_avg_cpu/web/web", sdk.TimeRange{})
	if err == nil || !strings.Contains(err.Error(), "accepted forms") {
		t.Fatalf("bad query: %v", err)
	}
	now := time.Now()
	_, err = a.Query("usage:default/nope/nope:cpu_mhz", sdk.TimeRange{From: now.Add(-time.Minute), To: now})
	if err == nil || !strings.Contains(err.Error(), `404: no telemetry for group "default/nope/nope`) {
		t.Fatalf("unknown group: %v", err)
	}
	if err := a.SetConfig(map[string]string{"address": "localhost:7460"}); err == nil {
		t.Fatal("an address without a scheme was taken")
	}
}

func TestQuantileName(t *testing.T) {
	for q, want := range map[float64]string{0.9: "p90", 0.95: "p95", 0.5: "p50", 0.999: "p99.9", 0.57: "p57"} {
		if got := forecast.QuantileName(q); got != want {
			t.Errorf("forecast.QuantileName(%g) = %q, want %q", q, got, want)
		}
	}
}
