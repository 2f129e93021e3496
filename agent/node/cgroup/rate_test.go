package cgroup

import (
	"math"
	"testing"
	"time"

	"github.com/foresight-nomad/foresight/telemetry"
)

var t0 = time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)

func reading(ioR, ioW, periods, throttled uint64, psi time.Duration) Reading {
	return Reading{
		Present:     FieldIO | FieldThrottle | FieldPSICPU | FieldPSIMemory | FieldPSIIO,
		IOReadBytes: ioR, IOWriteBytes: ioW,
		CPUPeriods: periods, CPUThrottledPeriods: throttled,
		PSICPU:    Pressure{SomeTotal: psi},
		PSIMemory: Pressure{SomeTotal: psi / 2},
		PSIIO:     Pressure{SomeTotal: psi / 4},
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestRaterFirstReadingHasNoRates(t *testing.T) {
	var rt Rater
	r := reading(100, 100, 10, 1, time.Second)
	if got := rt.Update(t0, &r); got.Present != 0 {
		t.Fatalf("first reading gave rates %+v", got)
	}
}

func TestRaterRates(t *testing.T) {
	var rt Rater
	a := reading(1000, 500, 100, 10, 2*time.Second)
	b := reading(1000+20480, 500+10240, 200, 35, 2*time.Second+2500*time.Millisecond)
	rt.Update(t0, &a)
	got := rt.Update(t0.Add(10*time.Second), &b)

	if got.Present != FieldIO|FieldThrottle|FieldPSICPU|FieldPSIMemory|FieldPSIIO {
		t.Fatalf("Present = %b", got.Present)
	}
	checks := []struct {
		name      string
		got, want float64
	}{
		{"io_read_bps", got.IOReadBPS, 2048},
		{"io_write_bps", got.IOWriteBPS, 1024},
		{"cpu_throttled_ratio", got.CPUThrottledRatio, 0.25},
		{"psi_cpu_some", got.PSICPUSome, 25},
		{"psi_mem_some", got.PSIMemorySome, 12.5},
		{"psi_io_some", got.PSIIOSome, 6.25},
	}
	for _, c := range checks {
		if !near(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if got.Interval != 10*time.Second {
		t.Errorf("Interval = %v", got.Interval)
	}

	var names []string
	for _, m := range got.Metrics(nil) {
		names = append(names, m.Name)
	}
	want := []string{telemetry.IOReadBPS, telemetry.IOWriteBPS, telemetry.CPUThrottledRatio, telemetry.PSICPUSome, telemetry.PSIMemSome, telemetry.PSIIOSome}
	if len(names) != len(want) {
		t.Fatalf("Metrics named %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Errorf("Metrics named %v, want %v", names, want)
		}
	}
}

func TestRaterEdgeCases(t *testing.T) {
	cases := []struct {
		name        string
		a, b        Reading
		dt          time.Duration
		wantPresent Field
	}{
		{
			name: "counter reset drops only that rate",
			a:    reading(5000, 5000, 100, 10, time.Second),
			b:    reading(10, 20, 110, 11, 2*time.Second),
			dt:   10 * time.Second, wantPresent: FieldThrottle | FieldPSICPU | FieldPSIMemory | FieldPSIIO,
		},
		{
			name: "no CPU period elapsed leaves the ratio undefined, not zero",
			a:    reading(0, 0, 100, 10, 0),
			b:    reading(0, 0, 100, 10, 0),
			dt:   10 * time.Second, wantPresent: FieldIO | FieldPSICPU | FieldPSIMemory | FieldPSIIO,
		},
		{
			name: "a field absent on either side has no rate",
			a:    Reading{Present: FieldIO, IOReadBytes: 1},
			b:    Reading{Present: FieldPSICPU},
			dt:   10 * time.Second, wantPresent: 0,
		},
		{
			name: "same timestamp gives nothing",
			a:    reading(0, 0, 0, 0, 0),
			b:    reading(10, 10, 10, 1, time.Second),
			dt:   0, wantPresent: 0,
		},
		{
			name: "clock went backwards gives nothing",
			a:    reading(0, 0, 0, 0, 0),
			b:    reading(10, 10, 10, 1, time.Second),
			dt:   -time.Second, wantPresent: 0,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var rt Rater
			rt.Update(t0, &c.a)
			got := rt.Update(t0.Add(c.dt), &c.b)
			if got.Present != c.wantPresent {
				t.Errorf("Present = %b, want %b (%+v)", got.Present, c.wantPresent, got)
			}
		})
	}
}

func TestRaterRebasesAfterReset(t *testing.T) {
	var rt Rater
	a := reading(5000, 5000, 0, 0, 0)
	b := reading(100, 100, 0, 0, 0)
	c := reading(1100, 2100, 0, 0, 0)
	rt.Update(t0, &a)
	rt.Update(t0.Add(10*time.Second), &b)
	got := rt.Update(t0.Add(20*time.Second), &c)
	if got.Present&FieldIO == 0 || !near(got.IOReadBPS, 100) || !near(got.IOWriteBPS, 200) {
		t.Errorf("after a reset the next interval gave %+v, want 100 and 200 B/s", got)
	}
}

func TestRaterClampsPSIJitter(t *testing.T) {
	var rt Rater
	a := reading(0, 0, 0, 0, 0)
	b := reading(0, 0, 0, 0, 10*time.Second+time.Millisecond)
	rt.Update(t0, &a)
	got := rt.Update(t0.Add(10*time.Second), &b)
	if got.PSICPUSome != 100 {
		t.Errorf("psi_cpu_some = %v, want clamped to 100", got.PSICPUSome)
	}
}

func TestRaterReset(t *testing.T) {
	var rt Rater
	a := reading(0, 0, 0, 0, 0)
	rt.Update(t0, &a)
	rt.Reset()
	if got := rt.Update(t0.Add(time.Second), &a); got.Present != 0 {
		t.Errorf("after Reset the next reading gave rates %+v", got)
	}
}

func TestReadingMetrics(t *testing.T) {
	r := Reading{Present: FieldMemRSS, MemRSSBytes: 42}
	got := r.Metrics(nil)
	if len(got) != 1 || got[0] != (Metric{telemetry.MemRSSBytes, 42}) {
		t.Errorf("Metrics = %v, want only mem_rss_bytes", got)
	}
}
