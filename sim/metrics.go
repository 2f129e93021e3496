package sim

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Nomad's allocation metrics, as `/v1/metrics` serves them with
// `telemetry { publish_allocation_metrics = true, prometheus_metrics = true }`:
// one gauge per task and measure, labelled with the task's job (the job's
// name), task_group, alloc_id, task and namespace. A memory measure is
// published when the driver measures it or it is not zero, as Nomad does.
// Sim serves the metrics of every node's allocations at one address, as
// if one Prometheus job scraped all the clients; it has no server metrics.

// allocGauge is one gauge of one task.
type allocGauge struct {
	name   string // Nomad's dotted name, e.g. nomad.client.allocs.cpu.total_ticks
	value  float64
	labels map[string]string
}

// allocLabelNames are the labels of every allocation gauge, in the order
// the Prometheus format lists them.
var allocLabelNames = []string{"alloc_id", "job", "namespace", "task", "task_group"}

// AllocMetrics returns the allocation gauges Nomad's clients would publish
// now for every running allocation, sorted by name and labels.
func (c *Cluster) AllocMetrics() []allocGauge {
	c.mu.Lock()
	var ids []string
	for id, a := range c.allocs {
		if a.running() {
			ids = append(ids, id)
		}
	}
	c.mu.Unlock()
	slices.Sort(ids)
	var out []allocGauge
	for _, id := range ids {
		c.mu.Lock()
		a := c.allocs[id]
		labels := map[string]string{"alloc_id": id, "job": *a.api.Job.Name, "namespace": a.api.Namespace, "task_group": a.api.TaskGroup}
		c.mu.Unlock()
		st, err := c.AllocStats(id)
		if err != nil {
			continue // stopped in between
		}
		for _, task := range slices.Sorted(maps.Keys(st.Tasks)) {
			ru := st.Tasks[task].ResourceUsage
			l := map[string]string{"task": task}
			for k, v := range labels {
				l[k] = v
			}
			gauge := func(name string, v float64) {
				out = append(out, allocGauge{name: "nomad.client.allocs." + name, value: v, labels: l})
			}
			if m := ru.MemoryStats; m != nil {
				for _, x := range []struct {
					name, measured string
					v              uint64
				}{
					{"rss", "RSS", m.RSS}, {"cache", "Cache", m.Cache}, {"swap", "Swap", m.Swap}, {"usage", "Usage", m.Usage},
					{"max_usage", "Max Usage", m.MaxUsage}, {"kernel_usage", "Kernel Usage", m.KernelUsage}, {"kernel_max_usage", "Kernel Max Usage", m.KernelMaxUsage},
				} {
					if x.v != 0 || slices.Contains(m.Measured, x.measured) {
						gauge("memory."+x.name, float64(x.v))
					}
				}
			}
			if cpu := ru.CpuStats; cpu != nil {
				gauge("cpu.total_percent", cpu.Percent)
				gauge("cpu.system", cpu.SystemMode)
				gauge("cpu.user", cpu.UserMode)
				gauge("cpu.throttled_time", float64(cpu.ThrottledTime))
				gauge("cpu.throttled_periods", float64(cpu.ThrottledPeriods))
				gauge("cpu.total_ticks", cpu.TotalTicks)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b allocGauge) int { return strings.Compare(a.name, b.name) })
	return out
}

// metricsSummary is go-metrics' in-memory summary, Nomad's `/v1/metrics`
// JSON: sim has gauges only.
type metricsSummary struct {
	Timestamp string
	Gauges    []gaugeValue
	Points    []any
	Counters  []any
	Samples   []any
}

type gaugeValue struct {
	Name   string
	Value  float32
	Labels map[string]string
}

// metrics answers `/v1/metrics`: go-metrics' JSON summary, or the
// Prometheus text format with `?format=prometheus`.
func (h *nomadAPI) metrics(w http.ResponseWriter, r *http.Request) {
	gauges := h.c.AllocMetrics()
	if r.URL.Query().Get("format") == "prometheus" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(allocCollector(gauges))
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
		return
	}
	out := metricsSummary{
		Timestamp: h.c.clock.Now().Round(10 * time.Second).UTC().String(),
		Gauges:    []gaugeValue{}, Points: []any{}, Counters: []any{}, Samples: []any{},
	}
	for _, g := range gauges {
		out.Gauges = append(out.Gauges, gaugeValue{Name: g.name, Value: float32(g.value), Labels: g.labels})
	}
	respond(w, http.StatusOK, mustJSON(out), 0, false)
}

// allocCollector exports allocation gauges under Prometheus' names: the
// dotted name with underscores, as Nomad's Prometheus sink writes them.
type allocCollector []allocGauge

func (c allocCollector) Describe(chan<- *prometheus.Desc) {}

func (c allocCollector) Collect(ch chan<- prometheus.Metric) {
	descs := map[string]*prometheus.Desc{}
	for _, g := range c {
		name := strings.ReplaceAll(g.name, ".", "_")
		d := descs[name]
		if d == nil {
			d = prometheus.NewDesc(name, name, allocLabelNames, nil)
			descs[name] = d
		}
		values := make([]string, len(allocLabelNames))
		for i, l := range allocLabelNames {
			values[i] = g.labels[l]
		}
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, g.value, values...)
	}
}
