package orchestrator

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/profiles"
	"github.com/foresight-nomad/foresight/sim/simtest"
	"github.com/foresight-nomad/foresight/telemetry"
)

// trial runs the decisions of every group of examples/sim/one-node.hcl, the
// cluster of the first real trial, once a simulated minute in enforce mode,
// through the actuator, as the leader does; demand and per-allocation usage
// are read from the allocations' stats (CPU and RSS, what raw_exec
// reports), summed and maximised over the group.
type trial struct {
	t       *testing.T
	client  *api.Client
	room    *Room
	own     map[string]string
	act     *Actuator
	damping map[string]*Damping
	// counts holds every count each group ran at, in order; written the
	// changes each write made.
	counts  map[string][]int
	written map[string][]string
	last    map[string]Decision
	// memPer is the largest RSS of one allocation of each group in the
	// last pass, in MB.
	memPer map[string]float64
}

var trialGroups = []telemetry.GroupRef{
	{Namespace: "default", Job: "foresight", Group: "agent"},
	{Namespace: "default", Job: "logs", Group: "ship"},
	{Namespace: "default", Job: "web", Group: "web"},
	{Namespace: "default", Job: "cache", Group: "cache"},
}

// observe reads a group's running allocations: their number, total CPU and
// memory, and the most one of them holds.
func (tr *trial) observe(ref telemetry.GroupRef) (running int, total, most Resources) {
	stubs, _, err := tr.client.Jobs().Allocations(ref.Job, false, nil)
	if err != nil {
		tr.t.Fatal(err)
	}
	for _, a := range stubs {
		if a.TaskGroup != ref.Group || a.ClientStatus != api.AllocClientStatusRunning {
			continue
		}
		st, err := tr.client.Allocations().Stats(&api.Allocation{ID: a.ID}, nil)
		if err != nil {
			tr.t.Fatal(err)
		}
		u := st.ResourceUsage
		r := Resources{CPUMHz: u.CpuStats.TotalTicks, MemoryMB: float64(u.MemoryStats.RSS) / (1 << 20)}
		running++
		total.CPUMHz += r.CPUMHz
		total.MemoryMB += r.MemoryMB
		most.CPUMHz, most.MemoryMB = max(most.CPUMHz, r.CPUMHz), max(most.MemoryMB, r.MemoryMB)
	}
	return running, total, most
}

func (tr *trial) pass(now time.Time) {
	for _, ref := range trialGroups {
		key := ref.Key()
		running, total, most := tr.observe(ref)
		tr.memPer[key] = most.MemoryMB
		damp := tr.damping[key]
		if damp == nil {
			damp = &Damping{}
			tr.damping[key] = damp
		}
		res, err := tr.act.Apply(context.Background(), ref, func(job *api.Job, tg *api.TaskGroup) Decision {
			in := InputFrom(job, tg, tr.room)
			if running > 0 {
				in.Demand, in.Usage = &total, &most
			}
			in.Running = map[string]int{"vm": running}
			in.Scores = scores("vm", 12)
			in.Own = tr.own[ref.Namespace+"/"+ref.Job]
			in.Damping, in.Now = *damp, now
			return Decide(Config{}, in)
		})
		if err != nil {
			tr.t.Fatalf("%s: %v", key, err)
		}
		tr.last[key] = res.Decision
		if res.Written {
			tr.written[key] = append(tr.written[key], res.Changes...)
			if res.Decision.Count != res.Decision.CurrentCount {
				damp.LastScale = now
			}
			if res.Decision.Rewrite || res.Decision.Resources != nil {
				damp.Rewrites = append(damp.Rewrites, now)
			}
		}
		if c := tr.counts[key]; len(c) == 0 || c[len(c)-1] != res.Decision.Count {
			tr.counts[key] = append(c, res.Decision.Count)
		}
	}
}

// TestTheFirstRealTrialInSim replays the trial's cluster for two simulated
// hours: web holds 80 MB per instance on 64 MB reserved whatever its
// count, cache's memory follows its load, and the cluster has one class.
// Foresight leaves its own job and the other system job alone, never
// scales web out on memory, rewrites no affinity, and scales cache out on
// the memory it names as its metric, to a count where each instance's
// share fits, not to its max; and writes nothing while a job's deployment
// runs.
func TestTheFirstRealTrialInSim(t *testing.T) {
	s := simtest.Start(t, "../examples/sim/one-node.hcl")
	tr := &trial{
		t: t, client: s.Client, act: NewActuator(s.Client),
		room:    NewRoom([]profiles.Class{class("vm", profiles.PlatformExternal, 1, 3)}, nil),
		own:     map[string]string{"default/foresight": "NOMAD_JOB_ID of this agent's allocation"},
		damping: map[string]*Damping{}, counts: map[string][]int{}, written: map[string][]string{},
		last: map[string]Decision{}, memPer: map[string]float64{},
	}
	s.Cluster.Advance(time.Minute) // every allocation runs
	for range 120 {
		s.Cluster.Advance(time.Minute)
		tr.pass(s.Cluster.Now())
	}
	for key, changes := range tr.written {
		t.Logf("%s wrote: %s", key, strings.Join(changes, "; "))
	}
	for key, c := range tr.counts {
		t.Logf("%s counts %v; last decision: %s", key, c, strings.Join(tr.last[key].Reasons, " | "))
	}

	// The system jobs: nothing written, and the reasons say which rule held.
	for _, key := range []string{"default/foresight/agent", "default/logs/ship"} {
		if len(tr.written[key]) > 0 {
			t.Errorf("%s is a system job, yet Foresight wrote %v", key, tr.written[key])
		}
	}
	if d := tr.last["default/foresight/agent"]; !strings.Contains(d.Hold, "Foresight's own job (NOMAD_JOB_ID") {
		t.Errorf("Foresight's own job not held by its rule: hold %q", d.Hold)
	}
	if d := tr.last["default/logs/ship"]; !strings.Contains(strings.Join(d.Reasons, "\n"), "count and class not decided: a system job") {
		t.Errorf("the system job's reasons do not say why it gets no count: %q", d.Reasons)
	}
	// No affinity anywhere: one class, so no edit could move anything.
	for key, changes := range tr.written {
		for _, c := range changes {
			if strings.Contains(c, "affinity") {
				t.Errorf("%s: affinity rewritten on a one-class cluster: %s", key, c)
			}
		}
	}
	// web: memory flat in the count never scales it out.
	for _, n := range tr.counts["default/web/web"] {
		if n > 2 {
			t.Fatalf("web scaled out to %d on memory each instance holds anyway (counts %v)", n, tr.counts["default/web/web"])
		}
	}
	if !strings.Contains(strings.Join(tr.last["default/web/web"].Reasons, "\n"), "memory does not size the count") {
		t.Errorf("web's decision does not say its memory is a per-instance need: %q", tr.last["default/web/web"].Reasons)
	}
	// Nothing was written while a job's deployment ran: a write then would
	// have cancelled it for the newer version.
	deps, _, err := s.Client.Deployments().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range deps {
		if d.Status == api.DeploymentStatusCancelled {
			t.Errorf("deployment %s of job %s version %d: %s: a write came while it ran", d.ID[:8], d.JobID, d.JobVersion, d.StatusDescription)
		}
	}
	t.Logf("%d deployments, none cut short by a write", len(deps))
	// cache: memory that splits scales it out, and only as far as each
	// instance's share fits: (16·n + 480 MB)·1.1 ≤ n·256 MB·0.7 holds
	// from n = 4.
	cache := tr.counts["default/cache/cache"]
	if final := cache[len(cache)-1]; final < 3 || final > 5 {
		t.Fatalf("cache ends at count %d (counts %v), want about 4: what its split memory needs", final, cache)
	}
	if m := tr.memPer["default/cache/cache"]; m > 256*0.7*1.1 {
		t.Errorf("cache's instances still hold %.0f MB each on 256 MB reserved", m)
	}
}
