package sim

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/nomad/api"
)

// Errors the HTTP layer turns into Nomad's status codes.
var (
	ErrNotFound = errors.New("not found")
	ErrInvalid  = errors.New("invalid request")
	// ErrConflict is a stale EnforceIndex; its message starts with Nomad's
	// "Enforcing job modify index" so clients can recognise it.
	ErrConflict = errors.New("conflict")
)

// enforceIndexPrefix is how Nomad starts the error of a stale EnforceIndex.
const enforceIndexPrefix = "Enforcing job modify index"

// trackedVersions is how many versions of a job Nomad keeps.
const trackedVersions = 6

// simJob is a job and its history.
type simJob struct {
	// versions, oldest first; the last is the current job.
	versions []*api.Job
	// blocked is the ID of the job's blocked evaluation, if any.
	blocked string
	// queued counts allocations that could not be placed, per group.
	queued map[string]int
	// scaling events per group, newest first, as Nomad returns them.
	scalingEvents map[string][]api.ScalingEvent
}

func (j *simJob) current() *api.Job { return j.versions[len(j.versions)-1] }

// RegisterResult is the outcome of a register, scale or deregister.
type RegisterResult struct {
	EvalID          string
	EvalCreateIndex uint64
	JobModifyIndex  uint64
	Index           uint64
}

// Register submits a job as `PUT /v1/jobs` does. With enforce set, the write
// only happens when modifyIndex is the job's current JobModifyIndex (0: the
// job must not exist); otherwise it fails with ErrConflict.
func (c *Cluster) Register(job *api.Job, enforce bool, modifyIndex uint64) (RegisterResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	canonicalizeJob(job)
	if err := validateJob(job); err != nil {
		return RegisterResult{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return c.registerLocked(job, modifyIndex, enforce)
}

// canonicalizeJob fills in defaults as Nomad does on register: the client's
// own Canonicalize, then what Nomad's server-side structs always carry
// where the api types have a nil pointer, so that jobs read back have the
// same shape as Nomad's (a number, not null, for an unset DiskMB).
func canonicalizeJob(job *api.Job) {
	job.Canonicalize()
	if job.DispatchIdempotencyToken == nil {
		job.DispatchIdempotencyToken = stringPtr("")
	}
	if job.NodePool == nil || *job.NodePool == "" {
		job.NodePool = stringPtr("default")
	}
	for _, tg := range job.TaskGroups {
		if tg.Consul == nil {
			tg.Consul = &api.Consul{}
		}
		// Nomad points a group's scaling policy at the group, whatever the
		// submitted job said.
		if tg.Scaling != nil && job.Namespace != nil && job.ID != nil && tg.Name != nil {
			tg.Scaling.Target = map[string]string{"Namespace": *job.Namespace, "Job": *job.ID, "Group": *tg.Name}
		}
		for _, n := range tg.Networks {
			if n.MBits == nil {
				n.MBits = intPtr(0)
			}
			for _, ports := range [][]api.Port{n.ReservedPorts, n.DynamicPorts} {
				for i := range ports {
					if ports[i].HostNetwork == "" {
						ports[i].HostNetwork = "default"
					}
				}
			}
		}
		services := tg.Services
		for _, t := range tg.Tasks {
			services = append(services[:len(services):len(services)], t.Services...)
		}
		for _, s := range services {
			for i := range s.Checks {
				if s.Checks[i].Name == "" {
					s.Checks[i].Name = fmt.Sprintf("service: %q check", s.Name)
				}
			}
		}
		for _, t := range tg.Tasks {
			r := t.Resources
			if r == nil {
				continue
			}
			for _, p := range []**int{&r.DiskMB, &r.IOPS, &r.MemoryMaxMB} {
				if *p == nil {
					*p = intPtr(0)
				}
			}
		}
	}
}

func (c *Cluster) registerLocked(job *api.Job, modifyIndex uint64, enforce bool) (RegisterResult, error) {
	key := jobKey{*job.Namespace, *job.ID}
	existing := c.jobs[key]
	if enforce {
		switch {
		case existing == nil && modifyIndex != 0:
			return RegisterResult{}, fmt.Errorf("%w: %s %d: job not found", ErrConflict, enforceIndexPrefix, modifyIndex)
		case existing != nil && modifyIndex == 0:
			return RegisterResult{}, fmt.Errorf("%w: %s 0: job already exists", ErrConflict, enforceIndexPrefix)
		case existing != nil && *existing.current().JobModifyIndex != modifyIndex:
			return RegisterResult{}, fmt.Errorf("%w: %s %d: job exists with conflicting job modify index: %d",
				ErrConflict, enforceIndexPrefix, modifyIndex, *existing.current().JobModifyIndex)
		}
	}
	now := c.clock.Now()
	if existing != nil && !specChanged(existing.current(), job) {
		// Nomad keeps the version of an unchanged job but evaluates it again.
		idx := c.bump(tableEvals, tableAllocs, tableSummaries)
		eval := c.evaluateAt(existing, "job-register", now, idx)
		return RegisterResult{EvalID: eval.ID, EvalCreateIndex: idx, JobModifyIndex: *existing.current().JobModifyIndex, Index: idx}, nil
	}
	idx := c.bump(tableJobs, tableEvals, tableAllocs, tableSummaries, tableScaling)
	j := c.storeVersion(key, job, now, idx)
	c.syncScalingPolicies(j, idx)
	c.events.add(now, idx, event{Topic: "Job", Type: "JobRegistered", Key: *job.ID, Namespace: *job.Namespace, Payload: map[string]any{"Job": job}})
	eval := c.evaluateAt(j, "job-register", now, idx)
	return RegisterResult{EvalID: eval.ID, EvalCreateIndex: idx, JobModifyIndex: idx, Index: idx}, nil
}

// storeVersion makes job the current version of its job.
func (c *Cluster) storeVersion(key jobKey, job *api.Job, now time.Time, idx uint64) *simJob {
	j := c.jobs[key]
	version := uint64(0)
	create := idx
	if j == nil {
		j = &simJob{queued: map[string]int{}, scalingEvents: map[string][]api.ScalingEvent{}}
		c.jobs[key] = j
	} else {
		prev := j.current()
		version = *prev.Version + 1
		create = *prev.CreateIndex
	}
	job.Version = &version
	job.CreateIndex = &create
	job.ModifyIndex = &idx
	job.JobModifyIndex = &idx
	submit := now.UnixNano()
	job.SubmitTime = &submit
	job.Stable = boolPtr(false)
	job.Status = stringPtr("pending")
	job.StatusDescription = stringPtr("")
	j.versions = append(j.versions, job)
	if len(j.versions) > trackedVersions {
		j.versions = j.versions[len(j.versions)-trackedVersions:]
	}
	return j
}

// specChanged reports whether b differs from a in anything the user sets.
func specChanged(a, b *api.Job) bool {
	return !bytes.Equal(specOf(a), specOf(b))
}

func specOf(j *api.Job) []byte {
	cp := *j
	cp.Status, cp.StatusDescription, cp.Stable, cp.Version = nil, nil, nil, nil
	cp.SubmitTime, cp.CreateIndex, cp.ModifyIndex, cp.JobModifyIndex = nil, nil, nil, nil
	b, _ := json.Marshal(&cp) // a decoded job always marshals
	return b
}

// syncScalingPolicies creates, updates and deletes the job's scaling
// policies to match its groups' scaling blocks.
func (c *Cluster) syncScalingPolicies(j *simJob, idx uint64) {
	job := j.current()
	want := map[string]bool{}
	for _, tg := range job.TaskGroups {
		if tg.Scaling == nil || job.Stop != nil && *job.Stop {
			continue
		}
		id := c.policyID(*job.Namespace, *job.ID, *tg.Name)
		want[id] = true
		p := c.policies[id]
		if p == nil {
			p = &api.ScalingPolicy{ID: id, CreateIndex: idx}
			c.policies[id] = p
		}
		s := tg.Scaling
		p.Namespace = *job.Namespace
		p.Target = map[string]string{"Namespace": *job.Namespace, "Job": *job.ID, "Group": *tg.Name}
		p.Type = cmp.Or(s.Type, "horizontal")
		p.Min, p.Max, p.Policy = s.Min, s.Max, s.Policy
		if p.Min == nil && tg.Count != nil {
			p.Min = int64Ptr(int64(*tg.Count))
		}
		p.Enabled = s.Enabled
		if p.Enabled == nil {
			p.Enabled = boolPtr(true)
		}
		p.ModifyIndex = idx
	}
	for id, p := range c.policies {
		if p.Target["Namespace"] == *job.Namespace && p.Target["Job"] == *job.ID && !want[id] {
			delete(c.policies, id)
		}
	}
}

// policyID derives a stable policy ID from its target, so a policy keeps its
// ID across versions of the job as in Nomad.
func (c *Cluster) policyID(ns, job, group string) string {
	for id, p := range c.policies {
		if p.Target["Namespace"] == ns && p.Target["Job"] == job && p.Target["Group"] == group {
			return id
		}
	}
	return c.newID()
}

// Scale sets a group's count as `POST /v1/job/<id>/scale` does, recording a
// scaling event. A nil count records the event only (an autoscaler error).
func (c *Cluster) Scale(ns, id, group string, count *int64, message string, isError bool, meta map[string]any, modifyIndex uint64) (RegisterResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	j := c.jobs[jobKey{ns, id}]
	if j == nil {
		return RegisterResult{}, fmt.Errorf("%w: job %q", ErrNotFound, id)
	}
	cur := j.current()
	if groupOf(cur, group) == nil {
		return RegisterResult{}, fmt.Errorf("%w: task group %q specified for scaling does not exist in job", ErrInvalid, group)
	}
	if modifyIndex != 0 && *cur.JobModifyIndex != modifyIndex {
		return RegisterResult{}, fmt.Errorf("%w: %s %d: job exists with conflicting job modify index: %d", ErrConflict, enforceIndexPrefix, modifyIndex, *cur.JobModifyIndex)
	}
	now := c.clock.Now()
	prev := int64(*groupOf(cur, group).Count)
	ev := api.ScalingEvent{Count: count, PreviousCount: prev, Error: isError, Message: message, Meta: meta, Time: uint64(now.UnixNano())}
	if count == nil {
		idx := c.bump(tableScaling)
		ev.CreateIndex = idx
		j.scalingEvents[group] = prependEvent(j.scalingEvents[group], ev)
		return RegisterResult{Index: idx, JobModifyIndex: *cur.JobModifyIndex}, nil
	}
	if *count < 0 {
		return RegisterResult{}, fmt.Errorf("%w: scaling action count can't be negative", ErrInvalid)
	}
	if p := c.policies[c.policyID(ns, id, group)]; p != nil {
		if p.Min != nil && *count < *p.Min || p.Max != nil && *count > *p.Max {
			return RegisterResult{}, fmt.Errorf("%w: group scaling count %d is outside the policy's min/max", ErrInvalid, *count)
		}
	}
	// Nomad refuses a new count while the job's deployment is active: the
	// scale would cancel it.
	if d := c.latestDeployment(ns, id); d != nil && d.active() && d.JobCreateIndex == *cur.CreateIndex {
		return RegisterResult{}, ErrScaleBlocked
	}
	job := copyJob(cur)
	n := int(*count)
	groupOf(job, group).Count = &n
	idx := c.bump(tableJobs, tableEvals, tableAllocs, tableSummaries, tableScaling)
	j = c.storeVersion(jobKey{ns, id}, job, now, idx)
	c.events.add(now, idx, event{Topic: "Job", Type: "JobRegistered", Key: id, Namespace: ns, Payload: map[string]any{"Job": job}})
	eval := c.evaluateAt(j, "job-scaling", now, idx)
	ev.EvalID = &eval.ID
	ev.CreateIndex = idx
	j.scalingEvents[group] = prependEvent(j.scalingEvents[group], ev)
	return RegisterResult{EvalID: eval.ID, EvalCreateIndex: idx, JobModifyIndex: idx, Index: idx}, nil
}

// maxScalingEvents is how many events Nomad keeps per group.
const maxScalingEvents = 20

func prependEvent(evs []api.ScalingEvent, ev api.ScalingEvent) []api.ScalingEvent {
	evs = append([]api.ScalingEvent{ev}, evs...)
	if len(evs) > maxScalingEvents {
		evs = evs[:maxScalingEvents]
	}
	return evs
}

// Deregister stops a job (a new, stopped version) or, with purge, removes it.
func (c *Cluster) Deregister(ns, id string, purge bool) (RegisterResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := jobKey{ns, id}
	j := c.jobs[key]
	if j == nil {
		return RegisterResult{}, fmt.Errorf("%w: job %q", ErrNotFound, id)
	}
	now := c.clock.Now()
	idx := c.bump(tableJobs, tableEvals, tableAllocs, tableSummaries, tableScaling)
	job := copyJob(j.current())
	job.Stop = boolPtr(true)
	j = c.storeVersion(key, job, now, idx)
	c.syncScalingPolicies(j, idx)
	eval := c.evaluateAt(j, "job-deregister", now, idx)
	if purge {
		delete(c.jobs, key)
	}
	c.events.add(now, idx, event{Topic: "Job", Type: "JobDeregistered", Key: id, Namespace: ns, Payload: map[string]any{"Job": job}})
	return RegisterResult{EvalID: eval.ID, EvalCreateIndex: idx, JobModifyIndex: idx, Index: idx}, nil
}

func copyJob(j *api.Job) *api.Job {
	b, err := json.Marshal(j)
	if err != nil {
		panic(fmt.Sprintf("sim: marshal job: %v", err)) // every stored job was decoded from JSON
	}
	var out api.Job
	if err := json.Unmarshal(b, &out); err != nil {
		panic(fmt.Sprintf("sim: unmarshal job: %v", err))
	}
	return &out
}

// refreshStatus sets the job's status from its allocations, as Nomad does:
// running while any allocation is not terminal, dead once stopped and all
// allocations are terminal, pending before anything runs.
func (c *Cluster) refreshStatus(j *simJob) {
	job := j.current()
	live := false
	for _, a := range c.allocList {
		if a.api.JobID == *job.ID && a.api.Namespace == *job.Namespace && !a.terminal() {
			live = true
			break
		}
	}
	status := "pending"
	switch {
	case live:
		status = "running"
	case job.Stop != nil && *job.Stop:
		status = "dead"
	}
	job.Status = &status
}

// summary counts a job's allocations per group by client status.
func (c *Cluster) summary(j *simJob) *api.JobSummary {
	job := j.current()
	s := &api.JobSummary{
		JobID: *job.ID, Namespace: *job.Namespace,
		Summary:     map[string]api.TaskGroupSummary{},
		Children:    &api.JobChildrenSummary{},
		CreateIndex: *job.CreateIndex, ModifyIndex: c.tableIndex(tableSummaries),
	}
	for _, tg := range job.TaskGroups {
		s.Summary[*tg.Name] = api.TaskGroupSummary{Queued: j.queued[*tg.Name]}
	}
	for _, a := range c.allocList {
		if a.api.JobID != *job.ID || a.api.Namespace != *job.Namespace {
			continue
		}
		tgs := s.Summary[a.api.TaskGroup]
		switch a.api.ClientStatus {
		case clientPending:
			tgs.Starting++
		case clientRunning:
			tgs.Running++
		case clientComplete:
			tgs.Complete++
		case clientFailed:
			tgs.Failed++
		case clientLost:
			tgs.Lost++
		}
		s.Summary[a.api.TaskGroup] = tgs
	}
	return s
}

// sortedJobs lists jobs by namespace and ID.
func (c *Cluster) sortedJobs() []*simJob {
	out := make([]*simJob, 0, len(c.jobs))
	for _, j := range c.jobs {
		out = append(out, j)
	}
	sort.Slice(out, func(a, b int) bool {
		ja, jb := out[a].current(), out[b].current()
		if *ja.Namespace != *jb.Namespace {
			return *ja.Namespace < *jb.Namespace
		}
		return *ja.ID < *jb.ID
	})
	return out
}

func uniqueJobs(js []*simJob) []*simJob {
	seen := map[*simJob]bool{}
	var out []*simJob
	for _, j := range js {
		if !seen[j] {
			seen[j] = true
			out = append(out, j)
		}
	}
	return out
}

func boolPtr(b bool) *bool       { return &b }
func stringPtr(s string) *string { return &s }
func int64Ptr(i int64) *int64    { return &i }
func intPtr(i int) *int          { return &i }
func uint64Ptr(i uint64) *uint64 { return &i }
