package sampler

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/telemetry"
)

// readings are the values of te's metrics.
func readings(te *TaskExtra) map[string]float64 {
	out := map[string]float64{}
	if te != nil {
		for name, r := range te.Metrics {
			out[name] = r.Value
		}
	}
	return out
}

// copyTree copies a fixture tree so a test can change counters in it.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestHostExtraReportsRatesFromTheSecondReading(t *testing.T) {
	root := copyTree(t, "../cgroup/testdata/v2-nomad16")
	clk := clock.NewVirtual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	h, err := NewHostExtra(HostPaths{CgroupRoot: root, SysRoot: t.TempDir(), ProcRoot: t.TempDir()}, nil, clk, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	task := Task{AllocID: "8f3c1e2a-5b6d-4c7e-9a1b-2c3d4e5f6a7b", Group: "default/web/web", Name: "web"}
	missing := Task{AllocID: "00000000-0000-0000-0000-000000000000", Group: "default/web/web", Name: "web"}

	first, err := h.Sample(context.Background(), []Task{task, missing})
	if err != nil {
		t.Fatal(err)
	}
	if got := first[task].Metrics; len(got) != 0 {
		t.Fatalf("first reading reported rates: %v", got)
	}

	scope := filepath.Join(root, "nomad.slice", task.AllocID+".web.scope")
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(scope, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("cpu.stat", "usage_usec 9123456\nuser_usec 7000000\nsystem_usec 2123456\nnr_periods 1300\nnr_throttled 80\nthrottled_usec 2600000\n")
	write("cpu.pressure", "some avg10=1.50 avg60=0.80 avg300=0.20 total=4000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
	clk.Advance(10 * time.Second)

	second, err := h.Sample(context.Background(), []Task{task, missing})
	if err != nil {
		t.Fatal(err)
	}
	got := readings(second[task])
	if r := got[telemetry.CPUThrottledRatio]; math.Abs(r-0.2) > 1e-9 {
		t.Errorf("cpu_throttled_ratio = %v, want 20 of 100 periods = 0.2", r)
	}
	if p := got["psi_cpu_some"]; math.Abs(p-10) > 1e-9 {
		t.Errorf("psi_cpu_some = %v, want 1 s stalled in 10 s = 10%%", p)
	}
	if len(second[missing].Metrics) != 0 {
		t.Error("a task without a cgroup got metrics")
	}
	if _, ok := got["net_rx_bps"]; ok {
		t.Error("network reported without a process to read it from")
	}
}
