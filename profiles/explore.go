package profiles

import (
	"fmt"
	"sort"
	"strconv"
)

// Placement is where a group's allocations run now, as the orchestrator
// sees it when it considers exploring.
type Placement struct {
	// Group is "namespace/job/group".
	Group string
	// Count is the group's desired count.
	Count int
	// CPUMHz and MemoryMB are what one allocation asks for.
	CPUMHz, MemoryMB float64
	// Running counts the group's running allocations by class ID.
	Running map[string]int
}

// Exploration proposes moving one allocation of a group from one class to
// a class with little evidence. The orchestrator applies it with one job
// write: a spread on the class attribute whose targets keep the group on
// the classes it runs on, one allocation fewer on From, and give To one
// allocation's share. Nomad treats a changed spread as a destructive
// update, so its rolling update replaces every allocation of the group,
// and the spread puts the replacements back where they were but one on To.
type Exploration struct {
	Group    string
	From, To string
	// Reason explains the choice in one line.
	Reason string
}

// Explore proposes explorations: a small share of placements on classes
// the group has little evidence on, so that a better class can be found.
// Every proposal keeps these bounds, so exploring never risks a group's
// capacity:
//
//   - the group has at least Config.ExploreMinCount allocations wanted and
//     all of them running (a group short of capacity does not explore, nor
//     one whose rolling update is still under way: a write now would
//     start it over);
//   - it has no allocation on an unproven class (confidence below
//     Config.ExploreConfidence, or a class no longer known) other than its
//     home, the class holding most of its allocations: one allocation in
//     doubt at a time;
//   - one allocation moves, from the lowest-scored class among home and
//     the classes already proven, so that allocations parked on a class
//     while it was explored are the first to move on;
//   - the target has a single node with room for the allocation and is not
//     scored below Config.ExploreFloor (the prior rules it out);
//   - over all groups, allocations on unproven classes stay within
//     Config.ExploreShare of all running allocations (at least one).
//
// Among unproven classes, the one with the highest score wins (ties by
// ID): with no evidence that is the prior's choice. When the budget is
// short, groups proven on the fewest classes go first, so that none is
// starved, then those whose candidate promises the most over the class
// the allocation leaves.
func (p *Profiler) Explore(placements []Placement) ([]Exploration, error) {
	type candidate struct {
		e      Exploration
		proven int // classes the group has enough evidence on
		gain   float64
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ref := p.references()
	byID := make(map[string]*Class, len(p.classes))
	for i := range p.classes {
		byID[p.classes[i].ID] = &p.classes[i]
	}
	var running, doubtful int
	var cands []candidate
	seen := map[string]bool{}
	for _, pl := range placements {
		if seen[pl.Group] {
			return nil, fmt.Errorf("explore: group %q listed twice", pl.Group)
		}
		seen[pl.Group] = true
		if pl.Count < 0 || pl.CPUMHz < 0 || pl.MemoryMB < 0 {
			return nil, fmt.Errorf("explore: group %q: count and ask must not be negative", pl.Group)
		}
		scores := p.scores(pl.Group, ref)
		byClass := make(map[string]*Score, len(scores))
		for i := range scores {
			byClass[scores[i].Class] = &scores[i]
		}
		proven := 0
		for i := range scores {
			if scores[i].Confidence >= p.cfg.ExploreConfidence {
				proven++
			}
		}
		home, total := "", 0
		for class, k := range pl.Running {
			if k < 0 {
				return nil, fmt.Errorf("explore: group %q: %d allocations on %q", pl.Group, k, class)
			}
			total += k
			if k > pl.Running[home] || (k == pl.Running[home] && (home == "" || class < home)) {
				home = class
			}
		}
		running += total
		inDoubt, from := 0, ""
		for class, k := range pl.Running {
			if k == 0 {
				continue
			}
			s := byClass[class]
			if s == nil || (class != home && s.Confidence < p.cfg.ExploreConfidence) {
				inDoubt += k
				continue
			}
			if from == "" || s.Value < byClass[from].Value || (s.Value == byClass[from].Value && class < from) {
				from = class
			}
		}
		doubtful += inDoubt
		if inDoubt > 0 || pl.Count < p.cfg.ExploreMinCount || total < pl.Count || byClass[home] == nil {
			continue
		}
		var best *Score
		for i := range scores {
			s := &scores[i]
			c := byID[s.Class]
			if pl.Running[s.Class] > 0 || s.Confidence >= p.cfg.ExploreConfidence || s.Value < p.cfg.ExploreFloor ||
				c.MaxFreeCPUMHz < pl.CPUMHz || c.MaxFreeMemoryMB < pl.MemoryMB {
				continue
			}
			if best == nil || s.Value > best.Value || (s.Value == best.Value && s.Class < best.Class) {
				best = s
			}
		}
		if best == nil {
			continue
		}
		r := "confidence " + strconv.FormatFloat(best.Confidence, 'f', 2, 64) +
			" after " + strconv.FormatFloat(best.AllocHours, 'f', 1, 64) + " alloc-hours; " + best.Reason
		cands = append(cands, candidate{Exploration{pl.Group, from, best.Class, r}, proven, best.Value - byClass[from].Value})
	}
	budget := max(1, int(p.cfg.ExploreShare*float64(running))) - doubtful
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].proven != cands[j].proven {
			return cands[i].proven < cands[j].proven
		}
		if cands[i].gain != cands[j].gain {
			return cands[i].gain > cands[j].gain
		}
		return cands[i].e.Group < cands[j].e.Group
	})
	var out []Exploration
	for _, c := range cands {
		if len(out) >= budget {
			break
		}
		out = append(out, c.e)
	}
	return out, nil
}
