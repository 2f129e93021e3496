package orchestrator

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/telemetry"
)

// DefaultMinHealthyTime is Nomad's default update min_healthy_time: how
// long an allocation without deployment health must run to count as healthy.
const DefaultMinHealthyTime = 10 * time.Second

// DefaultMigrateRetry is how long the migrator waits before it moves
// another allocation after a replacement landed off the wanted class.
const DefaultMigrateRetry = 5 * time.Minute

// Migrator moves a group's running allocations to the class its affinities
// now want. Nomad leaves running allocations where they are when affinities
// change; the migrator stops misplaced ones so that Nomad replaces them under
// the group's current affinities. Its promise, per Step:
//
//   - At most one stop per step, and none while any allocation of the group
//     is pending, running but not yet healthy, or not placed at all, nor
//     while the replacement of the allocation it stopped last is not yet
//     healthy. Healthy is running and deployment-healthy when Nomad tracks
//     deployment health for it, else running for at least the group's
//     update min_healthy_time (default 10s), measured on Clock.
//   - It stops an allocation only when the healthy allocations that remain
//     (count × the group's per-allocation reservation) still hold the demand
//     given, for CPU and memory; otherwise it says that the group cannot
//     move without dropping below demand.
//   - When a replacement lands off the wanted class (the class had no room
//     after all), it waits Retry before it stops another, instead of
//     churning the group.
//   - Nothing is stopped while the job's deployment is active
//     (DeploymentActive): Held names the deployment, which already replaces
//     allocations under Nomad's rolling update.
//
// It writes nothing but alloc stops (POST /v1/allocation/<id>/stop), and
// does not look at modes or pause: the leader calls it only for groups it
// may act on.
type Migrator struct {
	Nomad *nomadapi.Client
	Log   hclog.Logger
	Clock clock.Clock
	// Retry is how long to wait after a replacement landed off the wanted
	// class; 0 means DefaultMigrateRetry.
	Retry time.Duration

	mu sync.Mutex
	// last is, by group key, the allocation this migrator stopped last.
	last map[string]lastStop
}

type lastStop struct {
	alloc string
	at    time.Time
}

// MigrateResult is what one Step did for a group, for the decision log.
type MigrateResult struct {
	Group string `json:"group"`
	// Want is the class the group's allocations should run on.
	Want string `json:"want"`
	// Healthy counts the group's healthy allocations, Misplaced the running
	// ones on another class than Want.
	Healthy   int `json:"healthy"`
	Misplaced int `json:"misplaced"`
	// Stopped is the allocation stopped by this step and the class it ran
	// on; EvalID is Nomad's evaluation that places its replacement.
	Stopped      string `json:"stopped,omitempty"`
	StoppedClass string `json:"stopped_class,omitempty"`
	EvalID       string `json:"eval_id,omitempty"`
	// Waiting is true when the step waits for the group to settle; Held
	// says why a misplaced allocation may not be stopped at all now, and
	// Deployment is the job's active deployment when that is why.
	Waiting    bool        `json:"waiting"`
	Held       string      `json:"held,omitempty"`
	Deployment *Deployment `json:"deployment,omitempty"`
	// Done is true when every running allocation is on Want.
	Done    bool     `json:"done"`
	Reasons []string `json:"reasons"`
}

func (r *MigrateResult) why(format string, args ...any) {
	r.Reasons = append(r.Reasons, fmt.Sprintf(format, args...))
}

func (r *MigrateResult) wait(format string, args ...any) {
	r.Waiting = true
	r.why("waiting: "+format, args...)
}

// Step makes one migration step for ref toward class want, as promised
// above. classOf says which class a node belongs to (false: unknown);
// demand is the total the group must keep holding, the forecast peak at the
// policy's quantile (a zero field is a resource not forecast). An error
// means Nomad could not be read or the stop failed.
func (m *Migrator) Step(ctx context.Context, ref telemetry.GroupRef, want string, classOf func(nodeID string) (string, bool), demand Resources) (MigrateResult, error) {
	res := MigrateResult{Group: ref.Key(), Want: want}
	q := (&nomadapi.QueryOptions{Namespace: ref.Namespace}).WithContext(ctx)
	job, _, err := m.Nomad.Jobs().Info(ref.Job, q)
	if err != nil {
		return res, fmt.Errorf("read job %q: %w", ref.Job, err)
	}
	tg := groupOf(job, ref.Group)
	if tg == nil {
		return res, fmt.Errorf("job %q has no group %q", ref.Job, ref.Group)
	}
	dep, err := ActiveDeployment(ctx, m.Nomad, ref.Namespace, job)
	if err != nil {
		return res, err
	}
	if dep != nil {
		res.Held, res.Deployment = dep.hold(), dep
		res.why("no allocation stopped: %s", res.Held)
		return res, nil
	}
	stubs, _, err := m.Nomad.Jobs().Allocations(ref.Job, false, q)
	if err != nil {
		return res, fmt.Errorf("read allocations of job %q: %w", ref.Job, err)
	}
	now := m.now()
	minHealthy := minHealthyTime(job, tg)
	byID := map[string]*nomadapi.AllocationListStub{}
	var live []*nomadapi.AllocationListStub
	for _, a := range stubs {
		if a.TaskGroup != ref.Group {
			continue
		}
		byID[a.ID] = a
		if a.DesiredStatus == nomadapi.AllocDesiredStatusRun && !allocTerminal(a) {
			live = append(live, a)
		}
	}
	sort.Slice(live, func(i, j int) bool { return live[i].CreateIndex < live[j].CreateIndex })

	placedAll := tg.Count == nil || len(live) >= *tg.Count
	if m.settling(ref, want, byID, classOf, now, minHealthy, placedAll, &res) {
		return res, nil
	}
	var misplaced []*nomadapi.AllocationListStub
	for _, a := range live {
		ok, why := allocHealthy(a, now, minHealthy)
		if !ok {
			res.wait("allocation %s on node %s: %s", shortID(a.ID), a.NodeName, why)
			return res, nil
		}
		res.Healthy++
		class, known := classOf(a.NodeID)
		switch {
		case !known:
			res.why("allocation %s: node %s is in no known class, left where it is", shortID(a.ID), a.NodeName)
		case class != want:
			misplaced = append(misplaced, a)
		}
	}
	res.Misplaced = len(misplaced)
	if !placedAll {
		res.wait("%d of %d allocations placed; Nomad has yet to place the rest", len(live), *tg.Count)
		return res, nil
	}
	if len(misplaced) == 0 {
		res.Done = true
		res.why("all %d healthy allocations are on class %s", res.Healthy, want)
		return res, nil
	}

	per := Reservation(tg)
	left := Resources{CPUMHz: float64(res.Healthy-1) * per.CPUMHz, MemoryMB: float64(res.Healthy-1) * per.MemoryMB}
	if lack := demandShortfall(left, demand); lack != "" {
		res.Held = fmt.Sprintf("cannot move an allocation without dropping below demand: %d healthy - 1 = %d × %.0f MHz / %.0f MB leaves %s",
			res.Healthy, res.Healthy-1, per.CPUMHz, per.MemoryMB, lack)
		res.why("%d misplaced allocations stay: %s", len(misplaced), res.Held)
		return res, nil
	}

	a := misplaced[0]
	class, _ := classOf(a.NodeID)
	resp, err := m.Nomad.Allocations().Stop(&nomadapi.Allocation{ID: a.ID}, q)
	if err != nil {
		return res, fmt.Errorf("stop allocation %s: %w", a.ID, err)
	}
	m.remember(ref, lastStop{alloc: a.ID, at: now})
	res.Stopped, res.StoppedClass, res.EvalID = a.ID, class, resp.EvalID
	res.why("stopped allocation %s on class %s (%d misplaced, want %s): Nomad places its replacement by the group's affinities; %d healthy remain, %.0f MHz / %.0f MB for a demand of %.0f MHz / %.0f MB",
		shortID(a.ID), class, len(misplaced), want, res.Healthy-1, left.CPUMHz, left.MemoryMB, demand.CPUMHz, demand.MemoryMB)
	m.log().Info("migration stop", "group", res.Group, "alloc", a.ID, "from", class, "to", want, "eval", resp.EvalID)
	return res, nil
}

// settling reports whether the replacement of the allocation stopped last
// is not yet placed, not yet healthy, or landed off want less than Retry
// ago; it says why in res. placedAll says the group runs as many live
// allocations as its count: a stopped allocation without a live
// replacement then has none coming (the count went down since), and
// nothing is left to wait for.
func (m *Migrator) settling(ref telemetry.GroupRef, want string, byID map[string]*nomadapi.AllocationListStub, classOf func(string) (string, bool), now time.Time, minHealthy time.Duration, placedAll bool, res *MigrateResult) bool {
	m.mu.Lock()
	last, ok := m.last[ref.Key()]
	m.mu.Unlock()
	if !ok {
		return false
	}
	stopped := byID[last.alloc]
	if stopped == nil {
		return false // garbage-collected: long settled
	}
	cur := stopped
	for seen := 0; cur.NextAllocation != "" && seen < len(byID); seen++ {
		next := byID[cur.NextAllocation]
		if next == nil {
			break
		}
		cur = next
	}
	if cur.DesiredStatus != nomadapi.AllocDesiredStatusRun || allocTerminal(cur) {
		if placedAll {
			return false
		}
		res.wait("the replacement of allocation %s, stopped %s ago, is not placed yet (no room?)", shortID(last.alloc), now.Sub(last.at).Round(time.Second))
		return true
	}
	if ok, why := allocHealthy(cur, now, minHealthy); !ok {
		res.wait("replacement %s of allocation %s: %s", shortID(cur.ID), shortID(last.alloc), why)
		return true
	}
	if class, known := classOf(cur.NodeID); known && class != want {
		if since := now.Sub(last.at); since < m.retry() {
			res.wait("replacement %s of allocation %s landed on class %s, not %s (no room there?); next try in %s",
				shortID(cur.ID), shortID(last.alloc), class, want, (m.retry() - since).Round(time.Second))
			return true
		}
	}
	return false
}

func (m *Migrator) remember(ref telemetry.GroupRef, s lastStop) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last == nil {
		m.last = map[string]lastStop{}
	}
	m.last[ref.Key()] = s
}

func (m *Migrator) now() time.Time {
	if m.Clock == nil {
		return clock.Real{}.Now()
	}
	return m.Clock.Now()
}

func (m *Migrator) retry() time.Duration {
	if m.Retry > 0 {
		return m.Retry
	}
	return DefaultMigrateRetry
}

func (m *Migrator) log() hclog.Logger {
	if m.Log == nil {
		return hclog.NewNullLogger()
	}
	return m.Log
}

// minHealthyTime is the group's update min_healthy_time, else the job's,
// else Nomad's default.
func minHealthyTime(job *nomadapi.Job, tg *nomadapi.TaskGroup) time.Duration {
	for _, u := range []*nomadapi.UpdateStrategy{tg.Update, job.Update} {
		if u != nil && u.MinHealthyTime != nil && *u.MinHealthyTime > 0 {
			return *u.MinHealthyTime
		}
	}
	return DefaultMinHealthyTime
}

// allocTerminal reports whether the client is done with a.
func allocTerminal(a *nomadapi.AllocationListStub) bool {
	switch a.ClientStatus {
	case nomadapi.AllocClientStatusComplete, nomadapi.AllocClientStatusFailed, nomadapi.AllocClientStatusLost:
		return true
	}
	return false
}

// allocHealthy says whether a counts as healthy at now, and if not why: running
// and deployment-healthy when Nomad tracks deployment health for it, else
// running for at least minHealthy since its last task started.
func allocHealthy(a *nomadapi.AllocationListStub, now time.Time, minHealthy time.Duration) (bool, string) {
	if a.ClientStatus != nomadapi.AllocClientStatusRunning {
		return false, a.ClientStatus
	}
	if ds := a.DeploymentStatus; ds != nil && ds.Healthy != nil {
		if *ds.Healthy {
			return true, ""
		}
		return false, "running but unhealthy in its deployment"
	}
	var started time.Time
	for _, ts := range a.TaskStates {
		if ts != nil && ts.State == "running" && ts.StartedAt.After(started) {
			started = ts.StartedAt
		}
	}
	if started.IsZero() {
		return false, "running, no task started yet"
	}
	if ran := now.Sub(started); ran < minHealthy {
		return false, fmt.Sprintf("running for %s of min_healthy_time %s", ran.Round(time.Second), minHealthy)
	}
	return true, ""
}

// demandShortfall says what left lacks to hold demand, "" when it holds it.
func demandShortfall(left, demand Resources) string {
	var parts []string
	if demand.CPUMHz > 0 && left.CPUMHz < demand.CPUMHz {
		parts = append(parts, fmt.Sprintf("%.0f MHz < %.0f MHz demand", left.CPUMHz, demand.CPUMHz))
	}
	if demand.MemoryMB > 0 && left.MemoryMB < demand.MemoryMB {
		parts = append(parts, fmt.Sprintf("%.0f MB < %.0f MB demand", left.MemoryMB, demand.MemoryMB))
	}
	return strings.Join(parts, ", ")
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
