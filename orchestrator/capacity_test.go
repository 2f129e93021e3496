package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad-autoscaler/sdk"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/plugin/host"
	"github.com/foresight-nomad/foresight/plugin/simtarget"
	"github.com/foresight-nomad/foresight/plugin/simtarget/simtargettest"
	"github.com/foresight-nomad/foresight/profiles"
	"github.com/foresight-nomad/foresight/sim/simtest"
)

// fakeTarget is a node group that resizes at once; while inFlight is set
// its Status says it is not ready.
type fakeTarget struct {
	count    int64
	inFlight bool
	statErr  error
	scaleErr error
	scales   []sdk.ScalingAction
	configs  []map[string]string
}

func (f *fakeTarget) Status(config map[string]string) (*sdk.TargetStatus, error) {
	f.configs = append(f.configs, config)
	if f.statErr != nil {
		return nil, f.statErr
	}
	return &sdk.TargetStatus{Count: f.count, Ready: !f.inFlight}, nil
}

func (f *fakeTarget) Scale(a sdk.ScalingAction, config map[string]string) error {
	f.configs = append(f.configs, config)
	if f.scaleErr != nil {
		return f.scaleErr
	}
	f.scales = append(f.scales, a)
	f.count = a.Count
	return nil
}

// capClass is a class of n nodes of 4000 MHz / 8192 MB, ready of them
// ready, with used MHz and MB reserved by allocations.
func capClass(id string, n, ready int, usedMHz, usedMB float64) profiles.Class {
	nodes := make([]string, n)
	for i := range nodes {
		nodes[i] = fmt.Sprintf("%s-%d", id, i)
	}
	return profiles.Class{
		ID: id, Traits: profiles.Traits{Platform: profiles.PlatformProvider}, Nodes: nodes, ReadyNodes: ready,
		CPUMHz: 4000 * float64(n), MemoryMB: 8192 * float64(n),
		FreeCPUMHz: 4000*float64(ready) - usedMHz, FreeMemoryMB: 8192*float64(ready) - usedMB,
	}
}

func capTargetCfg(name string, classes ...string) CapacityTarget {
	return CapacityTarget{
		Name: name, Driver: "fake", Target: map[string]string{"node_group": name}, Classes: classes,
		Min: 1, Max: 5, ScaleInDelay: 10 * time.Minute,
	}
}

var capStart = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

func newFakeCapacity(t *testing.T, fakes map[string]*fakeTarget, cfgs ...CapacityTarget) *Capacity {
	t.Helper()
	c, err := NewCapacity(cfgs, func(tc CapacityTarget) (Target, error) {
		f, ok := fakes[tc.Name]
		if !ok {
			return nil, fmt.Errorf("no fake %q", tc.Name)
		}
		return f, nil
	}, clock.NewVirtual(capStart), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCapacityTargetValidate(t *testing.T) {
	ok := capTargetCfg("cloud", "cloud")
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		edit func(*CapacityTarget)
		want string
	}{
		{func(t *CapacityTarget) { t.Name = "" }, "no name"},
		{func(t *CapacityTarget) { t.Driver = "" }, "driver is required"},
		{func(t *CapacityTarget) { t.Driver = "../bin/aws-asg" }, "not a path"},
		{func(t *CapacityTarget) { t.Classes = nil }, "classes is empty"},
		{func(t *CapacityTarget) { t.Classes = []string{"a", "a"} }, `class "a" listed twice`},
		{func(t *CapacityTarget) { t.Classes = []string{" "} }, "empty class ID"},
		{func(t *CapacityTarget) { t.Min = -1 }, "min -1 is negative"},
		{func(t *CapacityTarget) { t.Max = 0; t.Min = 0 }, "max 0 must be at least 1"},
		{func(t *CapacityTarget) { t.Min = 6 }, "min 6 is greater than max 5"},
		{func(t *CapacityTarget) { t.ScaleInDelay = 0 }, "scale_in_delay 0s must be positive"},
	} {
		tc := ok
		tc.Classes = append([]string(nil), ok.Classes...)
		c.edit(&tc)
		if err := tc.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tc, err, c.want)
		}
	}
}

func TestNewCapacityRefuses(t *testing.T) {
	open := func(CapacityTarget) (Target, error) { return &fakeTarget{}, nil }
	clk := clock.NewVirtual(capStart)
	if _, err := NewCapacity([]CapacityTarget{capTargetCfg("a", "x"), capTargetCfg("b", "y", "x")}, open, clk, nil); err == nil ||
		!strings.Contains(err.Error(), `class "x" already belongs to capacity "a"`) {
		t.Errorf("shared class: %v", err)
	}
	if _, err := NewCapacity([]CapacityTarget{capTargetCfg("a", "x"), capTargetCfg("a", "y")}, open, clk, nil); err == nil ||
		!strings.Contains(err.Error(), "defined twice") {
		t.Errorf("duplicate name: %v", err)
	}
	failing := func(CapacityTarget) (Target, error) { return nil, errors.New("no plugin binary fake") }
	if _, err := NewCapacity([]CapacityTarget{capTargetCfg("a", "x")}, failing, clk, nil); err == nil ||
		!strings.Contains(err.Error(), "no plugin binary fake") {
		t.Errorf("open failure: %v", err)
	}
}

func TestArriving(t *testing.T) {
	fakes := map[string]*fakeTarget{"cloud": {count: 4}, "gpu": {count: 1}, "new": {count: 2}}
	c := newFakeCapacity(t, fakes, capTargetCfg("cloud", "cloud-old", "cloud"), capTargetCfg("gpu", "gpu"), capTargetCfg("new", "fresh"))
	classes := []profiles.Class{capClass("cloud", 3, 1, 0, 0), capClass("gpu", 1, 1, 0, 0)}
	got, err := c.Arriving(context.Background(), classes)
	if err == nil || !strings.Contains(err.Error(), `capacity "new": 2 nodes arriving, but none of its classes [fresh] has nodes`) {
		t.Fatalf("err = %v, want the class with no nodes named", err)
	}
	// cloud: 4 asked, 1 ready: 3 nodes of 4000 MHz / 8192 MB arriving, on
	// the first of its classes that has nodes.
	want := map[string]Resources{"cloud": {CPUMHz: 12000, MemoryMB: 3 * 8192}}
	if len(got) != len(want) || got["cloud"] != want["cloud"] {
		t.Fatalf("arriving = %v, want %v", got, want)
	}
	if cfg := fakes["cloud"].configs[0]; cfg["node_group"] != "cloud" {
		t.Fatalf("Status got target config %v", cfg)
	}

	fakes["gpu"].statErr = errors.New("connection refused")
	fakes["new"].count = 0
	got, err = c.Arriving(context.Background(), classes)
	if err == nil || !strings.Contains(err.Error(), `capacity "gpu": status: connection refused`) || got["cloud"] != want["cloud"] {
		t.Fatalf("with a failing target: %v, %v", got, err)
	}
}

func TestReconcileScalesUpByNodesLacking(t *testing.T) {
	for _, c := range []struct {
		name     string
		count    int64
		reqs     []CapacityRequest
		want     int64
		inReason string
	}{
		{"cpu", 2, []CapacityRequest{{Class: "cloud", CPUMHz: 4001, MemoryMB: 100}}, 4, "2 → 4 nodes"},
		{"exact", 2, []CapacityRequest{{Class: "cloud", CPUMHz: 8000}}, 4, "lacks 8000 MHz"},
		{"memory", 2, []CapacityRequest{{Class: "cloud", CPUMHz: 100, MemoryMB: 3 * 8192}}, 5, "2 → 5 nodes"},
		{"summed", 1, []CapacityRequest{{Class: "cloud", CPUMHz: 3000}, {Class: "cloud", CPUMHz: 3000}}, 3, "lacks 6000 MHz"},
		{"two classes", 1, []CapacityRequest{{Class: "cloud", CPUMHz: 1000}, {Class: "cloud-b", CPUMHz: 1000}}, 3, "class cloud,cloud-b"},
		{"capped", 3, []CapacityRequest{{Class: "cloud", CPUMHz: 20000}}, 5, "(8 wanted, capped at max 5)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeTarget{count: c.count}
			capa := newFakeCapacity(t, map[string]*fakeTarget{"cloud": f}, capTargetCfg("cloud", "cloud", "cloud-b"))
			classes := []profiles.Class{capClass("cloud", int(c.count), int(c.count), 0, 0), capClass("cloud-b", 1, 1, 0, 0)}
			acts, err := capa.Reconcile(context.Background(), capStart, c.reqs, classes, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(f.scales) != 1 || f.scales[0].Count != c.want || f.scales[0].Direction != sdk.ScaleDirectionUp {
				t.Fatalf("scales = %+v, want one up to %d", f.scales, c.want)
			}
			if len(acts) != 1 || !acts[0].Scaled() || acts[0].From != c.count || acts[0].To != c.want || acts[0].Target != "cloud" {
				t.Fatalf("actions = %+v", acts)
			}
			if !strings.Contains(acts[0].Reason, c.inReason) || !strings.Contains(f.scales[0].Reason, c.inReason) {
				t.Fatalf("reason %q / %q does not say %q", acts[0].Reason, f.scales[0].Reason, c.inReason)
			}
			if f.scales[0].Meta["foresight.nodes_wanted"] == nil {
				t.Fatalf("scaling action meta %v", f.scales[0].Meta)
			}
		})
	}
}

func TestReconcileHolds(t *testing.T) {
	req := []CapacityRequest{{Class: "cloud", CPUMHz: 4000}}
	classes := []profiles.Class{capClass("cloud", 2, 2, 0, 0)}

	t.Run("in flight", func(t *testing.T) {
		f := &fakeTarget{count: 3, inFlight: true}
		capa := newFakeCapacity(t, map[string]*fakeTarget{"cloud": f}, capTargetCfg("cloud", "cloud"))
		acts, _ := capa.Reconcile(context.Background(), capStart, req, classes, nil)
		if len(f.scales) != 0 || len(acts) != 1 || acts[0].Scaled() || !strings.Contains(acts[0].Reason, "not ready") {
			t.Fatalf("scales %v, actions %+v", f.scales, acts)
		}
	})
	t.Run("at max", func(t *testing.T) {
		f := &fakeTarget{count: 5}
		capa := newFakeCapacity(t, map[string]*fakeTarget{"cloud": f}, capTargetCfg("cloud", "cloud"))
		acts, _ := capa.Reconcile(context.Background(), capStart, req, classes, nil)
		if len(f.scales) != 0 || len(acts) != 1 || acts[0].Scaled() || !strings.Contains(acts[0].Reason, "at its max 5") {
			t.Fatalf("scales %v, actions %+v", f.scales, acts)
		}
	})
	t.Run("errors", func(t *testing.T) {
		f := &fakeTarget{count: 1, scaleErr: errors.New("quota exceeded")}
		capa := newFakeCapacity(t, map[string]*fakeTarget{"cloud": f}, capTargetCfg("cloud", "cloud", "empty"))
		acts, err := capa.Reconcile(context.Background(), capStart, []CapacityRequest{
			{Class: "cloud", CPUMHz: 1000}, {Class: "empty", CPUMHz: 1000}, {Class: "nobody", CPUMHz: 1000},
		}, classes, nil)
		if err != nil {
			t.Fatal(err)
		}
		errs := map[string]string{}
		for _, a := range acts {
			errs[a.Class] = a.Err
		}
		for class, want := range map[string]string{
			"nobody": `no capacity block lists class "nobody"`,
			"empty":  `class "empty" has no nodes, so the size of a node to add is unknown`,
			"cloud":  "scale cloud to 2: quota exceeded",
		} {
			if !strings.Contains(errs[class], want) {
				t.Errorf("action for %s: error %q, want %q (all: %+v)", class, errs[class], want, acts)
			}
		}
	})
	t.Run("declined", func(t *testing.T) {
		f := &fakeTarget{count: 1, scaleErr: sdk.NewTargetScalingNoOpError("instance refresh in progress")}
		capa := newFakeCapacity(t, map[string]*fakeTarget{"cloud": f}, capTargetCfg("cloud", "cloud"))
		acts, _ := capa.Reconcile(context.Background(), capStart, req, classes, nil)
		if len(acts) != 1 || acts[0].Err != "" || acts[0].Scaled() || !strings.Contains(acts[0].Reason, "declined") {
			t.Fatalf("actions %+v", acts)
		}
	})
}

func TestReconcileScalesInAfterTheDelay(t *testing.T) {
	clk := clock.NewVirtual(capStart)
	f := &fakeTarget{count: 4}
	capa := newFakeCapacity(t, map[string]*fakeTarget{"cloud": f}, capTargetCfg("cloud", "cloud"))
	// 4 nodes, 16000 MHz; 5000 MHz demand, 3000 reserved: 2.75 nodes spare.
	classes := []profiles.Class{capClass("cloud", 4, 4, 3000, 4096)}
	demand := map[string]Resources{"cloud": {CPUMHz: 5000, MemoryMB: 2048}}
	pass := func() []CapacityAction {
		t.Helper()
		acts, err := capa.Reconcile(context.Background(), clk.Now(), nil, classes, demand)
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
		return acts
	}
	for i := 0; i <= 10; i++ { // spare at 0m … 10m: not longer than the delay yet
		if acts := pass(); len(acts) != 0 || len(f.scales) != 0 {
			t.Fatalf("pass at %dm: scaled in before the delay: %+v", i, acts)
		}
	}
	acts := pass() // 11m
	if len(f.scales) != 1 || f.count != 3 || f.scales[0].Direction != sdk.ScaleDirectionDown {
		t.Fatalf("after the delay: scales %+v", f.scales)
	}
	if len(acts) != 1 || acts[0].From != 4 || acts[0].To != 3 || !strings.Contains(acts[0].Reason, "spare capacity for 11m0s") {
		t.Fatalf("actions %+v", acts)
	}
	// The nodes left still have 1.75 nodes spare over the whole run: one
	// more step, one per pass.
	classes = []profiles.Class{capClass("cloud", 3, 3, 3000, 4096)}
	if acts := pass(); len(acts) != 1 || f.count != 2 {
		t.Fatalf("second step: count %d, actions %+v", f.count, acts)
	}
	// 0.75 nodes spare: the run is over.
	classes = []profiles.Class{capClass("cloud", 2, 2, 3000, 4096)}
	for range 20 {
		if acts := pass(); len(acts) != 0 || f.count != 2 {
			t.Fatalf("scaled in without a node to spare: count %d, actions %+v", f.count, acts)
		}
	}
}

func TestReconcileScaleInWaitsAgain(t *testing.T) {
	clk := clock.NewVirtual(capStart)
	f := &fakeTarget{count: 3}
	capa := newFakeCapacity(t, map[string]*fakeTarget{"cloud": f}, capTargetCfg("cloud", "cloud"))
	classes := []profiles.Class{capClass("cloud", 3, 3, 0, 0)}
	run := func(minutes int, reqs []CapacityRequest) {
		t.Helper()
		for range minutes {
			if _, err := capa.Reconcile(context.Background(), clk.Now(), reqs, classes, nil); err != nil {
				t.Fatal(err)
			}
			clk.Advance(time.Minute)
		}
	}
	run(8, nil)
	// A request for the class is pending: no scale-in, and the wait
	// starts over (a zero request adds nothing either).
	run(1, []CapacityRequest{{Class: "cloud"}})
	run(8, nil)
	f.count = 4 // resized out of band
	classes = []profiles.Class{capClass("cloud", 4, 4, 0, 0)}
	run(8, nil)
	if len(f.scales) != 0 {
		t.Fatalf("scaled in though the wait was broken: %+v", f.scales)
	}
	run(4, nil)
	if len(f.scales) != 1 || f.count != 3 {
		t.Fatalf("after 11 unbroken minutes: %+v", f.scales)
	}
}

func TestReconcileNeverBelowMin(t *testing.T) {
	clk := clock.NewVirtual(capStart)
	f := &fakeTarget{count: 3}
	cfg := capTargetCfg("cloud", "cloud")
	cfg.Min = 2
	capa := newFakeCapacity(t, map[string]*fakeTarget{"cloud": f}, cfg)
	for range 60 {
		classes := []profiles.Class{capClass("cloud", int(f.count), int(f.count), 0, 0)}
		if _, err := capa.Reconcile(context.Background(), clk.Now(), nil, classes, nil); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
	}
	if f.count != 2 || len(f.scales) != 1 {
		t.Fatalf("count %d after %d scales, want min 2 after one", f.count, len(f.scales))
	}
	// Below min (resized out of band): back up to min.
	f.count = 1
	acts, _ := capa.Reconcile(context.Background(), clk.Now(), nil, []profiles.Class{capClass("cloud", 1, 1, 0, 0)}, nil)
	if f.count != 2 || len(acts) != 1 || !strings.Contains(acts[0].Reason, "below min 2") {
		t.Fatalf("below min: count %d, actions %+v", f.count, acts)
	}
}

// classesFromNomad builds the classes as the leader does, from Nomad's
// node and allocation APIs through the official client.
func classesFromNomad(t *testing.T, client *nomadapi.Client) []profiles.Class {
	t.Helper()
	allocs, _, err := client.Allocations().List(&nomadapi.QueryOptions{Params: map[string]string{"resources": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]float64{}
	for _, a := range allocs {
		if a.DesiredStatus != nomadapi.AllocDesiredStatusRun || a.AllocatedResources == nil {
			continue
		}
		for _, tr := range a.AllocatedResources.Tasks {
			used[a.NodeID] += float64(tr.Cpu.CpuShares)
		}
	}
	stubs, _, err := client.Nodes().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	var nodes []profiles.Node
	for _, s := range stubs {
		if s.Status == "down" {
			continue
		}
		n, _, err := client.Nodes().Info(s.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, profiles.Node{
			ID: n.ID, Name: n.Name, Datacenter: n.Datacenter, Pool: n.NodePool, NodeClass: n.NodeClass, Meta: n.Meta,
			CPUMHz: float64(n.NodeResources.Cpu.CpuShares), MemoryMB: float64(n.NodeResources.Memory.MemoryMB),
			UsedCPUMHz: used[n.ID],
			Ready:      n.Status == "ready" && n.SchedulingEligibility == nomadapi.NodeSchedulingEligible && !n.Drain,
		})
	}
	classes, err := profiles.ClassesOf(nodes)
	if err != nil {
		t.Fatal(err)
	}
	return classes
}

// cloudNodes counts the cloud group's nodes Nomad lists, by status.
func cloudNodes(t *testing.T, client *nomadapi.Client) map[string]int {
	t.Helper()
	stubs, _, err := client.Nodes().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, s := range stubs {
		if s.NodeClass == "cloud" {
			out[s.Status]++
		}
	}
	return out
}

func TestCapacityThroughTheSimTargetPlugin(t *testing.T) {
	srv := simtest.Start(t, "testdata/capacity.hcl")
	client := srv.Client
	h := host.New(simtargettest.Build(t), nil, hclog.NewNullLogger())
	t.Cleanup(h.Close)
	cfg := CapacityTarget{
		Name: "cloud", Driver: simtarget.PluginName,
		Config:  map[string]string{"address": srv.URL},
		Target:  map[string]string{"node_group": "cloud"},
		Classes: []string{"cloud"}, Min: 1, Max: 4, ScaleInDelay: 10 * time.Minute,
	}
	capa, err := NewCapacity([]CapacityTarget{cfg}, func(tc CapacityTarget) (Target, error) {
		p, err := h.Open(tc.Name, tc.Driver, tc.Config)
		if err != nil {
			return nil, err
		}
		return p, nil
	}, srv.Cluster.Clock(), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// The forecast wants 5000 MHz more on cloud than it has: two nodes.
	classes := classesFromNomad(t, client)
	acts, err := capa.Reconcile(ctx, srv.Cluster.Now(), []CapacityRequest{{Class: "cloud", CPUMHz: 5000, MemoryMB: 512}}, classes, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(acts) != 1 || acts[0].Err != "" || acts[0].From != 1 || acts[0].To != 3 {
		t.Fatalf("scale-up actions: %+v", acts)
	}
	if got := cloudNodes(t, client); got["ready"] != 1 || got["initializing"] != 2 {
		t.Fatalf("cloud nodes while provisioning: %v", got)
	}
	classes = classesFromNomad(t, client)
	arriving, err := capa.Arriving(ctx, classes)
	if err != nil {
		t.Fatal(err)
	}
	if arriving["cloud"] != (Resources{CPUMHz: 8000, MemoryMB: 8192}) {
		t.Fatalf("arriving while provisioning: %v", arriving)
	}
	// Asked again while the nodes are on their way: nothing more is bought.
	acts, _ = capa.Reconcile(ctx, srv.Cluster.Now(), []CapacityRequest{{Class: "cloud", CPUMHz: 5000}}, classes, nil)
	if len(acts) != 1 || acts[0].Scaled() || !strings.Contains(acts[0].Reason, "not ready") {
		t.Fatalf("second request while in flight: %+v", acts)
	}

	srv.Cluster.Advance(2 * time.Minute)
	if got := cloudNodes(t, client); got["ready"] != 3 || len(got) != 1 {
		t.Fatalf("cloud nodes after the provisioning delay: %v", got)
	}
	classes = classesFromNomad(t, client)
	if arriving, err = capa.Arriving(ctx, classes); err != nil || len(arriving) != 0 {
		t.Fatalf("arriving once ready: %v, %v", arriving, err)
	}
	// The group grows onto the new nodes (job anti-affinity spreads it).
	count := 4
	if _, _, err := client.Jobs().Scale("app", "app", &count, "test", false, nil, nil); err != nil {
		t.Fatal(err)
	}
	srv.Cluster.Advance(time.Minute)

	// Demand falls to 1000 MHz: the extra nodes go, one per pass, only
	// after the delay, and never below min.
	start := srv.Cluster.Now()
	demand := map[string]Resources{"cloud": {CPUMHz: 1000, MemoryMB: 256}}
	var downs []CapacityAction
	for range 20 {
		acts, err := capa.Reconcile(ctx, srv.Cluster.Now(), nil, classesFromNomad(t, client), demand)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range acts {
			if a.Err != "" {
				t.Fatalf("scale-in action failed: %+v", a)
			}
			if a.Scaled() {
				downs = append(downs, a)
			}
		}
		srv.Cluster.Advance(time.Minute)
	}
	if len(downs) != 2 || downs[0].To != 2 || downs[1].To != 1 {
		t.Fatalf("scale-in actions: %+v", downs)
	}
	if waited := downs[0].Time.Sub(start); waited <= cfg.ScaleInDelay {
		t.Fatalf("first scale-in after %s, not after the delay %s", waited, cfg.ScaleInDelay)
	}
	if got := cloudNodes(t, client); got["ready"] != 1 || got["down"] != 2 {
		t.Fatalf("cloud nodes after scale-in: %v", got)
	}
	// The removed nodes' allocations were migrated, and the job lost
	// nothing: every allocation meant to run is running on a node still up.
	allocs, _, err := client.Jobs().Allocations("app", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	running, migrated := 0, 0
	for _, a := range allocs {
		if a.DesiredStatus != nomadapi.AllocDesiredStatusRun {
			full, _, err := client.Allocations().Info(a.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			if full.DesiredTransition.ShouldMigrate() {
				migrated++
			}
			continue
		}
		n, _, err := client.Nodes().Info(a.NodeID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n.Status != "ready" || a.ClientStatus != nomadapi.AllocClientStatusRunning {
			t.Fatalf("allocation %s is %s on node %s (%s)", a.ID, a.ClientStatus, n.Name, n.Status)
		}
		running++
	}
	if running != 4 || migrated == 0 {
		t.Fatalf("%d allocations of app running, want 4; %d migrated off removed nodes, want some", running, migrated)
	}
}

func TestReconcileScaleInCountsTheLeastSpare(t *testing.T) {
	clk := clock.NewVirtual(capStart)
	f := &fakeTarget{count: 4}
	capa := newFakeCapacity(t, map[string]*fakeTarget{"cloud": f}, capTargetCfg("cloud", "cloud"))
	pass := func(reservedMHz float64) {
		t.Helper()
		classes := []profiles.Class{capClass("cloud", int(f.count), int(f.count), reservedMHz, 0)}
		if _, err := capa.Reconcile(context.Background(), clk.Now(), nil, classes, nil); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
	}
	// 1.5 nodes spare for a minute, then 4: only 1.5 were spare all along.
	pass(10000)
	for range 11 {
		pass(0)
	}
	if f.count != 3 {
		t.Fatalf("count %d after the delay, want 3", f.count)
	}
	for range 5 {
		pass(0)
	}
	if f.count != 3 {
		t.Fatalf("count %d: removed a node that was not spare for the whole delay", f.count)
	}
}

// fromZero is a scale-from-zero pool: min 0, and a node block saying what
// one node it adds is.
func fromZero() CapacityTarget {
	t := capTargetCfg("cloud", "provider-ssd-standard-25g")
	t.Min = 0
	t.Node = &NodeSpec{CPUMHz: 10000, MemoryMB: 16384, Meta: map[string]string{profiles.MetaStorage: "ssd"}}
	return t
}

func TestNodeSpecValidate(t *testing.T) {
	if err := fromZero().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		edit func(*NodeSpec)
		want string
	}{
		{func(n *NodeSpec) { n.CPUMHz = 0 }, "node.cpu_mhz 0 must be positive"},
		{func(n *NodeSpec) { n.MemoryMB = -1 }, "node.memory_mb -1 must be positive"},
		{func(n *NodeSpec) { n.Class = "gpu" }, `node.class "gpu" is not one of classes`},
		{func(n *NodeSpec) { n.Meta = map[string]string{profiles.MetaPlatform: "external"} }, `"foresight.platform" = "external"`},
		{func(n *NodeSpec) { n.Meta = map[string]string{profiles.MetaClass: "other"} }, `"foresight.class" = "other"`},
	} {
		tc := fromZero()
		c.edit(tc.Node)
		if err := tc.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want %q", *tc.Node, err, c.want)
		}
	}
	slash := fromZero()
	slash.Classes = []string{"provider-ssd-standard-25g/cloud"}
	if err := slash.Validate(); err == nil || !strings.Contains(err.Error(), "not a foresight.class value") {
		t.Errorf("a class ID with a Nomad suffix: %v", err)
	}
}

// TestBuyingFromZero: a pool at zero nodes is bought in its declared node
// size, its arriving nodes are counted on its declared class, and once
// nodes have joined their own size counts and a declaration that differs
// is reported.
func TestBuyingFromZero(t *testing.T) {
	f := &fakeTarget{count: 0}
	cfg := fromZero()
	capa := newFakeCapacity(t, map[string]*fakeTarget{"cloud": f}, cfg)
	classes, err := profiles.WithDeclared(nil, DeclaredClasses([]CapacityTarget{cfg}))
	if err != nil {
		t.Fatal(err)
	}
	if len(classes) != 1 || len(classes[0].Nodes) != 0 || classes[0].Traits.Storage != "ssd" || classes[0].Traits.Platform != profiles.PlatformProvider {
		t.Fatalf("declared classes %+v", classes)
	}

	// At zero, nothing arrives, and nothing is wrong.
	got, err := capa.Arriving(context.Background(), classes)
	if err != nil || len(got) != 0 {
		t.Fatalf("arriving at zero: %v, %v", got, err)
	}
	// 25000 MHz / 20000 MB lacking: ⌈2.5⌉ nodes for CPU, ⌈1.2⌉ for memory.
	acts, err := capa.Reconcile(context.Background(), capStart, []CapacityRequest{{Class: cfg.Classes[0], CPUMHz: 25000, MemoryMB: 20000}}, classes, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.scales) != 1 || f.scales[0].Count != 3 || len(acts) != 1 || acts[0].Err != "" || acts[0].From != 0 || acts[0].To != 3 {
		t.Fatalf("scales %+v, actions %+v; want 0 → 3", f.scales, acts)
	}
	// Bought and not yet joined: counted on the declared class, in its
	// declared size.
	got, err = capa.Arriving(context.Background(), classes)
	if want := (Resources{CPUMHz: 30000, MemoryMB: 3 * 16384}); err != nil || got[cfg.Classes[0]] != want {
		t.Fatalf("arriving = %v, %v; want %v", got, err, want)
	}

	// The nodes join, smaller than declared: their size counts, and the
	// difference is reported.
	joined := capClass(cfg.Classes[0], 3, 3, 0, 0) // 4000 MHz / 8192 MB each
	classes, err = profiles.WithDeclared([]profiles.Class{joined}, DeclaredClasses([]CapacityTarget{cfg}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := capa.Arriving(context.Background(), classes); err != nil {
		t.Fatal(err)
	}
	if w := capa.States()[0].Warning; !strings.Contains(w, "4000 MHz / 8192 MB each, the node block declares 10000 MHz / 16384 MB") {
		t.Fatalf("warning %q", w)
	}
	f.scales = nil
	if _, err := capa.Reconcile(context.Background(), capStart, []CapacityRequest{{Class: cfg.Classes[0], CPUMHz: 8000}}, classes, nil); err != nil {
		t.Fatal(err)
	}
	if len(f.scales) != 1 || f.scales[0].Count != 5 {
		t.Fatalf("scales %+v; want 3 → 5 in the joined nodes' size", f.scales)
	}
	// A declaration that matches (within 5 %) is not reported.
	cfg.Node.CPUMHz, cfg.Node.MemoryMB = 4100, 8000
	capa = newFakeCapacity(t, map[string]*fakeTarget{"cloud": {count: 3}}, cfg)
	if _, err := capa.Arriving(context.Background(), classes); err != nil || capa.States()[0].Warning != "" {
		t.Fatalf("a matching declaration: %v, warning %q", err, capa.States()[0].Warning)
	}
}
