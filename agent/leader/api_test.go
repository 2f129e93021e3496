package leader

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/foresight-nomad/foresight/agent/leader/store"
	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/internal/nomadacl"
	"github.com/foresight-nomad/foresight/profiles"
	"github.com/foresight-nomad/foresight/telemetry"
)

func TestQuantileNames(t *testing.T) {
	levels, names, err := quantileParam("0.5, 0.57,0.95,0.995")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"p50", "p57", "p95", "p99.5"}; !slices.Equal(names, want) {
		t.Fatalf("names %v, want %v", names, want)
	}
	if len(levels) != 4 || levels[1] != 0.57 {
		t.Fatalf("levels %v", levels)
	}
	for _, bad := range []string{"", "0", "1", "95", "x", "0.5,,0.9"} {
		if _, _, err := quantileParam(bad); err == nil {
			t.Errorf("quantiles %q accepted", bad)
		}
	}
}

func TestLeaderAPIAnswersErrorsAsJSON(t *testing.T) {
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	clk := clock.NewVirtual(start)
	st, err := store.New(store.Config{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 360 { // an hour of 10 s samples from two allocations
		at := start.Add(time.Duration(i) * 10 * time.Second)
		for _, alloc := range []string{"a1", "a2"} {
			if err := st.Append(telemetry.Sample{Time: at, Group: "default/web/web", Alloc: alloc, Task: "srv", Metric: "cpu_mhz", Value: 100 + float64(i%6)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	clk.Advance(time.Hour + time.Minute)
	if err := st.Seal(); err != nil {
		t.Fatal(err)
	}
	prof, err := profiles.New(profiles.Config{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	(&leaderAPI{st: &leaderState{clock: clk, store: st, profiles: prof, decisions: &DecisionLog{}}}).register(mux)
	srv := httptest.NewServer(grantAll(mux))
	defer srv.Close()

	cases := []struct {
		path   string
		status int
		body   string
	}{
		{"/v1/group/default/web/web", http.StatusOK, `"Metrics":["cpu_mhz"]`},
		{"/v1/group/default/nope/nope", http.StatusNotFound, `"error":"no telemetry for group`},
		{"/v1/group/default/web/web/series", http.StatusBadRequest, `metric is required`},
		{"/v1/group/default/web/web/series?metric=cpu_mhz&step=soon", http.StatusBadRequest, `step:`},
		{"/v1/group/default/web/web/series?metric=cpu_mhz&from=2026-01-05T02:00:00Z&to=2026-01-05T01:00:00Z", http.StatusBadRequest, `must be before`},
		{"/v1/group/default/web/web/series?metric=cpu_mhz&step=1m", http.StatusOK, `"Mean":`},
		{"/v1/group/default/web/web/series?metric=psi_io_some", http.StatusNotFound, `"error":`},
		{"/v1/group/default/web/web/forecast?metric=cpu_mhz&quantiles=0.5,2", http.StatusBadRequest, `quantiles:`},
		{"/v1/group/default/web/web/forecast?metric=cpu_mhz&horizon=10m&step=1m&quantiles=0.5,0.95", http.StatusOK, `"p95":`},
		{"/v1/decisions", http.StatusOK, `[]`},
	}
	for _, tc := range cases {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.body) || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("GET %s: %d %s %s, want %d with %q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.status, tc.body)
		}
	}
}

// TestGridOfPlacesPointsByTime checks that history from a coarser tier than
// asked keeps its own spacing, and that missing steps become gaps.
func TestGridOfPlacesPointsByTime(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	pt := func(min int, v float64) telemetry.Point {
		return telemetry.Point{Time: t0.Add(time.Duration(min) * time.Minute), Mean: v, Slots: 1}
	}
	// 5-minute points, one missing, asked for at 1 minute.
	g, err := gridOf([]telemetry.Point{pt(0, 1), pt(5, 2), pt(15, 4)}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if g.Step != 5*time.Minute || !g.Start.Equal(t0) || len(g.Values) != 4 {
		t.Fatalf("grid %v from %v with %d values, want 5m from %v with 4", g.Step, g.Start, len(g.Values), t0)
	}
	if g.Values[0] != 1 || g.Values[1] != 2 || !math.IsNaN(g.Values[2]) || g.Values[3] != 4 {
		t.Fatalf("values %v, want [1 2 NaN 4]", g.Values)
	}
	if _, err := gridOf(nil, time.Minute); err == nil {
		t.Fatal("no points gave a grid")
	}
}

// grantAll serves h to every request as to a management token: for tests
// of what handlers answer, not of who may ask (auth_test.go).
func grantAll(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), aclKey{}, nomadacl.Management())))
	})
}
