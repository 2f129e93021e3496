package agent

import (
	"sync"
	"time"
)

// decisionLogSize is how many decisions the leader keeps for the API.
const decisionLogSize = 1000

// Decision is one thing the leader decided for a group, with its reasons.
type Decision struct {
	Time   time.Time
	Group  string
	Kind   string
	Detail string
	// Applied is false in recommend mode, when paused, or when the action
	// was refused; Reason says which.
	Applied bool
	Reason  string
}

// DecisionLog keeps the most recent decisions, newest last.
type DecisionLog struct {
	mu   sync.Mutex
	list []Decision
}

// Add records a decision.
func (l *DecisionLog) Add(d Decision) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.list = append(l.list, d)
	if len(l.list) > decisionLogSize {
		l.list = append(l.list[:0:0], l.list[len(l.list)-decisionLogSize:]...)
	}
}

// List returns the decisions kept, oldest first.
func (l *DecisionLog) List() []Decision {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Decision{}, l.list...)
}
