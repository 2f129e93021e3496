package sim

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/hashicorp/nomad/api"
)

// Deployments, as Nomad 1.6 runs them for service jobs:
//
//   - The scheduler creates a deployment for a job version whose groups have
//     an update block (max_parallel > 0; every service job has one, Nomad's
//     default, unless it sets max_parallel = 0) when it places or updates
//     allocations of that version for the first time. A new version cancels
//     the running deployment of the old one ("Cancelled due to newer version
//     of job"), a stopped job its own ("Cancelled because job is stopped").
//   - Every allocation the deployment places or updates in place carries its
//     DeploymentID. Its health is set once, by the client: healthy after its
//     tasks have run for min_healthy_time, unhealthy if it fails or is not
//     healthy by healthy_deadline. health_check = "checks" is modelled as
//     "task_states" (sim's services always pass their checks); "manual"
//     waits for /v1/deployment/allocation-health, which sim does not serve.
//   - A rolling update replaces at most max_parallel allocations that are
//     not yet healthy; each health change makes the deployment watcher
//     evaluate the job again, and the evaluation that finds every group
//     placed, updated and healthy marks the deployment successful and the
//     job version stable.
//   - Canaries (update.canary > 0) are placed beside the old allocations
//     and hold the rollout until promoted (/v1/deployment/promote, or
//     auto_promote once all are healthy); promoted canaries take the names
//     of old allocations, which are stopped.
//   - A deployment fails on an unhealthy allocation or when no allocation
//     turned healthy within progress_deadline; with auto_revert the job is
//     registered again at its latest stable version. It can be paused,
//     resumed and failed through the API.
//   - While the job's latest deployment is active, `POST /v1/job/<id>/scale`
//     is refused with HTTP 400 "job scaling blocked due to active
//     deployment", as Nomad 1.6.5 answers (fixture 43).
//
// Not modelled: multiregion deployments (pending, blocked and unblocking
// are never entered), manual alloc health, and a progress deadline that
// passed while the deployment was paused (sim does not fail it on
// resuming; its next health change sets a new deadline).

// tableDeployments is the state store table of deployments.
const tableDeployments = "deployment"

// deploymentStatusInitializing is the multiregion start status of Nomad's
// server, which the api package has no constant for; sim never enters it.
const deploymentStatusInitializing = "initializing"

// Deployment status descriptions, as Nomad words them.
const (
	descRunning               = "Deployment is running"
	descRunningNeedsPromotion = "Deployment is running but requires manual promotion"
	descRunningAutoPromotion  = "Deployment is running pending automatic promotion"
	descPaused                = "Deployment is paused"
	descSuccessful            = "Deployment completed successfully"
	descStoppedJob            = "Cancelled because job is stopped"
	descNewerJob              = "Cancelled due to newer version of job"
	descFailedAllocations     = "Failed due to unhealthy allocations"
	descProgressDeadline      = "Failed due to progress deadline"
	descFailedByUser          = "Deployment marked as failed"
)

// Event types of deployment changes: the Raft message that made them, as
// Nomad's event stream names it.
const (
	eventDeploymentStatusUpdate = "DeploymentStatusUpdate"
	eventDeploymentPromotion    = "DeploymentPromotion"
	eventPlanResult             = "PlanResult"
	eventAllocationUpdated      = "AllocationUpdated"
)

// healthCheckManual is the update block's health_check that leaves
// allocation health to the API.
const healthCheckManual = "manual"

// evalTriggerDeploymentWatcher is the trigger of the evaluations the
// deployment watcher creates.
const evalTriggerDeploymentWatcher = "deployment-watcher"

// deploymentGCThreshold is how long a finished deployment is kept, as
// Nomad's deployment_gc_threshold defaults.
const deploymentGCThreshold = time.Hour

// ErrScaleBlocked is Nomad's refusal to scale a job while its deployment is
// active: HTTP 400 with exactly this message.
var ErrScaleBlocked = fmt.Errorf("%w: job scaling blocked due to active deployment", ErrInvalid)

// simDeployment is one deployment, in the shape Nomad 1.6.5 sends it
// (fixtures 41, 42 and 44): the api package's Deployment has CreateTime
// and ModifyTime, which 1.6.5 lacks, and lacks EvalPriority and the
// groups' AutoPromote, which it sends.
type simDeployment struct {
	CreateIndex        uint64
	EvalPriority       int
	ID                 string
	IsMultiregion      bool
	JobCreateIndex     uint64
	JobID              string
	JobModifyIndex     uint64
	JobSpecModifyIndex uint64
	JobVersion         uint64
	ModifyIndex        uint64
	Namespace          string
	Status             string
	StatusDescription  string
	TaskGroups         map[string]*deploymentState

	// modified is when the deployment last changed, for garbage collection.
	modified time.Time
}

// deploymentState is one group's progress in a deployment.
type deploymentState struct {
	AutoPromote       bool
	AutoRevert        bool
	DesiredCanaries   int
	DesiredTotal      int
	HealthyAllocs     int
	PlacedAllocs      int
	PlacedCanaries    []string
	ProgressDeadline  time.Duration
	Promoted          bool
	RequireProgressBy time.Time
	UnhealthyAllocs   int
}

// active reports whether Nomad still works on the deployment: it has not
// succeeded, failed or been cancelled.
func (d *simDeployment) active() bool {
	switch d.Status {
	case api.DeploymentStatusRunning, api.DeploymentStatusPaused, api.DeploymentStatusPending,
		api.DeploymentStatusBlocked, api.DeploymentStatusUnblocking, deploymentStatusInitializing:
		return true
	}
	return false
}

// requiresPromotion reports whether a group has canaries not yet promoted.
func (d *simDeployment) requiresPromotion() bool {
	for _, s := range d.TaskGroups {
		if s.DesiredCanaries > 0 && !s.Promoted {
			return true
		}
	}
	return false
}

// runningDescription is how a running deployment describes itself.
func (d *simDeployment) runningDescription() string {
	if !d.requiresPromotion() {
		return descRunning
	}
	for _, s := range d.TaskGroups {
		if s.DesiredCanaries > 0 && !s.Promoted && !s.AutoPromote {
			return descRunningNeedsPromotion
		}
	}
	return descRunningAutoPromotion
}

// done reports whether the group needs nothing more of its deployment:
// enough healthy allocations, and its canaries promoted.
func (s *deploymentState) done() bool {
	return s.HealthyAllocs >= max(s.DesiredTotal, s.DesiredCanaries) && (s.DesiredCanaries == 0 || s.Promoted)
}

// updateEmpty reports whether a group has no rolling update, as Nomad's
// UpdateStrategy.IsEmpty: no update block, or max_parallel 0.
func updateEmpty(tg *api.TaskGroup) bool {
	return tg.Update == nil || tg.Update.MaxParallel == nil || *tg.Update.MaxParallel == 0
}

// newDeploymentState is a group's state in a deployment about to be
// created, from its update block.
func newDeploymentState(tg *api.TaskGroup) *deploymentState {
	s := &deploymentState{}
	if u := tg.Update; !updateEmpty(tg) {
		s.AutoRevert = u.AutoRevert != nil && *u.AutoRevert
		s.AutoPromote = u.AutoPromote != nil && *u.AutoPromote
		if u.ProgressDeadline != nil {
			s.ProgressDeadline = *u.ProgressDeadline
		}
	}
	return s
}

// newDeployment is a deployment of job, not yet stored nor named.
func newDeployment(job *api.Job) *simDeployment {
	return &simDeployment{
		Namespace: *job.Namespace, JobID: *job.ID, JobVersion: *job.Version,
		JobModifyIndex: *job.ModifyIndex, JobSpecModifyIndex: *job.JobModifyIndex, JobCreateIndex: *job.CreateIndex,
		EvalPriority: *job.Priority, Status: api.DeploymentStatusRunning, StatusDescription: descRunning,
		TaskGroups: map[string]*deploymentState{},
	}
}

// latestDeployment is the job's most recent deployment, of any version or
// incarnation of the job, as Nomad's LatestDeploymentByJobID.
func (c *Cluster) latestDeployment(ns, job string) *simDeployment {
	var out *simDeployment
	for _, d := range c.deploymentList {
		if d.Namespace == ns && d.JobID == job && (out == nil || d.CreateIndex > out.CreateIndex) {
			out = d
		}
	}
	return out
}

// deploymentFor is what Nomad's reconciler starts from for job: the
// deployment its version works in (nil when none, or when the last one
// succeeded), and an active deployment it cancels with why: one of another
// version or incarnation of the job, or any of a stopped job. old is the
// previous deployment the version replaced, whose unpromoted canaries go.
func (c *Cluster) deploymentFor(job *api.Job) (cur, old, cancel *simDeployment, why string) {
	d := c.latestDeployment(*job.Namespace, *job.ID)
	if d == nil {
		return nil, nil, nil, ""
	}
	if job.Stop != nil && *job.Stop {
		if d.active() {
			return nil, d, d, descStoppedJob
		}
		return nil, d, nil, ""
	}
	if d.JobCreateIndex != *job.CreateIndex || d.JobVersion != *job.Version {
		if d.active() {
			return nil, d, d, descNewerJob
		}
		return nil, d, nil, ""
	}
	if d.Status == api.DeploymentStatusSuccessful {
		return nil, d, nil, ""
	}
	return d, nil, nil, ""
}

// bumpDeployments starts a write that changes deployments and what follows
// from them: allocations' health, evaluations, placements.
func (c *Cluster) bumpDeployments() uint64 {
	return c.bump(tableDeployments, tableAllocs, tableEvals, tableSummaries)
}

// storeDeployment keeps a new deployment.
func (c *Cluster) storeDeployment(d *simDeployment, now time.Time, idx uint64) {
	d.CreateIndex, d.ModifyIndex, d.modified = idx, idx, now
	c.deployments[d.ID] = d
	c.deploymentList = append(c.deploymentList, d)
}

// deploymentEvent is a deployment's event of the given type.
func deploymentEvent(typ string, d *simDeployment) event {
	return event{
		Topic: "Deployment", Type: typ, Key: d.ID, Namespace: d.Namespace,
		FilterKeys: []string{d.JobID}, Payload: map[string]any{"Deployment": d},
	}
}

// touchDeployment records a change of d at idx.
func (c *Cluster) touchDeployment(d *simDeployment, typ string, now time.Time, idx uint64) {
	d.ModifyIndex, d.modified = idx, now
	c.events.add(now, idx, deploymentEvent(typ, d))
}

// setDeploymentStatus moves d to status with description desc.
func (c *Cluster) setDeploymentStatus(d *simDeployment, status, desc, typ string, now time.Time, idx uint64) {
	d.Status, d.StatusDescription = status, desc
	c.touchDeployment(d, typ, now, idx)
	if status == api.DeploymentStatusSuccessful {
		c.markStable(d, idx)
	}
}

// markStable marks the job version a successful deployment rolled out as
// stable, the version auto_revert goes back to.
func (c *Cluster) markStable(d *simDeployment, idx uint64) {
	j := c.jobs[jobKey{d.Namespace, d.JobID}]
	if j == nil {
		return
	}
	for _, v := range j.versions {
		if *v.Version == d.JobVersion && *v.CreateIndex == d.JobCreateIndex && !*v.Stable {
			v.Stable = boolPtr(true)
			v.ModifyIndex = uint64Ptr(idx)
			c.tables[tableJobs] = idx
		}
	}
}

// inDeployment is the state of a's group in a's deployment, with the
// deployment; nil when a is in none.
func (c *Cluster) inDeployment(a *simAlloc) (*simDeployment, *deploymentState) {
	d := c.deployments[a.api.DeploymentID]
	if d == nil {
		return nil, nil
	}
	s := d.TaskGroups[a.api.TaskGroup]
	if s == nil {
		return nil, nil
	}
	return d, s
}

// joinDeployment records that a was placed in, or updated into, its
// deployment at now: it counts as placed, starts the progress deadline,
// and the client starts watching its health.
func (c *Cluster) joinDeployment(a *simAlloc, now time.Time) {
	d, s := c.inDeployment(a)
	if d == nil {
		return
	}
	s.PlacedAllocs++
	if s.ProgressDeadline > 0 && s.RequireProgressBy.IsZero() {
		s.RequireProgressBy = now.Add(s.ProgressDeadline)
		c.watchProgress(d, s.RequireProgressBy)
	}
	if a.running() {
		c.watchHealth(a, now)
	}
	u := groupOf(a.api.Job, a.api.TaskGroup).Update
	if u == nil || u.HealthyDeadline == nil || *u.HealthyDeadline <= 0 || healthManual(u) {
		return
	}
	id := d.ID
	c.timers.push(now.Add(*u.HealthyDeadline), func(at time.Time) {
		if a.api.DeploymentID == id && !hasHealth(a) && !a.terminal() {
			c.setAllocHealth(a, false, at, c.bumpDeployments())
		}
	})
}

func healthManual(u *api.UpdateStrategy) bool {
	return u.HealthCheck != nil && *u.HealthCheck == healthCheckManual
}

func hasHealth(a *simAlloc) bool {
	return a.api.DeploymentStatus != nil && a.api.DeploymentStatus.Healthy != nil
}

// watchHealth makes a healthy once its tasks have run min_healthy_time
// from now, unless it left its deployment or stopped meanwhile.
func (c *Cluster) watchHealth(a *simAlloc, now time.Time) {
	if a.api.DeploymentID == "" || hasHealth(a) {
		return
	}
	u := groupOf(a.api.Job, a.api.TaskGroup).Update
	if u == nil || healthManual(u) {
		return
	}
	var wait time.Duration
	if u.MinHealthyTime != nil {
		wait = *u.MinHealthyTime
	}
	id := a.api.DeploymentID
	c.timers.push(now.Add(wait), func(at time.Time) {
		if a.api.DeploymentID == id && !hasHealth(a) && a.running() {
			c.setAllocHealth(a, true, at, c.bumpDeployments())
		}
	})
}

// setAllocHealth sets a's deployment health, as its client reports it, and
// lets the deployment watcher act on it.
func (c *Cluster) setAllocHealth(a *simAlloc, healthy bool, now time.Time, idx uint64) {
	if a.api.DeploymentStatus == nil {
		a.api.DeploymentStatus = &api.AllocDeploymentStatus{}
	}
	ds := a.api.DeploymentStatus
	ds.Healthy, ds.Timestamp, ds.ModifyIndex = boolPtr(healthy), now, idx
	a.api.ModifyIndex, a.api.ModifyTime = idx, now.UnixNano()
	c.events.add(now, idx, allocEvent(eventAllocationUpdated, a))
	d, s := c.inDeployment(a)
	if d == nil || !d.active() {
		return
	}
	if healthy {
		s.HealthyAllocs++
		if s.ProgressDeadline > 0 {
			if by := now.Add(s.ProgressDeadline); by.After(s.RequireProgressBy) {
				s.RequireProgressBy = by
				c.watchProgress(d, by)
			}
		}
	} else {
		s.UnhealthyAllocs++
	}
	c.touchDeployment(d, eventAllocationUpdated, now, idx)
	c.watchSoon(d, now)
}

// watchSoon runs the deployment watcher for d once the health changes due
// at now are all made: Nomad's clients and watcher batch health updates,
// so allocations turning healthy together make one evaluation, not one
// each.
func (c *Cluster) watchSoon(d *simDeployment, now time.Time) {
	if c.watching[d.ID] {
		return
	}
	c.watching[d.ID] = true
	c.timers.push(now, func(at time.Time) {
		delete(c.watching, d.ID)
		c.deploymentWatch(d, at)
	})
}

// deploymentWatch is Nomad's deployment watcher reacting to a change of
// d's allocations: an unhealthy one fails the deployment; otherwise
// groups whose canaries are all healthy are promoted if they auto-promote,
// and the job is evaluated again to continue the rollout.
func (c *Cluster) deploymentWatch(d *simDeployment, now time.Time) {
	j := c.jobs[jobKey{d.Namespace, d.JobID}]
	if j == nil || d.Status != api.DeploymentStatusRunning {
		return
	}
	for _, s := range d.TaskGroups {
		if s.UnhealthyAllocs > 0 {
			c.failDeployment(d, descFailedAllocations, now, c.bumpDeployments())
			return
		}
	}
	var promote []string
	for _, name := range sortedKeys(d.TaskGroups) {
		s := d.TaskGroups[name]
		if s.AutoPromote && s.DesiredCanaries > 0 && !s.Promoted && c.canariesHealthy(d, s) {
			promote = append(promote, name)
		}
	}
	if len(promote) > 0 {
		c.promote(d, promote, now, c.bumpDeployments())
	}
	c.evaluate(j, evalTriggerDeploymentWatcher, now)
}

// canariesHealthy reports whether all the group's canaries are placed and
// healthy.
func (c *Cluster) canariesHealthy(d *simDeployment, s *deploymentState) bool {
	if len(s.PlacedCanaries) < s.DesiredCanaries {
		return false
	}
	for _, id := range s.PlacedCanaries {
		if a := c.allocs[id]; a == nil || !hasHealth(a) || !*a.api.DeploymentStatus.Healthy {
			return false
		}
	}
	return true
}

// promote marks groups of d promoted: their rollout continues past the
// canaries, and their progress deadline starts again.
func (c *Cluster) promote(d *simDeployment, groups []string, now time.Time, idx uint64) {
	for _, name := range groups {
		s := d.TaskGroups[name]
		s.Promoted = true
		if s.ProgressDeadline > 0 {
			s.RequireProgressBy = now.Add(s.ProgressDeadline)
			c.watchProgress(d, s.RequireProgressBy)
		}
	}
	if d.Status == api.DeploymentStatusRunning {
		d.StatusDescription = d.runningDescription()
	}
	c.touchDeployment(d, eventDeploymentPromotion, now, idx)
}

// watchProgress fails d at by if it is still running then and a group has
// made no progress since: not done, and its deadline passed.
func (c *Cluster) watchProgress(d *simDeployment, by time.Time) {
	c.timers.push(by, func(now time.Time) {
		if d.Status != api.DeploymentStatusRunning {
			return
		}
		for _, s := range d.TaskGroups {
			if !s.done() && !s.RequireProgressBy.IsZero() && !s.RequireProgressBy.After(now) {
				c.failDeployment(d, descProgressDeadline, now, c.bumpDeployments())
				return
			}
		}
	})
}

// failDeployment fails d with desc; with auto_revert the job goes back to
// its latest stable version, else the job is evaluated again (a failed
// deployment places and replaces nothing more).
func (c *Cluster) failDeployment(d *simDeployment, desc string, now time.Time, idx uint64) *uint64 {
	j := c.jobs[jobKey{d.Namespace, d.JobID}]
	revert := false
	for _, s := range d.TaskGroups {
		revert = revert || s.AutoRevert
	}
	var target *api.Job
	if revert && j != nil {
		target = c.stableVersion(j, d.JobVersion)
		if target == nil {
			desc += " - no stable job version to auto revert to"
		} else {
			desc = fmt.Sprintf("%s - rolling back to job version %d", desc, *target.Version)
		}
	}
	c.setDeploymentStatus(d, api.DeploymentStatusFailed, desc, eventDeploymentStatusUpdate, now, idx)
	if j == nil {
		return nil
	}
	if target != nil {
		version := *target.Version
		job := copyJob(target)
		nidx := c.bump(tableJobs, tableEvals, tableAllocs, tableSummaries, tableScaling)
		j = c.storeVersion(jobKey{d.Namespace, d.JobID}, job, now, nidx)
		c.syncScalingPolicies(j, nidx)
		c.events.add(now, nidx, event{Topic: "Job", Type: "JobRegistered", Key: *job.ID, Namespace: *job.Namespace, Payload: map[string]any{"Job": job}})
		c.evaluateAt(j, "job-register", now, nidx)
		return &version
	}
	c.evaluateAt(j, evalTriggerDeploymentWatcher, now, idx)
	return nil
}

// stableVersion is the job's latest stable version other than version
// whose spec differs from the current one: what auto_revert rolls back to.
func (c *Cluster) stableVersion(j *simJob, version uint64) *api.Job {
	cur := j.current()
	for i := len(j.versions) - 1; i >= 0; i-- {
		v := j.versions[i]
		if *v.Version != version && *v.Stable && specChanged(cur, v) {
			return v
		}
	}
	return nil
}

// DeploymentUpdate is Nomad's answer to a deployment write (promote, pause,
// fail).
type DeploymentUpdate struct {
	DeploymentModifyIndex uint64
	EvalCreateIndex       uint64
	EvalID                string
	Index                 uint64
	RevertedJobVersion    *uint64
}

// errDeploymentNotFound is Nomad's answer for an unknown deployment ID.
var errDeploymentNotFound = fmt.Errorf("%w: deployment not found", ErrNotFound)

// activeDeployment finds a deployment that may still be changed; its
// errors are Nomad's.
func (c *Cluster) activeDeployment(id string) (*simDeployment, error) {
	d := c.deployments[id]
	if d == nil {
		return nil, errDeploymentNotFound
	}
	if !d.active() {
		return nil, fmt.Errorf("can't update terminal deployment with status %q", d.Status)
	}
	return d, nil
}

// writeDeployment applies a user's write to an active deployment, under
// the cluster lock.
func (c *Cluster) writeDeployment(id string, write func(d *simDeployment, now time.Time) (DeploymentUpdate, error)) (DeploymentUpdate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, err := c.activeDeployment(id)
	if err != nil {
		return DeploymentUpdate{}, err
	}
	return write(d, c.clock.Now())
}

// PromoteDeployment promotes the canaries of groups of a deployment (all
// when all is set), as `POST /v1/deployment/promote/<id>` does: every
// canary promoted must be healthy.
func (c *Cluster) PromoteDeployment(id string, all bool, groups []string) (DeploymentUpdate, error) {
	return c.writeDeployment(id, func(d *simDeployment, now time.Time) (DeploymentUpdate, error) {
		want := map[string]bool{}
		for _, g := range groups {
			want[g] = true
		}
		var names []string
		var unhealthy *multierror.Error
		have := false
		for _, name := range sortedKeys(d.TaskGroups) {
			if !all && !want[name] {
				continue
			}
			names = append(names, name)
			for _, cid := range d.TaskGroups[name].PlacedCanaries {
				if a := c.allocs[cid]; a == nil || !hasHealth(a) || !*a.api.DeploymentStatus.Healthy {
					unhealthy = multierror.Append(unhealthy, fmt.Errorf("Canary allocation %q for group %q is not healthy", cid, name))
					continue
				}
				have = true
			}
		}
		if err := unhealthy.ErrorOrNil(); err != nil {
			return DeploymentUpdate{}, err // Nomad's state store words it so
		}
		if !have {
			return DeploymentUpdate{}, errors.New("no canaries to promote")
		}
		idx := c.bumpDeployments()
		c.promote(d, names, now, idx)
		return c.deploymentEval(d, now, idx), nil
	})
}

// PauseDeployment pauses or resumes a running deployment, as
// `POST /v1/deployment/pause/<id>` does.
func (c *Cluster) PauseDeployment(id string, pause bool) (DeploymentUpdate, error) {
	return c.writeDeployment(id, func(d *simDeployment, now time.Time) (DeploymentUpdate, error) {
		idx := c.bumpDeployments()
		if pause {
			c.setDeploymentStatus(d, api.DeploymentStatusPaused, descPaused, eventDeploymentStatusUpdate, now, idx)
			return DeploymentUpdate{DeploymentModifyIndex: idx, Index: idx}, nil
		}
		c.setDeploymentStatus(d, api.DeploymentStatusRunning, d.runningDescription(), eventDeploymentStatusUpdate, now, idx)
		return c.deploymentEval(d, now, idx), nil
	})
}

// FailDeployment fails a deployment, as `POST /v1/deployment/fail/<id>`
// does, rolling back when a group asks for auto_revert.
func (c *Cluster) FailDeployment(id string) (DeploymentUpdate, error) {
	return c.writeDeployment(id, func(d *simDeployment, now time.Time) (DeploymentUpdate, error) {
		reverted := c.failDeployment(d, descFailedByUser, now, c.bumpDeployments())
		res := DeploymentUpdate{DeploymentModifyIndex: d.ModifyIndex, Index: c.index, RevertedJobVersion: reverted}
		if e := c.lastEval(d); e != nil {
			res.EvalID, res.EvalCreateIndex = e.ID, e.CreateIndex
		}
		return res, nil
	})
}

// deploymentEval evaluates d's job after a write to d and answers it.
func (c *Cluster) deploymentEval(d *simDeployment, now time.Time, idx uint64) DeploymentUpdate {
	res := DeploymentUpdate{DeploymentModifyIndex: d.ModifyIndex, Index: idx}
	if j := c.jobs[jobKey{d.Namespace, d.JobID}]; j != nil {
		e := c.evaluateAt(j, evalTriggerDeploymentWatcher, now, idx)
		res.EvalID, res.EvalCreateIndex = e.ID, e.CreateIndex
	}
	return res
}

// lastEval is the newest evaluation of d's job.
func (c *Cluster) lastEval(d *simDeployment) *api.Evaluation {
	for i := len(c.evalList) - 1; i >= 0; i-- {
		if e := c.evalList[i]; e.JobID == d.JobID && e.Namespace == d.Namespace {
			return e
		}
	}
	return nil
}

// collectDeployments drops finished deployments older than the threshold
// that no live allocation belongs to, as Nomad's core scheduler does.
func (c *Cluster) collectDeployments(now time.Time) int {
	inUse := map[string]bool{}
	for _, a := range c.allocList {
		if !a.terminal() && a.api.DeploymentID != "" {
			inUse[a.api.DeploymentID] = true
		}
	}
	cutoff := now.Add(-deploymentGCThreshold)
	keep := c.deploymentList[:0]
	removed := 0
	for _, d := range c.deploymentList {
		if !d.active() && d.modified.Before(cutoff) && !inUse[d.ID] {
			delete(c.deployments, d.ID)
			removed++
			continue
		}
		keep = append(keep, d)
	}
	clear(c.deploymentList[len(keep):])
	c.deploymentList = keep
	return removed
}

// sortedDeployments lists deployments in the order Nomad's state store
// walks them by job: by ID.
func sortedDeployments(ds []*simDeployment) []*simDeployment {
	out := append([]*simDeployment(nil), ds...)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
