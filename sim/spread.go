package sim

import "github.com/hashicorp/nomad/api"

// implicitSpreadTarget stands for every attribute value a spread's targets
// do not name, as Nomad's implicitTarget does: they share what remains of
// 100 %.
const implicitSpreadTarget = "*"

// spreadScorer is Nomad's SpreadIterator (scheduler/spread.go) for one task
// group in one evaluation: it scores a node by how much placing one more
// allocation there moves the group towards the distribution its spread
// blocks ask for. Counts follow Nomad's propertySet: the group's
// non-terminal allocations, plus what the plan places, minus what the plan
// stops.
type spreadScorer struct {
	sets []*spreadSet
	// info is keyed by attribute, as Nomad's spreadAttributeMap: when the
	// job and the group both spread on one attribute, the job's block
	// gives the desired counts and weight for both property sets.
	info       map[string]*spreadInfo
	sumWeights float64
	// lowest is Nomad's lowestSpreadBoost: the most negative boost seen
	// so far in the evaluation, -1 at first, which a value whose target is
	// 0 % scores. Shared by every group of the evaluation, as in Nomad.
	lowest *float64
	// existing counts, per node, the group's non-terminal allocations;
	// cleared the ones the plan has stopped so far.
	existing, cleared map[*simNode]int
}

// spreadSet is one spread block's property set: the attribute and the
// values its targets name (the others count together as "*").
type spreadSet struct {
	attr    string
	targets map[string]bool
	// use is the combined use per targeted value, refreshed by prepare
	// before a node is chosen. A value every allocation of which is
	// being stopped stays in the map with 0, as in Nomad.
	use map[string]int
}

type spreadInfo struct {
	weight  float64
	desired map[string]float64
}

// newSpreadScorer prepares the spreads of tg (job-level first, then the
// group's, the order in which Nomad builds property sets), or returns nil
// when there are none. live are the group's non-terminal allocations.
func newSpreadScorer(job *api.Job, tg *api.TaskGroup, live []*simAlloc, lowest *float64) *spreadScorer {
	if len(job.Spreads)+len(tg.Spreads) == 0 {
		return nil
	}
	s := &spreadScorer{info: map[string]*spreadInfo{}, lowest: lowest, existing: map[*simNode]int{}, cleared: map[*simNode]int{}}
	for _, sp := range append(append([]*api.Spread{}, job.Spreads...), tg.Spreads...) {
		set := &spreadSet{attr: sp.Attribute, targets: map[string]bool{}}
		for _, t := range sp.SpreadTarget {
			set.targets[t.Value] = true
		}
		s.sets = append(s.sets, set)
	}
	count := 0
	if tg.Count != nil {
		count = *tg.Count
	}
	// Group blocks first, then the job's, so the job's win a shared
	// attribute: the order of Nomad's computeSpreadInfo.
	for _, sp := range append(append([]*api.Spread{}, tg.Spreads...), job.Spreads...) {
		weight := 50.0 // api.Spread.Canonicalize's default
		if sp.Weight != nil {
			weight = float64(*sp.Weight)
		}
		si := &spreadInfo{weight: weight, desired: map[string]float64{}}
		sum := 0.0
		for _, t := range sp.SpreadTarget {
			d := float64(t.Percent) / 100 * float64(count)
			si.desired[t.Value] = d
			sum += d
		}
		if sum > 0 && sum < float64(count) {
			si.desired[implicitSpreadTarget] = float64(count) - sum
		}
		s.info[sp.Attribute] = si
		// Nomad's iterator keeps adding to one sum for every group it
		// sees in an evaluation, which dilutes the weights of later
		// groups; sim normalises over the group's own spreads, which is
		// what the weights mean.
		s.sumWeights += weight
	}
	for _, a := range live {
		s.existing[a.node]++
	}
	return s
}

// clear records that the plan stops an allocation on n.
func (s *spreadScorer) clear(n *simNode) {
	if s != nil {
		s.cleared[n]++
	}
}

// unclear takes back a stop on n, for a replacement that fit nowhere: the
// old allocation keeps running.
func (s *spreadScorer) unclear(n *simNode) {
	if s != nil && s.cleared[n] > 0 {
		s.cleared[n]--
	}
}

// targeted folds values the targets do not name into "*", as Nomad's
// targetedPropertyValue does; without targets every value is its own.
func (set *spreadSet) targeted(v string) string {
	if len(set.targets) == 0 || set.targets[v] {
		return v
	}
	return implicitSpreadTarget
}

// prepare recomputes every set's combined use from the allocations that
// exist, those the plan places (planned) and those it stops, as Nomad's
// PopulateProposed and GetCombinedUseMap do before each selection.
func (s *spreadScorer) prepare(planned map[*simNode]int) {
	if s == nil {
		return
	}
	tally := func(set *spreadSet, by map[*simNode]int) map[string]int {
		out := map[string]int{}
		for n, k := range by {
			if k == 0 {
				continue
			}
			if v, ok := resolveTarget(n, set.attr); ok {
				out[set.targeted(v)] += k
			}
		}
		return out
	}
	for _, set := range s.sets {
		existing, proposed, cleared := tally(set, s.existing), tally(set, planned), tally(set, s.cleared)
		// Nomad forgets one stop of a value that a placement uses again
		// when more than one of it is stopped (its way of undoing the
		// eviction it stages to test an in-place update); kept for
		// fidelity with max_parallel above 1.
		for v := range proposed {
			if cleared[v] > 1 {
				cleared[v]--
			}
		}
		use := map[string]int{}
		for _, m := range []map[string]int{existing, proposed} {
			for v, k := range m {
				use[v] += k
			}
		}
		for v, k := range cleared {
			if _, ok := use[v]; ok {
				use[v] = max(0, use[v]-k)
			}
		}
		set.use = use
	}
}

// score is the node's allocation-spread score: the sum over the spreads of
// each one's boost, 0 when the spreads have no opinion (then Nomad leaves
// it out of the average). prepare must have run for this selection.
func (s *spreadScorer) score(n *simNode) float64 {
	if s == nil {
		return 0
	}
	total := 0.0
	for _, set := range s.sets {
		v, ok := resolveTarget(n, set.attr)
		if !ok {
			// Nomad's penalty for a node that lacks the attribute.
			total--
			continue
		}
		info := s.info[set.attr]
		if len(info.desired) == 0 {
			total += evenSpreadBoost(set.use, v)
			continue
		}
		key := set.targeted(v)
		desired, ok := info.desired[key]
		if !ok {
			// Every percent is given to named values: this one is
			// wanted nowhere.
			total--
			continue
		}
		if desired == 0 {
			total += *s.lowest
			continue
		}
		used := float64(set.use[key] + 1) // with this placement
		boost := (desired - used) / desired * info.weight / s.sumWeights
		total += boost
		if boost < *s.lowest {
			*s.lowest = boost
		}
	}
	return total
}

// evenSpreadBoost is Nomad's evenSpreadScoreBoost, for a spread without
// targets: a value with fewer allocations than the least used one is
// boosted by how far it is below it, a value above it is penalised by as
// much, and when every value holds the same number the penalty is full.
// Nomad uses 0 as "not yet set" while it looks for the smallest count, so
// a value whose allocations are all being stopped ends up the minimum or
// not depending on map order; sim takes the smallest count above 0 (the
// intent), which agrees with Nomad whenever Nomad is deterministic.
func evenSpreadBoost(use map[string]int, v string) float64 {
	if len(use) == 0 {
		return 0 // nothing placed yet
	}
	current := use[v]
	minCount, maxCount := 0, 0
	for _, k := range use {
		if k > 0 && (minCount == 0 || k < minCount) {
			minCount = k
		}
		maxCount = max(maxCount, k)
	}
	switch {
	case current != minCount:
		if minCount == 0 {
			return -1
		}
		return float64(minCount-current) / float64(minCount)
	case minCount == maxCount:
		return -1
	case minCount == 0:
		return 1
	}
	return float64(maxCount-minCount) / float64(minCount)
}
