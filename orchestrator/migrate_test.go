package orchestrator

import (
	"context"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/sim"
	"github.com/foresight-nomad/foresight/sim/simtest"
	"github.com/foresight-nomad/foresight/telemetry"
)

var apiRef = telemetry.GroupRef{Namespace: "default", Job: "api", Group: "api"}

// perAPI is what one allocation of api reserves (testdata/migrate-api.json).
var perAPI = Resources{CPUMHz: 1000, MemoryMB: 256}

// startMigrateSim serves testdata/migrate.hcl: api's three allocations run
// on class a although its affinity wants b, then b's nodes join.
func startMigrateSim(t *testing.T) (*sim.Cluster, *nomadapi.Client) {
	t.Helper()
	s := simtest.Start(t, "testdata/migrate.hcl")
	s.Cluster.Advance(time.Minute)
	if got := classCounts(t, s.Client); got["a"] != 3 {
		t.Fatalf("setup: api runs on %v, want 3 on class a", got)
	}
	if _, err := s.Cluster.ScaleNodeGroup("b", 3); err != nil {
		t.Fatal(err)
	}
	s.Cluster.Advance(2 * time.Minute) // b's nodes join; nothing moves by itself
	if got := classCounts(t, s.Client); got["a"] != 3 {
		t.Fatalf("room on b moved allocations by itself: %v", got)
	}
	return s.Cluster, s.Client
}

// classOf reads a node's class from Nomad, as the leader's classes do.
func classOf(t *testing.T, client *nomadapi.Client) func(string) (string, bool) {
	return func(id string) (string, bool) {
		n, _, err := client.Nodes().Info(id, nil)
		if err != nil {
			t.Errorf("node %s: %v", id, err)
			return "", false
		}
		return n.NodeClass, n.NodeClass != ""
	}
}

func apiAllocs(t *testing.T, client *nomadapi.Client) []*nomadapi.AllocationListStub {
	t.Helper()
	allocs, _, err := client.Jobs().Allocations("api", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	return allocs
}

// classCounts counts api's running allocations by node class.
func classCounts(t *testing.T, client *nomadapi.Client) map[string]int {
	t.Helper()
	of := classOf(t, client)
	out := map[string]int{}
	for _, a := range apiAllocs(t, client) {
		if a.ClientStatus == "running" && a.DesiredStatus == "run" {
			c, _ := of(a.NodeID)
			out[c]++
		}
	}
	return out
}

// healthyNow counts api's healthy allocations by Nomad's rule, written out
// here on its own: deployment-healthy, or running for min_healthy_time (10s
// in the job).
func healthyNow(t *testing.T, client *nomadapi.Client, now time.Time) (healthy, pending int) {
	t.Helper()
	for _, a := range apiAllocs(t, client) {
		if a.DesiredStatus != "run" {
			continue
		}
		switch {
		case a.ClientStatus == "pending":
			pending++
		case a.ClientStatus != "running":
		case a.DeploymentStatus != nil && a.DeploymentStatus.Healthy != nil:
			if *a.DeploymentStatus.Healthy {
				healthy++
			}
		case now.Sub(a.TaskStates["server"].StartedAt) >= 10*time.Second:
			healthy++
		}
	}
	return healthy, pending
}

func TestMigrateMovesOneAtATimeAboveDemand(t *testing.T) {
	c, client := startMigrateSim(t)
	m := &Migrator{Nomad: client, Clock: c.Clock()}
	demand := Resources{CPUMHz: 1800, MemoryMB: 400}
	of := classOf(t, client)

	stops, waits := 0, 0
	var reasons []string
	done := false
	for i := 0; i < 60 && !done; i++ {
		h, pending := healthyNow(t, client, c.Now())
		res, err := m.Step(context.Background(), apiRef, "b", of, demand)
		if err != nil {
			t.Fatal(err)
		}
		reasons = append(reasons, res.Reasons...)
		if res.Stopped != "" {
			stops++
			if pending != 0 || h != 3 {
				t.Fatalf("step %d stopped %s while %d were healthy and %d pending", i, res.Stopped, h, pending)
			}
			if res.StoppedClass != "a" {
				t.Fatalf("stopped an allocation on class %s", res.StoppedClass)
			}
			var replacement *nomadapi.AllocationListStub
			for _, a := range apiAllocs(t, client) {
				if a.ClientStatus == "pending" {
					if replacement != nil {
						t.Fatalf("more than one replacement pending after one stop")
					}
					replacement = a
				}
			}
			if replacement == nil {
				t.Fatalf("no replacement placed for %s", res.Stopped)
			}
			if cl, _ := of(replacement.NodeID); cl != "b" {
				t.Fatalf("replacement placed on class %s, not by the affinity to b", cl)
			}
		}
		if res.Waiting {
			waits++
		}
		if h, _ := healthyNow(t, client, c.Now()); float64(h)*perAPI.CPUMHz < demand.CPUMHz || float64(h)*perAPI.MemoryMB < demand.MemoryMB {
			t.Fatalf("step %d: %d healthy × %v below demand %v (%v)", i, h, perAPI, demand, res.Reasons)
		}
		done = res.Done
		c.Advance(5 * time.Second)
	}
	if !done {
		t.Fatalf("not done after 60 steps; %d stops; last reasons %v", stops, reasons[max(0, len(reasons)-3):])
	}
	if got := classCounts(t, client); got["b"] != 3 || got["a"] != 0 {
		t.Fatalf("api runs on %v, want all 3 on b", got)
	}
	if stops != 3 {
		t.Fatalf("%d stops for 3 misplaced allocations", stops)
	}
	all := strings.Join(reasons, "\n")
	for _, want := range []string{"pending", "min_healthy_time"} {
		if !strings.Contains(all, want) {
			t.Fatalf("no step waited on %q:\n%s", want, all)
		}
	}
}

func TestMigrateHoldsWhenAStopWouldDropBelowDemand(t *testing.T) {
	c, client := startMigrateSim(t)
	m := &Migrator{Nomad: client, Clock: c.Clock()}
	before := apiAllocs(t, client)

	// Two allocations hold 2000 MHz: a demand of 2500 leaves no slack.
	res, err := m.Step(context.Background(), apiRef, "b", classOf(t, client), Resources{CPUMHz: 2500, MemoryMB: 400})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != "" || res.Done || res.Waiting || res.Misplaced != 3 {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(res.Held, "dropping below demand") || !strings.Contains(res.Held, "2000 MHz < 2500 MHz") {
		t.Fatalf("held %q", res.Held)
	}
	after := apiAllocs(t, client)
	if len(after) != len(before) {
		t.Fatalf("allocations %d → %d", len(before), len(after))
	}
	for _, a := range after {
		if a.DesiredStatus != "run" {
			t.Fatalf("allocation %s stopped", a.ID)
		}
	}
}

func TestMigrateWaitsAfterAReplacementLandsOffClass(t *testing.T) {
	// b never gets room: the replacement lands on a again, and the
	// migrator does not churn the group.
	s := simtest.Start(t, "testdata/migrate.hcl")
	s.Cluster.Advance(time.Minute)
	client := s.Client
	m := &Migrator{Nomad: client, Clock: s.Cluster.Clock(), Retry: 10 * time.Minute}
	of := classOf(t, client)
	demand := Resources{CPUMHz: 1000}

	res, err := m.Step(context.Background(), apiRef, "b", of, demand)
	if err != nil || res.Stopped == "" {
		t.Fatalf("first step: %+v, %v", res, err)
	}
	for range 12 {
		s.Cluster.Advance(5 * time.Second)
		if res, err = m.Step(context.Background(), apiRef, "b", of, demand); err != nil {
			t.Fatal(err)
		}
		if res.Stopped != "" {
			t.Fatalf("stopped %s although the last replacement landed on a", res.Stopped)
		}
	}
	if !res.Waiting || !strings.Contains(strings.Join(res.Reasons, "\n"), "landed on class a, not b") {
		t.Fatalf("result %+v", res)
	}
	s.Cluster.Advance(10 * time.Minute)
	if res, err = m.Step(context.Background(), apiRef, "b", of, demand); err != nil || res.Stopped == "" {
		t.Fatalf("after the retry delay: %+v, %v", res, err)
	}
}

func TestHealthyFollowsDeploymentHealthElseMinHealthyTime(t *testing.T) {
	now := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	run := func(since time.Duration, dep *bool) *nomadapi.AllocationListStub {
		a := &nomadapi.AllocationListStub{ClientStatus: "running", DesiredStatus: "run",
			TaskStates: map[string]*nomadapi.TaskState{"t": {State: "running", StartedAt: now.Add(-since)}}}
		if dep != nil {
			a.DeploymentStatus = &nomadapi.AllocDeploymentStatus{Healthy: dep}
		}
		return a
	}
	yes, no := true, false
	for _, c := range []struct {
		a    *nomadapi.AllocationListStub
		want bool
	}{
		{run(time.Second, &yes), true},
		{run(time.Hour, &no), false},
		{run(9*time.Second, nil), false},
		{run(10*time.Second, nil), true},
		{&nomadapi.AllocationListStub{ClientStatus: "pending", DesiredStatus: "run"}, false},
	} {
		if got, why := allocHealthy(c.a, now, 10*time.Second); got != c.want {
			t.Fatalf("allocHealthy(%+v) = %v (%s), want %v", c.a, got, why, c.want)
		}
	}
}
