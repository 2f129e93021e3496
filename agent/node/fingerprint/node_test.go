package fingerprint

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/procfs"
)

func TestParseCPUInfo(t *testing.T) {
	cases := []struct {
		file string
		want CPUInfo
	}{
		{"x86_64", CPUInfo{Model: "AMD EPYC 7R13 Processor", CPUs: 4, Cores: 2}},
		{"arm64-graviton2", CPUInfo{Model: "ARM Neoverse-N1", CPUs: 2, Cores: 2}},
		{"arm64-unlisted", CPUInfo{Model: "arm implementer 0x61 part 0x039", CPUs: 1, Cores: 1}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			b, err := os.ReadFile("testdata/cpuinfo/" + c.file)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseCPUInfo(b)
			if err != nil || got != c.want {
				t.Errorf("ParseCPUInfo = %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
	for _, in := range []string{"", "vendor_id : x\n", "processor : x\n"} {
		if got, err := ParseCPUInfo([]byte(in)); err == nil {
			t.Errorf("ParseCPUInfo(%q) = %+v, want an error", in, got)
		}
	}
}

func TestMemTotal(t *testing.T) {
	read := func(file string) string {
		b, err := os.ReadFile("testdata/meminfo/" + file)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got, err := MemTotal(fakeProc(t, map[string]string{"meminfo": read("16g")})); err != nil || got != 16002148*1024 {
		t.Errorf("MemTotal = %d, %v; want %d", got, err, 16002148*1024)
	}
	for _, in := range []string{read("no-total"), "MemTotal: 12 MB\n", "MemTotal: x kB\n", "MemTotal: 0 kB\n", "MemTotal: 18446744073709551615 kB\n"} {
		if got, err := MemTotal(fakeProc(t, map[string]string{"meminfo": in})); err == nil {
			t.Errorf("MemTotal of %q = %d, want an error", in, got)
		}
	}
}

func TestMemTierOf(t *testing.T) {
	const gib = 1 << 30
	cases := []struct {
		name  string
		total uint64
		cpus  int
		want  MemTier
	}{
		{"c-family 2 GiB/vCPU less kernel reserve", 2 * 185 * gib / 100, 2, MemTierLow},
		{"m-family 4 GiB/vCPU less kernel reserve", 4 * 38 * gib / 10, 4, MemTierStandard},
		{"r-family 8 GiB/vCPU less kernel reserve", 8 * 76 * gib / 10, 8, MemTierHigh},
		{"x-family 16 GiB/vCPU less kernel reserve", 16 * 152 * gib / 10, 16, MemTierXHigh},
		{"exactly on the standard bound", MemPerCPUStandard, 1, MemTierStandard},
		{"just below the high bound", MemPerCPUHigh - 1, 1, MemTierStandard},
		{"no CPUs", 8 * gib, 0, MemTierUnknown},
		{"no memory", 0, 4, MemTierUnknown},
	}
	for _, c := range cases {
		if got := MemTierOf(c.total, c.cpus); got != c.want {
			t.Errorf("%s: MemTierOf = %s, want %s", c.name, got, c.want)
		}
	}
}

func TestNetwork(t *testing.T) {
	sys := fixtureSysfs(t)
	speeds := []struct {
		iface string
		mbps  int64
		tier  NetTier
	}{
		{"eno1", 1000, NetTier1G},
		{"eth0", 10000, NetTier10G},
		{"eth1", 25000, NetTier25G},
		{"ens6", 100000, NetTier100G},
		{"ens5", 0, NetTierUnknown},   // the driver reports -1
		{"enp9s0", 0, NetTierUnknown}, // no speed file (link down)
		{"br0", 25000, NetTier25G},    // a bridge takes its fastest port
		{"lo", 0, NetTierUnknown},     // virtual, no speed
	}
	for _, s := range speeds {
		got, err := LinkSpeed(sys, s.iface)
		if err != nil || got != s.mbps || NetTierOf(got) != s.tier {
			t.Errorf("LinkSpeed(%s) = %d (%s), %v; want %d (%s)", s.iface, got, NetTierOf(got), err, s.mbps, s.tier)
		}
	}
	if _, err := LinkSpeed(sys, "nope0"); err == nil {
		t.Error("LinkSpeed of a missing interface gave no error")
	}
	if got := NetTierOf(100); got != NetTierSub1G {
		t.Errorf("NetTierOf(100) = %s", got)
	}

	first, err := FirstPhysicalInterface(sys)
	if err != nil || first != "eno1" {
		t.Errorf("FirstPhysicalInterface = %q, %v; want eno1 (lo, veth and br0 are virtual)", first, err)
	}
	if _, err := FirstPhysicalInterface(t.TempDir()); err == nil {
		t.Error("FirstPhysicalInterface of an empty sysfs gave no error")
	}
}

func TestDefaultRoute(t *testing.T) {
	fixture, err := procfs.NewFS(fixtureProc)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DefaultRoute(fixture); err != nil || got != "eth0" {
		t.Errorf("DefaultRoute = %q, %v; want eth0, the lower metric", got, err)
	}
	const header = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
	noDefault := header + "eth0\t000200C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n"
	if got, err := DefaultRoute(fakeProc(t, map[string]string{"net/route": noDefault})); err != nil || got != "" {
		t.Errorf("DefaultRoute without a default = %q, %v; want none", got, err)
	}
	for _, in := range []string{header + "eth0 00000000\n", header + "eth0\tZZ\t0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"} {
		if got, err := DefaultRoute(fakeProc(t, map[string]string{"net/route": in})); err == nil {
			t.Errorf("DefaultRoute of %q = %q, want an error", in, got)
		}
	}
}

func TestPlatform(t *testing.T) {
	cases := []struct {
		name       string
		configured Platform
		attrs      map[string]string
		want       Platform
	}{
		{"aws", "", map[string]string{"platform.aws.instance-type": "m5.large", "unique.platform.aws.instance-id": "i-0abc"}, PlatformProvider},
		{"gce unique only", "", map[string]string{"unique.platform.gce.id": "123"}, PlatformProvider},
		{"azure", "", map[string]string{"platform.azure.vm-size": "Standard_D2s_v3"}, PlatformProvider},
		{"digitalocean", "", map[string]string{"platform.digitalocean.region": "ams3"}, PlatformProvider},
		{"bare metal", "", map[string]string{"cpu.modelname": "EPYC", "kernel.name": "linux"}, PlatformExternal},
		{"vsphere is on-premises", "", map[string]string{"platform.vsphere.uuid": "x"}, PlatformExternal},
		{"no attributes", "", nil, PlatformExternal},
		{"configuration wins", PlatformExternal, map[string]string{"platform.aws.instance-type": "m5.large"}, PlatformExternal},
	}
	for _, c := range cases {
		if got := PlatformOf(c.configured, c.attrs); got != c.want {
			t.Errorf("%s: PlatformOf = %s, want %s", c.name, got, c.want)
		}
	}
	for _, ok := range []string{"", "external", "provider"} {
		if _, err := ParsePlatform(ok); err != nil {
			t.Errorf("ParsePlatform(%q): %v", ok, err)
		}
	}
	if _, err := ParsePlatform("cloud"); err == nil {
		t.Error("ParsePlatform accepted cloud")
	}
}

func TestDetect(t *testing.T) {
	sys := fixtureSysfs(t)
	got, err := Detect(Config{SysRoot: sys, ProcRoot: fixtureProc}, map[string]string{"kernel.name": "linux"})
	if err != nil {
		t.Fatal(err)
	}
	want := Traits{
		Platform:      PlatformExternal,
		Storage:       StorageSSD,
		MemTier:       MemTierStandard,
		NetTier:       NetTier10G,
		CPU:           CPUInfo{Model: "AMD EPYC 7R13 Processor", CPUs: 4, Cores: 2},
		MemTotalBytes: 16002148 * 1024,
		Interface:     "eth0",
		LinkSpeedMbps: 10000,
	}
	if got != want {
		t.Errorf("Detect =\n%+v\nwant\n%+v", got, want)
	}
	if c := got.Class(); c != "external-ssd-standard-10g" {
		t.Errorf("Class = %s", c)
	}

	got, err = Detect(Config{SysRoot: sys, ProcRoot: fixtureProc, AllocDir: "/data/nomad/alloc", Interface: "eth1"},
		map[string]string{"platform.aws.instance-type": "r5.large"})
	if err != nil {
		t.Fatal(err)
	}
	if c := got.Class(); c != "provider-hdd-standard-25g" {
		t.Errorf("Class with config = %s, want provider-hdd-standard-25g", c)
	}
}

// TestDetectOwnMountsWithoutRoot checks the fallback for an agent that may
// not read init's mounts: its own, here a container's overlay root, whose
// disk cannot be told.
func TestDetectOwnMountsWithoutRoot(t *testing.T) {
	sys := fixtureSysfs(t)
	proc := t.TempDir()
	for _, f := range []string{"self/mountinfo", "cpuinfo", "meminfo", "net/route"} {
		b, err := os.ReadFile(filepath.Join(fixtureProc, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(proc, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Detect(Config{SysRoot: sys, ProcRoot: proc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Storage != StorageUnknown {
		t.Errorf("Storage on an overlay root = %s, want unknown", got.Storage)
	}
}

func TestDetectWithoutRouteFallsBackToPhysical(t *testing.T) {
	sys := fixtureSysfs(t)
	proc := t.TempDir()
	got, err := Detect(Config{SysRoot: sys, ProcRoot: proc}, nil)
	if err == nil {
		t.Fatal("Detect over an empty procfs reported no error")
	}
	for _, want := range []string{"mountinfo", "cpuinfo", "meminfo"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v does not wrap not-exist", err)
	}
	if got.Storage != StorageUnknown || got.MemTier != MemTierUnknown {
		t.Errorf("unreadable traits are not unknown: %+v", got)
	}
	if got.Interface != "eno1" || got.NetTier != NetTier1G {
		t.Errorf("without a route, Interface = %s (%s), want eno1 (1g)", got.Interface, got.NetTier)
	}
	if c := got.Class(); c != "external-unknown-unknown-1g" {
		t.Errorf("Class = %s", c)
	}
}
