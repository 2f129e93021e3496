package profiles_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/foresight-nomad/foresight/profiles"
)

// benchCluster builds a profiler over classes classes (two nodes each,
// with varied platform, storage and memory) and groups groups, each of
// which has run six allocations spread over two to eight classes for a
// day of 15-minute rounds. Scoring cost depends on the classes and the
// pairs of classes a group was compared on, not on its history.
func benchCluster(b *testing.B, groups, classes int) *profiles.Profiler {
	b.Helper()
	p, err := profiles.New(profiles.Config{})
	if err != nil {
		b.Fatal(err)
	}
	platforms := []string{"external", "provider"}
	storages := []string{"ssd", "hdd"}
	tiers := []string{"low", "standard", "high", "xhigh"}
	var nodes []profiles.Node
	for c := range classes {
		for k := range 2 {
			n := node(fmt.Sprintf("n%d-%d", c, k), fmt.Sprintf("class-%02d", c),
				platforms[c%2], storages[(c/2)%2], tiers[(c/4)%4], 16000, 16384*float64(1+(c/4)%4))
			n.Meta[profiles.MetaClass] = fmt.Sprintf("c%02d", c)
			nodes = append(nodes, n)
		}
	}
	if err := p.SetNodes(nodes); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	type group struct {
		name  string
		nodes []string
		eff   []float64
		mem   float64
	}
	gs := make([]group, groups)
	for i := range gs {
		g := &gs[i]
		g.name = fmt.Sprintf("default/job-%d/group", i)
		g.mem = rng.Float64() * 2
		spread := 2 + rng.IntN(7)
		first := rng.IntN(classes)
		for a := range 6 {
			c := (first + a%spread*7) % classes
			g.nodes = append(g.nodes, fmt.Sprintf("n%d-%d", c, a%2))
			g.eff = append(g.eff, 0.8+0.5*rng.Float64())
		}
	}
	for r := range 96 {
		round := make([]profiles.Observation, 0, 6*groups)
		for _, g := range gs {
			share := 500 * (1.2 + math.Sin(float64(r)/10))
			for a, n := range g.nodes {
				round = append(round, profiles.Observation{
					Group: g.name, Alloc: fmt.Sprint(a), Node: n, Duration: 15 * time.Minute,
					CPUMHz: share / g.eff[a], MemRSSBytes: (64 + g.mem*share) * (1 << 20), ReservedCPUMHz: 1000, ReservedMemoryMB: 2048,
				})
			}
		}
		if err := p.Observe(round); err != nil {
			b.Fatal(err)
		}
	}
	return p
}

// BenchmarkScoreAll scores every (group, class) once per pass: the goal
// is 5,000 groups × 50 classes in at most 1 s.
func BenchmarkScoreAll(b *testing.B) {
	const groups, classes = 5000, 50
	p := benchCluster(b, groups, classes)
	b.ResetTimer()
	start := time.Now()
	var n int
	for b.Loop() {
		all := p.ScoreAll()
		n = len(all) * len(all["default/job-0/group"])
	}
	if n != groups*classes {
		b.Fatalf("scored %d (group, class) pairs, want %d", n, groups*classes)
	}
	b.ReportMetric(time.Since(start).Seconds()/float64(b.N), "s/pass")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkObserve measures ingesting rounds: observations per second.
func BenchmarkObserve(b *testing.B) {
	p := benchCluster(b, 1000, 50)
	round := make([]profiles.Observation, 0, 6000)
	for g := range 1000 {
		for a := range 6 {
			round = append(round, profiles.Observation{
				Group: fmt.Sprintf("default/job-%d/group", g), Node: fmt.Sprintf("n%d-0", (g+a*7)%50), Duration: time.Minute,
				CPUMHz: 400 + float64(a), ReservedCPUMHz: 1000,
			})
		}
	}
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		if err := p.Observe(round); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(round)*b.N)/time.Since(start).Seconds(), "obs/s")
	b.ReportMetric(0, "ns/op")
}
