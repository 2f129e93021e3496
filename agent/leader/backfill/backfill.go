package backfill

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/foresight-nomad/foresight/agent/leader/store"
	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/telemetry"
)

// Source names the history a backfill writes, in the store's provenance
// and so in the leader's answers.
const Source = "prometheus"

// NomadMetrics maps each metric of ours that Nomad's allocation metrics
// measure to its name in Prometheus. Nomad publishes them per task
// (telemetry { publish_allocation_metrics = true, prometheus_metrics = true })
// with the labels namespace, job, task_group, alloc_id and task; a
// Prometheus scrape renames job to exported_job unless honor_labels is set.
// The other metrics of ours (disk, network, pressure stall, throttling)
// have no counterpart there and are not backfilled.
var NomadMetrics = map[string]string{
	telemetry.CPUMHz:        "nomad_client_allocs_cpu_total_ticks",
	telemetry.MemRSSBytes:   "nomad_client_allocs_memory_rss",
	telemetry.MemUsageBytes: "nomad_client_allocs_memory_usage",
}

// How the backfiller paces itself.
const (
	// interval is how often it looks for series to backfill.
	interval = 5 * time.Second
	// settle is how long a series is left to the agents before it is
	// backfilled: a new leader's replay arrives in its first seconds, and
	// what it brings needs no query.
	settle = 10 * time.Second
	// retryAfter is how long a series waits after a failed backfill.
	retryAfter = time.Minute
	// maxPoints bounds the steps of one range query; Prometheus refuses
	// more than 11,000 per series.
	maxPoints = 10000
)

// Store is what the backfiller needs of the leader's store.
type Store interface {
	Groups() []string
	Metrics(group string) []string
	Tiers() []store.Tier
	FirstSample(group, metric string) (time.Time, bool)
	Backfill(group, metric, source string, step time.Duration, pts []telemetry.Point) (int, error)
}

// Backfiller backfills, once per leadership term, every series of the
// store that Nomad's metrics measure, from the time the agents' history
// begins back to the configured history window. A series the agents
// already cover is not queried; a failure is retried a minute later and
// logged once until the API answers again. It writes nothing but
// store.Backfill calls, so the agents' samples always win.
type Backfiller struct {
	cfg   Settings
	api   promv1.API
	st    Store
	clock clock.Clock
	log   hclog.Logger

	points, failures prometheus.Counter

	mu      sync.Mutex
	seen    map[key]time.Time // when a series was first seen
	done    map[key]bool
	retry   map[key]time.Time
	failing bool // the last query failed: further failures are logged at debug level
}

type key struct{ group, metric string }

// New returns a backfiller for one term, or an error for a bad address.
// reg, when not nil, receives its counters.
func New(cfg Settings, st Store, clk clock.Clock, reg prometheus.Registerer, log hclog.Logger) (*Backfiller, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	client, err := promapi.NewClient(promapi.Config{Address: cfg.Address, RoundTripper: headers{cfg.Headers, promapi.DefaultRoundTripper}})
	if err != nil {
		return nil, fmt.Errorf("prometheus client for %s: %w", cfg.Address, err)
	}
	b := &Backfiller{
		cfg: cfg, api: promv1.NewAPI(client), st: st, clock: clk, log: log,
		points: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "foresight_leader_backfill_points_total", Help: "Points of history backfilled from the Prometheus API.",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "foresight_leader_backfill_failures_total", Help: "Series whose backfill from the Prometheus API failed (each retried later).",
		}),
		seen: map[key]time.Time{}, done: map[key]bool{}, retry: map[key]time.Time{},
	}
	if reg != nil {
		reg.MustRegister(b.points, b.failures)
	}
	return b, nil
}

// headers adds the configured headers to every request.
type headers struct {
	h    map[string]string
	next http.RoundTripper
}

func (h headers) RoundTrip(r *http.Request) (*http.Response, error) {
	if len(h.h) > 0 {
		r = r.Clone(r.Context())
		for k, v := range h.h {
			r.Header.Set(k, v)
		}
	}
	return h.next.RoundTrip(r)
}

// Run backfills new series until ctx ends.
func (b *Backfiller) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.clock.After(interval):
		}
		b.Pass(ctx)
	}
}

// Pass backfills every series that is due: seen for the settling time,
// not done this term, and not waiting for a retry.
func (b *Backfiller) Pass(ctx context.Context) {
	now := b.clock.Now()
	for _, g := range b.st.Groups() {
		for _, m := range b.st.Metrics(g) {
			if ctx.Err() != nil {
				return
			}
			k := key{g, m}
			if !b.due(k, now) {
				continue
			}
			n, err := b.Series(ctx, g, m)
			if ctx.Err() != nil {
				return // the term ended: not a failure of the API
			}
			b.finish(k, n, err)
		}
	}
}

func (b *Backfiller) due(k key, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done[k] {
		return false
	}
	if _, ok := NomadMetrics[k.metric]; !ok {
		b.done[k] = true
		return false
	}
	first, ok := b.seen[k]
	if !ok {
		b.seen[k] = now
		first = now
	}
	return now.Sub(first) >= settle && !now.Before(b.retry[k])
}

// finish records a series' outcome and logs it: a failure once until the
// API answers again.
func (b *Backfiller) finish(k key, n int, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		b.failures.Inc()
		b.retry[k] = b.clock.Now().Add(retryAfter)
		if !b.failing {
			b.failing = true
			b.log.Warn("cannot read history from Prometheus; forecasting from the agents' history alone, retrying every minute", "address", b.cfg.Address, "error", err)
		} else {
			b.log.Debug("backfill", "group", k.group, "metric", k.metric, "error", err)
		}
		return
	}
	if b.failing {
		b.failing = false
		b.log.Info("Prometheus answers again", "address", b.cfg.Address)
	}
	b.done[k] = true
	b.points.Add(float64(n))
	if n > 0 {
		b.log.Info("backfilled history from Prometheus", "group", k.group, "metric", k.metric, "points", n)
	} else {
		// Often a job label other than the one looked for (job_label).
		b.log.Info("Prometheus holds no history for this series before the agents'", "group", k.group, "metric", k.metric)
	}
}

// Series backfills one series now, every downsampled tier at its own step,
// and returns how many points it wrote.
func (b *Backfiller) Series(ctx context.Context, group, metric string) (int, error) {
	name, ok := NomadMetrics[metric]
	if !ok {
		return 0, fmt.Errorf("backfill %s: Nomad's metrics do not measure %s", group, metric)
	}
	ref, err := telemetry.ParseGroup(group)
	if err != nil {
		return 0, err
	}
	now := b.clock.Now()
	end := now
	if first, ok := b.st.FirstSample(group, metric); ok {
		end = first
	}
	total := 0
	for _, t := range b.st.Tiers()[1:] {
		// From the first bucket the tier holds, or the history window's.
		oldest := now.Add(-min(b.cfg.History, t.Retention))
		from := oldest.Truncate(t.Step)
		if from.Before(oldest) {
			from = from.Add(t.Step)
		}
		to := end.Truncate(t.Step)
		if !from.Before(to) {
			continue
		}
		pts, err := b.read(ctx, ref, name, from, to, t.Step, !t.DropMax)
		if err != nil {
			return total, fmt.Errorf("backfill %s %s: %w", group, metric, err)
		}
		n, err := b.st.Backfill(group, metric, Source, t.Step, pts)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// read returns the group's demand in buckets of step over [from, to): the
// sum over its tasks of each task's mean in the bucket, and with peaks the
// sum of each task's highest (an upper bound of the group's highest).
func (b *Backfiller) read(ctx context.Context, ref telemetry.GroupRef, name string, from, to time.Time, step time.Duration, peaks bool) ([]telemetry.Point, error) {
	labels := []string{"exported_job", "job"}
	if b.cfg.JobLabel != "" {
		labels = []string{b.cfg.JobLabel}
	}
	var means map[int64]float64
	var jobLabel string
	for _, l := range labels {
		var err error
		if means, err = b.query(ctx, "avg_over_time", selector(name, ref, l), from, to, step); err != nil {
			return nil, err
		}
		if len(means) > 0 {
			jobLabel = l
			break
		}
	}
	if len(means) == 0 {
		return nil, nil
	}
	var highs map[int64]float64
	if peaks {
		var err error
		if highs, err = b.query(ctx, "max_over_time", selector(name, ref, jobLabel), from, to, step); err != nil {
			return nil, err
		}
	}
	var out []telemetry.Point
	for at := from; at.Before(to); at = at.Add(step) {
		mean, ok := means[at.UnixMilli()]
		if !ok {
			continue
		}
		p := telemetry.Point{Time: at, Mean: mean}
		if high, ok := highs[at.UnixMilli()]; ok {
			p.Max, p.HasMax = high, true
		}
		out = append(out, p)
	}
	return out, nil
}

// selector matches a group's task series of one Nomad metric. Older Nomad
// releases sent no namespace label, so the default namespace also matches
// series without one.
func selector(name string, ref telemetry.GroupRef, jobLabel string) string {
	ns := fmt.Sprintf("namespace=%q", ref.Namespace)
	if ref.Namespace == "default" {
		ns = `namespace=~"default|"`
	}
	return fmt.Sprintf("%s{%s,%s=%q,task_group=%q}", name, ns, jobLabel, ref.Job, ref.Group)
}

// query evaluates sum(fn(sel[step])) over [from, to) at step and returns
// each value by the start of the bucket it covers, in Unix milliseconds: an
// evaluation at T covers (T-step, T].
func (b *Backfiller) query(ctx context.Context, fn, sel string, from, to time.Time, step time.Duration) (map[int64]float64, error) {
	q := fmt.Sprintf("sum(%s(%s[%s]))", fn, sel, model.Duration(step))
	out := map[int64]float64{}
	for lo := from; lo.Before(to); lo = lo.Add(maxPoints * step) {
		hi := lo.Add(maxPoints * step)
		if hi.After(to) {
			hi = to
		}
		// Evaluations at the end of each bucket in [lo, hi).
		val, _, _, err := b.api.QueryRange(ctx, q, promv1.Range{Start: lo.Add(step), End: hi, Step: step}, promv1.WithTimeout(b.cfg.Timeout))
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", q, err)
		}
		m, ok := val.(model.Matrix)
		if !ok {
			return nil, fmt.Errorf("query %s: a %s, not a range vector", q, val.Type())
		}
		if len(m) > 1 {
			return nil, fmt.Errorf("query %s: %d series, want one sum", q, len(m))
		}
		for _, s := range m {
			for _, v := range s.Values {
				f := float64(v.Value)
				if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
					continue
				}
				out[v.Timestamp.Time().Add(-step).UnixMilli()] = f
			}
		}
	}
	return out, nil
}
