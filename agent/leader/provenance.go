package leader

import (
	"slices"
	"sync"
	"time"

	"github.com/foresight-nomad/foresight/telemetry"
)

// provenanceWindow is how long after a group's newest sample a source or a
// note still counts: a task that moved to another node, or a layout that
// changed, drops out of the group view after it.
const provenanceWindow = 10 * time.Minute

// provenance remembers, per group and metric, how the agents read it
// (telemetry.Source*) and why some tasks could not have it
// (telemetry.Absent*), each as of the newest sample time it came with. It
// is rebuilt from the agents' replayed batches like the store, so a new
// leader knows it too.
type provenance struct {
	mu      sync.Mutex
	sources map[provKey]time.Time
	absent  map[provKey]time.Time
	newest  map[string]time.Time // per group
}

// provKey is a group's metric and one source or reason.
type provKey struct{ group, metric, what string }

func newProvenance() *provenance {
	return &provenance{sources: map[provKey]time.Time{}, absent: map[provKey]time.Time{}, newest: map[string]time.Time{}}
}

// take records the sources of a batch's samples.
func (p *provenance) take(samples []telemetry.Sample) {
	// A batch repeats the same few (group, metric, source) many times:
	// fold them before taking the lock.
	seen := map[provKey]time.Time{}
	for i := range samples {
		sm := &samples[i]
		if sm.Source == "" {
			continue
		}
		k := provKey{sm.Group, sm.Metric, sm.Source}
		if sm.Time.After(seen[k]) {
			seen[k] = sm.Time
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, t := range seen {
		p.mark(p.sources, k, t)
	}
}

// note records notes that came with a batch whose newest sample is at at.
func (p *provenance) note(at time.Time, notes []telemetry.Note) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range notes {
		p.mark(p.absent, provKey{n.Group, n.Metric, n.Reason}, at)
	}
}

func (p *provenance) mark(m map[provKey]time.Time, k provKey, t time.Time) {
	if t.After(m[k]) {
		m[k] = t
	}
	if t.After(p.newest[k.group]) {
		p.newest[k.group] = t
	}
}

// of returns, for one group, the sources of each metric and the reasons
// for each metric some tasks lack, seen within provenanceWindow of the
// group's newest; nil maps when there are none.
func (p *provenance) of(group string) (sources, absent map[string][]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cutoff := p.newest[group].Add(-provenanceWindow)
	collect := func(m map[provKey]time.Time) map[string][]string {
		var out map[string][]string
		for k, t := range m {
			if k.group != group || t.Before(cutoff) {
				continue
			}
			if out == nil {
				out = map[string][]string{}
			}
			out[k.metric] = append(out[k.metric], k.what)
		}
		for _, whats := range out {
			slices.Sort(whats)
		}
		return out
	}
	return collect(p.sources), collect(p.absent)
}
