package orchestrator

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/forecast"
	"github.com/foresight-nomad/foresight/profiles"
	"github.com/foresight-nomad/foresight/telemetry"
)

// ManagedPrefix starts the LTarget of every affinity Foresight writes, and
// of no affinity it does not own: it is how Foresight tells its stanzas from
// the user's.
const ManagedPrefix = "${meta.foresight."

// minSteerWeight is the least weight the chosen class's affinity gets, so
// that Nomad prefers it clearly even when its score is modest or negative
// (it may be the only class with room).
const minSteerWeight = 50

// maxAffinities bounds the managed affinities of a group: the chosen class
// and the next best classes with room, as fallbacks in that order.
const maxAffinities = 3

// Resources is what one allocation reserves (summed over its tasks), or a
// demand in the same units.
type Resources struct {
	CPUMHz   float64 `json:"cpu_mhz"`
	MemoryMB float64 `json:"memory_mb"`
}

// Damping is what a group's recent actions were, so that a decision does
// not undo or repeat them too soon.
type Damping struct {
	// LastScale is when the group's count was last changed by Foresight.
	LastScale time.Time
	// Rewrites are the times of Foresight's destructive writes to the
	// group (affinities, resources): each replaced every allocation.
	Rewrites []time.Time
}

// Room is the capacity of every class as one decision pass sees it: free
// capacity now, plus provider capacity requested and still arriving.
type Room struct {
	classes  []profiles.Class
	byID     map[string]int
	arriving map[string]Resources
}

// NewRoom indexes classes and the capacity still arriving per class ID, once
// per decision pass.
func NewRoom(classes []profiles.Class, arriving map[string]Resources) *Room {
	r := &Room{classes: classes, byID: make(map[string]int, len(classes)), arriving: arriving}
	for i, c := range classes {
		r.byID[c.ID] = i
	}
	return r
}

func (r *Room) class(id string) (*profiles.Class, bool) {
	i, ok := r.byID[id]
	if !ok {
		return nil, false
	}
	return &r.classes[i], true
}

// Input is everything one group's decision depends on. Decide reads it and
// nothing else, so a decision can be replayed.
type Input struct {
	// Group is "namespace/job/group".
	Group string
	// JobMeta and GroupMeta hold the user's foresight.* policy keys.
	JobMeta, GroupMeta map[string]string
	// Count is the group's count in the job as read.
	Count int
	// Reserved is what one allocation reserves now.
	Reserved Resources
	// Demand is the forecast total demand of the group at the policy's
	// quantile, the peak over the horizon (see PeakDemand); nil when there
	// is no forecast. A zero field is a metric not forecast.
	Demand *Resources
	// Usage is one allocation's usage at the policy's quantile (the
	// store's AllocQuantile), for rightsizing; nil when unknown.
	Usage *Resources
	// Running counts the group's allocations by class ID.
	Running map[string]int
	// Scores are the profiler's scores for the group.
	Scores []profiles.Score
	// Room is the classes' capacity, shared by the pass.
	Room *Room
	// Current is the class ID the group's managed affinities steer to, ""
	// when it has none.
	Current string
	// Want, when set, is a count an outside scaler asked for (the Nomad
	// Autoscaler through foresight-target): it replaces the forecast's
	// count; the bounds and the step limit still apply, the cooldowns are
	// the asker's. WantReason is the asker's reason.
	Want       *int
	WantReason string
	Damping    Damping
	Now        time.Time
	// JobType is the Nomad job's type: service ("" reads as service, as
	// Nomad defaults it), batch, system or sysbatch.
	JobType string
	// Own, when not empty, says the group is of Foresight's own job, and
	// by which rule that was told.
	Own string
	// MetricDemand is the forecast total demand of the policy's metric when
	// it is neither cpu nor memory (Demand carries those), at the policy's
	// quantile, the peak over the horizon; nil when not forecast.
	MetricDemand *float64
	// Feasible are the IDs of the classes Nomad could place the group on
	// (FeasibleClasses); nil when unknown, read as every class.
	Feasible []string
}

// Affinity is one managed affinity: Attribute = Value with Weight.
type Affinity struct {
	Class     string `json:"class"`
	Attribute string `json:"attribute"`
	Value     string `json:"value"`
	Weight    int    `json:"weight"`
}

// CapacityRequest asks for provider capacity on a class, beyond its free
// and arriving capacity.
type CapacityRequest struct {
	Class    string  `json:"class"`
	CPUMHz   float64 `json:"cpu_mhz"`
	MemoryMB float64 `json:"memory_mb"`
}

// Decision is what Foresight wants for a group, with the reasons, one line
// each. It is also the record of the decision: Foresight keeps it in its
// decision log and API, never in job meta, since a meta change would replace
// every allocation of the job.
type Decision struct {
	Group string `json:"group"`
	// JobType is the job's type as the rules read it ("" is service).
	JobType string `json:"job_type"`
	Mode    Mode   `json:"mode"`
	Policy  Policy `json:"policy"`
	// Hold says why nothing may be changed for the group (a bad policy,
	// mode off); empty when the decision may be acted on.
	Hold string `json:"hold,omitempty"`
	// Class is the class the group is steered to, Current the one it was.
	Class   string `json:"class"`
	Current string `json:"current"`
	// Rewrite is true when the managed affinities must be rewritten to
	// Affinities: a destructive update, made only when Class changes.
	Rewrite    bool       `json:"rewrite"`
	Affinities []Affinity `json:"affinities,omitempty"`
	// Count is the wanted count, CurrentCount the count read.
	Count        int `json:"count"`
	CurrentCount int `json:"current_count"`
	// Resources is the new per-allocation reservation, nil when unchanged.
	Resources *Resources `json:"resources,omitempty"`
	// Capacity asks for provider capacity; nil when none is needed.
	Capacity *CapacityRequest `json:"capacity,omitempty"`
	// Unplaceable is true when no class has room and none can be bought.
	Unplaceable bool     `json:"unplaceable"`
	Reasons     []string `json:"reasons"`
}

func (d *Decision) why(format string, args ...any) {
	d.Reasons = append(d.Reasons, fmt.Sprintf(format, args...))
}

// PeakDemand is the largest value of the level quantile of f over its
// horizon: the demand the group must be ready for by the end of it.
func PeakDemand(f forecast.Forecast, level float64) (float64, error) {
	for j, l := range f.Levels {
		if math.Abs(l-level) > 1e-9 {
			continue
		}
		if j >= len(f.Quantiles) || len(f.Quantiles[j]) == 0 {
			return 0, fmt.Errorf("forecast has no steps at quantile %g", level)
		}
		peak := math.Inf(-1)
		for _, v := range f.Quantiles[j] {
			if math.IsNaN(v) {
				return 0, fmt.Errorf("forecast quantile %g has NaN steps", level)
			}
			peak = math.Max(peak, v)
		}
		return math.Max(peak, 0), nil
	}
	return 0, fmt.Errorf("forecast has no quantile %g (levels %v)", level, f.Levels)
}

// Decide makes one group's decision. It is a pure function of cfg and in:
//
//   - policy: from the meta; a bad value holds the group, and so does mode off;
//   - job: Foresight's own job is held (in.Own says which rule told it), and
//     so is a batch job: profiled and forecast, never acted on. A system or
//     sysbatch job runs one allocation on every eligible node and Nomad's
//     system scheduler weighs no affinity: it gets neither a count nor a
//     class, only resources. Only service jobs get all three;
//   - budget: destructive changes (class, resources) only while fewer than
//     cfg.RewritesPerHour were made in the last hour;
//   - resources, when rightsizing: the per-allocation usage quantile plus
//     cfg.RightsizeMargin, within bounds, only when it moves by more than
//     cfg.RightsizeTolerance;
//   - count: ⌈D·(1+headroom) / t⌉ for the demand D of the policy's metric,
//     one that divides over instances (foresight.metric, default cpu), and
//     t what one allocation should carry of it: foresight.metric_target, or
//     the allocation's reservation r × utilisation. Memory each instance
//     holds whatever the count is a per-instance need: it never sizes the
//     count unless foresight.metric names it (the user says it splits);
//     when one allocation's memory usage plus headroom is above r ×
//     utilisation, a reason says to rightsize it. Then within min/max, at most max_step
//     away, and only after the cooldown of its direction since the last
//     count change (a count out of bounds is brought back regardless of
//     cooldown); it falls only to what D needs at a utilisation
//     cfg.ScaleDownBand lower;
//   - class: among steerable classes whose free plus arriving capacity holds
//     what the new count needs beyond what already runs there, the best
//     score (external first when equal, then ID), staying on the current one
//     unless the best beats it by more than cfg.SwitchMargin; a group without
//     managed affinities is held alike on the class most of it runs on;
//   - capacity: when no external class has room, provider capacity is
//     requested on the best provider class, unless a provider class
//     already has room. When no class at all holds the group, it stays on
//     its class (the allocations it cannot hold spill onto the capacity
//     bought) and the request is what the external classes cannot hold; a
//     group with no class yet is steered to the provider class. With no
//     provider class either, the decision is Unplaceable;
//   - rewrite: a class change is written only when it can change where
//     Nomad places the group: another class in.Feasible has nodes, and not
//     every running allocation is on the target already; within the budget,
//     and not while the count rises.
func Decide(cfg Config, in Input) Decision {
	cfg = cfg.withDefaults()
	d := Decision{Group: in.Group, JobType: in.JobType, Class: in.Current, Current: in.Current, Count: in.Count, CurrentCount: in.Count}
	pol, err := PolicyOf(cfg, in.JobMeta, in.GroupMeta)
	if err != nil {
		d.Hold = err.Error()
		d.why("group left alone: %v", err)
		return d
	}
	d.Policy, d.Mode = pol, pol.Mode
	if pol.Mode == ModeOff {
		d.Hold = MetaMode + " = off"
		d.why("group left alone: %s = off", MetaMode)
		return d
	}
	service := true
	switch {
	case in.Own != "":
		d.Hold = "Foresight's own job (" + in.Own + ")"
		d.why("group left alone: Foresight's own job (%s); it never acts on itself", in.Own)
		return d
	case in.JobType == api.JobTypeBatch:
		d.Hold = "batch job"
		d.why("group left alone: a batch job is profiled and forecast, never acted on")
		return d
	case in.JobType == api.JobTypeSystem || in.JobType == api.JobTypeSysbatch:
		service = false
	}

	rewrites := 0
	for _, t := range in.Damping.Rewrites {
		if !t.After(in.Now) && in.Now.Sub(t) < time.Hour {
			rewrites++
		}
	}
	budget := rewrites < cfg.RewritesPerHour

	perAlloc := in.Reserved
	if pol.Rightsize {
		if r, ok := rightsize(cfg, pol, in, &d); ok {
			if budget {
				d.Resources = &r
				perAlloc = r
			} else {
				d.why("resources unchanged: rewrite budget spent (%d of %d in the last hour)", rewrites, cfg.RewritesPerHour)
			}
		}
	}

	if !service {
		d.why("count and class not decided: a %s job runs one allocation on every eligible node, and Nomad's system scheduler weighs no affinity", in.JobType)
		return d
	}
	d.Count = decideCount(cfg, pol, in, perAlloc, &d)
	chooseClass(cfg, in, perAlloc, budget, rewrites, &d)
	return d
}

// rightsize proposes a per-allocation reservation from the usage quantile.
func rightsize(cfg Config, pol Policy, in Input, d *Decision) (Resources, bool) {
	if in.Usage == nil {
		d.why("resources unchanged: no per-allocation usage yet")
		return Resources{}, false
	}
	size := func(use, cur, lo, hi, unit float64) float64 {
		if use <= 0 {
			return cur
		}
		v := math.Ceil(use*(1+cfg.RightsizeMargin)/unit) * unit
		return math.Min(hi, math.Max(lo, v))
	}
	r := Resources{
		CPUMHz:   size(in.Usage.CPUMHz, in.Reserved.CPUMHz, cfg.MinCPUMHz, cfg.MaxCPUMHz, 10),
		MemoryMB: size(in.Usage.MemoryMB, in.Reserved.MemoryMB, cfg.MinMemoryMB, cfg.MaxMemoryMB, 1),
	}
	moved := func(n, o float64) bool { return o <= 0 || math.Abs(n-o)/o > cfg.RightsizeTolerance }
	if !moved(r.CPUMHz, in.Reserved.CPUMHz) && !moved(r.MemoryMB, in.Reserved.MemoryMB) {
		d.why("resources unchanged: p%g usage %.0f MHz / %.0f MB is within %.0f%% of the reservation",
			pol.Quantile*100, in.Usage.CPUMHz, in.Usage.MemoryMB, cfg.RightsizeTolerance*100)
		return Resources{}, false
	}
	d.why("resources %.0f MHz / %.0f MB → %.0f MHz / %.0f MB: p%g usage %.0f MHz / %.0f MB + %.0f%% margin",
		in.Reserved.CPUMHz, in.Reserved.MemoryMB, r.CPUMHz, r.MemoryMB,
		pol.Quantile*100, in.Usage.CPUMHz, in.Usage.MemoryMB, cfg.RightsizeMargin*100)
	return r, true
}

// decideCount applies the count rules in order: need, bounds, step, cooldown.
func decideCount(cfg Config, pol Policy, in Input, perAlloc Resources, d *Decision) int {
	cur := in.Count
	want := cur
	if in.Want != nil {
		want = *in.Want
		d.why("count %d asked by the autoscaler: %s", want, cmp.Or(in.WantReason, "no reason given"))
	} else if in.Demand == nil && in.MetricDemand == nil {
		d.why("count kept at %d: no forecast", cur)
	} else if need, down, ok := countNeeded(cfg, pol, in, perAlloc, d); ok {
		want = need
		if need < cur {
			want = min(cur, down)
			if want == cur {
				d.why("count kept at %d: it is not %.0f%% above what the demand needs (scale-down band)", cur, cfg.ScaleDownBand*100)
			}
		}
	}
	switch {
	case want < pol.Min:
		d.why("count raised to %s = %d", MetaMin, pol.Min)
		want = pol.Min
	case want > pol.Max:
		d.why("count capped at %s = %d", MetaMax, pol.Max)
		want = pol.Max
	}
	if want-cur > pol.MaxStep {
		d.why("count step limited to +%d (%s)", pol.MaxStep, MetaMaxStep)
		want = cur + pol.MaxStep
	} else if cur-want > pol.MaxStep {
		d.why("count step limited to -%d (%s)", pol.MaxStep, MetaMaxStep)
		want = cur - pol.MaxStep
	}
	outOfBounds := cur < pol.Min || cur > pol.Max
	if want != cur && !outOfBounds && in.Want == nil && !in.Damping.LastScale.IsZero() {
		since := in.Now.Sub(in.Damping.LastScale)
		cool, key := pol.CooldownUp, MetaCooldownUp
		if want < cur {
			cool, key = pol.CooldownDown, MetaCooldownDown
		}
		if since < cool {
			d.why("count kept at %d, not %d: %s %s, last change %s ago", cur, want, key, cool, since.Round(time.Second))
			return cur
		}
	}
	if want != cur {
		d.why("count %d → %d", cur, want)
	}
	return want
}

// countNeeded is the count the demand of the policy's metric needs (need)
// and how far it may fall (down: at a utilisation lower by the scale-down
// band, so a count is only given back when the demand has fallen clearly
// below it, not when it wavers around a boundary); ok is false when the
// metric has no forecast. Memory, unless it is the metric, is a
// per-instance need: it only adds a reason when an allocation holds more
// than its share.
func countNeeded(cfg Config, pol Policy, in Input, perAlloc Resources, d *Decision) (need, down int, ok bool) {
	if !isMemory(pol.Metric) && in.Usage != nil && perAlloc.MemoryMB > 0 &&
		in.Usage.MemoryMB*(1+pol.Headroom) > perAlloc.MemoryMB*pol.TargetUtilization {
		// More allocations would each hold as much again: the count
		// cannot help, the reservation must change.
		advice := "rightsize its memory (" + MetaRightsize + ")"
		if pol.Rightsize {
			advice = "rightsizing sizes its memory"
		}
		d.why("memory does not size the count, each instance holds its own: one allocation uses %.0f MB (p%g) of its %.0f MB; %s",
			in.Usage.MemoryMB, pol.Quantile*100, perAlloc.MemoryMB, advice)
	}
	var demand, per, util float64
	unit, name := "", pol.Metric
	switch {
	case pol.Metric == telemetry.CPUMHz && in.Demand != nil:
		demand, per, unit, name = in.Demand.CPUMHz, perAlloc.CPUMHz, "MHz", "cpu"
	case isMemory(pol.Metric) && in.Demand != nil:
		demand, per, unit, name = in.Demand.MemoryMB, perAlloc.MemoryMB, "MB", "memory"
	case !reserved(pol.Metric) && in.MetricDemand != nil:
		demand = *in.MetricDemand
	}
	util = pol.TargetUtilization
	if pol.MetricTarget > 0 {
		per, util = pol.MetricTarget, 1
		if isMemory(pol.Metric) {
			per /= 1 << 20 // the target is in bytes, the demand in MB
		}
	}
	if demand <= 0 || per <= 0 {
		d.why("count kept at %d: no forecast of %s demand to size it from (%s)", in.Count, name, MetaMetric)
		return 0, 0, false
	}
	need = countFor(demand, per, pol.Headroom, util)
	down = countFor(demand, per, pol.Headroom, util*(1-cfg.ScaleDownBand))
	if pol.MetricTarget > 0 {
		d.why("count needed: p%g %s demand %.4g %s× %.2f / %.4g %sper instance (%s) = %d",
			pol.Quantile*100, name, demand, spaced(unit), 1+pol.Headroom, per, spaced(unit), MetaMetricTarget, need)
	} else {
		d.why("count needed: p%g %s demand %.0f %s × %.2f / (%.0f %s × %.2f) = %d",
			pol.Quantile*100, name, demand, unit, 1+pol.Headroom, per, unit, util, need)
	}
	return need, down, true
}

// countFor is the count that holds demand at utilisation util of per, each
// allocation's share: ⌈demand·(1+headroom) / (per·util)⌉.
func countFor(demand, per, headroom, util float64) int {
	return int(math.Ceil(demand * (1 + headroom) / (per * util)))
}

// steerable is the class's managed target: its first target when that is a
// foresight.* attribute, the only kind of affinity Foresight writes.
func steerable(c *profiles.Class) (profiles.Target, bool) {
	if len(c.Targets) == 0 || !strings.HasPrefix(c.Targets[0].Attribute, ManagedPrefix) {
		return profiles.Target{}, false
	}
	return c.Targets[0], true
}

type candidate struct {
	score    *profiles.Score
	class    *profiles.Class
	external bool
}

// need is what the group needs on class c beyond what already runs there.
func need(in Input, c *profiles.Class, count int, perAlloc Resources) Resources {
	run := float64(in.Running[c.ID])
	return Resources{
		CPUMHz:   math.Max(0, float64(count)*perAlloc.CPUMHz-run*in.Reserved.CPUMHz),
		MemoryMB: math.Max(0, float64(count)*perAlloc.MemoryMB-run*in.Reserved.MemoryMB),
	}
}

// shortfall is what class c lacks for n, counting arriving capacity, and
// whether one allocation fits on one of its nodes (ready or arriving).
func shortfall(room *Room, c *profiles.Class, n, perAlloc Resources) (Resources, bool) {
	arr := room.arriving[c.ID]
	short := Resources{
		CPUMHz:   math.Max(0, n.CPUMHz-c.FreeCPUMHz-arr.CPUMHz),
		MemoryMB: math.Max(0, n.MemoryMB-c.FreeMemoryMB-arr.MemoryMB),
	}
	if n.CPUMHz <= 0 && n.MemoryMB <= 0 {
		return short, true
	}
	fits := c.MaxFreeCPUMHz >= perAlloc.CPUMHz && c.MaxFreeMemoryMB >= perAlloc.MemoryMB
	if size, ok := c.NodeSize(); !fits && ok {
		// New nodes of a class are like its others, or like its declared
		// node while it has none.
		fits = size.CPUMHz >= perAlloc.CPUMHz && size.MemoryMB >= perAlloc.MemoryMB
	}
	return short, fits
}

// holds reports whether class c has room for the group's count: what it
// lacks, arriving capacity counted, is nothing.
func holds(in Input, c *profiles.Class, count int, perAlloc Resources) bool {
	short, fits := shortfall(in.Room, c, need(in, c, count, perAlloc), perAlloc)
	return fits && short == (Resources{})
}

// homeOf is the class the group is held on: its managed class, or, when it
// has none, the class most of its allocations run on (ties by ID), where
// Nomad put it. Leaving it replaces every allocation, so the class rules
// treat both alike.
func homeOf(in Input) string {
	if in.Current != "" {
		return in.Current
	}
	home, most := "", 0
	for c, n := range in.Running {
		if n > most || n == most && c < home {
			home, most = c, n
		}
	}
	return home
}

// candidates are the classes a group's class is chosen among, found in one
// walk over its scores.
type candidates struct {
	// top are the best steerable classes with room, best first (better):
	// the target and its fallbacks. Only those and home are needed, so
	// no sort of every class.
	top [maxAffinities]candidate
	n   int
	// home is the group's home class (homeOf) with its score, when
	// hasHome (it is known and scored); homeRoom says it has room for the
	// count. A home need not be steerable: staying writes nothing.
	home              candidate
	hasHome, homeRoom bool
	// bestProvider is the best steerable provider class, room or not,
	// when hasProvider.
	bestProvider candidate
	hasProvider  bool
	// hasExternal says an external class has room.
	hasExternal bool
}

func (cs *candidates) list() []candidate { return cs.top[:cs.n] }

// candidatesOf walks the group's scores once: which steerable classes have
// room for count allocations of perAlloc, the best provider class, and
// whether home has room.
func candidatesOf(in Input, home string, count int, perAlloc Resources) candidates {
	var cs candidates
	for i := range in.Scores {
		s := &in.Scores[i]
		c, ok := in.Room.class(s.Class)
		if !ok {
			continue
		}
		_, steer := steerable(c)
		if !steer && s.Class != home {
			continue
		}
		cd := candidate{score: s, class: c, external: c.Traits.Platform == profiles.PlatformExternal}
		if steer && !cd.external && (!cs.hasProvider || better(cd, cs.bestProvider)) {
			cs.bestProvider, cs.hasProvider = cd, true
		}
		room := holds(in, c, count, perAlloc)
		if s.Class == home {
			cs.home, cs.hasHome, cs.homeRoom = cd, true, room
		}
		if !room {
			continue
		}
		cs.hasExternal = cs.hasExternal || cd.external
		if !steer {
			continue
		}
		j := cs.n
		for j > 0 && better(cd, cs.top[j-1]) {
			j--
		}
		if j < maxAffinities {
			copy(cs.top[j+1:], cs.top[j:min(cs.n, maxAffinities-1)])
			cs.top[j] = cd
			cs.n = min(cs.n+1, maxAffinities)
		}
	}
	return cs
}

// chooseClass applies the class rules in order: candidates, hysteresis
// (profiles.Choose with cfg.SwitchMargin), the capacity fallback, then the
// gates of a rewrite (budget, a rising count).
func chooseClass(cfg Config, in Input, perAlloc Resources, budget bool, rewrites int, d *Decision) {
	if in.Room == nil {
		d.why("class unchanged: no classes known")
		return
	}
	if len(in.Scores) == 0 {
		d.why("class unchanged: no affinity scores for the group yet")
		return
	}
	home := homeOf(in)
	cs := candidatesOf(in, home, d.Count, perAlloc)
	target, held := hysteresis(cfg, in, home, &cs, d)
	if !cs.hasExternal {
		target, held = capacityFallback(in, home, &cs, target, held, perAlloc, d)
	}
	// A group held on its home writes nothing; one whose home is simply
	// its best class may still get the affinities that keep it there, when
	// they can change something (futile).
	if target == "" || target == in.Current || held && target == home {
		return
	}
	if why := futile(in, target); why != "" {
		d.why("class %s not written: %s; a rewrite would replace every allocation for nothing", target, why)
		return
	}
	if !budget {
		d.why("class stays %q, not %s: rewrite budget spent (%d of %d in the last hour)", in.Current, target, rewrites, cfg.RewritesPerHour)
		return
	}
	running := 0
	for _, n := range in.Running {
		running += n
	}
	if d.Count > in.Count && running > 0 {
		// A class change replaces every allocation, max_parallel at a
		// time, each stopped before its replacement runs: while the count
		// must rise, that would leave the group short. The count goes
		// first; the class follows in a later pass.
		d.why("class stays %q for now, not %s: the count rises first, since a class change replaces every allocation", in.Current, target)
		return
	}
	d.Class, d.Rewrite = target, true
	d.Affinities = affinities(in, target, cs.list())
	if in.Current == "" {
		d.why("class %s: best score with room", target)
	} else {
		d.why("class %s → %s", in.Current, target)
	}
}

// futile says why steering the group to target cannot change where Nomad
// places it, "" when it can: every running allocation is there already,
// or no other class the group could be placed on has a node.
func futile(in Input, target string) string {
	running := 0
	for _, n := range in.Running {
		running += n
	}
	if running > 0 && in.Running[target] == running {
		return fmt.Sprintf("every running allocation (%d) is on it already", running)
	}
	for i := range in.Room.classes {
		c := &in.Room.classes[i]
		if c.ID != target && len(c.Nodes) > 0 && (in.Feasible == nil || slices.Contains(in.Feasible, c.ID)) {
			return ""
		}
	}
	return "no other class the group could be placed on has nodes"
}

// hysteresis picks the target among the candidates with room: the best,
// unless home scores within cfg.SwitchMargin of it (profiles.Choose). Home
// competes when it has room, and also when it is an external class that is
// full while only a provider class leads: the allocations it cannot hold
// spill onto provider capacity, where moving the group would replace every
// allocation and keep it on provider capacity once the demand falls again.
// It returns "" when no class has room, and whether home was kept although
// another class scores more.
func hysteresis(cfg Config, in Input, home string, cs *candidates, d *Decision) (string, bool) {
	var buf [maxAffinities + 1]profiles.Score
	scores := buf[:0]
	for _, cd := range cs.list() {
		scores = append(scores, *cd.score)
	}
	full := false
	if cs.hasHome && (cs.homeRoom || cs.home.external && cs.n > 0 && !cs.top[0].external) {
		full = !cs.homeRoom
		if !slices.ContainsFunc(scores, func(s profiles.Score) bool { return s.Class == home }) {
			scores = append(scores, *cs.home.score)
		}
	}
	if len(scores) == 0 {
		return "", false
	}
	choice, moved := profiles.Choose(scores, home, cfg.SwitchMargin)
	if moved || choice.Class != home {
		return choice.Class, false
	}
	best := scores[0]
	if best.Class == home {
		return home, false
	}
	gain := best.Value - choice.Value
	switch {
	case full:
		verb := "stays"
		if in.Current == "" {
			verb = "not set: the group stays on"
		}
		d.why("class %s %s although it is full: provider class %s scores only %.1f more (margin %.1f); the allocations it cannot hold spill onto provider capacity",
			verb, home, best.Class, gain, cfg.SwitchMargin)
	case in.Current == "":
		d.why("class not set: %s scores only %.1f more than %s, where the group runs (margin %.1f)", best.Class, gain, home, cfg.SwitchMargin)
	default:
		d.why("class stays %s: %s scores only %.1f more (margin %.1f)", home, best.Class, gain, cfg.SwitchMargin)
	}
	return home, true
}

// capacityFallback applies when no external class has room: provider
// capacity is requested on the best provider class unless a provider class
// already has room. When no class at all holds the group, it stays home and
// what home and the external classes cannot hold is bought (a group with no
// home is steered to the provider class); with no provider class, or one
// whose nodes are too small for one allocation, the group is Unplaceable.
// It returns the target (target when nothing changes it) and whether the
// group is held on home.
func capacityFallback(in Input, home string, cs *candidates, target string, held bool, perAlloc Resources, d *Decision) (string, bool) {
	if target != "" {
		// A class has room (a provider one): nothing to buy.
		return target, held
	}
	if !cs.hasProvider {
		d.Unplaceable = true
		d.why("no class has room for %d × %.0f MHz / %.0f MB and there is no provider class to request capacity from",
			d.Count, perAlloc.CPUMHz, perAlloc.MemoryMB)
		return "", false
	}
	c := cs.bestProvider.class
	if _, fits := shortfall(in.Room, c, perAlloc, perAlloc); !fits {
		d.Unplaceable = true
		d.why("no class has room, and one allocation (%.0f MHz / %.0f MB) is larger than a node of provider class %s",
			perAlloc.CPUMHz, perAlloc.MemoryMB, c.ID)
		return "", false
	}
	var short Resources
	if h, ok := in.Room.class(home); ok {
		// Stay: a rewrite would replace every allocation, while the ones
		// the class cannot hold spill, under soft affinities, onto
		// whatever has room, the capacity requested included.
		short = spill(in, h, c, d.Count, perAlloc)
		target, held = home, true
	} else {
		short, _ = shortfall(in.Room, c, need(in, c, d.Count, perAlloc), perAlloc)
		target = c.ID
	}
	if short != (Resources{}) {
		d.Capacity = &CapacityRequest{Class: c.ID, CPUMHz: short.CPUMHz, MemoryMB: short.MemoryMB}
		d.why("no external class has room: request %.0f MHz / %.0f MB on provider class %s", short.CPUMHz, short.MemoryMB, c.ID)
	}
	return target, held
}

// spill is what the group needs beyond the room of home and of every other
// external class, less the free and arriving capacity of provider class p:
// what must be bought for the allocations home cannot hold. Allocations of
// the group that already run on other classes (spilled earlier) hold their
// part of the count, so they are not bought again.
func spill(in Input, home, p *profiles.Class, count int, perAlloc Resources) Resources {
	n := need(in, home, count, perAlloc)
	for i := range in.Room.classes {
		c := &in.Room.classes[i]
		if c.ID != home.ID {
			run := float64(in.Running[c.ID])
			n.CPUMHz -= run * in.Reserved.CPUMHz
			n.MemoryMB -= run * in.Reserved.MemoryMB
		}
		if c.ID == home.ID || c.Traits.Platform == profiles.PlatformExternal || c.ID == p.ID {
			n.CPUMHz -= c.FreeCPUMHz
			n.MemoryMB -= c.FreeMemoryMB
		}
	}
	arr := in.Room.arriving[p.ID]
	return Resources{CPUMHz: math.Max(0, n.CPUMHz-arr.CPUMHz), MemoryMB: math.Max(0, n.MemoryMB-arr.MemoryMB)}
}

// better orders candidates: higher score, then external, then class ID.
func better(a, b candidate) bool {
	if a.score.Value != b.score.Value {
		return a.score.Value > b.score.Value
	}
	if a.external != b.external {
		return a.external
	}
	return a.score.Class < b.score.Class
}

func scoreOf(scores []profiles.Score, class string) (profiles.Score, bool) {
	for _, s := range scores {
		if s.Class == class {
			return s, true
		}
	}
	return profiles.Score{}, false
}

// affinities are the managed affinities for target: it first, with at least
// minSteerWeight, then up to maxAffinities−1 other classes with room and a
// positive score, each weighted below the target.
func affinities(in Input, target string, cands []candidate) []Affinity {
	c, _ := in.Room.class(target)
	t, _ := steerable(c)
	s, _ := scoreOf(in.Scores, target)
	top := max(s.Weight(), minSteerWeight)
	out := []Affinity{{Class: target, Attribute: t.Attribute, Value: t.Value, Weight: top}}
	for _, cd := range cands {
		if len(out) == maxAffinities {
			break
		}
		w := min(cd.score.Weight(), top-1)
		if cd.score.Class == target || w <= 0 {
			continue
		}
		ft, _ := steerable(cd.class)
		out = append(out, Affinity{Class: cd.score.Class, Attribute: ft.Attribute, Value: ft.Value, Weight: w})
	}
	return out
}

// spaced is a unit followed by a space, or nothing for no unit.
func spaced(unit string) string {
	if unit == "" {
		return ""
	}
	return unit + " "
}
