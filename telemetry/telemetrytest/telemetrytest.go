// Package telemetrytest makes samples for tests of the packages that carry
// and store them.
package telemetrytest

import (
	"fmt"
	"math"
	"time"

	"github.com/foresight-nomad/foresight/telemetry"
)

// SamplesAt returns one node's readings at t: tasks tasks × every metric,
// spread over seven groups, each value distinct.
func SamplesAt(t time.Time, tasks int) []telemetry.Sample {
	metrics := telemetry.Metrics()
	out := make([]telemetry.Sample, 0, tasks*len(metrics))
	for i := range tasks {
		for j, m := range metrics {
			out = append(out, telemetry.Sample{
				Time:   t,
				Group:  fmt.Sprintf("default/job%d/web", i%7),
				Alloc:  fmt.Sprintf("alloc-%04d", i),
				Task:   "server",
				Metric: m,
				Value:  float64(t.Unix()%1000) + float64(i) + float64(j)/16,
			})
		}
	}
	return out
}

// Same reports whether two samples are equal to the bit, times to the
// millisecond the wire carries.
func Same(a, b telemetry.Sample) bool {
	return a.Time.Equal(b.Time) && a.Group == b.Group && a.Alloc == b.Alloc && a.Task == b.Task && a.Metric == b.Metric && a.Source == b.Source &&
		math.Float64bits(a.Value) == math.Float64bits(b.Value)
}
