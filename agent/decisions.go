package agent

import (
	"time"

	"github.com/foresight-nomad/foresight/orchestrator"
)

// decisionLogSize is how many decisions the leader keeps for the API.
const decisionLogSize = 1000

// Decision is one decision of the leader for a group: what it decided and
// why, the changes to the job, and whether they were written (Held says
// why not: recommend mode, paused, a bad policy, a plan that cannot place).
type Decision struct {
	Time   time.Time
	Group  string
	Result orchestrator.Result
	// Routing is what the Consul routing did for an enforced group, and
	// Migration the allocation moved (or why none was).
	Routing   *orchestrator.RouteResult   `json:",omitempty"`
	Migration *orchestrator.MigrateResult `json:",omitempty"`
	// Capacity is what a capacity target did in a pass; such an entry has
	// no Group, since a target serves every group on its classes.
	Capacity []orchestrator.CapacityAction `json:",omitempty"`
	// Error is set when the job could not be read or written, or routing
	// or migration failed.
	Error string `json:",omitempty"`
}

// DecisionLog keeps the most recent decisions, newest last.
type DecisionLog struct {
	ring ring[Decision]
}

// Add records a decision.
func (l *DecisionLog) Add(d Decision) { l.ring.add(d, decisionLogSize) }

// List returns the decisions kept, oldest first.
func (l *DecisionLog) List() []Decision { return l.ring.all() }
