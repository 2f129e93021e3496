package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeTrace writes a per-minute trace of n minutes, a daily cycle with a
// burst, to dir and returns its path.
func writeTrace(t *testing.T, dir string, n int) string {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("timestamp,cpu\n")
	t0 := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	for i := range n {
		v := 60 - 40*math.Cos(2*math.Pi*float64(i%1440)/1440)
		if i%1440 >= 780 && i%1440 < 800 {
			v += 40
		}
		fmt.Fprintf(&b, "%s,%.3f\n", t0.Add(time.Duration(i)*time.Minute).Format("2006-01-02 15:04:05"), v)
	}
	path := filepath.Join(dir, fmt.Sprintf("trace-%d.csv", n))
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBacktestJSONTableAndPlot(t *testing.T) {
	dir := t.TempDir()
	trace := writeTrace(t, dir, 6*60)
	plot := filepath.Join(dir, "run.svg")
	var stdout, stderr bytes.Buffer
	args := []string{"backtest", "-trace", trace, "-column", "cpu", "-warmup", "2h", "-format", "json", "-plot", plot}
	if code := run(args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var out struct {
		Trace   string
		Results []map[string]any
		Goals   []struct{ Name string }
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, stdout.String())
	}
	if len(out.Results) != 3 || len(out.Goals) != 2 {
		t.Fatalf("%d results and %d goals, want 3 and 2:\n%s", len(out.Results), len(out.Goals), stdout.String())
	}
	for _, r := range out.Results {
		for _, k := range []string{"policy", "violation_minutes", "unmet_demand_pct", "resource_hours", "scaling_actions", "mean_utilization"} {
			if _, ok := r[k]; !ok {
				t.Errorf("result %v lacks %q", r, k)
			}
		}
	}
	svg, err := os.ReadFile(plot)
	if err != nil || !bytes.HasPrefix(svg, []byte("<svg")) {
		t.Fatalf("plot not written as SVG: %v", err)
	}

	stdout.Reset()
	if code := run([]string{"backtest", "-trace", trace, "-column", "cpu", "-warmup", "2h", "-policy", "static"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "violation min") || !strings.Contains(lines[1], "static") {
		t.Fatalf("table of one policy:\n%s", stdout.String())
	}
	// Aligned: every column ends where the header's does.
	if len(lines[0]) != len(lines[1]) {
		t.Errorf("columns not aligned:\n%s", stdout.String())
	}
}

func TestBacktestBadInput(t *testing.T) {
	dir := t.TempDir()
	trace := writeTrace(t, dir, 3*60)
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no trace", nil, exitUsage, "-trace is required"},
		{"bad flag", []string{"-trace", trace, "-speed", "1"}, exitUsage, "flag provided but not defined"},
		{"bad policy", []string{"-trace", trace, "-policy", "magic"}, exitUsage, "-policy must be"},
		{"bad format", []string{"-trace", trace, "-format", "xml"}, exitUsage, "-format must be table or json"},
		{"sweep of one policy", []string{"-trace", trace, "-sweep", "-policy", "predictive"}, exitUsage, "-sweep compares settings with the baselines"},
		{"bad delay", []string{"-trace", trace, "-provision-delay", "0s"}, exitUsage, "-provision-delay must be positive"},
		{"plot of a folder", []string{"-trace", dir, "-plot", filepath.Join(dir, "x.svg")}, exitUsage, "-plot needs one trace file"},
		{"missing file", []string{"-trace", filepath.Join(dir, "none.csv")}, exitError, "no such file"},
		{"missing column", []string{"-trace", trace, "-column", "mem"}, exitError, `"mem"`},
		{"too short", []string{"-trace", trace, "-column", "cpu"}, exitError, "trace too short"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(append([]string{"backtest"}, tc.args...), &stdout, &stderr); code != tc.code {
				t.Fatalf("exit %d, want %d (stderr: %s)", code, tc.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Fatalf("stderr %q does not say %q", stderr.String(), tc.stderr)
			}
			if tc.code == exitError && strings.Count(strings.TrimSpace(stderr.String()), "\n") > 0 {
				t.Errorf("error is not one line: %q", stderr.String())
			}
		})
	}
}
