package leader

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/foresight-nomad/foresight/forecast"
	"github.com/foresight-nomad/foresight/leaderapi"
	"github.com/foresight-nomad/foresight/orchestrator"
	"github.com/foresight-nomad/foresight/profiles"
	"github.com/foresight-nomad/foresight/telemetry"
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

	// router and migrator act for enforced groups after their job is
	// written; nil when the operator turned them off.
	router   *orchestrator.Router
	migrator *orchestrator.Migrator
	// capacity buys and releases provider capacity; nil when no capacity
	// target is configured. lastDemand is the forecast demand per class of
	// the last full pass, what a single group's scale request reconciles
	// against.
	capacity   *orchestrator.Capacity
	lastDemand map[string]orchestrator.Resources
	// capacityErr is the last capacity status error warned of: the same
	// one again, every pass, is logged at debug level.
	capacityErr string

	// own maps Foresight's own jobs ("namespace/job") to the rule that
	// told them: they are never acted on.
	own map[string]string

	mu      sync.Mutex
	damping map[string]*orchestrator.Damping
	// logged is, per group, what the last logged decision changed or would
	// have changed, so that a repeat of it is not logged again.
	logged map[string]string
	// metrics keeps each group's forecast and decision for /metrics; nil
	// unless per-group metrics are on.
	metrics *groupMetrics
}

func newDecider(st *leaderState, nomad *nomadapi.Client, consul *consulapi.Client, reg prometheus.Registerer, interval time.Duration, o OrchestratorSettings, log hclog.Logger) *decider {
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
	// Every kind is exported from the start, at 0, so that a rate over it
	// is defined before the first action.
	for _, kind := range []string{"count", "placement", "resources", "capacity", "migration"} {
		for _, written := range []string{"true", "false"} {
			actions.WithLabelValues(kind, written)
		}
	}
	d := &decider{
		st: st, nomad: nomad, act: act, interval: interval, horizon: lead + interval,
		cfg: orchestrator.Config{Mode: o.Mode}, log: log, actions: actions, damping: map[string]*orchestrator.Damping{}, logged: map[string]string{},
		own: ownJobs(o.OwnJobs, os.Getenv),
	}
	if o.Routing && consul != nil {
		d.router = &orchestrator.Router{Consul: consul, FabioKey: o.FabioKey, Log: log.Named("routing")}
	}
	if o.Migrate {
		d.migrator = &orchestrator.Migrator{Nomad: nomad, Clock: st.clock, Log: log.Named("migrate")}
	}
	return d
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
func (d *decider) plan(ctx context.Context) ([]leaderapi.Decision, error) {
	dry := orchestrator.NewActuator(d.nomad)
	dry.Paused = func() bool { return true }
	return d.decideAll(ctx, dry)
}

// passState is what one decision pass shares between its groups, and what
// they leave for the capacity actuator.
type passState struct {
	now     time.Time
	classes []profiles.Class
	room    *orchestrator.Room
	running map[string]map[string]int
	// requests are the capacity requests of enforced groups, and demand
	// the forecast demand steered to each class.
	requests []orchestrator.CapacityRequest
	demand   map[string]orchestrator.Resources
}

// begin reads what a pass decides from: the classes and their room, and
// where every group runs.
func (d *decider) begin(ctx context.Context) (*passState, error) {
	running, err := d.runningByClass(ctx)
	if err != nil {
		return nil, fmt.Errorf("read allocations: %w", err)
	}
	classes := d.st.profiles.Classes()
	var arriving map[string]orchestrator.Resources
	if d.capacity != nil {
		// A target whose status cannot be read is left out; the others
		// still count.
		arriving, err = d.capacity.Arriving(ctx, classes)
		d.warnOnce(&d.capacityErr, "capacity status", err)
	}
	return &passState{
		now:     d.st.clock.Now(),
		classes: classes,
		room:    orchestrator.NewRoom(classes, arriving),
		running: running,
		demand:  map[string]orchestrator.Resources{},
	}, nil
}

// warnOnce logs err as a warning when it differs from *last, else at debug
// level, and remembers it; a nil err clears it.
func (d *decider) warnOnce(last *string, msg string, err error) {
	if err == nil {
		*last = ""
		return
	}
	if err.Error() == *last {
		d.log.Debug(msg, "error", err)
		return
	}
	*last = err.Error()
	d.log.Warn(msg, "error", err)
}

// reconcile asks the capacity targets for what the pass requested, and
// lets them release what its demand leaves spare; actions are logged.
func (d *decider) reconcile(ctx context.Context, ps *passState) {
	if d.capacity == nil || d.st.pause.Paused() {
		return
	}
	actions, err := d.capacity.Reconcile(ctx, ps.now, ps.requests, ps.classes, ps.demand)
	if err != nil {
		d.log.Warn("capacity", "error", err)
	}
	for _, a := range actions {
		d.st.decisions.Add(leaderapi.Decision{Time: a.Time, Capacity: []orchestrator.CapacityAction{a}, Error: a.Err})
		d.actions.WithLabelValues("capacity", fmt.Sprint(a.Scaled())).Inc()
	}
}

// decideAll runs act over every group the leader holds telemetry for and
// returns the decisions that change, or would change, a job.
func (d *decider) decideAll(ctx context.Context, act *orchestrator.Actuator) ([]leaderapi.Decision, error) {
	// One pass at a time: the loop's, a plan's and a scale request's share
	// the damping state.
	d.mu.Lock()
	defer d.mu.Unlock()
	ps, err := d.begin(ctx)
	if err != nil {
		return nil, err
	}
	var out []leaderapi.Decision
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
	if act == d.act {
		d.reconcile(ctx, ps)
		d.lastDemand = ps.demand
		d.metrics.keep(d.st.store.Groups())
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
func (d *decider) decideOne(ctx context.Context, act *orchestrator.Actuator, ps *passState, group string, want *ask) (leaderapi.Decision, bool) {
	parts := strings.SplitN(group, "/", 3)
	ref := telemetry.GroupRef{Namespace: parts[0], Job: parts[1], Group: parts[2]}
	damp := d.damping[group]
	if damp == nil {
		damp = &orchestrator.Damping{}
		d.damping[group] = damp
	}
	now := ps.now
	var (
		read   *nomadapi.Job
		demand *orchestrator.Resources
	)
	res, err := act.Apply(ctx, ref, func(job *nomadapi.Job, tg *nomadapi.TaskGroup) orchestrator.Decision {
		read = job
		in := orchestrator.InputFrom(job, tg, ps.room)
		q := orchestrator.DefaultQuantile
		pol, polErr := orchestrator.PolicyOf(d.cfg, job.Meta, tg.Meta)
		if polErr == nil {
			q = pol.Quantile
		}
		in.Demand = d.demand(group, q, now)
		demand = in.Demand
		if polErr == nil && pol.NeedsMetricDemand() {
			if v, ok := d.peak(group, pol.Metric, q, now); ok {
				in.MetricDemand = &v
			}
		}
		in.Own = d.own[ref.Namespace+"/"+ref.Job]
		in.Usage = d.usage(group, q)
		in.Running = ps.running[group]
		in.Scores = d.st.profiles.Scores(group)
		in.Damping = *damp
		in.Now = now
		switch {
		case want != nil:
			in.Want, in.WantReason = &want.count, want.reason
		case autoscaled(tg):
			n := in.Count
			in.Want, in.WantReason = &n, "the group has an enabled scaling policy, so the Nomad Autoscaler owns its count"
		}
		dec := orchestrator.Decide(d.cfg, in)
		if c := dec.Capacity; c != nil && (d.capacity == nil || !d.capacity.Grows(c.Class)) {
			// Nothing will make room: the actuator must plan as if no
			// capacity were coming.
			dec.Reasons = append(dec.Reasons, fmt.Sprintf("provider capacity wanted on %s (%.0f MHz, %.0f MB) but no capacity target grows that class", c.Class, c.CPUMHz, c.MemoryMB))
			dec.Capacity = nil
		}
		return dec
	})
	entry := leaderapi.Decision{Time: now, Group: group, Result: res}
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
	if err == nil {
		d.metrics.decided(group, res.Decision.Count, res.Decision.CurrentCount, string(res.Decision.Mode), res.Decision.Class)
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
	if demand != nil && res.Decision.Class != "" {
		addDemand(ps.demand, res.Decision.Class, *demand, ps.running[group])
	}
	if err == nil && d.acting(res) && res.Decision.Capacity != nil {
		ps.requests = append(ps.requests, *res.Decision.Capacity)
	}
	if err == nil && d.acting(res) {
		report = d.follow(ctx, ref, read, res, ps.running[group], demand, &entry) || report
	}
	// Changes, errors and bad policies are logged; a group in off mode
	// is not, nor one that is already as decided.
	report = report || res.Decision.Hold != "" && res.Decision.Mode != orchestrator.ModeOff
	if report && d.repeats(group, entry) {
		// The same recommendation every minute says nothing new.
		report = false
	}
	if report {
		d.st.decisions.Add(entry)
		for _, kind := range kindsOf(res.Decision) {
			d.actions.WithLabelValues(kind, fmt.Sprint(res.Written)).Inc()
		}
	}
	return entry, report
}

// ownJobs maps Foresight's own jobs to the rule that told each: the
// operator's own_jobs, and the job of the agent's own allocation, which
// Nomad tells every task it runs (NOMAD_NAMESPACE and NOMAD_JOB_ID, or
// NOMAD_JOB_NAME before Nomad set the ID).
func ownJobs(configured []string, getenv func(string) string) map[string]string {
	own := map[string]string{}
	for _, j := range configured {
		own[j] = "orchestrator.own_jobs"
	}
	id, rule := getenv("NOMAD_JOB_ID"), "NOMAD_JOB_ID of this agent's allocation"
	if id == "" {
		id, rule = getenv("NOMAD_JOB_NAME"), "NOMAD_JOB_NAME of this agent's allocation"
	}
	if id != "" {
		ns := getenv("NOMAD_NAMESPACE")
		if ns == "" {
			ns = "default"
		}
		if _, ok := own[ns+"/"+id]; !ok {
			own[ns+"/"+id] = rule
		}
	}
	return own
}

// addDemand adds a group's forecast demand to the pass's demand per class,
// what the capacity actuator weighs spare capacity against: all of it on
// the class the group is steered to, and besides, on every other class it
// runs on (allocations that spilled over from a full class onto provider
// capacity, or not yet migrated), the share of its running allocations
// there. Capacity that holds those allocations is then not spare while
// the group still needs it.
func addDemand(out map[string]orchestrator.Resources, class string, demand orchestrator.Resources, running map[string]int) {
	add := func(c string, f float64) {
		sum := out[c]
		sum.CPUMHz += f * demand.CPUMHz
		sum.MemoryMB += f * demand.MemoryMB
		out[c] = sum
	}
	add(class, 1)
	total := 0
	for _, n := range running {
		total += n
	}
	for c, n := range running {
		if c != class && n > 0 {
			add(c, float64(n)/float64(total))
		}
	}
}

// autoscaled reports whether the group's count belongs to the Nomad
// Autoscaler: it has a scaling policy that is not disabled.
func autoscaled(tg *nomadapi.TaskGroup) bool {
	sc := tg.Scaling
	return sc != nil && (sc.Enabled == nil || *sc.Enabled) && len(sc.Policy) > 0
}

// repeats reports whether entry only repeats the group's last logged
// decision: nothing written, nothing moved, the same changes held for the
// same reason. Reasons themselves are not compared: their numbers move
// with every forecast.
func (d *decider) repeats(group string, entry leaderapi.Decision) bool {
	r := entry.Result
	moved := entry.Migration != nil && entry.Migration.Stopped != ""
	if entry.Routing != nil {
		for _, s := range entry.Routing.Services {
			moved = moved || len(s.Written) > 0
		}
	}
	if r.Written || moved {
		delete(d.logged, group)
		return false
	}
	key := fmt.Sprintf("%q|%q|%q|%q", r.Changes, r.Held, r.Decision.Hold, entry.Error)
	if entry.Migration != nil {
		key += "|" + entry.Migration.Held
	}
	if d.logged[group] == key {
		return true
	}
	d.logged[group] = key
	return false
}

// acting reports whether Foresight acts for the group beyond its job: it is
// enforced, its policy is good, and actuation is not paused.
func (d *decider) acting(res orchestrator.Result) bool {
	return res.Decision.Mode == orchestrator.ModeEnforce && res.Decision.Hold == "" && !d.st.pause.Paused()
}

// follow makes traffic and running allocations follow an enforced group's
// decision: Consul routing by the healthy instances on each platform, and
// one misplaced allocation moved per pass. It records what it did in entry
// and reports whether that is worth logging.
func (d *decider) follow(ctx context.Context, ref telemetry.GroupRef, job *nomadapi.Job, res orchestrator.Result, running map[string]int, demand *orchestrator.Resources, entry *leaderapi.Decision) bool {
	report := false
	if d.router != nil && job != nil {
		rr, err := d.router.Route(ctx, job, ref.Group)
		if err != nil {
			entry.Error = joinErr(entry.Error, "routing: "+err.Error())
			report = true
		}
		for _, s := range rr.Services {
			if len(s.Written) > 0 {
				report = true
			}
		}
		if len(rr.Services) > 0 {
			entry.Routing = &rr
		}
	}
	if t := res.Decision.JobType; t != "" && t != nomadapi.JobTypeService {
		// A system job has one allocation per eligible node: there is no
		// better class to move one to.
		return report
	}
	want := res.Decision.Class
	misplaced := false
	for class, n := range running {
		misplaced = misplaced || class != want && n > 0
	}
	// A rewrite is already moving every allocation through Nomad's rolling
	// update; stops wait for the next pass.
	if d.migrator == nil || want == "" || !misplaced || res.Written && res.Decision.Rewrite {
		return report
	}
	if demand == nil {
		entry.Migration = &orchestrator.MigrateResult{Group: ref.Key(), Want: want, Held: "no forecast of the demand: allocations stay where they run"}
		return report
	}
	mr, err := d.migrator.Step(ctx, ref, want, d.st.profiles.ClassOf, *demand)
	if err != nil {
		entry.Error = joinErr(entry.Error, "migration: "+err.Error())
		report = true
	}
	entry.Migration = &mr
	if mr.Stopped != "" {
		d.actions.WithLabelValues("migration", "true").Inc()
	}
	return report || mr.Stopped != "" || mr.Held != ""
}

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
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
	cpu, okCPU := d.peak(group, telemetry.CPUMHz, q, now)
	mem, okMem := d.peak(group, telemetry.MemUsageBytes, q, now)
	if !okMem {
		mem, okMem = d.peak(group, telemetry.MemRSSBytes, q, now)
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
	steps := int(math.Ceil(float64(d.horizon) / float64(grid.Step)))
	res, err := forecast.Predict(grid, forecast.Options{Step: grid.Step, Horizon: steps}, d.metrics.levels(q), nil)
	if err != nil {
		d.log.Debug("forecast", "group", group, "metric", metric, "error", err)
		return 0, false
	}
	d.metrics.forecast(group, metric, grid, res.Forecast)
	peak, err := orchestrator.PeakDemand(res.Forecast, q)
	return peak, err == nil
}

// usage is one allocation's usage at quantile q over the recent window, for
// rightsizing; nil when unknown.
func (d *decider) usage(group string, q float64) *orchestrator.Resources {
	cpu, errCPU := d.st.store.AllocQuantile(group, telemetry.CPUMHz, q, usageWindow)
	mem, errMem := d.st.store.AllocQuantile(group, telemetry.MemUsageBytes, q, usageWindow)
	if errMem != nil {
		// raw_exec reports RSS only, as demand reads it.
		mem, errMem = d.st.store.AllocQuantile(group, telemetry.MemRSSBytes, q, usageWindow)
	}
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
