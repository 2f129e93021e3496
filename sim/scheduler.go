package sim

import (
	"encoding/json"
	"fmt"
	"math"
	"path"
	"sort"
	"time"

	"github.com/hashicorp/nomad/api"
)

// binPackMaxScore is the best fitness Nomad's bin-packing score can reach.
const binPackMaxScore = 18.0

// plan is what one evaluation of a job would change, computed without
// touching the cluster so that `job plan` can show it and register can apply
// it.
type plan struct {
	job    *api.Job
	groups []*groupPlan
	// deployment is the one the job version works in: its current one, or
	// created, a new one holding the groups that start a rollout.
	deployment *simDeployment
	created    bool
	// cancel is an active deployment the plan cancels (another version's,
	// or the stopped job's), with why.
	cancel    *simDeployment
	cancelWhy string
	// complete says every group of deployment is placed, updated and
	// healthy: applying the plan marks it successful.
	complete bool
}

type groupPlan struct {
	tg          *api.TaskGroup
	place       []placement
	stop        []*simAlloc
	inPlace     []*simAlloc
	destructive []*simAlloc
	failed      *api.AllocationMetric
	queued      int
	// want is what Nomad's reconciler reports for the group in the plan's
	// DesiredTGUpdates: the placements and updates it wants, whether or
	// not the nodes then have room for them.
	want api.DesiredUpdates
	// state is the group's deployment state as the plan leaves it (nil
	// when the group is in no deployment).
	state *deploymentState
}

type placement struct {
	index  int
	node   *simNode
	metric *api.AllocationMetric
	// prev is the allocation this one replaces, if any.
	prev *simAlloc
	// canary is set for a canary of a rolling update.
	canary bool
}

// usageOverlay holds resources a plan has claimed on nodes but not applied.
type usageOverlay map[*simNode]*[3]int

func (o usageOverlay) add(n *simNode, cpu, mem, disk int) {
	u := o[n]
	if u == nil {
		u = &[3]int{}
		o[n] = u
	}
	u[0] += cpu
	u[1] += mem
	u[2] += disk
}

func (o usageOverlay) used(n *simNode) (cpu, mem, disk int) {
	cpu, mem, disk = n.usedCPU, n.usedMem, n.usedDisk
	if u := o[n]; u != nil {
		cpu, mem, disk = cpu+u[0], mem+u[1], disk+u[2]
	}
	return
}

// computePlan reconciles a job's desired state with its allocations, as
// Nomad's reconciler does for a service job, per group:
//
//  1. Live allocations beyond the count (highest name index first, and the
//     old allocation behind a promoted canary of the same name) stop, as do
//     unpromoted canaries of a replaced or failed deployment.
//  2. The others are ignored (the job's version), updated in place, or
//     replaced (a destructive change, or a node that no longer fits).
//  3. With update.canary and a destructive change, canaries are placed
//     beside the old allocations first; nothing else is replaced until they
//     are promoted.
//  4. Missing names are placed, all of them, unless the deployment is
//     paused, failed or canarying.
//  5. Replacements are limited to max_parallel minus the deployment's
//     allocations not yet healthy (none while one is unhealthy), less the
//     placements of step 4; max_parallel when the version has no deployment
//     yet; all at once without an update block.
//  6. A deployment is created for a version that places or updates
//     something for the first time, and the plan completes it when every
//     group is placed, updated and healthy.
//
// want counts what the reconciler wants; placements that find no node are
// then queued, and a replacement that finds none leaves the old allocation
// running, but want still counts them, as Nomad's DesiredTGUpdates does.
func (c *Cluster) computePlan(job *api.Job, existing *simJob) *plan {
	p := &plan{job: job}
	overlay := usageOverlay{}
	// Nomad's spread iterator lives for one evaluation: the lowest boost
	// it has seen carries over from group to group.
	lowestSpread := -1.0
	stopped := job.Stop != nil && *job.Stop
	dep, old, cancel, why := c.deploymentFor(job)
	p.deployment, p.cancel, p.cancelWhy = dep, cancel, why
	paused, depFailed := false, false
	if dep != nil {
		switch dep.Status {
		case api.DeploymentStatusPaused, api.DeploymentStatusPending, deploymentStatusInitializing:
			paused = true
		case api.DeploymentStatusFailed:
			depFailed = true
		}
	}
	// Canaries of the deployment the version works in, and unpromoted ones
	// of a deployment replaced or failed, which go.
	canaryIDs, dropCanaries := map[string]bool{}, map[string]bool{}
	for _, d := range []*simDeployment{dep, old} {
		if d == nil {
			continue
		}
		for _, s := range d.TaskGroups {
			for _, id := range s.PlacedCanaries {
				switch {
				case d == old && !s.Promoted, d == dep && depFailed && !s.Promoted:
					dropCanaries[id] = true
				case d == dep:
					canaryIDs[id] = true
				}
			}
		}
	}
	newStates := map[string]*deploymentState{}
	complete := true
	inPlaceSoFar := 0
	for _, tg := range job.TaskGroups {
		name := *tg.Name
		gp := &groupPlan{tg: tg}
		p.groups = append(p.groups, gp)
		live, replaceable := c.groupAllocs(*job.Namespace, *job.ID, name)
		count := *tg.Count
		if stopped {
			count = 0
		}
		var state *deploymentState
		inDep := false
		if dep != nil {
			if s := dep.TaskGroups[name]; s != nil {
				cp := *s
				state, inDep = &cp, true
			}
		}
		if state == nil {
			state = newDeploymentState(tg)
		}
		var canaries, others []*simAlloc
		for _, a := range live {
			switch {
			case dropCanaries[a.api.ID]:
				gp.stop = append(gp.stop, a)
			case canaryIDs[a.api.ID]:
				canaries = append(canaries, a)
			default:
				others = append(others, a)
			}
		}
		canarying := state.DesiredCanaries != 0 && !state.Promoted
		// Promoted canaries come first, so that they keep their names and
		// the old allocations of the same names stop.
		untainted := others
		if !canarying {
			untainted = append(append([]*simAlloc{}, canaries...), others...)
		}
		byIndex := map[int]*simAlloc{}
		var destructive []*simAlloc
		for _, a := range untainted {
			if a.index >= count || byIndex[a.index] != nil {
				gp.stop = append(gp.stop, a)
				continue
			}
			byIndex[a.index] = a
			old := a.api.Job
			switch {
			case old == nil || sameVersion(old, job):
				gp.want.Ignore++
			case destructiveChange(old, job, name) || !c.stillFits(a, job, tg):
				destructive = append(destructive, a)
			default:
				gp.inPlace = append(gp.inPlace, a)
			}
		}
		gp.want.Stop = uint64(len(gp.stop))
		gp.want.InPlaceUpdate = uint64(len(gp.inPlace))
		inPlaceSoFar += len(gp.inPlace)
		if !inDep {
			state.DesiredTotal += len(destructive) + len(gp.inPlace)
		}
		sort.SliceStable(destructive, func(i, j int) bool { return destructive[i].index < destructive[j].index })

		var canaryPlace []placement
		// Only service jobs roll out through deployments (Nomad 1.6's
		// system and batch schedulers make none); sim places the others
		// all at once.
		rolling := *job.Type == api.JobTypeService && !updateEmpty(tg)
		needCanaries := rolling && tg.Update.Canary != nil && *tg.Update.Canary > 0 &&
			len(destructive) > 0 && len(canaries) < *tg.Update.Canary && !state.Promoted
		if needCanaries {
			state.DesiredCanaries = *tg.Update.Canary
			if !paused && !depFailed {
				n := *tg.Update.Canary - len(canaries)
				gp.want.Canary = uint64(n)
				taken := map[int]bool{}
				for _, a := range canaries {
					taken[a.index] = true
				}
				for _, a := range destructive {
					if len(canaryPlace) == n {
						break
					}
					if !taken[a.index] {
						canaryPlace = append(canaryPlace, placement{index: a.index, canary: true})
					}
				}
			}
		}
		canarying = state.DesiredCanaries != 0 && !state.Promoted

		budget := count
		switch {
		case !rolling || len(destructive) == 0:
		case dep == nil:
			budget = *tg.Update.MaxParallel
		case paused || depFailed || canarying:
			budget = 0
		default:
			budget = *tg.Update.MaxParallel
			for _, a := range untainted {
				if a.api.DeploymentID != dep.ID || a.terminal() {
					continue
				}
				if hasHealth(a) && !*a.api.DeploymentStatus.Healthy {
					budget = 0
					break
				}
				if !hasHealth(a) {
					budget--
				}
			}
			budget = max(0, budget)
		}

		var wanted []placement
		for i := 0; i < count; i++ {
			if byIndex[i] == nil {
				wanted = append(wanted, placement{index: i, prev: replaceable[i]})
			}
		}
		if !inDep {
			state.DesiredTotal += len(wanted)
		}
		ready := !paused && !depFailed && !canarying
		var places []placement
		if ready {
			places = wanted
			budget -= min(len(wanted), budget)
		} else {
			// Failed allocations are replaced even then, unless they
			// belong to the failed deployment.
			for _, pl := range wanted {
				if pl.prev != nil && pl.prev.api.ClientStatus == clientFailed && !(depFailed && pl.prev.api.DeploymentID == dep.ID) {
					places = append(places, pl)
				}
			}
		}
		gp.want.Place = uint64(len(places))
		replace := destructive[:0:0]
		if ready {
			replace = destructive[:min(len(destructive), budget)]
		}
		gp.want.DestructiveUpdate = uint64(len(replace))
		gp.want.Ignore += uint64(len(destructive) - len(replace))

		if !stopped && !inDep && rolling && state.DesiredTotal > 0 {
			updating := len(destructive) > 0 || inPlaceSoFar > 0
			if updating || !c.hadVersion(job, name) {
				newStates[name] = state
				inDep = true
			}
		}
		if inDep {
			gp.state = state
		}
		groupDone := len(destructive)+len(gp.inPlace)+len(wanted) == 0 && !needCanaries
		complete = complete && groupDone && (gp.state == nil || gp.state.done())

		// Placement, in the order Nomad's scheduler makes it: the
		// replacements first (a destructive update replaces the allocation
		// where the new spec fits; if it fits nowhere the old one keeps
		// running), then the canaries and the missing names.
		for _, a := range replace {
			overlay.add(a.node, -a.cpu, -a.mem, -a.disk)
		}
		// Spreads count what the plan stops as gone: the stops first, then
		// each replaced allocation just before its replacement is placed,
		// in the order Nomad appends them to its plan.
		spread := newSpreadScorer(job, tg, live, &lowestSpread)
		for _, a := range gp.stop {
			spread.clear(a.node)
		}
		planned := map[*simNode]int{}
		tryPlace := func(pl placement) bool {
			n, metric := c.selectNode(job, tg, overlay, planned, spread)
			if n == nil {
				gp.failed = mergeMetric(gp.failed, metric, tg)
				gp.queued++
				return false
			}
			c.claim(overlay, planned, n, tg)
			pl.node, pl.metric = n, metric
			gp.place = append(gp.place, pl)
			return true
		}
		for _, a := range replace {
			spread.clear(a.node)
			if !tryPlace(placement{index: a.index, prev: a}) {
				overlay.add(a.node, a.cpu, a.mem, a.disk)
				spread.unclear(a.node) // Nomad pops the stop off its plan
				continue
			}
			gp.destructive = append(gp.destructive, a)
		}
		for _, pl := range append(canaryPlace, places...) {
			tryPlace(pl)
		}
	}
	if dep == nil && len(newStates) > 0 {
		// Its ID is drawn when the plan is applied: a dry run draws none.
		d := newDeployment(job)
		d.TaskGroups = newStates
		if d.requiresPromotion() {
			d.StatusDescription = d.runningDescription()
		}
		p.deployment, p.created = d, true
	}
	p.complete = complete && p.deployment != nil && !p.created
	return p
}

// hadVersion reports whether any allocation of the group, live or not,
// ran the job's version: a version that has run needs no new deployment
// unless it changes something.
func (c *Cluster) hadVersion(job *api.Job, group string) bool {
	for _, a := range c.allocList {
		if a.api.JobID == *job.ID && a.api.Namespace == *job.Namespace && a.api.TaskGroup == group &&
			a.api.Job != nil && *a.api.Job.Version == *job.Version && *a.api.Job.CreateIndex == *job.CreateIndex {
			return true
		}
	}
	return false
}

// sameVersion reports whether an allocation's job is the job being planned.
func sameVersion(allocJob, job *api.Job) bool {
	return allocJob != nil && *allocJob.Version == *job.Version && *allocJob.JobModifyIndex == *job.JobModifyIndex
}

// claim books one allocation of tg on n for the rest of the plan.
func (c *Cluster) claim(o usageOverlay, planned map[*simNode]int, n *simNode, tg *api.TaskGroup) {
	cpu, mem, disk := groupAsk(tg)
	o.add(n, cpu, mem, disk)
	planned[n]++
}

// groupAllocs returns a group's live allocations, and for each name index the
// latest terminal allocation that has no replacement yet.
func (c *Cluster) groupAllocs(ns, job, group string) (live []*simAlloc, replaceable map[int]*simAlloc) {
	replaceable = map[int]*simAlloc{}
	for _, a := range c.allocList {
		if a.api.Namespace != ns || a.api.JobID != job || a.api.TaskGroup != group {
			continue
		}
		if !a.terminal() {
			live = append(live, a)
			continue
		}
		if a.api.NextAllocation == "" {
			replaceable[a.index] = a
		}
	}
	return live, replaceable
}

// destructiveChange reports whether moving an allocation of group from
// oldJob to newJob needs a new allocation rather than an in-place update, as
// Nomad's tasksUpdated decides: the number of tasks, the group's disk,
// networks and volumes, the affinities and spreads at any level, and per task
// its driver, user, config, environment, artifacts, templates, resources and
// its metadata merged from job, group and task. Count, constraints (checked
// against the current node separately), services and update policies change
// in place.
func destructiveChange(oldJob, newJob *api.Job, group string) bool {
	a, b := groupOf(oldJob, group), groupOf(newJob, group)
	if a == nil || b == nil || len(a.Tasks) != len(b.Tasks) {
		return true
	}
	if !sameJSON(a.EphemeralDisk, b.EphemeralDisk) || !sameJSON(a.Networks, b.Networks) || !sameJSON(a.Volumes, b.Volumes) {
		return true
	}
	if !sameJSON(allAffinities(oldJob, a), allAffinities(newJob, b)) {
		return true
	}
	if !sameJSON(append(append([]*api.Spread{}, oldJob.Spreads...), a.Spreads...), append(append([]*api.Spread{}, newJob.Spreads...), b.Spreads...)) {
		return true
	}
	for _, ta := range a.Tasks {
		var tb *api.Task
		for _, t := range b.Tasks {
			if t.Name == ta.Name {
				tb = t
			}
		}
		if tb == nil || ta.Driver != tb.Driver || ta.User != tb.User || !sameJSON(ta.Config, tb.Config) ||
			!sameJSON(ta.Env, tb.Env) || !sameJSON(ta.Artifacts, tb.Artifacts) || !sameJSON(ta.Templates, tb.Templates) ||
			!sameJSON(taskMeta(oldJob, a, ta), taskMeta(newJob, b, tb)) || resourcesChanged(ta.Resources, tb.Resources) {
			return true
		}
	}
	return false
}

// taskMeta is a task's metadata as Nomad merges it: job, then group, then task.
func taskMeta(job *api.Job, tg *api.TaskGroup, t *api.Task) map[string]string {
	m := map[string]string{}
	for _, src := range []map[string]string{job.Meta, tg.Meta, t.Meta} {
		for k, v := range src {
			m[k] = v
		}
	}
	return m
}

func resourcesChanged(a, b *api.Resources) bool {
	if a == nil || b == nil {
		return a != b
	}
	return !sameJSON(a.CPU, b.CPU) || !sameJSON(a.Cores, b.Cores) || !sameJSON(a.MemoryMB, b.MemoryMB) ||
		!sameJSON(a.MemoryMaxMB, b.MemoryMaxMB) || !sameJSON(a.Networks, b.Networks) || !sameJSON(a.Devices, b.Devices)
}

// stillFits reports whether an allocation's node remains eligible for the
// new job, so that an update can be made in place there; Nomad re-runs
// feasibility on the current node for exactly this.
func (c *Cluster) stillFits(a *simAlloc, job *api.Job, tg *api.TaskGroup) bool {
	n := a.node
	pool := "default"
	if job.NodePool != nil && *job.NodePool != "" {
		pool = *job.NodePool
	}
	if !inDatacenters(n.api.Datacenter, job.Datacenters) || (pool != "all" && n.api.NodePool != pool) {
		return false
	}
	for _, con := range allConstraints(job, tg) {
		switch con.Operand {
		case api.ConstraintDistinctHosts, api.ConstraintDistinctProperty:
			continue
		}
		if !c.matches(n, con.LTarget, con.Operand, con.RTarget) {
			return false
		}
	}
	return true
}

func sameJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// groupAsk is what one allocation of tg reserves: CPU MHz, memory MB, disk MB.
func groupAsk(tg *api.TaskGroup) (cpu, mem, disk int) {
	for _, t := range tg.Tasks {
		cpu += *t.Resources.CPU
		mem += *t.Resources.MemoryMB
	}
	if tg.EphemeralDisk != nil && tg.EphemeralDisk.SizeMB != nil {
		disk = *tg.EphemeralDisk.SizeMB
	}
	return
}

// selectNode finds the best node for one allocation of tg, or returns nil
// with the metric saying why nothing fit. planned counts the allocations of
// tg the plan has already put on each node; spread (nil without spread
// blocks) scores the group's spreads.
func (c *Cluster) selectNode(job *api.Job, tg *api.TaskGroup, overlay usageOverlay, planned map[*simNode]int, spread *spreadScorer) (*simNode, *api.AllocationMetric) {
	started := time.Now()
	spread.prepare(planned)
	pool := "default"
	if job.NodePool != nil && *job.NodePool != "" {
		pool = *job.NodePool
	}
	m := &api.AllocationMetric{NodePool: pool, NodesAvailable: map[string]int{}}
	cpuAsk, memAsk, diskAsk := groupAsk(tg)
	constraints := allConstraints(job, tg)
	affinities := allAffinities(job, tg)
	var best *simNode
	bestScore := math.Inf(-1)
	var scores []*api.NodeScoreMeta
	for _, n := range c.nodeList {
		if !n.ready() || (pool != "all" && n.api.NodePool != pool) {
			continue
		}
		m.NodesInPool++
		if !inDatacenters(n.api.Datacenter, job.Datacenters) {
			continue
		}
		m.NodesAvailable[n.api.Datacenter]++
		m.NodesEvaluated++
		if failed := c.firstFailing(n, job, tg, constraints, planned[n]); failed != "" {
			m.NodesFiltered++
			m.ConstraintFiltered = incr(m.ConstraintFiltered, failed)
			if n.api.NodeClass != "" { // Nomad counts named classes only
				m.ClassFiltered = incr(m.ClassFiltered, n.api.NodeClass)
			}
			continue
		}
		usedCPU, usedMem, usedDisk := overlay.used(n)
		capCPU, capMem, capDisk := n.cpuCapacity(), n.group.cfg.MemoryMB, n.group.cfg.DiskMB
		var dim string
		switch {
		case usedCPU+cpuAsk > capCPU:
			dim = "cpu"
		case usedMem+memAsk > capMem:
			dim = "memory"
		case usedDisk+diskAsk > capDisk:
			dim = "disk"
		}
		if dim != "" {
			m.NodesExhausted++
			m.DimensionExhausted = incr(m.DimensionExhausted, dim)
			if n.api.NodeClass != "" {
				m.ClassExhausted = incr(m.ClassExhausted, n.api.NodeClass)
			}
			continue
		}
		// Nomad lists every scorer it ran, zeros included; only the
		// non-zero ones count towards NormScore.
		meta := &api.NodeScoreMeta{NodeID: n.api.ID, Scores: map[string]float64{"job-anti-affinity": 0, "node-affinity": 0, "node-reschedule-penalty": 0}}
		binpack := binPackScore(usedCPU+cpuAsk, capCPU, usedMem+memAsk, capMem)
		meta.Scores["binpack"] = binpack
		parts := []float64{binpack}
		if collisions := c.collisions(n, job, tg) + planned[n]; collisions > 0 {
			s := -float64(collisions+1) / float64(max(*tg.Count, 1))
			meta.Scores["job-anti-affinity"] = s
			parts = append(parts, s)
		}
		if s := c.affinityScore(n, affinities); s != 0 {
			meta.Scores["node-affinity"] = s
			parts = append(parts, s)
		}
		// Like the affinity, a spread joins the average only where it has
		// an opinion, and Nomad names it in the metrics only then.
		if s := spread.score(n); s != 0 {
			meta.Scores["allocation-spread"] = s
			parts = append(parts, s)
		}
		var sum float64
		for _, s := range parts {
			sum += s
		}
		meta.NormScore = sum / float64(len(parts))
		scores = append(scores, meta)
		if meta.NormScore > bestScore {
			best, bestScore = n, meta.NormScore
		}
	}
	if best == nil {
		exhaustResources(m, tg)
	}
	sort.SliceStable(scores, func(i, j int) bool { return scores[i].NormScore > scores[j].NormScore })
	if len(scores) > 5 {
		scores = scores[:5]
	}
	m.ScoreMetaData = scores
	m.AllocationTime = time.Since(started)
	return best, m
}

// binPackScore is Nomad's ScoreFitBinPack, normalised to 0…1: fuller nodes
// score higher, so allocations pack onto few nodes.
func binPackScore(cpu, capCPU, mem, capMem int) float64 {
	freeCPU := 1 - float64(cpu)/float64(capCPU)
	freeMem := 1 - float64(mem)/float64(capMem)
	total := math.Pow(10, freeCPU) + math.Pow(10, freeMem)
	score := 20 - total
	score = math.Max(0, math.Min(binPackMaxScore, score))
	return score / binPackMaxScore
}

// collisions counts allocations of the same job and group already on n.
func (c *Cluster) collisions(n *simNode, job *api.Job, tg *api.TaskGroup) int {
	k := 0
	for _, a := range n.allocs {
		if a.api.JobID == *job.ID && a.api.Namespace == *job.Namespace && a.api.TaskGroup == *tg.Name {
			k++
		}
	}
	return k
}

// affinityScore is Nomad's node-affinity score: the weights of matching
// affinities over the sum of all weights' magnitudes, in −1…1.
func (c *Cluster) affinityScore(n *simNode, affs []*api.Affinity) float64 {
	if len(affs) == 0 {
		return 0
	}
	var total, matched float64
	for _, a := range affs {
		w := float64(*a.Weight)
		total += math.Abs(w)
		if c.matches(n, a.LTarget, a.Operand, a.RTarget) {
			matched += w
		}
	}
	if total == 0 {
		return 0
	}
	return matched / total
}

func allConstraints(job *api.Job, tg *api.TaskGroup) []*api.Constraint {
	out := append([]*api.Constraint(nil), job.Constraints...)
	out = append(out, tg.Constraints...)
	for _, t := range tg.Tasks {
		out = append(out, t.Constraints...)
	}
	return out
}

func allAffinities(job *api.Job, tg *api.TaskGroup) []*api.Affinity {
	out := append([]*api.Affinity(nil), job.Affinities...)
	out = append(out, tg.Affinities...)
	for _, t := range tg.Tasks {
		out = append(out, t.Affinities...)
	}
	return out
}

// firstFailing returns the first constraint n does not satisfy, in Nomad's
// "LTarget Operand RTarget" form, or "" when all hold.
func (c *Cluster) firstFailing(n *simNode, job *api.Job, tg *api.TaskGroup, cons []*api.Constraint, planned int) string {
	for _, con := range cons {
		switch con.Operand {
		case api.ConstraintDistinctHosts:
			if planned > 0 || c.collisions(n, job, tg) > 0 {
				return api.ConstraintDistinctHosts
			}
			continue
		case api.ConstraintDistinctProperty:
			continue // spreads allocations; not modelled
		}
		if !c.matches(n, con.LTarget, con.Operand, con.RTarget) {
			return fmt.Sprintf("%s %s %s", con.LTarget, con.Operand, con.RTarget)
		}
	}
	return ""
}

func inDatacenters(dc string, want []string) bool {
	if len(want) == 0 {
		return true
	}
	for _, w := range want {
		if ok, _ := path.Match(w, dc); ok {
			return true
		}
	}
	return false
}

func incr(m map[string]int, k string) map[string]int {
	if m == nil {
		m = map[string]int{}
	}
	m[k]++
	return m
}

// mergeMetric folds the metric of another failed placement of tg into acc,
// as Nomad coalesces failures of one group.
func mergeMetric(acc, m *api.AllocationMetric, tg *api.TaskGroup) *api.AllocationMetric {
	if acc == nil {
		return m
	}
	acc.CoalescedFailures++
	exhaustResources(acc, tg)
	return acc
}

// exhaustResources adds what tg's tasks ask of the exhausted dimensions to
// the metric's ResourcesExhausted, as Nomad's AllocMetric.ExhaustResources
// does for every failed placement: only CPU and memory are counted.
func exhaustResources(m *api.AllocationMetric, tg *api.TaskGroup) {
	if len(m.DimensionExhausted) == 0 {
		return
	}
	if m.ResourcesExhausted == nil {
		m.ResourcesExhausted = map[string]*api.Resources{}
	}
	for _, t := range tg.Tasks {
		r := m.ResourcesExhausted[t.Name]
		if r == nil {
			r = &api.Resources{CPU: intPtr(0), Cores: intPtr(0), DiskMB: intPtr(0), IOPS: intPtr(0), MemoryMB: intPtr(0), MemoryMaxMB: intPtr(0)}
			m.ResourcesExhausted[t.Name] = r
		}
		if m.DimensionExhausted["memory"] > 0 {
			*r.MemoryMB += *t.Resources.MemoryMB
		}
		if m.DimensionExhausted["cpu"] > 0 {
			*r.CPU += *t.Resources.CPU
		}
	}
}

// Evaluation statuses and trigger reasons.
const (
	evalComplete = "complete"
	evalBlocked  = "blocked"
)

// evaluateAt runs the scheduler for a job and applies the result: one
// evaluation, complete, plus a blocked one if something could not be placed.
func (c *Cluster) evaluateAt(j *simJob, trigger string, now time.Time, idx uint64) *api.Evaluation {
	job := j.current()
	eval := c.newEval(job, trigger, evalComplete, now, idx)
	p := c.computePlan(job, j)
	c.applyPlan(j, p, eval, now, idx)
	return eval
}

// evaluate is evaluateAt with a write of its own.
func (c *Cluster) evaluate(j *simJob, trigger string, now time.Time) *api.Evaluation {
	idx := c.bump(tableEvals, tableAllocs, tableSummaries)
	return c.evaluateAt(j, trigger, now, idx)
}

func (c *Cluster) newEval(job *api.Job, trigger, status string, now time.Time, idx uint64) *api.Evaluation {
	e := &api.Evaluation{
		ID: c.newID(), Priority: *job.Priority, Type: *job.Type, TriggeredBy: trigger,
		Namespace: *job.Namespace, JobID: *job.ID, JobModifyIndex: *job.JobModifyIndex,
		Status: status, CreateIndex: idx, ModifyIndex: idx, CreateTime: now.UnixNano(), ModifyTime: now.UnixNano(),
	}
	c.evals[e.ID] = e
	c.evalList = append(c.evalList, e)
	c.events.add(now, idx, event{Topic: "Evaluation", Type: "EvaluationUpdated", Key: e.ID, Namespace: e.Namespace, Payload: map[string]any{"Evaluation": e}})
	return e
}

func (c *Cluster) applyPlan(j *simJob, p *plan, eval *api.Evaluation, now time.Time, idx uint64) {
	job := p.job
	if d := p.cancel; d != nil {
		c.setDeploymentStatus(d, api.DeploymentStatusCancelled, p.cancelWhy, eventPlanResult, now, idx)
	}
	dep := p.deployment
	if p.created {
		dep.ID = c.newID()
		c.storeDeployment(dep, now, idx)
		c.events.add(now, idx, deploymentEvent(eventPlanResult, dep))
	}
	var planned []*simAlloc
	failed := map[string]*api.AllocationMetric{}
	queued := map[string]int{}
	joined := false
	for _, gp := range p.groups {
		name := *gp.tg.Name
		depID := ""
		if gp.state != nil {
			depID = dep.ID
			// A group joins the version's deployment when it first has
			// something to roll out; one already in it may have just asked
			// for its canaries.
			if s := dep.TaskGroups[name]; s == nil {
				dep.TaskGroups[name] = gp.state
			} else {
				s.DesiredCanaries = gp.state.DesiredCanaries
			}
		}
		for _, a := range gp.stop {
			c.stopAlloc(a, now, idx, "alloc not needed due to job update", clientComplete)
			planned = append(planned, a)
		}
		for _, a := range gp.destructive {
			c.stopAlloc(a, now, idx, "alloc is being updated due to job update", clientComplete)
			planned = append(planned, a)
		}
		for _, a := range gp.inPlace {
			a.api.Job = job
			a.api.ModifyIndex = idx
			a.api.AllocModifyIndex = idx
			a.api.ModifyTime = now.UnixNano()
			planned = append(planned, a)
			// An allocation updated into another deployment starts its
			// health over there.
			if a.api.DeploymentID != depID {
				a.api.DeploymentID, a.api.DeploymentStatus = depID, nil
				c.joinDeployment(a, now)
				joined = joined || depID != ""
			}
		}
		for _, pl := range gp.place {
			a := c.newAlloc(job, gp.tg, pl.index, pl.node, eval.ID, pl.metric, pl.prev, now, idx)
			planned = append(planned, a)
			if depID == "" {
				continue
			}
			a.api.DeploymentID = depID
			if pl.canary {
				a.api.DeploymentStatus = &api.AllocDeploymentStatus{Canary: true}
				s := dep.TaskGroups[name]
				s.PlacedCanaries = append(s.PlacedCanaries, a.api.ID)
			}
			c.joinDeployment(a, now)
			joined = true
		}
		if gp.failed != nil {
			failed[name] = gp.failed
		}
		queued[name] = gp.queued
		j.queued[name] = gp.queued
	}
	eval.QueuedAllocations = queued
	if len(planned) > 0 {
		evs := make([]event, 0, len(planned)+1)
		for _, a := range planned {
			evs = append(evs, allocEvent("PlanResult", a))
		}
		evs = append(evs, event{Topic: "Job", Type: "PlanResult", Key: *job.ID, Namespace: *job.Namespace, Payload: map[string]any{"Job": job}})
		c.events.add(now, idx, evs...)
	}
	switch {
	case p.complete && dep.Status == api.DeploymentStatusRunning:
		c.setDeploymentStatus(dep, api.DeploymentStatusSuccessful, descSuccessful, eventPlanResult, now, idx)
	case joined && !p.created:
		c.touchDeployment(dep, eventPlanResult, now, idx)
	}
	if len(failed) == 0 {
		if b := c.evals[j.blocked]; b != nil {
			b.Status = evalComplete
			b.ModifyIndex = idx
			j.blocked = ""
		}
		return
	}
	eval.FailedTGAllocs = failed
	if j.blocked == "" {
		b := c.newEval(job, "queued-allocs", evalBlocked, now, idx)
		b.PreviousEval = eval.ID
		b.StatusDescription = "created to place remaining allocations"
		b.FailedTGAllocs = failed
		eval.BlockedEval = b.ID
		j.blocked = b.ID
	}
}

// retryBlocked evaluates again every job with allocations waiting for room,
// as Nomad unblocks blocked evaluations when capacity changes.
func (c *Cluster) retryBlocked(now time.Time, trigger string) {
	for _, j := range c.sortedJobs() {
		if j.blocked != "" {
			c.evaluate(j, trigger, now)
		}
	}
}

// Plan answers `PUT /v1/job/<id>/plan`: what registering job would do,
// without doing it.
func (c *Cluster) Plan(job *api.Job, diff bool) (*PlanResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	canonicalizeJob(job)
	if err := validateJob(job); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	j := c.jobs[jobKey{*job.Namespace, *job.ID}]
	// Plan against the job as it would be stored: the next version.
	cand := copyJob(job)
	var version, jmi uint64
	var old *api.Job
	if j != nil {
		old = j.current()
		version, jmi = *old.Version+1, *old.JobModifyIndex
		cand.CreateIndex, cand.ModifyIndex = old.CreateIndex, old.ModifyIndex
		if !specChanged(old, job) {
			version = *old.Version
			cand.JobModifyIndex = old.JobModifyIndex
		}
	}
	cand.Version = &version
	if cand.JobModifyIndex == nil {
		cand.JobModifyIndex = uint64Ptr(0)
	}
	p := c.computePlan(cand, j)
	res := &PlanResult{JobModifyIndex: jmi, Index: c.index, DesiredTGUpdates: map[string]*api.DesiredUpdates{}}
	for _, gp := range p.groups {
		du := gp.want
		res.DesiredTGUpdates[*gp.tg.Name] = &du
		if gp.failed != nil {
			if res.FailedTGAllocs == nil {
				res.FailedTGAllocs = map[string]*api.AllocationMetric{}
			}
			res.FailedTGAllocs[*gp.tg.Name] = gp.failed
		}
	}
	if diff {
		res.Diff = jobDiff(old, job)
		annotateDiff(res.Diff, res.DesiredTGUpdates)
	}
	if len(res.FailedTGAllocs) > 0 {
		res.ClassEligibility = c.classEligibility(cand, res.FailedTGAllocs)
	}
	return res, nil
}

// classEligibility says, per computed node class, whether the constraints
// of the groups that failed allow it, as Nomad records on a blocked
// evaluation so that only capacity of an eligible class unblocks it.
func (c *Cluster) classEligibility(job *api.Job, failed map[string]*api.AllocationMetric) map[string]bool {
	pool := "default"
	if job.NodePool != nil && *job.NodePool != "" {
		pool = *job.NodePool
	}
	out := map[string]bool{}
	for _, n := range c.nodeList {
		if !n.ready() || (pool != "all" && n.api.NodePool != pool) || !inDatacenters(n.api.Datacenter, job.Datacenters) {
			continue
		}
		eligible := true
		for name := range failed {
			tg := groupOf(job, name)
			eligible = eligible && c.firstFailing(n, job, tg, allConstraints(job, tg), 0) == ""
		}
		class := n.group.computedClass()
		out[class] = out[class] || eligible
	}
	return out
}

// PlanResult is the outcome of a dry run.
type PlanResult struct {
	JobModifyIndex   uint64
	Index            uint64
	DesiredTGUpdates map[string]*api.DesiredUpdates
	FailedTGAllocs   map[string]*api.AllocationMetric
	Diff             *api.JobDiff
	// ClassEligibility is set when a placement failed: what the blocked
	// evaluation a register would leave records.
	ClassEligibility map[string]bool
}
