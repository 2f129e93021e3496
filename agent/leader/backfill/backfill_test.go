package backfill

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/foresight-nomad/foresight/agent/leader/store"
	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/telemetry"
)

var now = time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)

const group = "default/web/web"

// fakeAPI answers query_range as Prometheus does, for a group whose demand
// is 100 MHz (mean) and 150 (peak) in every bucket, under the job label
// jobLabel; every other query gets an empty matrix.
type fakeAPI struct {
	jobLabel string
	mu       sync.Mutex
	queries  []string
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	q := r.Form.Get("query")
	f.mu.Lock()
	f.queries = append(f.queries, q)
	f.mu.Unlock()
	start, _ := strconv.ParseFloat(r.Form.Get("start"), 64)
	end, _ := strconv.ParseFloat(r.Form.Get("end"), 64)
	step, _ := time.ParseDuration(r.Form.Get("step") + "s")
	if step == 0 {
		step, _ = time.ParseDuration(r.Form.Get("step"))
	}
	result := []any{}
	if strings.Contains(q, f.jobLabel+`="web"`) && strings.Contains(q, `task_group="web"`) && strings.HasPrefix(q, "sum(") {
		v := "100"
		if strings.Contains(q, "max_over_time") {
			v = "150"
		}
		var values [][]any
		for t := start; t <= end; t += step.Seconds() {
			values = append(values, []any{t, v})
		}
		result = append(result, map[string]any{"metric": map[string]string{}, "values": values})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"resultType": "matrix", "result": result}})
}

func newStore(t *testing.T, clk clock.Clock) *store.Store {
	t.Helper()
	st, err := store.New(store.Config{Clock: clk, ReplayWindow: 14 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func newBackfiller(t *testing.T, addr string, st Store, clk clock.Clock, log hclog.Logger) *Backfiller {
	t.Helper()
	cfg, err := (&Config{Address: addr, History: "72h"}).Resolve()
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(cfg, st, clk, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSeriesIsBackfilledPerTierUpToTheAgents(t *testing.T) {
	for _, label := range []string{"exported_job", "job"} {
		t.Run(label, func(t *testing.T) {
			api := &fakeAPI{jobLabel: label}
			srv := httptest.NewServer(api)
			defer srv.Close()
			clk := clock.NewVirtual(now)
			st := newStore(t, clk)
			// The agents' first sample: an hour ago.
			agentsFrom := now.Add(-time.Hour)
			if err := st.Append(telemetry.Sample{Time: agentsFrom, Group: group, Alloc: "a1", Task: "web", Metric: telemetry.CPUMHz, Value: 300}); err != nil {
				t.Fatal(err)
			}
			b := newBackfiller(t, srv.URL, st, clk, nil)
			n, err := b.Series(context.Background(), group, telemetry.CPUMHz)
			if err != nil {
				t.Fatal(err)
			}
			// 1-minute tier: 72 h less the agents' hour; 5-minute tier: the same.
			if want := 71*60 + 71*12; n != want {
				t.Fatalf("backfilled %d points, want %d", n, want)
			}
			pts, err := st.Series(group, telemetry.CPUMHz, now.Add(-48*time.Hour), now.Add(-2*time.Hour), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if len(pts) != 46*60 {
				t.Fatalf("%d 1-minute points, want %d", len(pts), 46*60)
			}
			for _, p := range pts {
				if p.Mean != 100 || !p.HasMax || p.Max != 150 {
					t.Fatalf("at %s: mean %v max %v (%v), want 100 and 150", p.Time, p.Mean, p.Max, p.HasMax)
				}
			}
			spans, _, err := st.Provenance(group, telemetry.CPUMHz, now.Add(-72*time.Hour), now)
			if err != nil || len(spans) != 2 || spans[0].Source != Source || spans[1].Source != store.SourceAgents {
				t.Fatalf("provenance %+v, %v", spans, err)
			}
			for _, q := range api.queries {
				if !strings.Contains(q, `namespace=~"default|"`) || !strings.Contains(q, "nomad_client_allocs_cpu_total_ticks") {
					t.Fatalf("query %s", q)
				}
			}
		})
	}
}

func TestUnmeasuredMetricsAreNotQueried(t *testing.T) {
	api := &fakeAPI{jobLabel: "exported_job"}
	srv := httptest.NewServer(api)
	defer srv.Close()
	clk := clock.NewVirtual(now)
	st := newStore(t, clk)
	for _, m := range []string{telemetry.CPUMHz, telemetry.NetRxBPS} {
		if err := st.Append(telemetry.Sample{Time: now, Group: group, Alloc: "a1", Task: "web", Metric: m, Value: 1}); err != nil {
			t.Fatal(err)
		}
	}
	b := newBackfiller(t, srv.URL, st, clk, nil)
	b.Pass(context.Background())
	if len(api.queries) != 0 {
		t.Fatalf("queried before the series settled: %v", api.queries)
	}
	clk.Advance(settle)
	b.Pass(context.Background())
	for _, q := range api.queries {
		if !strings.Contains(q, "cpu_total_ticks") {
			t.Fatalf("queried %s for a metric Nomad does not measure", q)
		}
	}
	if len(api.queries) == 0 {
		t.Fatal("cpu_mhz was not backfilled")
	}
	// Done for the term: no second query.
	n := len(api.queries)
	clk.Advance(time.Hour)
	b.Pass(context.Background())
	if len(api.queries) != n {
		t.Fatalf("backfilled twice in one term")
	}
}

func TestFailuresAreLoggedOnceAndRetried(t *testing.T) {
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<html>not an API</html>")
	}))
	defer garbage.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	for name, addr := range map[string]string{"garbage": garbage.URL, "down": down.URL} {
		t.Run(name, func(t *testing.T) {
			clk := clock.NewVirtual(now)
			st := newStore(t, clk)
			for _, g := range []string{group, "default/api/api", "ops/db/db"} {
				if err := st.Append(telemetry.Sample{Time: now, Group: g, Alloc: "a1", Task: "t", Metric: telemetry.CPUMHz, Value: 1}); err != nil {
					t.Fatal(err)
				}
			}
			var logs bytes.Buffer
			b := newBackfiller(t, addr, st, clk, hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info}))
			b.Pass(context.Background()) // sees the series
			clk.Advance(settle)
			for range 3 {
				b.Pass(context.Background())
				clk.Advance(retryAfter)
			}
			if got := strings.Count(logs.String(), "cannot read history from Prometheus"); got != 1 {
				t.Fatalf("the failure was logged %d times, want once:\n%s", got, logs.String())
			}
			if got := testutil.ToFloat64(b.failures); got != 9 {
				t.Fatalf("%v failures counted, want 3 series × 3 passes", got)
			}
			// Nothing was written: the agents' history stands alone.
			pts, err := st.Series(group, telemetry.CPUMHz, now.Add(-72*time.Hour), clk.Now(), 5*time.Minute)
			if err != nil || len(pts) != 1 || math.Abs(pts[0].Mean-1) > 1e-9 {
				t.Fatalf("after failures the series is %+v (%v)", pts, err)
			}
		})
	}
}

func TestConfigIsChecked(t *testing.T) {
	t.Setenv(EnvAddress, "")
	cases := []struct {
		name string
		cfg  *Config
		env  string
		want string // the resolved address, or "error"
	}{
		{"off by default", nil, "", ""},
		{"from the environment", nil, "http://prom:9090", "http://prom:9090"},
		{"the file wins", &Config{Address: "https://mimir/prometheus"}, "http://prom:9090", "https://mimir/prometheus"},
		{"not a URL", &Config{Address: "prom:9090"}, "", "error"},
		{"bad job label", &Config{Address: "http://p", JobLabel: "nomad_job"}, "", "error"},
		{"bad history", &Config{Address: "http://p", History: "14d"}, "", "error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(EnvAddress, c.env)
			s, err := c.cfg.Resolve()
			switch {
			case c.want == "error" && err == nil:
				t.Fatalf("Resolve = %+v, want an error", s)
			case c.want != "error" && (err != nil || s.Address != c.want):
				t.Fatalf("Resolve = %+v, %v; want address %q", s, err, c.want)
			}
		})
	}
}
