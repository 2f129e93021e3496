package strategy

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad-autoscaler/sdk"

	"github.com/foresight-nomad/foresight/forecast"
)

func TestDesiredCount(t *testing.T) {
	cases := []struct {
		name           string
		demand, target float64
		count          int64
		up, down       int64
		want           int64
	}{
		{"exact multiple", 400, 100, 2, -1, -1, 4},
		{"rounds up", 401, 100, 2, -1, -1, 5},
		{"no change", 350, 100, 4, -1, -1, 4},
		{"scale up limited", 1000, 100, 2, 3, -1, 5},
		{"scale up within limit", 300, 100, 2, 3, -1, 3},
		{"scale down limited", 100, 100, 8, -1, 2, 6},
		{"scale down within limit", 700, 100, 8, -1, 2, 7},
		{"zero limit freezes that direction", 1000, 100, 2, 0, 0, 2},
		{"zero demand goes to zero: min is the autoscaler's", 0, 100, 3, -1, -1, 0},
		{"negative demand counts as none", -50, 100, 3, -1, -1, 0},
		{"from zero", 250, 100, 0, -1, -1, 3},
		{"float noise at a multiple does not add one", 0.1 + 0.2, 0.3, 1, -1, -1, 1},
		{"above any max: max is the autoscaler's", 1e6, 1, 2, -1, -1, 1e6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := desiredCount(c.demand, c.target, c.count, c.up, c.down); got != c.want {
				t.Fatalf("desiredCount(%g, %g, %d, up %d, down %d) = %d, want %d", c.demand, c.target, c.count, c.up, c.down, got, c.want)
			}
		})
	}
}

func TestParseStrategyConfig(t *testing.T) {
	good := map[string]string{"target": "200", "horizon": "30m", "quantile": "0.95", "max_scale_up": "2", "max_scale_down": "1", "step": "5m", "refit": "0"}
	cfg, err := parseStrategyConfig(good)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.target != 200 || cfg.horizon != 30*time.Minute || cfg.quantile != 0.95 || cfg.maxUp != 2 || cfg.maxDown != 1 ||
		cfg.step != 5*time.Minute || cfg.refit != 0 || cfg.source != SourceMetrics || cfg.steps() != 6 {
		t.Fatalf("parsed %+v", cfg)
	}
	def, err := parseStrategyConfig(map[string]string{"target": "1"})
	if err != nil {
		t.Fatal(err)
	}
	if def.quantile != 0.9 || def.horizon != 15*time.Minute || def.step != time.Minute || def.maxUp != -1 || def.maxDown != -1 || def.history != 14*24*time.Hour {
		t.Fatalf("defaults %+v", def)
	}
	bad := []struct {
		cfg  map[string]string
		want string
	}{
		{map[string]string{}, "missing required field `target`"},
		{map[string]string{"target": "0"}, "`target`"},
		{map[string]string{"target": "x"}, "`target`"},
		{map[string]string{"target": "1", "quantile": "1"}, "`quantile`"},
		{map[string]string{"target": "1", "horizon": "soon"}, "`horizon`"},
		{map[string]string{"target": "1", "max_scale_up": "-1"}, "`max_scale_up`"},
		{map[string]string{"target": "1", "max_scale_down": "1.5"}, "`max_scale_down`"},
		{map[string]string{"target": "1", "source": "prometheus"}, "`source`"},
		{map[string]string{"target": "1", "source": "leader"}, "`group`"},
		{map[string]string{"target": "1", "source": "leader", "group": "default/web/web", "metric": "CPU"}, "`metric`"},
		{map[string]string{"target": "1", "horizon": "5m", "step": "10m"}, "longer than `horizon`"},
	}
	for _, b := range bad {
		if _, err := parseStrategyConfig(b.cfg); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("config %v: error %v, want one mentioning %s", b.cfg, err, b.want)
		}
	}
}

// evalOf is a check evaluation for the strategy with the given config.
func evalOf(config map[string]string, ms sdk.TimestampedMetrics) *sdk.ScalingCheckEvaluation {
	return &sdk.ScalingCheckEvaluation{
		Check: &sdk.ScalingPolicyCheck{Name: "demand", Source: "prometheus", Query: "sum(rate(x))",
			Strategy: &sdk.ScalingPolicyStrategy{Name: StrategyName, Config: config}},
		Metrics: ms,
		Action:  &sdk.ScalingAction{},
	}
}

// daily is n minutes of a demand with a daily peak: base plus amp at 12:00.
func daily(start time.Time, n int, base, amp float64) sdk.TimestampedMetrics {
	ms := make(sdk.TimestampedMetrics, n)
	for i := range ms {
		t := start.Add(time.Duration(i) * time.Minute)
		h := float64(t.Hour()) + float64(t.Minute())/60
		ms[i] = sdk.TimestampedMetric{Timestamp: t, Value: base + amp*math.Pow((1+math.Cos(2*math.Pi*(h-12)/24))/2, 8)}
	}
	return ms
}

func TestStrategyShortHistoryBehavesLikeTargetValue(t *testing.T) {
	s := New(hclog.NewNullLogger())
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	ms := daily(start, 10, 450, 0)
	ev, err := s.Run(evalOf(map[string]string{"target": "100", "max_scale_up": "1"}, ms), 2)
	if err != nil {
		t.Fatal(err)
	}
	// target-value: 2 × (450/100) = 9, limited to one step up.
	if ev.Action.Count != 3 || ev.Action.Direction != sdk.ScaleDirectionUp {
		t.Fatalf("action %+v, want 3 up", ev.Action)
	}
	if !strings.Contains(ev.Action.Reason, "too little history") || !strings.Contains(ev.Action.Reason, "like target-value") {
		t.Fatalf("reason %q does not say it fell back", ev.Action.Reason)
	}
}

func TestStrategyProvisionsAheadOfDailyPeak(t *testing.T) {
	s := New(hclog.NewNullLogger())
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	// A week of history, ending at 09:00: the peak (450 + 1000 at noon) is
	// three hours away, and the demand now is ~730.
	n := 7*24*60 + 9*60
	ms := daily(start, n, 450, 1000)
	now := ms[len(ms)-1].Value
	cfg := map[string]string{"target": "100", "horizon": "3h", "step": "5m"}
	ev, err := s.Run(evalOf(cfg, ms), 5)
	if err != nil {
		t.Fatal(err)
	}
	if now > 800 {
		t.Fatalf("test setup: the demand now is %g, want the quiet before the peak", now)
	}
	// target-value would want 8 instances; the forecast sees the peak.
	if ev.Action.Count < 14 || ev.Action.Direction != sdk.ScaleDirectionUp {
		t.Fatalf("action %+v: want ≥ 14 instances ahead of a peak of 1450 at 100 each", ev.Action)
	}
	if !strings.Contains(ev.Action.Reason, "forecast p90") {
		t.Fatalf("reason %q", ev.Action.Reason)
	}
	// A short horizon does not see the peak yet.
	ev, err = s.Run(evalOf(map[string]string{"target": "100", "horizon": "15m", "step": "5m"}, ms), 5)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Action.Count > 10 {
		t.Fatalf("15m ahead: count %d, want the quiet count", ev.Action.Count)
	}
}

func TestStrategyKeepsHistoryAcrossRuns(t *testing.T) {
	// An APM that answers one point per query (like Nomad's) builds the
	// history run by run.
	s := New(hclog.NewNullLogger())
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	ms := daily(start, 40, 300, 0)
	cfg := map[string]string{"target": "100", "horizon": "5m", "refit": "10m"}
	var ev *sdk.ScalingCheckEvaluation
	var err error
	for i := range ms {
		ev, err = s.Run(evalOf(cfg, ms[i:i+1]), 3)
		if err != nil {
			t.Fatal(err)
		}
		if i < minHistorySteps && !strings.Contains(ev.Action.Reason, "too little history") {
			t.Fatalf("run %d: reason %q, want the fallback", i, ev.Action.Reason)
		}
	}
	if strings.Contains(ev.Action.Reason, "too little history") || ev.Action.Count != 3 {
		t.Fatalf("after 40 runs: %+v, want a forecast of a flat 300 → 3", ev.Action)
	}
	if len(s.checks) != 1 {
		t.Fatalf("%d check states, want 1", len(s.checks))
	}
}

func TestStrategyAppendsToCachedFitThenRefits(t *testing.T) {
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	ms := daily(start, 2*24*60+100, 450, 1000)
	cached := New(hclog.NewNullLogger())
	cfg := map[string]string{"target": "100", "horizon": "30m", "step": "5m", "refit": "1h"}
	base := 2 * 24 * 60
	if _, err := cached.Run(evalOf(cfg, ms[:base]), 5); err != nil {
		t.Fatal(err)
	}
	ev, err := cached.Run(evalOf(cfg, ms[:base+30]), 5)
	if err != nil {
		t.Fatal(err)
	}
	st := cached.checks[checkKey(evalOf(cfg, nil).Check, mustCfg(t, cfg))]
	if st.fit.Appended() == 0 {
		t.Fatal("the second run refitted instead of appending")
	}
	if ev.Action.Count < 5 {
		t.Fatalf("cached run: %+v", ev.Action)
	}
	// Once refit worth of data has arrived, the fit is redone.
	if _, err := cached.Run(evalOf(cfg, ms[:base+100]), 5); err != nil {
		t.Fatal(err)
	}
	if st.fit.Appended() != 0 {
		t.Fatalf("after 100 minutes of new data the fit holds %d appended steps, want a refit", st.fit.Appended())
	}
}

func mustCfg(t *testing.T, c map[string]string) strategyConfig {
	t.Helper()
	cfg, err := parseStrategyConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestStrategyFromLeader(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.Path + "?" + r.URL.RawQuery
		switch r.URL.Path {
		case "/v1/group/default/web/web/forecast":
			json.NewEncoder(w).Encode(map[string]any{"Model": "ets", "Points": []map[string]any{
				{"Time": "2026-01-05T10:00:00Z", "Quantiles": map[string]float64{"p95": 420}},
				{"Time": "2026-01-05T10:05:00Z", "Quantiles": map[string]float64{"p95": 910}},
			}})
		case "/v1/group/default/new/new/forecast":
			w.WriteHeader(http.StatusUnprocessableEntity)
			json.NewEncoder(w).Encode(map[string]string{"error": "no history to forecast from"})
		default:
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(map[string]string{"error": "no telemetry"})
		}
	}))
	defer srv.Close()
	s := New(hclog.NewNullLogger())
	cfg := map[string]string{"target": "100", "source": "leader", "address": srv.URL, "group": "default/web/web", "quantile": "0.95", "horizon": "10m"}
	ev, err := s.Run(evalOf(cfg, daily(time.Now(), 1, 300, 0)), 3)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Action.Count != 10 || !strings.Contains(ev.Action.Reason, "leader, ets") {
		t.Fatalf("action %+v, want 10 from a peak of 910", ev.Action)
	}
	if !strings.Contains(got, "metric=cpu_mhz") || !strings.Contains(got, "quantiles=0.95") || !strings.Contains(got, "horizon=10m0s") {
		t.Fatalf("asked the leader %q", got)
	}
	cfg["group"] = "default/new/new"
	ev, err = s.Run(evalOf(cfg, daily(time.Now(), 1, 300, 0)), 1)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Action.Count != 3 || !strings.Contains(ev.Action.Reason, "no forecast from the leader (no history to forecast from)") {
		t.Fatalf("action %+v, want the target-value fallback", ev.Action)
	}
}

// loadMinutes reads a 1-minute trace as metrics.
func loadMinutes(tb testing.TB, path string) sdk.TimestampedMetrics {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	obs, err := forecast.ReadCSV(f, forecast.CSVOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	ms := make(sdk.TimestampedMetrics, len(obs))
	for i, o := range obs {
		ms[i] = sdk.TimestampedMetric{Timestamp: o.Time, Value: o.Value}
	}
	return ms
}

// BenchmarkStrategyRun is one evaluation over a 14-day window of 1-minute
// metrics (as a Prometheus check with query_window = "14d" gives it), the
// window moving a minute per run. "cached" is the default: the fit is kept
// per check, new points are appended and it is redone after an hour of new
// data (its cost amortised over the runs); "refit" fits on every run.
func BenchmarkStrategyRun(b *testing.B) {
	all := loadMinutes(b, "../../examples/traces/crane-input2.csv")
	const window = 14 * 24 * 60
	if len(all) < window+60 {
		b.Fatalf("trace has %d minutes", len(all))
	}
	for _, mode := range []struct{ name, refit string }{{"cached", "1h"}, {"refit", "0"}} {
		b.Run(mode.name, func(b *testing.B) {
			cfg := map[string]string{"target": "10", "horizon": "30m", "refit": mode.refit}
			s := New(hclog.NewNullLogger())
			if _, err := s.Run(evalOf(cfg, all[:window]), 5); err != nil {
				b.Fatal(err)
			}
			extra := len(all) - window
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				k := 1 + i%extra
				if k == 1 && i > 0 {
					b.StopTimer()
					s = New(hclog.NewNullLogger())
					if _, err := s.Run(evalOf(cfg, all[:window]), 5); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				if _, err := s.Run(evalOf(cfg, all[k:k+window]), 5); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestStrategyHistoryIsKeptPerStep(t *testing.T) {
	st := &checkState{}
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	var ms sdk.TimestampedMetrics
	for i := range 180 { // three minutes at a point a second: 1, 2, 3 in turn
		ms = append(ms, sdk.TimestampedMetric{Timestamp: start.Add(time.Duration(i) * time.Second), Value: float64(1 + i/60)})
	}
	st.merge(ms, time.Minute, time.Hour)
	st.merge(ms[100:], time.Minute, time.Hour) // seen already: not counted twice
	if len(st.sums) != 3 || st.counts[0] != 60 || st.sums[1] != 120 || st.last != 3 {
		t.Fatalf("cells %v %v, last %g", st.sums, st.counts, st.last)
	}
	if g := st.grid(time.Minute); len(g.Values) != 2 || g.Values[1] != 2 || !g.Start.Equal(start) {
		t.Fatalf("grid %+v: want the two complete minutes", g)
	}
	// Older cells leave the window; after a gap longer than it, all do.
	st.merge(sdk.TimestampedMetrics{{Timestamp: start.Add(61 * time.Minute), Value: 5}}, time.Minute, time.Hour)
	if len(st.sums) != 60 || st.first != cellOf(start.Add(2*time.Minute), time.Minute) {
		t.Fatalf("after an hour: %d cells from %d", len(st.sums), st.first)
	}
	st.merge(sdk.TimestampedMetrics{{Timestamp: start.Add(48 * time.Hour), Value: 7}}, time.Minute, time.Hour)
	if len(st.sums) != 1 || st.sums[0] != 7 {
		t.Fatalf("after a gap: %v", st.sums)
	}
}
