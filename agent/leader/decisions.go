package leader

import "github.com/foresight-nomad/foresight/leaderapi"

// decisionLogSize is how many decisions the leader keeps for the API.
const decisionLogSize = 1000

// DecisionLog keeps the most recent decisions, newest last.
type DecisionLog struct {
	ring ring[leaderapi.Decision]
}

// Add records a decision.
func (l *DecisionLog) Add(d leaderapi.Decision) { l.ring.add(d, decisionLogSize) }

// List returns the decisions kept, oldest first.
func (l *DecisionLog) List() []leaderapi.Decision { return l.ring.all() }
