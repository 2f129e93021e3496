package sim

import "time"

// gcThreshold is how long terminal allocations and finished evaluations are
// kept, as Nomad's eval_gc_threshold defaults.
const gcThreshold = time.Hour

// gcInterval is how often the collector runs on the virtual clock.
const gcInterval = 5 * time.Minute

// collectGarbage drops terminal allocations and finished evaluations older
// than the threshold, so that long runs keep a bounded state, as Nomad's
// core scheduler does.
func (c *Cluster) collectGarbage(now time.Time) {
	cutoff := now.Add(-gcThreshold).UnixNano()
	keep := c.allocList[:0]
	removed := 0
	for _, a := range c.allocList {
		if a.terminal() && a.api.ModifyTime < cutoff {
			delete(c.allocs, a.api.ID)
			removed++
			continue
		}
		keep = append(keep, a)
	}
	clear(c.allocList[len(keep):])
	c.allocList = keep
	evals := c.evalList[:0]
	for _, e := range c.evalList {
		if e.Status != evalBlocked && e.ModifyTime < cutoff {
			delete(c.evals, e.ID)
			removed++
			continue
		}
		evals = append(evals, e)
	}
	clear(c.evalList[len(evals):])
	c.evalList = evals
	if c.collectDeployments(now) > 0 {
		c.bump(tableAllocs, tableEvals, tableDeployments)
	} else if removed > 0 {
		c.bump(tableAllocs, tableEvals)
	}
}
