package orchestrator

import (
	"path"

	"github.com/hashicorp/nomad/api"
)

// FeasibleClasses are the IDs of the classes whose nodes the job may be
// placed on as far as its datacenters (glob patterns, as Nomad 1.6 reads
// them; none means every one) and its node pool ("all" is every pool, none
// is "default") allow. Constraints are not evaluated: a class they rule out
// still counts, so a rewrite is skipped only where it surely cannot matter.
func FeasibleClasses(job *api.Job, room *Room) []string {
	if room == nil {
		return nil
	}
	pool := deref(job.NodePool)
	if pool == "" {
		pool = api.NodePoolDefault
	}
	out := make([]string, 0, len(room.classes))
	for i := range room.classes {
		c := &room.classes[i]
		if inPool(c.Traits.Pool, pool) && inDatacenters(c.Traits.Datacenter, job.Datacenters) {
			out = append(out, c.ID)
		}
	}
	return out
}

func inPool(class, pool string) bool {
	return pool == api.NodePoolAll || class == "" || class == pool
}

func inDatacenters(class string, patterns []string) bool {
	if class == "" || len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, class); ok || p == class {
			return true
		}
	}
	return false
}
