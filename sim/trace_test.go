package sim

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTraceInterpolatesAndLoops(t *testing.T) {
	tr, err := ReadTrace(strings.NewReader("ts,value\n60,20\n0,10\n120,40\n"), "", "")
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Start().Equal(time.Unix(0, 0)) {
		t.Errorf("Start = %v, want the earliest point's time", tr.Start())
	}
	cases := []struct {
		at   time.Duration
		want float64
	}{
		{0, 10},
		{30 * time.Second, 15},
		{time.Minute, 20},
		{90 * time.Second, 30},
		{150 * time.Second, 25}, // between the last point and the loop's start
		{3 * time.Minute, 10},   // one period later: the start again
		{-time.Minute, 10},
	}
	for _, c := range cases {
		if got := tr.At(c.at); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("At(%s) = %g, want %g", c.at, got, c.want)
		}
	}
	if tr.Period() != 3*time.Minute || tr.Len() != 3 {
		t.Fatalf("period %s, len %d", tr.Period(), tr.Len())
	}
}

func TestTraceRefusesBadInput(t *testing.T) {
	cases := map[string]string{
		"one point":      "ts,value\n0,1\n",
		"bad value":      "ts,value\n0,1\n60,lots\n",
		"bad time":       "ts,value\nyesterday,1\n60,2\n",
		"missing column": "ts\n0\n60\n",
	}
	for name, src := range cases {
		if _, err := ReadTrace(strings.NewReader(src), "", ""); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ReadTrace(strings.NewReader("ts,value\n0,1\n60,2\n"), "", "cpu"); err == nil || !strings.Contains(err.Error(), "cpu") {
		t.Errorf("an unknown column is not named: %v", err)
	}
}

func TestTraceFasterCompressesTime(t *testing.T) {
	tr, err := ReadTrace(strings.NewReader("ts,value\n0,10\n3600,20\n7200,40\n"), "", "")
	if err != nil {
		t.Fatal(err)
	}
	fast, err := tr.Faster(24)
	if err != nil {
		t.Fatal(err)
	}
	// An hour of the recording plays in 2.5 minutes; values are unchanged.
	if fast.Period() != 3*time.Hour/24 || fast.Len() != 3 {
		t.Fatalf("period %s, len %d", fast.Period(), fast.Len())
	}
	for _, c := range []struct {
		at   time.Duration
		want float64
	}{{0, 10}, {75 * time.Second, 15}, {150 * time.Second, 20}, {5 * time.Minute, 40}, {7*time.Minute + 30*time.Second, 10}} {
		if got := fast.At(c.at); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("Faster(24).At(%s) = %g, want %g", c.at, got, c.want)
		}
	}
	if tr.At(150*time.Second) == 20 {
		t.Fatal("Faster changed the trace it was called on")
	}
	for _, n := range []float64{0, -2, math.Inf(1), math.NaN(), 1e13} {
		if _, err := tr.Faster(n); err == nil {
			t.Errorf("Faster(%g) accepted", n)
		}
	}
}

func TestClusterFileTimeScale(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("t.csv", "ts,value\n0,1\n86400,2\n")
	write("j.json", `{"ID":"j","TaskGroups":[{"Name":"g","Count":1,"Tasks":[{"Name":"t","Driver":"docker","Resources":{"CPU":100,"MemoryMB":64}}]}]}`)
	cluster := func(scale string) string {
		return write("c.hcl", `
node_group "n" {
  platform = "external"
  cpu_mhz  = 1000
  cores    = 1
  memory_mb = 1024
  disk_mb  = 1000
}
job "j" {
  file = "j.json"
  workload "g" {
    trace = "t.csv"
    `+scale+`
  }
}
`)
	}
	cfg, err := LoadConfig(cluster("time_scale = 24"))
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.Jobs[0].Workloads[0].Trace.Period(); p != 2*time.Hour {
		t.Fatalf("a two-day loop at time_scale 24 lasts %s, want 2h", p)
	}
	if _, err := LoadConfig(cluster("time_scale = 0")); err == nil || !strings.Contains(err.Error(), "time_scale") {
		t.Fatalf("time_scale 0 accepted or not named: %v", err)
	}
}
