package store

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/telemetry"
)

// agentRounds simulates agents that each run allocations of two groups and
// sample every task every 10 s at their own offset from the grid. It
// returns, per agent, the batches the agent shipped: one sampling round each.
func agentRounds(start time.Time, rounds int) [][][]telemetry.Sample {
	rng := rand.New(rand.NewPCG(7, 8))
	const agents = 3
	out := make([][][]telemetry.Sample, agents)
	for a := range agents {
		offset := time.Duration(a*3100+700) * time.Millisecond
		level := map[string]float64{}
		for r := range rounds {
			at := start.Add(time.Duration(r)*10*time.Second + offset)
			var batch []telemetry.Sample
			for _, g := range []string{"default/web/api", "batch/etl/worker"} {
				for k := range 2 {
					alloc := fmt.Sprintf("%s-node%d-%d", g, a, k)
					for _, task := range []string{"main", "sidecar"} {
						for _, m := range []string{"cpu_mhz", "mem_rss_bytes"} {
							key := alloc + task + m
							// An integer random walk, so sums are exact in
							// any order and the comparison can be too.
							level[key] = max(0, level[key]+float64(rng.IntN(21)-10)+1)
							batch = append(batch, telemetry.Sample{Time: at, Group: g, Alloc: alloc, Task: task, Metric: m, Value: level[key]})
						}
					}
				}
			}
			out[a] = append(out[a], batch)
		}
	}
	return out
}

func failoverConfig(digits int) func(*Config) {
	return func(c *Config) {
		tieredConfig(c)
		c.Tiers[0].Retention = 30 * time.Minute
		c.ChunkSamples = 32
		c.SignificantDigits = digits
	}
}

// A new leader rebuilds the store from every agent's replay, in any order,
// overlapping what it already got live and with batches sent twice; the
// history it ends with must match that of the leader that saw it all live.
func TestFailoverReplayMatchesLiveHistory(t *testing.T) {
	for _, digits := range []int{-1, DefaultSignificantDigits} {
		t.Run(fmt.Sprint("digits ", digits), func(t *testing.T) {
			testFailoverReplay(t, digits)
		})
	}
}

func testFailoverReplay(t *testing.T, digits int) {
	const rounds = 720 // two hours
	shipped := agentRounds(t0, rounds)
	end := t0.Add(rounds * 10 * time.Second)

	// The old leader gets every round live, a few seconds after it is taken.
	liveClock := clock.NewVirtual(t0)
	live := newTestStore(t, liveClock, failoverConfig(digits))
	for r := range rounds {
		liveClock.Set(t0.Add(time.Duration(r)*10*time.Second + 9*time.Second))
		for a := range shipped {
			mustAppend(t, live, shipped[a][r]...)
		}
	}

	// The new leader starts at the end. Agents first keep shipping live (the
	// last 10 minutes reach it), then replay all they retained, interleaved
	// at random between agents, some batches twice.
	newClock := clock.NewVirtual(end)
	rebuilt := newTestStore(t, newClock, failoverConfig(digits))
	for r := rounds - 60; r < rounds; r++ {
		for a := range shipped {
			mustAppend(t, rebuilt, shipped[a][r]...)
		}
	}
	rng := rand.New(rand.NewPCG(9, 10))
	next := make([]int, len(shipped))
	for remaining := len(shipped) * rounds; remaining > 0; {
		a := rng.IntN(len(shipped))
		if next[a] == rounds {
			continue
		}
		n := min(rounds-next[a], 1+rng.IntN(50)) // a replay batch of whole rounds
		var batch []telemetry.Sample
		for _, round := range shipped[a][next[a] : next[a]+n] {
			batch = append(batch, round...)
		}
		mustAppend(t, rebuilt, batch...)
		if rng.IntN(5) == 0 {
			mustAppend(t, rebuilt, batch...)
		}
		next[a] += n
		remaining -= n
	}

	later := end.Add(2 * time.Minute)
	liveClock.Set(later)
	newClock.Set(later)
	tol := 0.0
	if digits > 0 {
		// The live sum is rounded once; the rebuilt one once more for each
		// agent's merge into a closed bucket.
		tol = float64(1+len(shipped)) * 5 * math.Pow(10, -float64(digits))
	}
	for _, g := range live.Groups() {
		for _, m := range live.Metrics(g) {
			for _, q := range []struct {
				from time.Time
				step time.Duration
			}{
				{end.Add(-20 * time.Minute), 10 * time.Second}, // raw tier
				{t0, time.Minute},            // 1-minute tier
				{t0, 5 * time.Minute},        // 1-minute tier, aggregated
				{t0, 30 * time.Minute},       // 1-minute tier, aggregated
				{t0.Add(-48 * time.Hour), 0}, // 5-minute tier: the 1-minute one keeps a day
			} {
				step := q.step
				if step == 0 {
					step = 5 * time.Minute
				}
				want, err := live.Series(g, m, q.from, later, step)
				if err != nil {
					t.Fatal(err)
				}
				got, err := rebuilt.Series(g, m, q.from, later, step)
				if err != nil {
					t.Fatal(err)
				}
				if q.step == 0 && want[0].HasMax {
					t.Fatalf("%s %s: the query meant for the 5-minute tier read one with maxima", g, m)
				}
				if len(got) != len(want) || len(want) == 0 {
					t.Fatalf("%s %s from %v step %v: %d points after failover, %d before", g, m, q.from, step, len(got), len(want))
				}
				for i := range want {
					w, gt := want[i], got[i]
					exactMax := !w.Time.Before(end.Add(-30 * time.Minute))
					if w.Time != gt.Time || w.Slots != gt.Slots || w.HasMax != gt.HasMax || !near(gt.Mean, w.Mean, tol) ||
						(exactMax && !near(gt.Max, w.Max, tol)) || gt.Max > w.Max*(1+tol) {
						t.Fatalf("%s %s step %v point %d: after failover %+v, before %+v", g, m, step, i, gt, w)
					}
				}
			}
			for _, q := range []float64{0, 0.5, 0.95, 1} {
				want, err := live.AllocQuantile(g, m, q, 2*time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				got, err := rebuilt.AllocQuantile(g, m, q, 2*time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Errorf("%s %s per-alloc p%v: %v after failover, %v before", g, m, q*100, got, want)
				}
			}
		}
	}
	checkBytes(t, live)
	checkBytes(t, rebuilt)
	if st := rebuilt.Stats(); st.Duplicates == 0 || st.Late == 0 {
		t.Errorf("rebuild stats %+v: the test should exercise duplicates and late merges", st)
	}
}

func near(got, want, rel float64) bool {
	return got == want || math.Abs(got-want) <= rel*math.Abs(want)
}
