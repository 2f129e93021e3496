package cli

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writeSeries writes a daily-cycle series of n 5-minute readings to a CSV
// file in dir and returns its path.
func writeSeries(t *testing.T, dir, name, header string, n int, format func(time.Time) string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(header + "\n")
	start := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		ts := start.Add(time.Duration(i) * 5 * time.Minute)
		v := 50 + 20*math.Sin(2*math.Pi*float64(i)/288) + float64(i%7)
		fmt.Fprintf(&b, "%s,%g\n", format(ts), v)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func epoch(ts time.Time) string { return strconv.FormatInt(ts.Unix(), 10) }

func TestForecastCommand(t *testing.T) {
	dir := t.TempDir()
	in := writeSeries(t, dir, "cpu.csv", "ts,value", 288*5, epoch)
	var out, errb bytes.Buffer
	code := Run([]string{"-in", in, "-step", "15m", "-horizon", "6h", "-history", "3d", "-quantiles", "0.5,0.9,0.95,0.975", "-explain"}, &out, &errb)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rows[0], ","); got != "timestamp,mean,p50,p90,p95,p97.5" {
		t.Fatalf("header %q", got)
	}
	if len(rows) != 1+24 {
		t.Fatalf("%d rows, want 25", len(rows))
	}
	// the last reading is at 4d23h55m, so the first forecast cell is 5d.
	first := time.Date(2024, 3, 6, 0, 0, 0, 0, time.UTC)
	for i, r := range rows[1:] {
		ts, err := time.Parse(time.RFC3339, r[0])
		if err != nil || !ts.Equal(first.Add(time.Duration(i)*15*time.Minute)) {
			t.Fatalf("row %d time %q", i, r[0])
		}
		prev := math.Inf(-1)
		for _, c := range r[2:] {
			v, err := strconv.ParseFloat(c, 64)
			if err != nil || v < prev {
				t.Fatalf("row %d quantiles %v not increasing", i, r)
			}
			prev = v
		}
	}
	for _, want := range []string{"model:", "season: 96 steps", "validation MAE", "why:", "history: 288 steps", "guard step 1 ", "guard steps 17–24 default ETS"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("explain output lacks %q:\n%s", want, errb.String())
		}
	}
}

func TestForecastCommandColumnsAndFormats(t *testing.T) {
	dir := t.TempDir()
	in := writeSeries(t, dir, "named.csv", "host,when,cpu", 300, func(ts time.Time) string {
		return "h1," + ts.Format("2006-01-02 15:04:05")
	})
	var out, errb bytes.Buffer
	code := Run([]string{"-in", in, "-time-column", "when", "-column", "cpu", "-horizon", "1h", "-model", "naive"}, &out, &errb)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if lines := strings.Count(out.String(), "\n"); lines != 5 {
		t.Errorf("%d lines:\n%s", lines, out.String())
	}
}

func TestForecastCommandErrors(t *testing.T) {
	dir := t.TempDir()
	good := writeSeries(t, dir, "good.csv", "ts,value", 100, epoch)
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("ts,value\n1700000000,1\n1700000060,oops\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no input", []string{"-horizon", "1h"}, ExitUsage, "-in is required"},
		{"bad step", []string{"-in", good, "-step", "soon"}, ExitUsage, "-step"},
		{"horizon below step", []string{"-in", good, "-horizon", "1m"}, ExitUsage, "-horizon"},
		{"bad quantile", []string{"-in", good, "-quantiles", "0.5,1.5"}, ExitUsage, "-quantiles"},
		{"bad model", []string{"-in", good, "-model", "lstm"}, ExitUsage, "-model"},
		{"unknown flag", []string{"-in", good, "-frobnicate"}, ExitUsage, ""},
		{"stray argument", []string{"-in", good, "extra"}, ExitUsage, "unexpected argument"},
		{"missing file", []string{"-in", filepath.Join(dir, "none.csv")}, ExitError, "no such file"},
		{"malformed csv", []string{"-in", bad}, ExitError, `line 3: column "value": bad value "oops"`},
		{"missing events file", []string{"-in", good, "-events", filepath.Join(dir, "none.hcl")}, ExitError, "events:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Run(c.args, &out, &errb)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stderr %s", code, c.code, errb.String())
			}
			if out.Len() != 0 {
				t.Errorf("stdout not empty on error: %q", out.String())
			}
			if c.code == ExitError && strings.Count(strings.TrimSpace(errb.String()), "\n") != 0 {
				t.Errorf("error is not one line: %q", errb.String())
			}
			if !strings.Contains(errb.String(), c.msg) {
				t.Errorf("stderr %q lacks %q", errb.String(), c.msg)
			}
		})
	}
}

func TestForecastCommandEvents(t *testing.T) {
	dir := t.TempDir()
	in := writeSeries(t, dir, "cpu.csv", "ts,value", 288*4, epoch)
	cal := filepath.Join(dir, "events.hcl")
	src := `
event "launch" {
  start  = "2024-03-05T01:00:00Z"
  end    = "2024-03-05T02:00:00Z"
  factor = 3
}
`
	if err := os.WriteFile(cal, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(extra ...string) [][]string {
		var out, errb bytes.Buffer
		args := append([]string{"-in", in, "-horizon", "3h"}, extra...)
		if code := Run(args, &out, &errb); code != ExitOK {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		rows, err := csv.NewReader(&out).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	plain, withEv := run(), run("-events", cal)
	for i := 1; i < len(plain); i++ {
		p, _ := strconv.ParseFloat(plain[i][1], 64)
		e, _ := strconv.ParseFloat(withEv[i][1], 64)
		inWindow := i >= 5 && i <= 8 // 01:00–02:00 are steps 5…8
		if inWindow && math.Abs(e-3*p) > 1e-6*math.Abs(p) {
			t.Errorf("step %d in the window: %g, want 3 × %g", i, e, p)
		}
		if !inWindow && e != p {
			t.Errorf("step %d outside the window changed: %g vs %g", i, e, p)
		}
	}
}

func TestEvalCommand(t *testing.T) {
	dir := t.TempDir()
	writeSeries(t, dir, "a.csv", "ts,value", 288*6, epoch)
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	writeSeries(t, sub, "b.csv", "timestamp,value", 288*6, func(ts time.Time) string { return ts.Format("2006-01-02 15:04:05") })
	writeSeries(t, sub, "short.csv", "timestamp,value", 100, func(ts time.Time) string { return ts.Format("2006-01-02 15:04:05") })
	var out, errb bytes.Buffer
	code := Run([]string{"eval", "-data", dir, "-origins", "3", "-horizons", "1h,3h"}, &out, &errb)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "short.csv: too short") {
		t.Errorf("short series not reported: %s", errb.String())
	}
	for _, want := range []string{"| method | horizon | series | MASE mean", "| auto | 1h | 2 |", "| auto | 3h | 2 |", "| ref-naive | 1h | 2 |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if code := Run([]string{"eval"}, &out, &errb); code != ExitUsage {
		t.Errorf("eval without -data: exit %d", code)
	}
	if code := Run([]string{"eval", "-data", filepath.Join(dir, "none")}, &out, &errb); code != ExitError {
		t.Errorf("eval of a missing folder: exit %d", code)
	}
}

// TestEvalCommandBySourceAndBaseline: a user with series in two source
// folders and a baselines.py CSV gets a table per source, the comparison
// with the baseline per source (worst series, goals) and, with -loso, the
// scores of each source under a tuning chosen on the other.
func TestEvalCommandBySourceAndBaseline(t *testing.T) {
	dir := t.TempDir()
	for _, src := range []string{"web", "db"} {
		if err := os.Mkdir(filepath.Join(dir, src), 0o755); err != nil {
			t.Fatal(err)
		}
		writeSeries(t, filepath.Join(dir, src), "cpu.csv", "ts,value", 288*6, epoch)
	}
	base := filepath.Join(t.TempDir(), "ets.csv")
	csvText := "series,method,horizon,n_origins,fails,ms,mase,smape,cov95,over,short\n" +
		"web/cpu,autoets_lite,1h,3,0,1,1.0,1,0.95,10,1\nweb/cpu,autoets_lite,3h,3,0,1,1.0,1,0.95,10,1\n" +
		"db/cpu,autoets_lite,1h,3,0,1,1.0,1,0.95,10,1\n"
	if err := os.WriteFile(base, []byte(csvText), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	args := []string{"eval", "-data", dir, "-origins", "3", "-horizons", "1h,3h", "-methods", "auto", "-by-source", "-baseline", base,
		"-loso", "-tune", "margin=0,0.05;outlier=6;shift=8;halflife=0.25", "-per-series"}
	if code := Run(args, &out, &errb); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"Source db:", "Source web:", "auto against autoets_lite, per source:", "| db | 1h | 1 |", "| web | 3h | 1 |",
		"web/cpu.csv (", "Leave one source out", "margin=", "Chosen on all sources:", "| autoets_lite MASE | ratio |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	// db has no 3h baseline: its row says so rather than compare
	if !strings.Contains(out.String(), "| db | 3h | 1 |") || !strings.Contains(out.String(), "– | – |") {
		t.Errorf("db at 3h:\n%s", out.String())
	}
	if code := Run([]string{"eval", "-data", dir, "-baseline", filepath.Join(dir, "none.csv")}, &out, &errb); code != ExitError {
		t.Errorf("missing baseline file: exit %d", code)
	}
	if code := Run([]string{"eval", "-data", dir, "-tune", "speed=1"}, &out, &errb); code != ExitUsage {
		t.Errorf("bad -tune: exit %d", code)
	}
}

func TestColumnName(t *testing.T) {
	for q, want := range map[float64]string{0.5: "p50", 0.95: "p95", 0.99: "p99", 0.975: "p97.5", 0.1: "p10"} {
		if got := ColumnName(q); got != want {
			t.Errorf("ColumnName(%v) = %q, want %q", q, got, want)
		}
	}
}
