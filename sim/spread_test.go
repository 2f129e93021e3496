package sim

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// spreadCluster starts a cluster of three node classes, a, b and c, with
// two roomy nodes each and rack metadata r-a, r-b, r-c, and no jobs: room
// is never what decides a placement, so the spread is tested against
// bin-packing and job anti-affinity alone.
func spreadCluster(t *testing.T) (*Cluster, *api.Client) {
	t.Helper()
	dir := t.TempDir()
	cfg := "start = \"2026-01-05T00:00:00Z\"\nstep = \"10s\"\n"
	for _, class := range []string{"a", "b", "c"} {
		cfg += fmt.Sprintf(`
node_group %[1]q {
  platform   = "external"
  count      = 2
  node_pool  = "default"
  node_class = %[1]q
  cpu_mhz    = 2000
  cores      = 8
  memory_mb  = 32768
  disk_mb    = 100000
  meta       = { rack = "r-%[1]s" }
}
`, class)
	}
	path := filepath.Join(dir, "spread.hcl")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return startCluster(t, path)
}

func spreadJob(count int, spreads ...*api.Spread) *api.Job {
	job := api.NewServiceJob("spready", "spready", "global", 50)
	job.Datacenters = []string{"dc1"}
	task := api.NewTask("main", "docker")
	task.Config = map[string]any{"image": "spready:1"}
	task.Resources = &api.Resources{CPU: intPtr(100), MemoryMB: intPtr(64)}
	tg := api.NewTaskGroup("spready", count).AddTask(task)
	tg.Spreads = spreads
	job.AddTaskGroup(tg)
	return job
}

// placedByClass counts the job's live allocations by node class.
func placedByClass(t *testing.T, client *api.Client) map[string]int {
	t.Helper()
	allocs, _, err := client.Jobs().Allocations("spready", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	nodes, _, err := client.Nodes().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	class := map[string]string{}
	for _, n := range nodes {
		class[n.ID] = n.NodeClass
	}
	out := map[string]int{}
	for _, a := range allocs {
		if a.DesiredStatus == api.AllocDesiredStatusRun {
			out[class[a.NodeID]]++
		}
	}
	return out
}

func target(value string, percent uint8) *api.SpreadTarget {
	return api.NewSpreadTarget(value, percent)
}

func TestSpreadPlacesTheTargetShares(t *testing.T) {
	tests := []struct {
		name    string
		count   int
		spreads []*api.Spread
		want    map[string]int
		// slack is how far a count may miss: a spread is a score, not a
		// constraint, and job anti-affinity pushes back on the value
		// that holds the most.
		slack int
		// jobLevel puts the spreads in the job rather than the group.
		jobLevel bool
	}{{
		name:    "targets on the node class",
		count:   10,
		spreads: []*api.Spread{api.NewSpread("${node.class}", 100, []*api.SpreadTarget{target("a", 50), target("b", 30), target("c", 20)})},
		want:    map[string]int{"a": 5, "b": 3, "c": 2},
	}, {
		name:    "targets on node metadata",
		count:   5,
		spreads: []*api.Spread{api.NewSpread("${meta.rack}", 50, []*api.SpreadTarget{target("r-a", 20), target("r-b", 80)})},
		want:    map[string]int{"a": 1, "b": 4},
	}, {
		// What the targets leave is one implicit target that the other
		// values share. The seventh on c is exactly on target (no boost)
		// against three collisions on each c node, so it may lose.
		name:    "the implicit remainder",
		count:   10,
		spreads: []*api.Spread{api.NewSpread("${node.class}", 100, []*api.SpreadTarget{target("c", 70)})},
		want:    map[string]int{"c": 7, "a+b": 3},
		slack:   1,
	}, {
		name:    "even without targets",
		count:   9,
		spreads: []*api.Spread{api.NewSpread("${node.class}", 100, nil)},
		want:    map[string]int{"a": 3, "b": 3, "c": 3},
	}, {
		name:     "a job-level spread applies to the group",
		count:    6,
		spreads:  []*api.Spread{api.NewSpread("${meta.rack}", 50, []*api.SpreadTarget{target("r-a", 50), target("r-b", 50)})},
		want:     map[string]int{"a": 3, "b": 3},
		jobLevel: true,
	}, {
		// Two spreads that agree on c: the weights split the say, and
		// both pull the same way.
		name:  "two weighted spreads",
		count: 6,
		spreads: []*api.Spread{
			api.NewSpread("${node.class}", 70, []*api.SpreadTarget{target("c", 50), target("b", 50)}),
			api.NewSpread("${meta.rack}", 30, []*api.SpreadTarget{target("r-c", 50), target("r-b", 50)}),
		},
		want: map[string]int{"b": 3, "c": 3},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, client := spreadCluster(t)
			job := spreadJob(tt.count, tt.spreads...)
			if tt.jobLevel {
				job.Spreads, job.TaskGroups[0].Spreads = tt.spreads, nil
			}
			if _, _, err := client.Jobs().Register(job, nil); err != nil {
				t.Fatal(err)
			}
			c.Advance(time.Minute)
			got := placedByClass(t, client)
			if _, ok := tt.want["a+b"]; ok {
				got = map[string]int{"c": got["c"], "a+b": got["a"] + got["b"]}
			}
			for class, n := range tt.want {
				if got[class] < n-tt.slack || got[class] > n+tt.slack {
					t.Errorf("placed %v, want %v", got, tt.want)
					break
				}
			}
		})
	}
}

// TestSpreadRewriteMovesABoundedShare is how Foresight explores a class:
// the group runs on a; a rewrite of its spread that gives b one
// allocation's share is a rolling update that ends with exactly one
// allocation on b.
func TestSpreadRewriteMovesABoundedShare(t *testing.T) {
	c, client := spreadCluster(t)
	if _, _, err := client.Jobs().Register(spreadJob(6, api.NewSpread("${node.class}", 100, []*api.SpreadTarget{target("a", 100)})), nil); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	if got := placedByClass(t, client); got["a"] != 6 {
		t.Fatalf("placed %v, want all 6 on a", got)
	}
	job, _, err := client.Jobs().Info("spready", nil)
	if err != nil {
		t.Fatal(err)
	}
	job.TaskGroups[0].Spreads = []*api.Spread{api.NewSpread("${node.class}", 100, []*api.SpreadTarget{target("a", 83), target("b", 17)})}
	plan, _, err := client.Jobs().Plan(job, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if u := plan.Annotations.DesiredTGUpdates["spready"]; u.DestructiveUpdate != 1 || u.Ignore != 5 {
		t.Fatalf("plan: %+v, want one destructive update at a time", u)
	}
	if _, _, err := client.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	c.Advance(5 * time.Minute)
	if got := placedByClass(t, client); got["a"] != 5 || got["b"] != 1 {
		t.Errorf("after the rollout: %v, want 5 on a and 1 on b", got)
	}
}

func TestSpreadScoreIsInTheMetrics(t *testing.T) {
	c, client := spreadCluster(t)
	resp, _, err := client.Jobs().Register(spreadJob(2, api.NewSpread("${node.class}", 100, []*api.SpreadTarget{target("a", 50), target("b", 50)})), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	allocs, _, err := client.Evaluations().Allocations(resp.EvalID, nil)
	if err != nil || len(allocs) != 2 {
		t.Fatalf("allocations of the evaluation: %v, %v", len(allocs), err)
	}
	a, _, err := client.Allocations().Info(allocs[1].ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The second placement: one allocation is on a or b, so the other of
	// the two is where the spread is still short, and c is wanted nowhere.
	seen := false
	for _, s := range a.Metrics.ScoreMetaData {
		if v, ok := s.Scores["allocation-spread"]; ok {
			seen = true
			if v < -1 || v > 1 {
				t.Errorf("node %s: allocation-spread %g, outside -1…1 for one spread with targets", s.NodeID, v)
			}
		}
	}
	if !seen {
		t.Errorf("no allocation-spread score in %+v", a.Metrics.ScoreMetaData)
	}
}

// TestSpreadBoosts checks the scorer's arithmetic against Nomad's on
// hand-worked cases.
func TestSpreadBoosts(t *testing.T) {
	even := []struct {
		use  map[string]int
		v    string
		want float64
	}{
		{nil, "a", 0}, // nothing placed yet
		{map[string]int{"a": 2, "b": 2}, "a", -1},          // even: full penalty
		{map[string]int{"a": 2, "b": 2}, "c", 1},           // a new value: full boost
		{map[string]int{"a": 1, "b": 3}, "a", 2},           // the least used, by the spread to the most
		{map[string]int{"a": 1, "b": 3}, "b", -2},          // above the least used
		{map[string]int{"a": 0, "b": 2, "c": 4}, "a", 1},   // all of a is being stopped
		{map[string]int{"a": 0}, "a", -1},                  // everything is being stopped
		{map[string]int{"a": 0, "b": 2, "c": 4}, "b", 1.0}, // b is the least used of the values in use
	}
	for _, tt := range even {
		if got := evenSpreadBoost(tt.use, tt.v); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("evenSpreadBoost(%v, %s) = %g, want %g", tt.use, tt.v, got, tt.want)
		}
	}

	// Targets: 4 allocations, a 75 %, b 25 %, spread weight 60 of 60+40.
	job := spreadJob(4,
		api.NewSpread("${node.class}", 60, []*api.SpreadTarget{target("a", 75), target("b", 25)}),
		api.NewSpread("${meta.rack}", 40, nil),
	)
	job.Canonicalize()
	na := &simNode{api: &api.Node{NodeClass: "a", Meta: map[string]string{"rack": "r-a"}}}
	nb := &simNode{api: &api.Node{NodeClass: "b", Meta: map[string]string{"rack": "r-b"}}}
	nc := &simNode{api: &api.Node{NodeClass: "c", Meta: map[string]string{"rack": "r-c"}}}
	bare := &simNode{api: &api.Node{NodeClass: "a"}}
	live := []*simAlloc{{node: na}, {node: na}, {node: na}}
	lowest := -1.0
	s := newSpreadScorer(job, job.TaskGroups[0], live, &lowest)
	s.prepare(map[*simNode]int{})
	cases := []struct {
		n    *simNode
		want float64
	}{
		// a: (3 − 4)/3 × 0.6; rack r-a holds all 3: even spread says −1.
		{na, -1.0/3*0.6 - 1},
		// b: (1 − 1)/1 × 0.6 = 0; rack r-b is new: +1.
		{nb, 1},
		// c: no target and no remainder: −1; rack r-c is new: +1.
		{nc, 0},
		// No rack at all: −1 for that spread.
		{bare, -1.0/3*0.6 - 1},
	}
	for _, tt := range cases {
		if got := s.score(tt.n); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("score on class %s: %g, want %g", tt.n.api.NodeClass, got, tt.want)
		}
	}
	// The plan stops one allocation on a: a is now at its target.
	s.clear(na)
	s.prepare(map[*simNode]int{})
	if got, want := s.score(na), 0.0-1; math.Abs(got-want) > 1e-9 {
		t.Errorf("after a stop on a: %g, want %g", got, want)
	}
}
