package sim

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/telemetry"
)

// startCluster loads a cluster file and serves it over HTTP to the official
// Nomad client.
func startCluster(t *testing.T, path string) (*Cluster, *api.Client) {
	t.Helper()
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(cfg, Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	client, err := api.NewClient(&api.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c, client
}

func TestRegisterEnforcesTheModifyIndex(t *testing.T) {
	_, client := startCluster(t, "testdata/small.hcl")
	job, _, err := client.Jobs().Info("app", nil)
	if err != nil {
		t.Fatal(err)
	}
	current := *job.JobModifyIndex

	job.Meta = map[string]string{"edited": "by us"}
	if _, _, err := client.Jobs().EnforceRegister(job, current-1, nil); err == nil ||
		!strings.Contains(err.Error(), "Enforcing job modify index") {
		t.Fatalf("stale index: got %v, want Nomad's enforce-index error", err)
	}
	var unexpected api.UnexpectedResponseError
	if _, _, err := client.Jobs().EnforceRegister(job, current-1, nil); !errors.As(err, &unexpected) || unexpected.StatusCode() != http.StatusInternalServerError {
		t.Fatalf("stale index: got %v, want HTTP 500", err)
	}
	after, _, err := client.Jobs().Info("app", nil)
	if err != nil {
		t.Fatal(err)
	}
	if after.Meta["edited"] != "" || *after.JobModifyIndex != current {
		t.Fatal("a refused register changed the job")
	}

	resp, _, err := client.Jobs().EnforceRegister(job, current, nil)
	if err != nil {
		t.Fatalf("fresh index refused: %v", err)
	}
	if resp.JobModifyIndex <= current {
		t.Fatalf("JobModifyIndex %d did not move past %d", resp.JobModifyIndex, current)
	}
	after, _, _ = client.Jobs().Info("app", nil)
	if after.Meta["edited"] != "by us" || *after.Version != 1 {
		t.Fatalf("register did not store version 1 with the edit: %+v", after.Meta)
	}
}

func TestPlanReportsFailedPlacements(t *testing.T) {
	_, client := startCluster(t, "testdata/small.hcl")
	job, _, _ := client.Jobs().Info("app", nil)
	*job.TaskGroups[0].Tasks[0].Resources.CPU = 1_000_000

	plan, _, err := client.Jobs().Plan(job, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	failed := plan.FailedTGAllocs["app"]
	if failed == nil {
		t.Fatalf("no failed placements for an impossible group: %+v", plan)
	}
	if failed.DimensionExhausted["cpu"] == 0 || failed.NodesExhausted == 0 {
		t.Fatalf("failure does not say cpu is exhausted: %+v", failed)
	}
	if len(plan.CreatedEvals) != 1 || plan.CreatedEvals[0].Status != "blocked" {
		t.Fatalf("plan should show the blocked evaluation it would create: %+v", plan.CreatedEvals)
	}
	if plan.Diff == nil || plan.Diff.Type != "Edited" {
		t.Fatalf("diff: %+v", plan.Diff)
	}
	// A plan changes nothing.
	after, _, _ := client.Jobs().Info("app", nil)
	if *after.TaskGroups[0].Tasks[0].Resources.CPU != 1000 || *after.Version != 0 {
		t.Fatal("plan changed the job")
	}

	*job.TaskGroups[0].Tasks[0].Resources.CPU = 1000
	job.TaskGroups[0].Count = intPtr(3)
	plan, _, err = client.Jobs().Plan(job, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if u := plan.Annotations.DesiredTGUpdates["app"]; u.Place != 1 || u.InPlaceUpdate != 2 {
		t.Fatalf("count 2→3: got %+v, want 1 place and 2 in-place updates", u)
	}
}

func TestBlockingQueries(t *testing.T) {
	c, client := startCluster(t, "testdata/small.hcl")
	_, meta, err := client.Jobs().List(nil)
	if err != nil {
		t.Fatal(err)
	}

	// Nothing changes: the query waits out its wait time and answers with
	// the same index.
	_, timedOut, err := client.Jobs().List(&api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if timedOut.LastIndex != meta.LastIndex {
		t.Fatalf("timed-out query moved the index from %d to %d", meta.LastIndex, timedOut.LastIndex)
	}

	// A change while the query waits returns it early.
	done := make(chan *api.QueryMeta, 1)
	go func() {
		_, m, err := client.Jobs().List(&api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: time.Minute})
		if err != nil {
			t.Error(err)
		}
		done <- m
	}()
	job, _, _ := client.Jobs().Info("app", nil)
	job.Meta = map[string]string{"v": "2"}
	time.Sleep(20 * time.Millisecond) // let the query start waiting
	if _, _, err := client.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-done:
		if m.LastIndex <= meta.LastIndex {
			t.Fatalf("early return carried index %d, not past %d", m.LastIndex, meta.LastIndex)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("blocking query did not return on change")
	}
	_ = c
}

func TestEventStreamDeliversAndResumes(t *testing.T) {
	c, client := startCluster(t, "testdata/small.hcl")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	topics := map[api.Topic][]string{api.TopicJob: {"*"}, api.TopicAllocation: {"*"}}
	stream, err := client.EventStream().Stream(ctx, topics, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The registration at start is replayed from index 0.
	var registered uint64
	for registered == 0 {
		evs := <-stream
		if evs.Err != nil {
			t.Fatal(evs.Err)
		}
		for _, e := range evs.Events {
			if e.Topic == api.TopicJob && e.Type == "JobRegistered" && e.Key == "app" {
				registered = e.Index
			}
		}
	}

	// A scale shows up live, once the job's first deployment is done: Nomad
	// refuses to scale while one is active.
	c.Advance(time.Minute)
	count := int(3)
	if _, _, err := client.Jobs().Scale("app", "app", &count, "test", false, nil, nil); err != nil {
		t.Fatal(err)
	}
	var scaledAt uint64
	for scaledAt == 0 {
		select {
		case evs := <-stream:
			if evs.Err != nil {
				t.Fatal(evs.Err)
			}
			for _, e := range evs.Events {
				if e.Type == "JobRegistered" && e.Index > registered {
					scaledAt = e.Index
				}
			}
		case <-time.After(10 * time.Second):
			t.Fatal("scale event not delivered")
		}
	}
	cancel()

	// A new stream from that index resumes there: nothing older comes back.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	resumed, err := client.EventStream().Stream(ctx2, topics, scaledAt, nil)
	if err != nil {
		t.Fatal(err)
	}
	evs := <-resumed
	if evs.Err != nil {
		t.Fatal(evs.Err)
	}
	if evs.Index < scaledAt {
		t.Fatalf("resumed stream started at %d, before %d", evs.Index, scaledAt)
	}
}

func TestNodeMetadataIsMatchedByConstraints(t *testing.T) {
	c, client := startCluster(t, "testdata/small.hcl")
	nodes, _, err := client.Nodes().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	var slow string
	for _, n := range nodes {
		if n.NodeClass == "slow" {
			slow = n.ID
		}
	}
	value := "ssd"
	resp, err := client.Nodes().Meta().Apply(&api.NodeMetaApplyRequest{NodeID: slow, Meta: map[string]*string{"foresight.storage": &value}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Meta["foresight.storage"] != "ssd" || resp.Meta["platform"] != "external" {
		t.Fatalf("merged meta: %+v", resp.Meta)
	}

	job, _, _ := client.Jobs().Info("app", nil)
	job.TaskGroups[0].Constraints = []*api.Constraint{api.NewConstraint("${meta.foresight.storage}", "=", "ssd")}
	*job.TaskGroups[0].Tasks[0].Resources.MemoryMB = 300 // destructive: allocations are placed again
	if _, _, err := client.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	allocs, _, err := client.Jobs().Allocations("app", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	live := 0
	for _, a := range allocs {
		if a.DesiredStatus == "run" {
			live++
			if a.NodeID != slow {
				t.Fatalf("allocation %s placed on %s, not on the node with the metadata", a.Name, a.NodeName)
			}
		}
	}
	if live != 2 {
		t.Fatalf("%d live allocations, want 2", live)
	}
	_ = c
}

func TestAllocStatsFollowTheTrace(t *testing.T) {
	c, client := startCluster(t, "testdata/small.hcl")
	c.Advance(time.Minute) // allocations start, demand is 20 → 200 MHz
	allocs, _, _ := client.Jobs().Allocations("app", false, nil)
	cpuAt := func() float64 {
		var total float64
		for _, stub := range allocs {
			a, _, err := client.Allocations().Info(stub.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			st, err := client.Allocations().Stats(a, nil)
			if err != nil {
				t.Fatal(err)
			}
			total += st.ResourceUsage.CpuStats.TotalTicks
			if st.ResourceUsage.MemoryStats.RSS == 0 || len(st.ResourceUsage.CpuStats.Measured) == 0 {
				t.Fatalf("stats without memory or Measured: %+v", st.ResourceUsage)
			}
		}
		return total
	}
	early := cpuAt()
	c.Advance(8 * time.Minute) // the ramp climbs to 100 → 1000 MHz of work
	late := cpuAt()
	want := func(at time.Duration) float64 { d, _ := c.GroupDemand("default", "app", "app"); _ = at; return d }
	demand := want(0)
	if late <= early*2 {
		t.Fatalf("CPU did not follow the ramp: %.0f then %.0f MHz", early, late)
	}
	// Allocation on the fast class does the same work with half the CPU.
	if late > demand+1e-6 || late < demand/2-1e-6 {
		t.Fatalf("CPU %.0f MHz outside what demand %.0f MHz costs on these classes", late, demand)
	}
}

func TestAffinityChangeIsARollingUpdate(t *testing.T) {
	c, client := startCluster(t, "testdata/small.hcl")
	c.Advance(time.Minute)
	job, _, _ := client.Jobs().Info("app", nil)
	job.TaskGroups[0].Affinities = []*api.Affinity{api.NewAffinity("${node.class}", "=", "slow", 50)}

	// Nomad treats a changed affinity as a destructive update, rolled out
	// max_parallel (1 by default) at a time.
	plan, _, err := client.Jobs().Plan(job, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if u := plan.Annotations.DesiredTGUpdates["app"]; u.DestructiveUpdate != 1 || u.Ignore != 1 {
		t.Fatalf("plan: %+v, want 1 destructive update and 1 waiting", u)
	}
	resp, _, err := client.Jobs().Register(job, nil)
	if err != nil {
		t.Fatal(err)
	}
	countByVersion := func() (old, cur int) {
		allocs, _, _ := client.Jobs().Allocations("app", false, nil)
		for _, a := range allocs {
			if a.DesiredStatus != "run" {
				continue
			}
			if a.JobVersion == 1 {
				cur++
			} else {
				old++
			}
		}
		return
	}
	if old, cur := countByVersion(); old != 1 || cur != 1 {
		t.Fatalf("right after register: %d old and %d new allocations, want 1 and 1", old, cur)
	}
	c.Advance(time.Minute) // the replacement runs, the rollout continues
	if old, cur := countByVersion(); old != 0 || cur != 2 {
		t.Fatalf("after the rollout: %d old and %d new allocations, want 0 and 2", old, cur)
	}
	if resp.EvalID == "" {
		t.Fatal("register created no evaluation")
	}
}

func TestStoppedAllocIsReplacedByCurrentAffinities(t *testing.T) {
	c, client := startCluster(t, "testdata/small.hcl")
	job, _, _ := client.Jobs().Info("app", nil)
	job.TaskGroups[0].Count = intPtr(1)
	job.TaskGroups[0].Affinities = []*api.Affinity{api.NewAffinity("${meta.foresight.class}", "=", "preferred", 100)}
	if _, _, err := client.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	allocs, _, _ := client.Jobs().Allocations("app", false, nil)
	var live *api.AllocationListStub
	for _, a := range allocs {
		if a.DesiredStatus == "run" {
			live = a
		}
	}
	// No node has the metadata yet; now the other node gets it. Metadata
	// is not a job change: the allocation stays where it is.
	nodes, _, _ := client.Nodes().List(nil)
	var target *api.NodeListStub
	for _, n := range nodes {
		if n.ID != live.NodeID && n.Status == "ready" {
			target = n
		}
	}
	preferred := "preferred"
	if _, err := client.Nodes().Meta().Apply(&api.NodeMetaApplyRequest{NodeID: target.ID, Meta: map[string]*string{"foresight.class": &preferred}}, nil); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	if a, _, _ := client.Allocations().Info(live.ID, nil); a.DesiredStatus != "run" {
		t.Fatal("node metadata moved a running allocation")
	}

	resp, err := client.Allocations().Stop(&api.Allocation{ID: live.ID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.EvalID == "" {
		t.Fatal("stop created no evaluation")
	}
	stopped, _, _ := client.Allocations().Info(live.ID, nil)
	if stopped.DesiredStatus != "stop" || stopped.NextAllocation == "" {
		t.Fatalf("stopped alloc: desired %q, next %q", stopped.DesiredStatus, stopped.NextAllocation)
	}
	next, _, _ := client.Allocations().Info(stopped.NextAllocation, nil)
	if next.NodeID != target.ID {
		t.Fatalf("replacement placed on %s, not on %s where the affinity points", next.NodeName, target.Name)
	}
	if next.PreviousAllocation != live.ID {
		t.Fatalf("replacement does not point back at the stopped allocation")
	}
}

func TestProviderNodesJoinAfterTheirDelay(t *testing.T) {
	c, client := startCluster(t, "testdata/small.hcl")
	job, _, _ := client.Jobs().Info("app", nil)
	job.TaskGroups[0].Count = intPtr(10) // the two fixed nodes hold eight
	if _, _, err := client.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	summary, _, _ := client.Jobs().Summary("app", nil)
	if q := summary.Summary["app"].Queued; q != 2 {
		t.Fatalf("queued %d, want 2 waiting for room", q)
	}
	if _, err := c.ScaleNodeGroup("cloud", 1); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	if st, _ := c.NodeGroup("cloud"); st.Ready != 0 || st.Provisioning != 1 {
		t.Fatalf("node ready before its provisioning delay: %+v", st)
	}
	c.Advance(2 * time.Minute)
	if got := c.runningOn("cloud"); got != 2 {
		t.Fatalf("%d allocations on the new provider node, want the 2 queued", got)
	}
	if _, err := c.ScaleNodeGroup("cloud", 5); err == nil {
		t.Fatal("resize beyond max accepted")
	}
}

func TestBadClusterFilesNameFileAndLine(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"syntax", "node_group \"a\" {\n  platform = \n}\n", "bad.hcl:2"},
		{"min above max", "node_group \"a\" {\n platform = \"provider\"\n min = 3\n max = 1\n cpu_mhz = 1\n cores = 1\n memory_mb = 1\n disk_mb = 1\n}\n", "min (3) is greater than max (1)"},
		{"unknown platform", "node_group \"a\" {\n platform = \"moon\"\n cpu_mhz = 1\n cores = 1\n memory_mb = 1\n disk_mb = 1\n}\n", "bad.hcl:1"},
		{"unknown setting", "node_group \"a\" {\n platform = \"external\"\n cpu_mhz = 1\n cores = 1\n memory_mb = 1\n disk_mb = 1\n colour = \"red\"\n}\n", "bad.hcl:7"},
		{"bad duration", "step = \"soon\"\nnode_group \"a\" {\n platform = \"external\"\n cpu_mhz = 1\n cores = 1\n memory_mb = 1\n disk_mb = 1\n}\n", "bad.hcl:1"},
		{"missing job file", "node_group \"a\" {\n platform = \"external\"\n cpu_mhz = 1\n cores = 1\n memory_mb = 1\n disk_mb = 1\n}\njob \"x\" {\n file = \"nope.json\"\n}\n", "bad.hcl:8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("testdata/bad.hcl", []byte(tc.src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestMalformedJobFileNamesTheLine(t *testing.T) {
	_, err := decodeJob([]byte("{\n  \"ID\": \"x\",\n  \"TaskGroups\": \"oops\"\n}\n"))
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("got %v, want the line of the bad field", err)
	}
	_, err = decodeJob([]byte("{\"ID\": \"x\", \"Colour\": 1}"))
	if err == nil || !strings.Contains(err.Error(), "Colour") {
		t.Fatalf("got %v, want the unknown field named", err)
	}
}

// runningOn counts live allocations on nodes whose name starts with prefix.
func (c *Cluster) runningOn(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, a := range c.allocList {
		if !a.terminal() && strings.HasPrefix(a.node.api.Name, prefix) {
			n++
		}
	}
	return n
}

func TestAllocationListCarriesResourcesOnRequest(t *testing.T) {
	_, client := startCluster(t, "testdata/small.hcl")
	plain, _, err := client.Allocations().List(nil)
	if err != nil || len(plain) == 0 {
		t.Fatalf("list: %v", err)
	}
	if plain[0].AllocatedResources != nil {
		t.Fatal("resources listed without ?resources=true")
	}
	full, _, err := client.Allocations().List(&api.QueryOptions{Params: map[string]string{"resources": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	if r := full[0].AllocatedResources; r == nil || r.Tasks["main"].Cpu.CpuShares != 1000 {
		t.Fatalf("resources missing with ?resources=true: %+v", r)
	}
}

// A node group with task_cgroups = false runs its tasks as raw_exec does on
// cgroup v1: Nomad measures their processes (CPU and RSS only), and the
// telemetry endpoint serves what a host agent reads of them: disk, CPU and
// RSS from the processes, no pressure or throttling, no network of their
// own, each saying why.
func TestTasksWithoutCgroups(t *testing.T) {
	c, client := startCluster(t, "testdata/nocgroups.hcl")
	c.Advance(time.Minute)
	nodes, _, err := client.Nodes().List(nil)
	if err != nil || len(nodes) != 2 {
		t.Fatalf("nodes: %v %v", nodes, err)
	}
	for _, n := range nodes {
		tel, err := c.Telemetry(n.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(tel.Allocations) == 0 {
			t.Fatalf("node %s runs nothing", n.NodeClass)
		}
		for id, tasks := range tel.Allocations {
			a, _, err := client.Allocations().Info(id, nil)
			if err != nil {
				t.Fatal(err)
			}
			st, err := client.Allocations().Stats(a, nil)
			if err != nil {
				t.Fatal(err)
			}
			for name, metrics := range tasks {
				src, absent := tel.Sources[id][name], tel.Absent[id][name]
				mem := st.Tasks[name].ResourceUsage.MemoryStats.Measured
				switch n.NodeClass {
				case "slow":
					if src[telemetry.IOWriteBPS] != telemetry.SourceProcess || src[telemetry.CPUMHz] != telemetry.SourceProcess || metrics[telemetry.IOWriteBPS] <= 0 {
						t.Errorf("slow node: %v from %v", metrics, src)
					}
					if _, ok := metrics[telemetry.PSICPUSome]; ok || absent[telemetry.PSICPUSome] != telemetry.AbsentPressureV1 || absent[telemetry.NetRxBPS] != telemetry.AbsentHostNetwork {
						t.Errorf("slow node: pressure %v, absent %v", metrics, absent)
					}
					if slices.Contains(mem, "Usage") {
						t.Errorf("slow node: Nomad measured %v, as for a cgroup", mem)
					}
				default:
					if src[telemetry.PSICPUSome] != telemetry.SourceCgroup || src[telemetry.NetRxBPS] != telemetry.SourceNetns || len(absent) != 0 {
						t.Errorf("fast node: sources %v, absent %v", src, absent)
					}
					if !slices.Contains(mem, "Usage") {
						t.Errorf("fast node: Nomad measured %v", mem)
					}
				}
			}
		}
	}
}
