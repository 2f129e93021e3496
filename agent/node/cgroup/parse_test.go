package cgroup

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// stacked is the device-mapper device of the fixture host, over 259:0.
var stacked = map[Device]bool{{Major: 253, Minor: 0}: true}

func TestStackedDevices(t *testing.T) {
	// A sysfs where 253:0 (LVM) sits on 259:0 (NVMe); 8:0 stands alone.
	sys := t.TempDir()
	for _, dir := range []string{"dev/block/253:0/slaves/nvme0n1", "dev/block/259:0/holders/dm-0", "dev/block/8:0/slaves", "dev/block/not-a-device"} {
		if err := os.MkdirAll(filepath.Join(sys, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	got, err := StackedDevices(sys)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[Device{253, 0}] {
		t.Errorf("StackedDevices = %v, want only 253:0", got)
	}
	if _, err := StackedDevices("testdata/absent"); err == nil {
		t.Error("StackedDevices of a missing sysfs gave no error")
	}
}

func TestParseIOStat(t *testing.T) {
	cases := []struct {
		name        string
		in          string
		read, write uint64
		wantErr     bool
	}{
		{"one device", "8:0 rbytes=100 wbytes=20 rios=1 wios=1 dbytes=0 dios=0\n", 100, 20, false},
		{"summed over devices", "8:0 rbytes=100 wbytes=20 rios=1 wios=1\n259:0 rbytes=1 wbytes=2 rios=1 wios=1\n", 101, 22, false},
		{"iocost keys ignored", "8:0 rbytes=5 wbytes=6 rios=1 wios=1 dbytes=0 dios=0 cost.vrate=100.00 cost.usage=12\n", 5, 6, false},
		{"no I/O yet is a real zero", "", 0, 0, false},
		{"no trailing newline", "8:0 rbytes=7 wbytes=8", 7, 8, false},
		{"missing wbytes", "8:0 rbytes=7 rios=1\n", 0, 0, true},
		{"negative", "8:0 rbytes=-7 wbytes=8\n", 0, 0, true},
		{"not a device", "sda rbytes=7 wbytes=8\n", 0, 0, true},
		{"bare token", "8:0 rbytes=7 wbytes\n", 0, 0, true},
		{"overflowing sum", "8:0 rbytes=18446744073709551615 wbytes=0\n8:1 rbytes=1 wbytes=0\n", 0, 0, true},
		{"stacked device skipped", "259:0 rbytes=10 wbytes=20\n253:0 rbytes=10 wbytes=20\n", 10, 20, false},
		{"bad minor", "8:x rbytes=1 wbytes=2\n", 0, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, w, err := ParseIOStat([]byte(c.in), stacked)
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if r != c.read || w != c.write {
				t.Errorf("got read %d write %d, want %d %d", r, w, c.read, c.write)
			}
		})
	}
}

func TestParseBlkio(t *testing.T) {
	cases := []struct {
		name        string
		in          string
		read, write uint64
		wantErr     bool
	}{
		{"two devices", "8:0 Read 10\n8:0 Write 20\n8:0 Sync 30\n8:0 Async 0\n8:0 Discard 0\n8:0 Total 30\n8:16 Read 1\n8:16 Write 2\nTotal 33\n", 11, 22, false},
		{"nothing yet", "Total 0\n", 0, 0, false},
		{"empty", "", 0, 0, false},
		{"bad number", "8:0 Read x\n", 0, 0, true},
		{"bad total", "Total x\n", 0, 0, true},
		{"missing value", "8:0 Read\n", 0, 0, true},
		{"extra field", "8:0 Read 1 2\n", 0, 0, true},
		{"not a device", "sda Read 1\n", 0, 0, true},
		{"stacked device skipped", "8:16 Read 5\n8:16 Write 6\n253:0 Read 5\n253:0 Write 6\nTotal 22\n", 5, 6, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, w, err := ParseBlkio([]byte(c.in), stacked)
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if r != c.read || w != c.write {
				t.Errorf("got read %d write %d, want %d %d", r, w, c.read, c.write)
			}
		})
	}
}

func TestParsePressure(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    Pressure
		wantErr bool
	}{
		{
			name: "some and full",
			in:   "some avg10=1.50 avg60=0.80 avg300=0.20 total=3000000\nfull avg10=0.25 avg60=0.00 avg300=0.00 total=42\n",
			want: Pressure{SomeAvg10: 1.5, SomeTotal: 3 * time.Second, HasFull: true, FullAvg10: 0.25, FullTotal: 42 * time.Microsecond},
		},
		{
			name: "cpu on kernels before 5.13 has no full line",
			in:   "some avg10=0.00 avg60=0.00 avg300=0.00 total=12345\n",
			want: Pressure{SomeTotal: 12345 * time.Microsecond},
		},
		{name: "only full", in: "full avg10=0.00 avg60=0.00 avg300=0.00 total=1\n", wantErr: true},
		{name: "empty", in: "", wantErr: true},
		{name: "no total", in: "some avg10=0.00 avg60=0.00 avg300=0.00\n", wantErr: true},
		{name: "no avg10", in: "some avg60=0.00 avg300=0.00 total=5\n", wantErr: true},
		{name: "percent above 100", in: "some avg10=100.01 avg60=0.00 avg300=0.00 total=5\n", wantErr: true},
		{name: "NaN", in: "some avg10=NaN avg60=0.00 avg300=0.00 total=5\n", wantErr: true},
		{name: "unknown kind", in: "most avg10=0.00 avg60=0.00 avg300=0.00 total=5\n", wantErr: true},
		{name: "unknown key", in: "some avg10=0.00 avg60=0.00 avg300=0.00 total=5 avg900=1\n", wantErr: true},
		{name: "total overflows a Duration", in: "some avg10=0.00 avg60=0.00 avg300=0.00 total=18446744073709551615\n", wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParsePressure([]byte(c.in))
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestParseCPUStat(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    CPUStat
		wantErr bool
	}{
		{
			name: "v2 with the cpu controller",
			in:   "usage_usec 8000\nuser_usec 6000\nsystem_usec 2000\nnr_periods 10\nnr_throttled 3\nthrottled_usec 1500\nnr_bursts 0\nburst_usec 0\n",
			want: CPUStat{HasThrottle: true, Periods: 10, ThrottledPeriods: 3, ThrottledTime: 1500 * time.Microsecond, HasUsage: true, Usage: 8 * time.Millisecond},
		},
		{
			name: "v2 without the cpu controller has no throttling",
			in:   "usage_usec 8000\nuser_usec 6000\nsystem_usec 2000\n",
			want: CPUStat{HasUsage: true, Usage: 8 * time.Millisecond},
		},
		{
			name: "v1 counts nanoseconds",
			in:   "nr_periods 1000\nnr_throttled 250\nthrottled_time 3500000000\n",
			want: CPUStat{HasThrottle: true, Periods: 1000, ThrottledPeriods: 250, ThrottledTime: 3500 * time.Millisecond},
		},
		{
			name: "partial throttle counters are not reported",
			in:   "nr_periods 1000\nthrottled_time 35\n",
			want: CPUStat{},
		},
		{name: "bad value", in: "nr_periods ten\n", wantErr: true},
		{name: "missing value", in: "nr_periods\n", wantErr: true},
		{name: "extra field", in: "nr_periods 1 2\n", wantErr: true},
		{name: "overflowing usec", in: "usage_usec 18446744073709551615\n", wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseCPUStat([]byte(c.in))
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestParseMemoryStat(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    MemoryStat
		wantErr bool
	}{
		{"v2", "anon 100\nfile 20\nkernel 3\nshmem 0\n", MemoryStat{HasRSS: true, RSS: 100, HasCache: true, Cache: 20}, false},
		{"v1 with swap accounting", "cache 20\nrss 100\nrss_huge 0\nswap 7\ntotal_rss 999\n", MemoryStat{HasRSS: true, RSS: 100, HasCache: true, Cache: 20, HasSwap: true, Swap: 7}, false},
		{"unknown keys only", "pgfault 10\n", MemoryStat{}, false},
		{"bad value", "anon x\n", MemoryStat{}, true},
		{"missing value", "anon\n", MemoryStat{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseMemoryStat([]byte(c.in))
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestParseValue(t *testing.T) {
	if v, err := ParseValue([]byte("134217728\n")); err != nil || v != 134217728 {
		t.Errorf("ParseValue = %d, %v; want 134217728", v, err)
	}
	for _, in := range []string{"", "\n", "max\n", "-1\n", "1 2\n"} {
		if v, err := ParseValue([]byte(in)); err == nil {
			t.Errorf("ParseValue(%q) = %d, want an error", in, v)
		}
	}
}
