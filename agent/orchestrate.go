package agent

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/foresight-nomad/foresight/forecast"
	"github.com/foresight-nomad/foresight/orchestrator"
)

// Defaults of the decision loop.
const (
	// DefaultDecisionInterval is how often every group is decided.
	DefaultDecisionInterval = time.Minute
	// DefaultLeadTime is how long new capacity takes to be ready; with one
	// decision interval it makes the forecast horizon.
	DefaultLeadTime = 4 * time.Minute
	// decisionStep is the grid the decision forecasts on, and usageWindow
	// how far back per-allocation usage is read for rightsizing.
	decisionStep = time.Minute
	usageWindow  = 6 * time.Hour
)

// decider runs the orchestrator over every group the leader holds telemetry
// for, once per interval, for one leadership term.
type decider struct {
	st       *leaderState
	nomad    *nomadapi.Client
	act      *orchestrator.Actuator
	cfg      orchestrator.Config
	interval time.Duration
	horizon  time.Duration
	log      hclog.Logger
	actions  *prometheus.CounterVec

	mu      sync.Mutex
	damping map[string]*orchestrator.Damping
}

func newDecider(st *leaderState, nomad *nomadapi.Client, reg prometheus.Registerer, interval time.Duration, o OrchestratorSettings, log hclog.Logger) *decider {
	if interval <= 0 {
		interval = DefaultDecisionInterval
	}
	lead := o.LeadTime
	if lead <= 0 {
		lead = DefaultLeadTime
	}
	act := orchestrator.NewActuator(nomad)
	act.Paused = st.pause.Paused
	actions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "foresight_orchestrator_actions_total",
		Help: "Decisions that changed or would change a job, by kind and whether they were written.",
	}, []string{"kind", "written"})
	reg.MustRegister(actions)
	return &decider{
		st: st, nomad: nomad, act: act, interval: interval, horizon: lead + interval,
		cfg: orchestrator.Config{Mode: o.Mode}, log: log, actions: actions, damping: map[string]*orchestrator.Damping{},
	}
}

// run decides every interval until ctx ends; nothing is written after it
// does, because every write happens inside a pass under ctx.
func (d *decider) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.st.clock.After(d.interval):
		}
		d.pass(ctx)
	}
}

// pass decides every group once, acting where the policy allows.
func (d *decider) pass(ctx context.Context) {
	if _, err := d.decideAll(ctx, d.act); err != nil {
		d.log.Warn("decide", "error", err)
	}
}

// plan decides every group once and writes nothing: what `foresight plan`
// shows. Damping state is read, not changed.
func (d *decider) plan(ctx context.Context) ([]Decision, error) {
	dry := orchestrator.NewActuator(d.nomad)
	dry.Paused = func() bool { return true }
	return d.decideAll(ctx, dry)
}

// passState is what one decision pass shares between its groups.
type passState struct {
	now     time.Time
	room    *orchestrator.Room
	running map[string]map[string]int
}

// begin reads what a pass decides from: the classes and their room, and
// where every group runs.
func (d *decider) begin(ctx context.Context) (*passState, error) {
	running, err := d.runningByClass(ctx)
	if err != nil {
		return nil, fmt.Errorf("read allocations: %w", err)
	}
	return &passState{
		now:     d.st.clock.Now(),
		room:    orchestrator.NewRoom(d.st.profiles.Classes(), nil),
		running: running,
	}, nil
}

// decideAll runs act over every group the leader holds telemetry for and
// returns the decisions that change, or would change, a job.
func (d *decider) decideAll(ctx context.Context, act *orchestrator.Actuator) ([]Decision, error) {
	// One pass at a time: the loop's, a plan's and a scale request's share
	// the damping state.
	d.mu.Lock()
	defer d.mu.Unlock()
	ps, err := d.begin(ctx)
	if err != nil {
		return nil, err
	}
	var out []Decision
	for _, group := range d.st.store.Groups() {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		entry, logged := d.decideOne(ctx, act, ps, group, nil)
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		if logged {
			out = append(out, entry)
		}
	}
	return out, nil
}

// ask is a count an outside scaler asks for one group.
type ask struct {
	count  int
	reason string
}

// decideOne decides one group and acts through act, and says whether the
// decision is worth reporting: it changes, or would change, the job, or
// failed, or the group is held for a reason other than mode off. Decisions
// made by the loop's own actuator update the damping state and the log.
func (d *decider) decideOne(ctx context.Context, act *orchestrator.Actuator, ps *passState, group string, want *ask) (Decision, bool) {
	parts := strings.SplitN(group, "/", 3)
	ref := orchestrator.GroupRef{Namespace: parts[0], Job: parts[1], Group: parts[2]}
	damp := d.damping[group]
	if damp == nil {
		damp = &orchestrator.Damping{}
		d.damping[group] = damp
	}
	now := ps.now
	res, err := act.Apply(ctx, ref, func(job *nomadapi.Job, tg *nomadapi.TaskGroup) orchestrator.Decision {
		in := orchestrator.InputFrom(job, tg, ps.room)
		q := orchestrator.DefaultQuantile
		if pol, err := orchestrator.PolicyOf(d.cfg, job.Meta, tg.Meta); err == nil {
			q = pol.Quantile
		}
		in.Demand = d.demand(group, q, now)
		in.Usage = d.usage(group, q)
		in.Running = ps.running[group]
		in.Scores = d.st.profiles.Scores(group)
		in.Damping = *damp
		in.Now = now
		if want != nil {
			in.Want, in.WantReason = &want.count, want.reason
		}
		dec := orchestrator.Decide(d.cfg, in)
		if dec.Capacity != nil {
			// No capacity target is configured yet, so nothing will
			// make room: the actuator must plan as if none were coming.
			dec.Reasons = append(dec.Reasons, fmt.Sprintf("provider capacity wanted on %s (%.0f MHz, %.0f MB) but no capacity target is configured", dec.Capacity.Class, dec.Capacity.CPUMHz, dec.Capacity.MemoryMB))
			dec.Capacity = nil
		}
		return dec
	})
	entry := Decision{Time: now, Group: group, Result: res}
	if err != nil {
		if ctx.Err() != nil {
			return entry, false
		}
		entry.Error = err.Error()
		d.log.Debug("decide", "group", group, "error", err)
	}
	report := len(res.Changes) > 0 || entry.Error != ""
	if act != d.act {
		return entry, report
	}
	if res.Written {
		if res.Decision.Count != res.Decision.CurrentCount {
			damp.LastScale = now
		}
		if res.Decision.Rewrite || res.Decision.Resources != nil {
			damp.Rewrites = append(damp.Rewrites, now)
		}
	}
	damp.Rewrites = recent(damp.Rewrites, now.Add(-time.Hour))
	// Changes, errors and bad policies are logged; a group in off mode
	// is not, nor one that is already as decided.
	report = report || res.Decision.Hold != "" && res.Decision.Mode != orchestrator.ModeOff
	if report {
		d.st.decisions.Add(entry)
		for _, kind := range kindsOf(res.Decision) {
			d.actions.WithLabelValues(kind, fmt.Sprint(res.Written)).Inc()
		}
	}
	return entry, report
}

// recent keeps the times after since; the rewrite budget looks back an hour.
func recent(times []time.Time, since time.Time) []time.Time {
	kept := times[:0]
	for _, t := range times {
		if t.After(since) {
			kept = append(kept, t)
		}
	}
	return kept
}

// kindsOf names what a decision changes, for the actions metric.
func kindsOf(dec orchestrator.Decision) []string {
	var kinds []string
	if dec.Count != dec.CurrentCount {
		kinds = append(kinds, "count")
	}
	if dec.Rewrite {
		kinds = append(kinds, "placement")
	}
	if dec.Resources != nil {
		kinds = append(kinds, "resources")
	}
	if dec.Capacity != nil {
		kinds = append(kinds, "capacity")
	}
	return kinds
}

// demand forecasts the group's total CPU and memory over the horizon and
// returns their peaks at quantile q; nil when there is nothing to forecast.
func (d *decider) demand(group string, q float64, now time.Time) *orchestrator.Resources {
	cpu, okCPU := d.peak(group, "cpu_mhz", q, now)
	mem, okMem := d.peak(group, "mem_usage_bytes", q, now)
	if !okMem {
		mem, okMem = d.peak(group, "mem_rss_bytes", q, now)
	}
	if !okCPU && !okMem {
		return nil
	}
	return &orchestrator.Resources{CPUMHz: cpu, MemoryMB: mem / (1 << 20)}
}

func (d *decider) peak(group, metric string, q float64, now time.Time) (float64, bool) {
	end := now.Truncate(decisionStep)
	pts, err := d.st.store.Series(group, metric, end.Add(-defaultHistory), end, decisionStep)
	if err != nil {
		return 0, false
	}
	grid, err := gridOf(pts, decisionStep)
	if err != nil {
		return 0, false
	}
	steps := int(math.Ceil(float64(d.horizon) / float64(decisionStep)))
	res, err := forecast.Predict(grid, forecast.Options{Step: decisionStep, Horizon: steps}, []float64{q}, nil)
	if err != nil {
		d.log.Debug("forecast", "group", group, "metric", metric, "error", err)
		return 0, false
	}
	peak, err := orchestrator.PeakDemand(res.Forecast, q)
	return peak, err == nil
}

// usage is one allocation's usage at quantile q over the recent window, for
// rightsizing; nil when unknown.
func (d *decider) usage(group string, q float64) *orchestrator.Resources {
	cpu, errCPU := d.st.store.AllocQuantile(group, "cpu_mhz", q, usageWindow)
	mem, errMem := d.st.store.AllocQuantile(group, "mem_usage_bytes", q, usageWindow)
	if errCPU != nil || errMem != nil {
		return nil
	}
	return &orchestrator.Resources{CPUMHz: cpu, MemoryMB: mem / (1 << 20)}
}

// runningByClass counts each group's running allocations per class.
func (d *decider) runningByClass(ctx context.Context) (map[string]map[string]int, error) {
	stubs, _, err := d.nomad.Allocations().List((&nomadapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]int{}
	for _, a := range stubs {
		if a.ClientStatus != nomadapi.AllocClientStatusRunning {
			continue
		}
		class, ok := d.st.profiles.ClassOf(a.NodeID)
		if !ok {
			continue
		}
		g := a.Namespace + "/" + a.JobID + "/" + a.TaskGroup
		if out[g] == nil {
			out[g] = map[string]int{}
		}
		out[g][class]++
	}
	return out, nil
}
