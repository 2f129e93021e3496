package cgroup

import (
	"testing"
	"time"
)

// benchmarkRead reads every counter of one fixture task per iteration and
// reports the cost in the units of the agent's budget: the agent samples
// 100 tasks every 10 s and may spend 0.5 % of one core on it.
func benchmarkRead(b *testing.B, root, alloc, task string) {
	tk := locate(b, root, alloc, task)
	r := NewReader(stacked)
	var rt Rater
	var reading Reading
	metrics := make([]Metric, 0, 16)
	at := t0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := r.Read(&tk, &reading); err != nil {
			b.Fatal(err)
		}
		at = at.Add(10 * time.Second)
		rates := rt.Update(at, &reading)
		metrics = rates.Metrics(metrics[:0])
	}
	perTask := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(perTask, "ns/task")
	// 100 tasks every 10 s, as a percentage of one core.
	b.ReportMetric(perTask*100/float64(10*time.Second)*100, "core%@100tasks/10s")
}

func BenchmarkReadTaskV2(b *testing.B) {
	benchmarkRead(b, "testdata/v2-nomad17", allocWeb, "web")
}

func BenchmarkReadTaskV1(b *testing.B) {
	benchmarkRead(b, "testdata/v1", allocWeb, "web")
}

func BenchmarkParsePressure(b *testing.B) {
	in := []byte("some avg10=1.50 avg60=0.80 avg300=0.20 total=3000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePressure(in); err != nil {
			b.Fatal(err)
		}
	}
}
