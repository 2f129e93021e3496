package main

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/foresight-nomad/foresight/agent/leader/backfill"
	"github.com/foresight-nomad/foresight/internal/wait"
	"github.com/foresight-nomad/foresight/leaderapi"
)

// needPrometheus skips a test when Debian's prometheus package (which
// brings promtool) is not installed; .ci/run installs it.
func needPrometheus(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"prometheus", "promtool"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed (apt-get install prometheus): skipping the test against a real Prometheus", bin)
		}
	}
}

// pastUsage is what an operator's Prometheus scraped from Nomad before
// Foresight was installed: days of a real trace as two allocations of the
// e2e cluster's app group, in Nomad's metric names and labels.
type pastUsage struct {
	from, to time.Time
	// cpu is the group's CPU demand (MHz) at each minute from from.
	cpu []float64
}

// writePastUsage writes days of examples/traces/crane-input0.csv, one
// minute a point, ending at end, as OpenMetrics.
func writePastUsage(t *testing.T, path string, days int, end time.Time) pastUsage {
	t.Helper()
	f, err := os.Open("../../examples/traces/crane-input0.csv")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	n := days * 24 * 60
	if len(rows)-1 < n {
		t.Fatalf("the trace has %d points, want %d", len(rows)-1, n)
	}
	end = end.Truncate(time.Minute)
	u := pastUsage{from: end.Add(-time.Duration(n) * time.Minute), to: end}
	for _, r := range rows[len(rows)-n:] {
		v, err := strconv.ParseFloat(r[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		u.cpu = append(u.cpu, 10*v) // 10 MHz per trace unit
	}
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	w := bufio.NewWriter(out)
	allocs := []string{"0b1f7c52-1111-4c4c-8d8d-000000000001", "0b1f7c52-2222-4c4c-8d8d-000000000002"}
	for _, m := range []struct {
		name  string
		value func(cpu float64) float64 // per allocation
	}{
		{"nomad_client_allocs_cpu_total_ticks", func(cpu float64) float64 { return cpu / 2 }},
		{"nomad_client_allocs_memory_rss", func(cpu float64) float64 { return 64<<20 + cpu*(1<<18) }},
		{"nomad_client_allocs_memory_usage", func(cpu float64) float64 { return 72<<20 + cpu*(1<<18) }},
	} {
		fmt.Fprintf(w, "# TYPE %s gauge\n", m.name)
		for _, alloc := range allocs {
			for i, cpu := range u.cpu {
				at := u.from.Add(time.Duration(i) * time.Minute)
				fmt.Fprintf(w, "%s{alloc_id=%q,exported_job=\"app\",job=\"nomad\",namespace=\"default\",task=\"main\",task_group=\"app\"} %g %d\n",
					m.name, alloc, m.value(cpu), at.Unix())
			}
		}
	}
	fmt.Fprintln(w, "# EOF")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return u
}

// startPrometheus runs Prometheus on dataDir, scraping sim's Nomad metrics
// as an operator's would. It returns its URL and a stop function, which
// the test's end calls too.
func startPrometheus(t *testing.T, dataDir, nomadAddr string) (string, func()) {
	t.Helper()
	addr := freeAddr(t)
	cfg := filepath.Join(t.TempDir(), "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`global:
  scrape_interval: 5s
scrape_configs:
  - job_name: nomad
    metrics_path: /v1/metrics
    params:
      format: [prometheus]
    static_configs:
      - targets: [%q]
`, nomadAddr)), 0o644); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(t.TempDir(), "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("prometheus", "--config.file="+cfg, "--storage.tsdb.path="+dataDir,
		"--storage.tsdb.retention.time=30d", "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _, _ = cmd.Process.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
			logFile.Close()
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("--- prometheus log (last 3000 bytes) ---\n%s", tail(b, 3000))
		}
	})
	wait.UntilEvery(t, 60*time.Second, 200*time.Millisecond, "Prometheus to be ready", func() bool {
		resp, err := http.Get("http://" + addr + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return "http://" + addr, stop
}

// leaderSince waits for a leader and returns its record and when its term
// began.
func (c *cluster) leaderSince(t *testing.T) (leaderapi.Record, time.Time) {
	t.Helper()
	var st leaderapi.Status
	wait.UntilEvery(t, 60*time.Second, 200*time.Millisecond, "a leader", func() bool {
		return get(c.anyAgent(""), "/v1/status", &st) == nil && st.Leader.ID != ""
	})
	l, ok := c.leader()
	if !ok {
		t.Fatal("no leader in the election key")
	}
	return l, st.Leader.Since
}

// TestPrometheusHistoryOnDayOne is a fresh install in a cluster whose
// Prometheus has kept Nomad's allocation metrics for days: the leader
// backfills them, and within a minute of leading it forecasts the group
// from those days instead of saying it has too little history.
func TestPrometheusHistoryOnDayOne(t *testing.T) {
	needPrometheus(t)
	if testing.Short() {
		t.Skip("end-to-end: runs real processes")
	}
	// Three days of the app group's usage, up to ten minutes ago, turned
	// into TSDB blocks by promtool as an operator's Prometheus holds them.
	dir := t.TempDir()
	past := writePastUsage(t, filepath.Join(dir, "past.om"), 3, time.Now().Add(-10*time.Minute))
	data := filepath.Join(dir, "tsdb")
	if out, err := exec.Command("promtool", "tsdb", "create-blocks-from", "openmetrics", filepath.Join(dir, "past.om"), data).CombinedOutput(); err != nil {
		t.Fatalf("promtool: %v\n%s", err, out)
	}

	// Foresight is installed: sim plays Nomad, Prometheus scrapes it.
	nomadAddr := freeAddr(t)
	prom, _ := startPrometheus(t, data, nomadAddr)
	c := startClusterAt(t, nomadAddr, fmt.Sprintf("prometheus {\n  address = %q\n}\n", prom))
	l, since := c.leaderSince(t)

	// The group's forecast comes from the backfilled days within a minute.
	var fc leaderapi.ForecastResponse
	wait.UntilEvery(t, 120*time.Second, 200*time.Millisecond, "a forecast from Prometheus' history", func() bool {
		fc = leaderapi.ForecastResponse{}
		if get(l.HTTP, "/v1/group/default/app/app/forecast?metric=cpu_mhz&horizon=1h", &fc) != nil {
			return false
		}
		for _, h := range fc.History {
			if h.Source == backfill.Source {
				return true
			}
		}
		return false
	})
	took := time.Since(since)
	t.Logf("forecast from backfilled history %s after the leader's start: model %s; history %+v", took.Round(time.Second), fc.Model, fc.History)
	if took > 60*time.Second {
		t.Errorf("the backfilled forecast came %s after the leader started, want within 60 s", took.Round(time.Second))
	}
	for _, w := range fc.Warnings {
		if strings.Contains(w, "too little history") {
			t.Errorf("the forecast still says %q", w)
		}
	}
	var fromProm leaderapi.HistorySource
	for _, h := range fc.History {
		if h.Source == backfill.Source {
			fromProm = h
		}
	}
	if fromProm.To.Sub(fromProm.From) < 70*time.Hour {
		t.Errorf("backfilled %s to %s, want about the three days Prometheus holds", fromProm.From, fromProm.To)
	}

	// The backfilled demand is the trace summed over both allocations: a
	// day of it, a day ago, has the trace's mean.
	dayFrom := past.to.Add(-36 * time.Hour).Truncate(time.Hour)
	dayTo := dayFrom.Add(24 * time.Hour)
	var series leaderapi.SeriesResponse
	q := fmt.Sprintf("/v1/group/default/app/app/series?metric=cpu_mhz&step=5m&from=%d&to=%d", dayFrom.Unix(), dayTo.Unix())
	if err := get(l.HTTP, q, &series); err != nil {
		t.Fatal(err)
	}
	got, want := 0.0, 0.0
	for _, p := range series.Points {
		got += p.Mean
	}
	got /= float64(len(series.Points))
	lo := int(dayFrom.Sub(past.from) / time.Minute)
	for _, v := range past.cpu[lo : lo+24*60] {
		want += v
	}
	want /= 24 * 60
	if len(series.Points) < 280 || math.Abs(got-want) > 0.02*want {
		t.Fatalf("a day of backfilled demand: %d points averaging %.1f MHz, the trace averages %.1f", len(series.Points), got, want)
	}

	// The group view says the same, for every metric Nomad's metrics
	// measure, and the agents' own history follows it once their first
	// slots are sealed.
	var view leaderapi.GroupView
	wait.UntilEvery(t, 60*time.Second, 200*time.Millisecond, "the group view's history from both sources", func() bool {
		view = leaderapi.GroupView{}
		if get(l.HTTP, "/v1/group/default/app/app", &view) != nil {
			return false
		}
		sources := map[string]bool{}
		for _, h := range view.History {
			sources[h.Metric+" from "+h.Source] = true
		}
		return sources["cpu_mhz from prometheus"] && sources["mem_usage_bytes from prometheus"] && sources["cpu_mhz from agents"]
	})
}

// TestPrometheusDownLeavesTheAgentsHistory points the leader at a
// Prometheus that has gone away: the leader says so once, forecasts from
// the agents' own history, and keeps running. (A Prometheus that answers
// garbage is the backfill package's unit test.)
func TestPrometheusDownLeavesTheAgentsHistory(t *testing.T) {
	needPrometheus(t)
	if testing.Short() {
		t.Skip("end-to-end: runs real processes")
	}
	// A real Prometheus, started and stopped: nothing listens at its
	// address any more.
	prom, stop := startPrometheus(t, t.TempDir(), "127.0.0.1:1")
	stop()

	c := startCluster(t, fmt.Sprintf("prometheus {\n  address = %q\n}\n", prom))
	l, _ := c.leaderSince(t)

	// Every series that Nomad's metrics measure failed to backfill, and
	// the leader said so once.
	wait.UntilEvery(t, 60*time.Second, 200*time.Millisecond, "the backfill failures", func() bool {
		return metricValue(t, l.HTTP, "foresight_leader_backfill_failures_total") >= 2
	})
	log, err := os.ReadFile(filepath.Join(c.dir, c.agentLog[l.ID]+".log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), "cannot read history from Prometheus"); n != 1 {
		t.Fatalf("the leader logged the failure %d times, want once:\n%s", n, tail(log, 3000))
	}

	// The group's page forecasts from the agents' history alone (its two
	// days are read at one minute a point, so a forecast comes after the
	// first sealed minute).
	var page string
	wait.UntilEvery(t, 120*time.Second, 200*time.Millisecond, "a forecast on the group's page", func() bool {
		resp, err := http.Get(l.HTTP + "/ui/group/default/app/app")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		page = string(b)
		return resp.StatusCode == http.StatusOK && strings.Contains(page, "Model <strong>") && strings.Contains(page, "from agents")
	})
	if strings.Contains(page, "from prometheus") {
		t.Fatal("the group's page says some history came from Prometheus, which is down")
	}
	var health leaderapi.Health
	if err := get(l.HTTP, "/v1/health", &health); err != nil || !health.Leader {
		t.Fatalf("the leader after the failures: %+v, %v", health, err)
	}
}

// metricValue reads one unlabelled sample from an agent's /metrics; NaN
// when it is not there.
func metricValue(t *testing.T, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return math.NaN()
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return math.NaN()
}
