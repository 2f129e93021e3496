package orchestrator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/foresight-nomad/foresight/telemetry"
	"github.com/hashicorp/nomad/api"
)

// RetryLimit is the default number of times Apply reads, decides and tries
// to write before it gives up on a job that keeps changing under it.
const RetryLimit = 3

// errIndexConflict is the text of Nomad's refusal of a stale EnforceIndex.
const errIndexConflict = "Enforcing job modify index"

// errChanged is a plan that shows the job changed since it was read: its
// annotations compare against someone else's version, so Apply reads again.
var errChanged = errors.New("job changed since it was read")

// DecideFunc makes a group's decision from the job as just read. Apply
// calls it again on every fresh read.
type DecideFunc func(job *api.Job, tg *api.TaskGroup) Decision

// Actuator is the one way Foresight writes to Nomad jobs. Its promise, per
// Apply:
//
//   - Compare-and-set. The job is written only with EnforceIndex at the
//     JobModifyIndex of the copy the decision was made from. When anyone
//     wrote the job in between, Nomad refuses the write; the actuator reads
//     the job again and decides again from the new copy, so a user's
//     concurrent edit is never overwritten and the next decision includes it.
//     It gives up after MaxAttempts reads.
//   - Marker. The only stanzas it adds, changes or removes are the group's
//     affinities whose LTarget starts with "${meta.foresight." (ManagedPrefix).
//     It never touches the user's affinities, constraints or spreads (at job,
//     group or task level), job or group meta, or anything else of the job
//     but the group's count and, when the decision rightsizes, its tasks'
//     cpu and memory.
//   - Affinities are rewritten only when the decision changes the group's
//     class (Decision.Rewrite): a changed affinity replaces every allocation.
//     Decisions are recorded in the returned Result, never in job meta: a
//     meta change would replace every allocation of the job.
//   - Never during a deployment. Nothing is written while the job's latest
//     deployment is active (DeploymentActive: running, paused, pending,
//     blocked, unblocking, initializing): a register would cancel it, and
//     Nomad refuses a count change then. Result.Held names the deployment
//     and its status, Result.Deployment holds it. A deployment that starts
//     after the check rolls out a version newer than the one read, so the
//     EnforceIndex write fails and the job is read and checked again.
//   - Plan first. Before a write the job is planned; when the plan cannot
//     place allocations of the group and the decision requests no capacity
//     that would make room, nothing is written and the Result says why.
//     Nor is a decision that changes no class and no resources written when
//     the plan would replace allocations: that replacement is not its own.
//     A written change that replaces allocations says how many, from the
//     plan's annotations, in the decision's reasons.
//   - Nothing is written, and nothing planned, for a group in recommend or
//     off mode, with a bad policy, or while actuation is paused: the Result
//     then holds the changes that would have been made.
//
// All writes go through one method, commit.
type Actuator struct {
	nomad *api.Client
	// Paused, when it answers true, stops every write; nil never pauses.
	Paused func() bool
	// MaxAttempts bounds read-decide-write rounds; 0 means RetryLimit.
	MaxAttempts int

	// beforeWrite, in tests, runs between the read and the write.
	beforeWrite func(job *api.Job)
}

// NewActuator returns an actuator writing through nomad.
func NewActuator(nomad *api.Client) *Actuator {
	return &Actuator{nomad: nomad}
}

// Result is what Apply did for one group.
type Result struct {
	Decision Decision `json:"decision"`
	// Changes is the diff from the job read to the job wanted, one line
	// each; empty when the job already is as decided.
	Changes []string `json:"changes"`
	// Written is true when the job was registered.
	Written bool `json:"written"`
	// Held says why nothing was written although Changes is not empty.
	Held string `json:"held,omitempty"`
	// Replaces is how many of the group's allocations the write replaces,
	// from the plan's annotations (replacements reports them as Nomad
	// counts them).
	Replaces int `json:"replaces"`
	// Deployment is the job's active deployment when it held the write.
	Deployment *Deployment `json:"deployment,omitempty"`
	// Attempts counts read-decide-write rounds; more than one means a
	// concurrent write was detected and the job re-read.
	Attempts int `json:"attempts"`
	// JobModifyIndex is the index of the job the last decision was made
	// from, and EvalID the evaluation a write created.
	JobModifyIndex uint64 `json:"job_modify_index"`
	EvalID         string `json:"eval_id,omitempty"`
}

// Apply reads the group's job, decides, and writes the decision when it may,
// keeping the promise above. An error means the job could not be read or
// written; a decision not acted on is not an error (see Result.Held).
func (a *Actuator) Apply(ctx context.Context, ref telemetry.GroupRef, decide DecideFunc) (Result, error) {
	attempts := a.MaxAttempts
	if attempts <= 0 {
		attempts = RetryLimit
	}
	var res Result
	for res.Attempts < attempts {
		res.Attempts++
		job, _, err := a.nomad.Jobs().Info(ref.Job, (&api.QueryOptions{Namespace: ref.Namespace}).WithContext(ctx))
		if err != nil {
			return res, fmt.Errorf("read job %q: %w", ref.Job, err)
		}
		tg := groupOf(job, ref.Group)
		if tg == nil {
			return res, fmt.Errorf("job %q has no group %q", ref.Job, ref.Group)
		}
		if job.JobModifyIndex == nil {
			return res, fmt.Errorf("job %q: no JobModifyIndex in Nomad's answer", ref.Job)
		}
		res.JobModifyIndex = *job.JobModifyIndex
		res.Decision = decide(job, tg)
		want, changes, err := rewrite(job, ref.Group, res.Decision)
		if err != nil {
			return res, fmt.Errorf("rewrite job %q: %w", ref.Job, err)
		}
		res.Changes = changes
		if res.Decision.Hold != "" || len(changes) == 0 {
			res.Held = res.Decision.Hold
			return res, nil
		}
		if held := a.hold(res.Decision); held != "" {
			res.Held = held
			return res, nil
		}
		if a.beforeWrite != nil {
			a.beforeWrite(job)
		}
		eval, replaces, why, held, err := a.commit(ctx, ref, want, res.JobModifyIndex, res.Decision)
		if err != nil && (strings.Contains(err.Error(), errIndexConflict) || errors.Is(err, errChanged)) {
			continue
		}
		if err != nil {
			return res, err
		}
		if held.why != "" {
			res.Held, res.Deployment = held.why, held.deployment
			return res, nil
		}
		res.Written, res.EvalID, res.Replaces = true, eval, replaces
		if replaces > 0 {
			res.Decision.why("the write replaces %d allocation(s) of group %q (%s)", replaces, ref.Group, why)
		}
		return res, nil
	}
	return res, fmt.Errorf("job %q changed under every one of %d attempts; nothing written", ref.Job, attempts)
}

// hold says why a decision that changes the job must not be written, ""
// when it may.
func (a *Actuator) hold(d Decision) string {
	switch {
	case d.Mode != ModeEnforce:
		return fmt.Sprintf("%s = %s: changes reported, not written", MetaMode, d.Mode)
	case a.Paused != nil && a.Paused():
		return "actuation paused"
	}
	return ""
}

// commitHold is why commit did not write: the job's active deployment, a
// plan that cannot place the group, or a plan that would replace
// allocations for a change that replaces none.
type commitHold struct {
	why        string
	deployment *Deployment
}

// commit registers job with EnforceIndex at index when the job has no
// active deployment, its plan places the group or capacity is on its way,
// and the plan replaces allocations only for a destructive decision. It is
// the only function that writes to Nomad. replaces is what the plan
// replaces in the group and why says it from the plan's annotations; a
// non-empty hold means nothing was written.
func (a *Actuator) commit(ctx context.Context, ref telemetry.GroupRef, job *api.Job, index uint64, d Decision) (eval string, replaces int, why string, hold commitHold, err error) {
	dep, err := ActiveDeployment(ctx, a.nomad, ref.Namespace, job)
	if err != nil {
		return "", 0, "", commitHold{}, err
	}
	if dep != nil {
		return "", 0, "", commitHold{why: dep.hold(), deployment: dep}, nil
	}
	wo := (&api.WriteOptions{Namespace: ref.Namespace}).WithContext(ctx)
	plan, _, err := a.nomad.Jobs().Plan(job, true, wo)
	if err != nil {
		return "", 0, "", commitHold{}, fmt.Errorf("plan job %q: %w", ref.Job, err)
	}
	if plan.JobModifyIndex != index {
		return "", 0, "", commitHold{}, fmt.Errorf("plan job %q: modify index %d, read at %d: %w", ref.Job, plan.JobModifyIndex, index, errChanged)
	}
	if failed := plan.FailedTGAllocs[ref.Group]; failed != nil && d.Capacity == nil {
		return "", 0, "", commitHold{why: fmt.Sprintf("plan cannot place group %q (%s) and no capacity can be requested: not registered",
			ref.Group, describeFailure(failed))}, nil
	}
	if plan.Annotations != nil {
		replaces, why = replacements(plan.Annotations.DesiredTGUpdates[ref.Group], d.Rewrite || d.Resources != nil)
	}
	if replaces > 0 && !d.Rewrite && d.Resources == nil {
		return "", replaces, why, commitHold{why: fmt.Sprintf("plan would replace %d allocation(s) of group %q (%s) for a change that replaces none: not registered",
			replaces, ref.Group, why)}, nil
	}
	resp, _, err := a.nomad.Jobs().EnforceRegister(job, index, wo)
	if err != nil {
		return "", 0, "", commitHold{}, fmt.Errorf("register job %q at modify index %d: %w", ref.Job, index, err)
	}
	return resp.EvalID, replaces, why, commitHold{}, nil
}

// replacements is how many allocations a plan's updates for a group
// replace, and the annotations it is read from. Nomad's reconciler counts
// in DestructiveUpdate only what fits in this round of a rolling update
// (max_parallel, less the new placements it makes first) and leaves the
// rest of the old allocations in Ignore for later rounds; so when the
// change is destructive (destructive: Foresight's own decision rewrites
// placement or resources, or the plan says some are destroyed now) every
// allocation it ignores is replaced too. Migrate allocations are replaced
// either way.
func replacements(u *api.DesiredUpdates, destructive bool) (int, string) {
	if u == nil {
		return 0, ""
	}
	n := u.DestructiveUpdate + u.Migrate
	if destructive || u.DestructiveUpdate > 0 {
		n += u.Ignore
	}
	if n == 0 {
		return 0, ""
	}
	return int(n), fmt.Sprintf("plan: %d destructive now, %d later in the rolling update, %d migrated",
		u.DestructiveUpdate, n-u.DestructiveUpdate-u.Migrate, u.Migrate)
}

func describeFailure(m *api.AllocationMetric) string {
	var parts []string
	if m.CoalescedFailures > 0 {
		parts = append(parts, fmt.Sprintf("%d more allocations", m.CoalescedFailures))
	}
	parts = append(parts, fmt.Sprintf("%d of %d nodes exhausted", m.NodesExhausted, m.NodesEvaluated))
	dims := make([]string, 0, len(m.DimensionExhausted))
	for dim := range m.DimensionExhausted {
		dims = append(dims, dim)
	}
	sort.Strings(dims)
	for _, dim := range dims {
		parts = append(parts, fmt.Sprintf("%s exhausted on %d", dim, m.DimensionExhausted[dim]))
	}
	return strings.Join(parts, ", ")
}

func groupOf(job *api.Job, name string) *api.TaskGroup {
	for _, tg := range job.TaskGroups {
		if tg.Name != nil && *tg.Name == name {
			return tg
		}
	}
	return nil
}

// isManaged tells Foresight's affinities from the user's.
func isManaged(a *api.Affinity) bool {
	return a != nil && strings.HasPrefix(a.LTarget, ManagedPrefix)
}

// rewrite returns a copy of job with the decision applied to group, and the
// changes one line each. job itself is not modified.
func rewrite(job *api.Job, group string, d Decision) (*api.Job, []string, error) {
	out, err := copyJob(job)
	if err != nil {
		return nil, nil, err
	}
	tg := groupOf(out, group)
	var changes []string

	if d.Rewrite {
		var kept, old []*api.Affinity
		for _, a := range tg.Affinities {
			if isManaged(a) {
				old = append(old, a)
			} else {
				kept = append(kept, a)
			}
		}
		next := make([]*api.Affinity, 0, len(d.Affinities))
		for _, m := range d.Affinities {
			if !strings.HasPrefix(m.Attribute, ManagedPrefix) {
				return nil, nil, fmt.Errorf("managed affinity on %q lacks the %s marker", m.Attribute, ManagedPrefix)
			}
			w := int8(max(-100, min(100, m.Weight)))
			next = append(next, api.NewAffinity(m.Attribute, "=", m.Value, w))
		}
		if !sameAffinities(old, next) {
			for _, a := range old {
				changes = append(changes, "- affinity "+affinityString(a))
			}
			for _, a := range next {
				changes = append(changes, "+ affinity "+affinityString(a))
			}
			tg.Affinities = append(kept, next...)
		}
	}

	from := 0
	if tg.Count != nil {
		from = *tg.Count
	}
	if d.Count != from {
		changes = append(changes, fmt.Sprintf("~ count %d → %d", from, d.Count))
		c := d.Count
		tg.Count = &c
	}

	if d.Resources != nil {
		rc, err := resize(tg, *d.Resources)
		if err != nil {
			return nil, nil, err
		}
		changes = append(changes, rc...)
	}
	return out, changes, nil
}

// resize scales every task's cpu and memory by the ratio of the wanted
// per-allocation total to the current one, so that multi-task groups keep
// their split.
func resize(tg *api.TaskGroup, want Resources) ([]string, error) {
	cur := Reservation(tg)
	if cur.CPUMHz <= 0 || cur.MemoryMB <= 0 {
		return nil, fmt.Errorf("group %q reserves no cpu or memory to scale", *tg.Name)
	}
	var changes []string
	for _, t := range tg.Tasks {
		if t.Resources == nil {
			continue
		}
		if t.Resources.CPU != nil && *t.Resources.CPU > 0 {
			n := max(1, int(math.Round(float64(*t.Resources.CPU)*want.CPUMHz/cur.CPUMHz)))
			if n != *t.Resources.CPU {
				changes = append(changes, fmt.Sprintf("~ task %s cpu %d → %d MHz", t.Name, *t.Resources.CPU, n))
				t.Resources.CPU = &n
			}
		}
		if t.Resources.MemoryMB != nil && *t.Resources.MemoryMB > 0 {
			n := max(1, int(math.Round(float64(*t.Resources.MemoryMB)*want.MemoryMB/cur.MemoryMB)))
			if n != *t.Resources.MemoryMB {
				changes = append(changes, fmt.Sprintf("~ task %s memory %d → %d MB", t.Name, *t.Resources.MemoryMB, n))
				t.Resources.MemoryMB = &n
			}
		}
	}
	return changes, nil
}

// Reservation is what one allocation of tg reserves: its tasks' cpu and
// memory summed.
func Reservation(tg *api.TaskGroup) Resources {
	var r Resources
	for _, t := range tg.Tasks {
		if t.Resources == nil {
			continue
		}
		if t.Resources.CPU != nil {
			r.CPUMHz += float64(*t.Resources.CPU)
		}
		if t.Resources.MemoryMB != nil {
			r.MemoryMB += float64(*t.Resources.MemoryMB)
		}
	}
	return r
}

// ManagedClass is the class ID tg's managed affinities steer to: the class
// whose managed target matches the heaviest managed affinity; "" when there
// is none or it names no known class.
func ManagedClass(tg *api.TaskGroup, room *Room) string {
	var top *api.Affinity
	for _, a := range tg.Affinities {
		if isManaged(a) && a.Weight != nil && *a.Weight > 0 && (top == nil || *a.Weight > *top.Weight) {
			top = a
		}
	}
	if top == nil || room == nil {
		return ""
	}
	for i := range room.classes {
		if t, ok := steerable(&room.classes[i]); ok && t.Attribute == top.LTarget && t.Value == top.RTarget {
			return room.classes[i].ID
		}
	}
	return ""
}

// InputFrom fills what a decision reads from the job: the group's name,
// meta, count, reservation, managed class, job type and feasible classes.
// The caller adds the forecast,
// usage, scores, running allocations, damping and time.
func InputFrom(job *api.Job, tg *api.TaskGroup, room *Room) Input {
	ref := telemetry.GroupRef{Job: deref(job.ID), Group: deref(tg.Name)}
	if job.Namespace != nil {
		ref.Namespace = *job.Namespace
	}
	count := 0
	if tg.Count != nil {
		count = *tg.Count
	}
	return Input{
		Group: ref.Key(), JobMeta: job.Meta, GroupMeta: tg.Meta,
		Count: count, Reserved: Reservation(tg), Room: room, Current: ManagedClass(tg, room),
		JobType: deref(job.Type), Feasible: FeasibleClasses(job, room),
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func copyJob(job *api.Job) (*api.Job, error) {
	b, err := json.Marshal(job)
	if err != nil {
		return nil, fmt.Errorf("copy job: %w", err)
	}
	var out api.Job
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("copy job: %w", err)
	}
	return &out, nil
}

func sameAffinities(a, b []*api.Affinity) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if affinityString(a[i]) != affinityString(b[i]) {
			return false
		}
	}
	return true
}

func affinityString(a *api.Affinity) string {
	w := 0
	if a.Weight != nil {
		w = int(*a.Weight)
	}
	op := a.Operand
	if op == "" {
		op = "="
	}
	return fmt.Sprintf("%s %s %q weight %d", a.LTarget, op, a.RTarget, w)
}
