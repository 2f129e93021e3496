package orchestrator

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/foresight-nomad/foresight/forecast"
	"github.com/foresight-nomad/foresight/profiles"
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
	Group  string `json:"group"`
	Mode   Mode   `json:"mode"`
	Policy Policy `json:"policy"`
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
//   - budget: destructive changes (class, resources) only while fewer than
//     cfg.RewritesPerHour were made in the last hour;
//   - resources, when rightsizing: the per-allocation usage quantile plus
//     cfg.RightsizeMargin, within bounds, only when it moves by more than
//     cfg.RightsizeTolerance;
//   - count: ⌈D·(1+headroom) / (r·utilisation)⌉ for the demand D and the
//     per-allocation reservation r of each forecast resource, the largest
//     of them, within min/max, at most max_step away, and only after the
//     cooldown of its direction since the last count change (a count out
//     of bounds is brought back regardless of cooldown);
//   - class: among steerable classes whose free plus arriving capacity holds
//     what the new count needs beyond what already runs there, the best
//     score (external first when equal, then ID), staying on the current one
//     unless the best beats it by more than cfg.SwitchMargin;
//   - capacity: when no external class has room, provider capacity is
//     requested on the best provider class, unless a provider class
//     already has room. When no class at all holds the group, it stays on
//     its class (the allocations it cannot hold spill onto the capacity
//     bought) and the request is what the external classes cannot hold; a
//     group with no class yet is steered to the provider class. With no
//     provider class either, the decision is Unplaceable.
func Decide(cfg Config, in Input) Decision {
	cfg = cfg.withDefaults()
	d := Decision{Group: in.Group, Class: in.Current, Current: in.Current, Count: in.Count, CurrentCount: in.Count}
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
		d.why("count %d asked by the autoscaler: %s", want, orText(in.WantReason, "no reason given"))
	} else if in.Demand == nil {
		d.why("count kept at %d: no forecast", cur)
	} else {
		// need holds the demand at the target utilisation; down, at a
		// utilisation lower by the scale-down band, is how far the count
		// may fall: a count is only given back when the demand has fallen
		// clearly below it, not when it wavers around a boundary.
		need, down, basis := 0, 0, ""
		dims := []struct {
			name, unit  string
			demand, per float64
		}{
			{"cpu", "MHz", in.Demand.CPUMHz, perAlloc.CPUMHz},
			{"memory", "MB", in.Demand.MemoryMB, perAlloc.MemoryMB},
		}
		for _, dim := range dims {
			if dim.demand <= 0 || dim.per <= 0 {
				continue
			}
			if dim.name == "memory" && in.Usage != nil && in.Usage.MemoryMB*(1+pol.Headroom) >= dim.per*pol.TargetUtilization {
				// Each allocation already holds most of its reservation:
				// more of them would each hold as much (memory that does
				// not shrink with the load), so memory cannot size the
				// count; its reservation is what must change.
				d.why("memory does not size the count: one allocation uses %.0f MB of its %.0f MB (p%g); rightsize its memory instead (%s)",
					in.Usage.MemoryMB, dim.per, pol.Quantile*100, MetaRightsize)
				continue
			}
			n := int(math.Ceil(dim.demand * (1 + pol.Headroom) / (dim.per * pol.TargetUtilization)))
			down = max(down, int(math.Ceil(dim.demand*(1+pol.Headroom)/(dim.per*pol.TargetUtilization*(1-cfg.ScaleDownBand)))))
			if basis == "" || n > need {
				need = n
				basis = fmt.Sprintf("p%g %s demand %.0f %s × %.2f / (%.0f %s × %.2f) = %d",
					pol.Quantile*100, dim.name, dim.demand, dim.unit, 1+pol.Headroom, dim.per, dim.unit, pol.TargetUtilization, n)
			}
		}
		if basis == "" {
			d.why("count kept at %d: the forecast has no demand for a reserved resource", cur)
		} else {
			want = need
			d.why("count needed: %s", basis)
			if need < cur {
				want = min(cur, down)
				if want == cur {
					d.why("count kept at %d: it is not %.0f%% above what the demand needs (scale-down band)", cur, cfg.ScaleDownBand*100)
				}
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

func chooseClass(cfg Config, in Input, perAlloc Resources, budget bool, rewrites int, d *Decision) {
	if in.Room == nil {
		d.why("class unchanged: no classes known")
		return
	}
	if len(in.Scores) == 0 {
		d.why("class unchanged: no affinity scores for the group yet")
		return
	}
	// top holds the best candidates with room, best first: the target and
	// its fallbacks. Only those and the current class are needed, so no
	// sort of every class.
	var top [maxAffinities]candidate
	ntop := 0
	var cur, bestProvider *candidate
	var curCand candidate
	hasExternal := false
	for i := range in.Scores {
		s := &in.Scores[i]
		c, ok := in.Room.class(s.Class)
		if !ok {
			continue
		}
		if _, ok := steerable(c); !ok {
			continue
		}
		cd := candidate{score: s, class: c, external: c.Traits.Platform == profiles.PlatformExternal}
		if !cd.external && (bestProvider == nil || better(cd, *bestProvider)) {
			p := cd
			bestProvider = &p
		}
		short, fits := shortfall(in.Room, c, need(in, c, d.Count, perAlloc), perAlloc)
		if !fits || short != (Resources{}) {
			continue
		}
		hasExternal = hasExternal || cd.external
		if s.Class == in.Current {
			curCand = cd
			cur = &curCand
		}
		j := ntop
		for j > 0 && better(cd, top[j-1]) {
			j--
		}
		if j < maxAffinities {
			copy(top[j+1:], top[j:min(ntop, maxAffinities-1)])
			top[j] = cd
			ntop = min(ntop+1, maxAffinities)
		}
	}
	cands := top[:ntop]

	target := ""
	if len(cands) > 0 {
		target = cands[0].score.Class
		if cur != nil {
			gain := cands[0].score.Value - cur.score.Value
			if gain <= cfg.SwitchMargin {
				if target != in.Current {
					d.why("class stays %s: %s scores only %.1f more (margin %.1f)", in.Current, target, gain, cfg.SwitchMargin)
				}
				target = in.Current
			}
		} else if home, ok := in.Room.class(in.Current); ok && home.Traits.Platform == profiles.PlatformExternal && !cands[0].external {
			// The group's external class is full and only provider
			// classes have room: it stays, and what its class cannot
			// hold spills onto the provider capacity, unless a provider
			// class is clearly better. Moving it would rewrite its
			// affinities, replace every allocation, and keep it on
			// provider capacity once the demand falls again.
			if s, ok := scoreOf(in.Scores, in.Current); ok {
				if gain := cands[0].score.Value - s.Value; gain <= cfg.SwitchMargin {
					d.why("class stays %s although it is full: provider class %s scores only %.1f more (margin %.1f); the allocations it cannot hold spill onto provider capacity",
						in.Current, target, gain, cfg.SwitchMargin)
					target = in.Current
				}
			}
		}
	}
	if !hasExternal {
		switch {
		case bestProvider == nil:
			if len(cands) == 0 {
				d.Unplaceable = true
				d.why("no class has room for %d × %.0f MHz / %.0f MB and there is no provider class to request capacity from",
					d.Count, perAlloc.CPUMHz, perAlloc.MemoryMB)
			}
		case len(cands) == 0:
			c := bestProvider.class
			_, fits := shortfall(in.Room, c, perAlloc, perAlloc)
			if !fits {
				d.Unplaceable = true
				d.why("no class has room, and one allocation (%.0f MHz / %.0f MB) is larger than a node of provider class %s",
					perAlloc.CPUMHz, perAlloc.MemoryMB, c.ID)
				break
			}
			var short Resources
			if home, ok := in.Room.class(in.Current); ok {
				// Stay: a rewrite would replace every allocation, while
				// the ones the class cannot hold spill, under soft
				// affinities, onto whatever has room, the capacity
				// requested included.
				short = spill(in, home, c, d.Count, perAlloc)
				target = in.Current
			} else {
				short, _ = shortfall(in.Room, c, need(in, c, d.Count, perAlloc), perAlloc)
				target = c.ID
			}
			if short != (Resources{}) {
				d.Capacity = &CapacityRequest{Class: c.ID, CPUMHz: short.CPUMHz, MemoryMB: short.MemoryMB}
				d.why("no external class has room: request %.0f MHz / %.0f MB on provider class %s", short.CPUMHz, short.MemoryMB, c.ID)
			}
		}
	}
	if target == "" || target == in.Current {
		return
	}
	if in.Current == "" {
		// No managed affinity yet: the group runs where Nomad put it. The
		// first affinities replace every allocation, so that class is
		// left only for a clear gain, as a managed class would be.
		if home, gain, ok := stayHome(cfg, in, target, perAlloc, d.Count); ok {
			d.why("class not set: %s scores only %.1f more than %s, where the group runs (margin %.1f)", target, gain, home, cfg.SwitchMargin)
			return
		}
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
	d.Affinities = affinities(in, target, cands)
	if in.Current == "" {
		d.why("class %s: best score with room", target)
	} else {
		d.why("class %s → %s", in.Current, target)
	}
}

// stayHome reports whether a group without managed affinities should stay
// on the class most of its allocations run on rather than be steered to
// target: that class holds it and target does not score more than the
// switch margin above it.
func stayHome(cfg Config, in Input, target string, perAlloc Resources, count int) (string, float64, bool) {
	home, most := "", 0
	for c, n := range in.Running {
		if n > most || n == most && c < home {
			home, most = c, n
		}
	}
	if home == "" || home == target {
		return "", 0, false
	}
	hs, ok1 := scoreOf(in.Scores, home)
	ts, ok2 := scoreOf(in.Scores, target)
	c, ok3 := in.Room.class(home)
	if !ok1 || !ok2 || !ok3 {
		return "", 0, false
	}
	if short, fits := shortfall(in.Room, c, need(in, c, count, perAlloc), perAlloc); !fits || short != (Resources{}) {
		return "", 0, false
	}
	gain := ts.Value - hs.Value
	return home, gain, gain <= cfg.SwitchMargin
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

func orText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
