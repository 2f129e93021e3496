package orchestrator

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/foresight-nomad/foresight/profiles"
)

// BenchmarkDecidePass is one decision pass over 5,000 groups and 50 classes
// (the goal of issue 7: at most 1 s), reported in s/pass.
func BenchmarkDecidePass(b *testing.B) {
	const groups, classes = 5000, 50
	rng := rand.New(rand.NewPCG(7, 7))
	cls := make([]profiles.Class, classes)
	for i := range cls {
		platform := profiles.PlatformExternal
		if i%5 == 0 {
			platform = profiles.PlatformProvider
		}
		cls[i] = class(fmt.Sprintf("class-%02d", i), platform, 20, rng.IntN(4))
	}
	room := NewRoom(cls, map[string]Resources{"class-00": {CPUMHz: 8000, MemoryMB: 32768}})
	inputs := make([]Input, groups)
	for g := range inputs {
		sc := make([]profiles.Score, classes)
		for i := range sc {
			sc[i] = profiles.Score{Class: cls[i].ID, Value: rng.Float64()*200 - 100}
		}
		meta := map[string]string{MetaMode: "enforce", MetaMax: "50"}
		if g%4 == 0 {
			meta[MetaRightsize] = "true"
		}
		inputs[g] = Input{
			Group:     fmt.Sprintf("default/job-%d/group", g),
			GroupMeta: meta,
			Count:     1 + rng.IntN(10),
			Reserved:  Resources{CPUMHz: 500, MemoryMB: 512},
			Demand:    &Resources{CPUMHz: rng.Float64() * 6000, MemoryMB: rng.Float64() * 4000},
			Usage:     &Resources{CPUMHz: 100 + rng.Float64()*800, MemoryMB: 100 + rng.Float64()*800},
			Running:   map[string]int{cls[g%classes].ID: 2},
			Scores:    sc,
			Room:      room,
			Current:   cls[g%classes].ID,
			Damping:   Damping{LastScale: t0.Add(-time.Duration(rng.IntN(20)) * time.Minute)},
			Now:       t0,
		}
	}
	b.ResetTimer()
	moves := 0
	for b.Loop() {
		moves = 0
		for _, in := range inputs {
			if Decide(Config{}, in).Rewrite {
				moves++
			}
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/pass")
	b.ReportMetric(float64(moves), "moves/pass")
}
