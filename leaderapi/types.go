// Package leaderapi is the Foresight leader's HTTP API as its users see it:
// the wire types of every endpoint, the one client that the CLI, the
// Nomad Autoscaler plugins and the tests use, and how to find the leader
// (FORESIGHT_ADDR, or the agent named in the Consul election key).
//
// The leader serves these types and nothing else; a field added here is
// added for every reader at once.
package leaderapi

import (
	"fmt"
	"time"

	"github.com/foresight-nomad/foresight/forecast"
	"github.com/foresight-nomad/foresight/orchestrator"
	"github.com/foresight-nomad/foresight/profiles"
	"github.com/foresight-nomad/foresight/telemetry"
)

// LeaderInfo names the leader.
type LeaderInfo struct {
	ID, HTTP, GRPC string
	Since          time.Time
}

// AgentStatus is one agent as the leader sees it.
type AgentStatus struct {
	ID          string
	Node        string
	LastContact time.Time
	Samples     int64
}

// Status is `GET /v1/status`.
type Status struct {
	// Now is the leader's time: the wall clock, or sim's clock for a
	// leader that follows sim's.
	Now            time.Time
	Leader         LeaderInfo
	Paused         bool
	Agents         []AgentStatus
	Groups         int
	Series         int
	Samples        int64
	FreshestSample *time.Time `json:",omitempty"`
}

// Health is `GET /v1/health`, which every agent answers.
type Health struct {
	OK bool `json:"ok"`
	// Leader says whether the agent answering leads.
	Leader bool `json:"leader"`
}

// GroupSummary is one group in `GET /v1/groups`.
type GroupSummary struct {
	Group   string
	Metrics []string
}

// GroupView is `GET /v1/group/{namespace}/{job}/{group}`: what the leader
// holds for the group, what it needs, and how it fares on each resource
// class, best first.
type GroupView struct {
	Group   string
	Metrics []string
	// Sources says, per metric, how the agents read it over the last
	// minutes (telemetry.Source*: "nomad", "cgroup", "process", …).
	Sources map[string][]string `json:",omitempty"`
	// Unavailable says, per metric some of the group's tasks cannot have,
	// why (telemetry.Absent*): "host network: not attributable", "no
	// pressure on cgroup v1". Such a metric is missing, not zero.
	Unavailable map[string][]string `json:",omitempty"`
	Profile     *profiles.Profile   `json:",omitempty"`
	Affinity    []profiles.Score
	// History says, per metric, where the history a forecast reads came
	// from: the agents, or a backfill from Prometheus.
	History []HistorySource `json:",omitempty"`
}

// HistorySource is a stretch of a series' history from one source:
// "agents" (their own samples) or "prometheus" (backfilled from Nomad's
// allocation metrics), its first and last point, and how many points at
// Step there are.
type HistorySource struct {
	Metric   string `json:",omitempty"`
	Source   string
	From, To time.Time
	Points   int
	Step     string
}

// SeriesResponse is `GET /v1/group/…/series`.
type SeriesResponse struct {
	Group, Metric string
	Step          string
	Points        []telemetry.Point
}

// ForecastPoint is one step of a forecast.
type ForecastPoint struct {
	Time      time.Time
	Mean      float64
	Quantiles map[string]float64
}

// ForecastResponse is `GET /v1/group/…/forecast`.
type ForecastResponse struct {
	Group, Metric string
	Step          string
	// Model is the forecaster chosen for this series, Reason why, and
	// Warnings any fallback (too little history, gaps).
	Model    string
	Reason   string
	Warnings []string `json:",omitempty"`
	// History says where the history the forecast was fitted on came from.
	History []HistorySource `json:",omitempty"`
	Points  []ForecastPoint
}

// Decision is one decision of the leader for a group: what it decided and
// why, the changes to the job, and whether they were written (Held says
// why not: recommend mode, paused, a bad policy, a plan that cannot place).
// `GET /v1/decisions` lists them, oldest first; `GET /v1/plan` decides
// every group now without writing anything.
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

// PauseResponse is the answer to `POST /v1/pause` and `POST /v1/resume`.
type PauseResponse struct {
	Paused bool
}

// ScaleRequest is `POST /v1/group/{ns}/{job}/{group}/scale`: a count the
// Nomad Autoscaler asks for through the foresight-target plugin. Error
// reports that the autoscaler's policy failed: it is logged, nothing else.
type ScaleRequest struct {
	// Count is required; a pointer so that a missing count is told from 0.
	Count  *int64         `json:"count"`
	Reason string         `json:"reason"`
	Error  bool           `json:"error"`
	Meta   map[string]any `json:"meta,omitempty"`
}

// ScaleResponse is what the leader did with a ScaleRequest: the count it
// decided (within the group's bounds and step), whether it was written,
// and why not (recommend mode, paused, a plan that cannot place).
type ScaleResponse struct {
	CountBefore int64    `json:"count_before"`
	Count       int64    `json:"count"`
	Written     bool     `json:"written"`
	Mode        string   `json:"mode"`
	Held        string   `json:"held,omitempty"`
	Reasons     []string `json:"reasons"`
	// Deployment is the job's active deployment when it held the write.
	Deployment *orchestrator.Deployment `json:"deployment,omitempty"`
}

// ScaleStatus is `GET /v1/group/{ns}/{job}/{group}/scale`: the group's
// running count and readiness, and the last count change by Nomad's
// scaling events or by Foresight, so that the autoscaler's cooldowns see
// both. Ready is false while the job is stopped or has an active
// deployment (Deployment then says which): the autoscaler does not scale
// a target that is not ready.
type ScaleStatus struct {
	Count int64 `json:"count"`
	Ready bool  `json:"ready"`
	// Deployment is the job's active deployment, if any.
	Deployment *orchestrator.Deployment `json:"deployment,omitempty"`
	// LastEvent is in Unix nanoseconds, 0 when there was none.
	LastEvent int64  `json:"last_event"`
	Mode      string `json:"mode"`
	// Hold says why the group's Foresight policy cannot be read, if so.
	Hold string `json:"hold,omitempty"`
}

// ErrorResponse is the body of every answer other than 200.
type ErrorResponse struct {
	Error string `json:"error"`
}

// Quantile returns the forecast's values at level q, one per step.
func (f ForecastResponse) Quantile(q float64) ([]float64, error) {
	name := forecast.QuantileName(q)
	out := make([]float64, 0, len(f.Points))
	for _, pt := range f.Points {
		v, ok := pt.Quantiles[name]
		if !ok {
			return nil, fmt.Errorf("forecast of %s %s has no %s", f.Group, f.Metric, name)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty forecast of %s %s", f.Group, f.Metric)
	}
	return out, nil
}
