package orchestrator

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/foresight-nomad/foresight/forecast"
	"github.com/foresight-nomad/foresight/profiles"
)

var t0 = time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)

// class builds a class of n nodes of 4000 MHz / 16384 MB each, with free
// room for freeAllocs allocations of 1000 MHz / 1024 MB on each node.
func class(id, platform string, n, freeAllocs int) profiles.Class {
	free := float64(freeAllocs)
	return profiles.Class{
		ID:      id,
		Traits:  profiles.Traits{Platform: platform},
		Targets: []profiles.Target{{Attribute: "${meta.foresight.class}", Value: id}},
		Nodes:   make([]string, n),
		CPUMHz:  4000 * float64(n), MemoryMB: 16384 * float64(n),
		FreeCPUMHz: 1000 * free * float64(n), FreeMemoryMB: 1024 * free * float64(n),
		MaxFreeCPUMHz: 1000 * free, MaxFreeMemoryMB: 1024 * free,
	}
}

// declaredClass is a provider class with no node yet, whose node size is
// declared (a capacity block's node).
func declaredClass(id string, cpuMHz, memoryMB float64) profiles.Class {
	return profiles.Class{
		ID:       id,
		Traits:   profiles.Traits{Platform: profiles.PlatformProvider, Published: id},
		Targets:  []profiles.Target{{Attribute: "${meta.foresight.class}", Value: id}},
		Declared: profiles.NodeSize{CPUMHz: cpuMHz, MemoryMB: memoryMB},
	}
}

func scores(kv ...any) []profiles.Score {
	var out []profiles.Score
	for i := 0; i < len(kv); i += 2 {
		out = append(out, profiles.Score{Class: kv[i].(string), Value: float64(kv[i+1].(int))})
	}
	return out
}

func cpu(mhz float64) *Resources { return &Resources{CPUMHz: mhz} }

// base is a group of 2 allocations of 1000 MHz / 1024 MB on ext-a, in
// enforce mode, with room on both external classes.
func base() Input {
	room := NewRoom([]profiles.Class{
		class("cloud", profiles.PlatformProvider, 2, 4),
		class("ext-a", profiles.PlatformExternal, 2, 2),
		class("ext-b", profiles.PlatformExternal, 2, 2),
	}, nil)
	return Input{
		Group:     "default/app/app",
		GroupMeta: map[string]string{MetaMode: "enforce"},
		Count:     2,
		Reserved:  Resources{CPUMHz: 1000, MemoryMB: 1024},
		Running:   map[string]int{"ext-a": 2},
		Scores:    scores("ext-a", 50, "ext-b", 40, "cloud", 30),
		Room:      room,
		Current:   "ext-a",
		Now:       t0,
	}
}

func TestDecide(t *testing.T) {
	type want struct {
		count       int
		class       string
		rewrite     bool
		hold        string
		capacity    *CapacityRequest
		unplaceable bool
		resources   *Resources
		reason      string // a substring of one reason
	}
	cases := []struct {
		name string
		cfg  Config
		edit func(in *Input)
		want want
	}{
		{
			name: "count from demand: ceil(2800·1.1 / (1000·0.7)) = 5",
			edit: func(in *Input) { in.Demand = cpu(2800) },
			want: want{count: 5, class: "ext-a", reason: "p95 cpu demand 2800 MHz × 1.10 / (1000 MHz × 0.70) = 5"},
		},
		{
			name: "memory does not size the count: each instance holds its own",
			edit: func(in *Input) { in.Demand = &Resources{CPUMHz: 700, MemoryMB: 3000} },
			want: want{count: 2, class: "ext-a", reason: "p95 cpu demand 700 MHz"},
		},
		{
			// The real cluster's case: 2 × 80 MB on 64 MB reserved, almost
			// no CPU. The count stays; the reason says to rightsize.
			name: "memory above its share of the reservation asks for rightsizing, not instances",
			edit: func(in *Input) {
				in.Reserved = Resources{CPUMHz: 1000, MemoryMB: 64}
				in.Demand = &Resources{CPUMHz: 20, MemoryMB: 159}
				in.Usage = &Resources{CPUMHz: 10, MemoryMB: 80}
				in.GroupMeta[MetaMin], in.GroupMeta[MetaMax] = "1", "5"
			},
			want: want{count: 1, class: "ext-a", reason: "memory does not size the count, each instance holds its own: one allocation uses 80 MB (p95) of its 64 MB; rightsize its memory (foresight.rightsize)"},
		},
		{
			name: "memory sizes the count when the group names it as its metric: it says the memory splits",
			edit: func(in *Input) {
				in.Demand = &Resources{CPUMHz: 700, MemoryMB: 3000}
				in.GroupMeta[MetaMetric] = "mem_usage_bytes"
			},
			want: want{count: 5, class: "ext-a", reason: "p95 memory demand 3000 MB × 1.10 / (1024 MB × 0.70) = 5"},
		},
		{
			name: "a named metric without a reservation is sized by its target per instance",
			edit: func(in *Input) {
				rx := 2.4e7
				in.MetricDemand = &rx
				in.GroupMeta[MetaMetric], in.GroupMeta[MetaMetricTarget] = "net_rx_bps", "1e7"
			},
			want: want{count: 3, class: "ext-a", reason: "p95 net_rx_bps demand 2.4e+07 × 1.10 / 1e+07 per instance (foresight.metric_target) = 3"},
		},
		{
			name: "a named metric not forecast keeps the count, whatever the cpu says",
			edit: func(in *Input) {
				in.Demand = cpu(2800)
				in.GroupMeta[MetaMetric], in.GroupMeta[MetaMetricTarget] = "net_rx_bps", "1e7"
			},
			want: want{count: 2, class: "ext-a", reason: "no forecast of net_rx_bps demand"},
		},
		{
			name: "Foresight's own job is left alone, and the reason names the rule that told",
			edit: func(in *Input) { in.Demand, in.Own = cpu(2800), "NOMAD_JOB_ID of this agent" },
			want: want{count: 2, class: "ext-a", hold: "Foresight's own job (NOMAD_JOB_ID of this agent)"},
		},
		{
			name: "a batch job is profiled and forecast, never acted on",
			edit: func(in *Input) { in.Demand, in.JobType = cpu(2800), "batch" },
			want: want{count: 2, class: "ext-a", hold: "batch job"},
		},
		{
			name: "a system job gets no count and no class",
			edit: func(in *Input) {
				in.Demand, in.JobType = cpu(2800), "system"
				in.Scores = scores("ext-a", 0, "ext-b", 90, "cloud", 0)
			},
			want: want{count: 2, class: "ext-a", reason: "count and class not decided: a system job runs one allocation on every eligible node"},
		},
		{
			name: "a sysbatch job may still be rightsized",
			edit: func(in *Input) {
				in.JobType = "sysbatch"
				in.GroupMeta[MetaRightsize] = "true"
				in.Usage = &Resources{CPUMHz: 300, MemoryMB: 300}
			},
			want: want{count: 2, class: "ext-a", resources: &Resources{CPUMHz: 350, MemoryMB: 345}},
		},
		{
			name: "a class change is not written where no other feasible class has nodes: it could not change the placement",
			edit: func(in *Input) {
				in.Current, in.Running = "", nil // not placed yet
				in.Scores = scores("ext-b", 90, "ext-a", 10, "cloud", 0)
				in.Feasible = []string{"ext-b"} // its datacenters hold no other class
			},
			want: want{count: 2, class: "", reason: "class ext-b not written: no other class the group could be placed on has nodes"},
		},
		{
			// The real cluster's case: one client node, one class.
			name: "on a one-class cluster no affinity is written: it cannot change where anything runs",
			edit: func(in *Input) {
				in.Room = NewRoom([]profiles.Class{class("only", profiles.PlatformExternal, 1, 2)}, nil)
				in.Current, in.Running, in.Scores = "", map[string]int{"only": 2}, scores("only", 12)
			},
			want: want{count: 2, class: ""},
		},
		{
			name: "a class change is not written when every allocation already runs there",
			edit: func(in *Input) {
				in.Current, in.Running = "ext-a", map[string]int{"ext-b": 2}
				in.Scores = scores("ext-b", 90, "ext-a", 10, "cloud", 0)
			},
			want: want{count: 2, class: "ext-a", reason: "class ext-b not written: every running allocation (2) is on it already"},
		},
		{
			name: "a class change is written where another feasible class has nodes",
			edit: func(in *Input) {
				in.Scores = scores("ext-b", 90, "ext-a", 10, "cloud", 0)
				in.Feasible = []string{"ext-a", "ext-b"}
			},
			want: want{count: 2, class: "ext-b", rewrite: true},
		},
		{
			name: "without managed affinities the group stays where it runs unless another class is clearly better",
			edit: func(in *Input) { in.Current, in.Scores = "", scores("ext-b", 55, "ext-a", 50, "cloud", 30) },
			want: want{count: 2, class: "", reason: "class not set: ext-b scores only 5.0 more than ext-a"},
		},
		{
			name: "without managed affinities a clearly better class is steered to",
			edit: func(in *Input) { in.Current, in.Scores = "", scores("ext-b", 70, "ext-a", 50, "cloud", 30) },
			want: want{count: 2, class: "ext-b", rewrite: true},
		},
		{
			name: "no forecast keeps the count",
			want: want{count: 2, class: "ext-a", reason: "no forecast"},
		},
		{
			name: "raised to min",
			edit: func(in *Input) { in.Demand = cpu(10); in.GroupMeta[MetaMin] = "2" },
			want: want{count: 2, class: "ext-a", reason: "raised to foresight.min = 2"},
		},
		{
			name: "capped at max",
			edit: func(in *Input) { in.Demand = cpu(100000); in.GroupMeta[MetaMax] = "4" },
			want: want{count: 4, class: "ext-a", reason: "capped at foresight.max = 4"},
		},
		{
			name: "step up limited",
			edit: func(in *Input) { in.Demand = cpu(7000); in.GroupMeta[MetaMaxStep] = "1" },
			want: want{count: 3, class: "ext-a", reason: "limited to +1"},
		},
		{
			name: "step down limited",
			edit: func(in *Input) { in.Count, in.Demand = 8, cpu(100); in.GroupMeta[MetaMaxStep] = "3" },
			want: want{count: 5, class: "ext-a", reason: "limited to -3"},
		},
		{
			name: "cooldown up holds a scale up",
			edit: func(in *Input) { in.Demand = cpu(2800); in.Damping.LastScale = t0.Add(-time.Minute) },
			want: want{count: 2, class: "ext-a", reason: "foresight.cooldown_up 2m0s"},
		},
		{
			name: "a count asked by the autoscaler replaces the forecast's, and its cooldowns are the asker's",
			edit: func(in *Input) {
				n := 4
				in.Want, in.WantReason = &n, "cpu above target"
				in.Demand = cpu(100)
				in.Damping.LastScale = t0.Add(-time.Minute)
			},
			want: want{count: 4, class: "ext-a", reason: "count 4 asked by the autoscaler: cpu above target"},
		},
		{
			name: "a count asked by the autoscaler stays within max",
			edit: func(in *Input) { n := 9; in.Want = &n; in.GroupMeta[MetaMax] = "5" },
			want: want{count: 5, class: "ext-a", reason: "capped at foresight.max = 5"},
		},
		{
			name: "a demand just below the count keeps it (scale-down band)",
			edit: func(in *Input) { in.Count, in.Demand = 5, cpu(2400); in.Running = map[string]int{"ext-a": 5} },
			want: want{count: 5, class: "ext-a", reason: "scale-down band"},
		},
		{
			name: "a demand clearly below the count lowers it to what the band allows",
			edit: func(in *Input) { in.Count, in.Demand = 5, cpu(1500); in.Running = map[string]int{"ext-a": 5} },
			want: want{count: 3, class: "ext-a", reason: "count 5 → 3"},
		},
		{
			name: "cooldown up passed",
			edit: func(in *Input) { in.Demand = cpu(2800); in.Damping.LastScale = t0.Add(-3 * time.Minute) },
			want: want{count: 5, class: "ext-a"},
		},
		{
			name: "cooldown down holds a scale down the up cooldown would let through",
			edit: func(in *Input) {
				in.Count, in.Demand, in.Damping.LastScale = 6, cpu(700), t0.Add(-5*time.Minute)
			},
			want: want{count: 6, class: "ext-a", reason: "foresight.cooldown_down 10m0s"},
		},
		{
			name: "cooldown down passed",
			edit: func(in *Input) {
				in.Count, in.Demand, in.Damping.LastScale = 6, cpu(700), t0.Add(-11*time.Minute)
			},
			want: want{count: 2, class: "ext-a"},
		},
		{
			name: "a count out of bounds is brought back despite the cooldown",
			edit: func(in *Input) {
				in.Count, in.Demand, in.Damping.LastScale = 1, cpu(10), t0.Add(-time.Second)
				in.GroupMeta[MetaMin] = "3"
			},
			want: want{count: 3, class: "ext-a"},
		},
		{
			name: "hysteresis: a small gain does not move the group",
			edit: func(in *Input) { in.Scores = scores("ext-a", 50, "ext-b", 58, "cloud", 0) },
			want: want{count: 2, class: "ext-a", reason: "class stays ext-a: ext-b scores only 8.0 more (margin 10.0)"},
		},
		{
			name: "hysteresis: a clear gain moves it",
			edit: func(in *Input) { in.Scores = scores("ext-a", 50, "ext-b", 61, "cloud", 0) },
			want: want{count: 2, class: "ext-b", rewrite: true, reason: "class ext-a → ext-b"},
		},
		{
			name: "first placement takes the best class",
			edit: func(in *Input) { in.Current, in.Running = "", nil },
			want: want{count: 2, class: "ext-a", rewrite: true},
		},
		{
			name: "external first when scores are equal",
			edit: func(in *Input) {
				in.Current, in.Running, in.Scores = "", nil, scores("cloud", 40, "ext-b", 40, "ext-a", 10)
			},
			want: want{count: 2, class: "ext-b", rewrite: true},
		},
		{
			name: "no external room: capacity requested on the best provider class",
			edit: func(in *Input) {
				in.Room = NewRoom([]profiles.Class{
					class("cloud", profiles.PlatformProvider, 1, 0),
					class("ext-a", profiles.PlatformExternal, 2, 0),
				}, nil)
				in.Demand = cpu(2800)
			},
			// The 3 allocations ext-a cannot hold spill onto what is bought;
			// moving the 2 running ones would replace them for nothing.
			want: want{count: 5, class: "ext-a",
				capacity: &CapacityRequest{Class: "cloud", CPUMHz: 3000, MemoryMB: 3072}, reason: "no external class has room"},
		},
		{
			name: "no external room, a provider pool at zero nodes: bought in its declared node size",
			edit: func(in *Input) {
				in.Room = NewRoom([]profiles.Class{
					declaredClass("cloud", 4000, 16384),
					class("ext-a", profiles.PlatformExternal, 2, 0),
				}, nil)
				in.Demand = cpu(2800)
			},
			want: want{count: 5, class: "ext-a",
				capacity: &CapacityRequest{Class: "cloud", CPUMHz: 3000, MemoryMB: 3072}, reason: "no external class has room"},
		},
		{
			name: "no external room, a provider pool at zero nodes too small for one allocation: unplaceable",
			edit: func(in *Input) {
				in.Room = NewRoom([]profiles.Class{
					declaredClass("cloud", 500, 16384),
					class("ext-a", profiles.PlatformExternal, 2, 0),
				}, nil)
				in.Demand = cpu(2800)
			},
			want: want{count: 5, class: "ext-a", unplaceable: true, reason: "larger than a node of provider class cloud"},
		},
		{
			name: "no external room, first placement: steered to the provider class",
			edit: func(in *Input) {
				in.Room = NewRoom([]profiles.Class{
					class("cloud", profiles.PlatformProvider, 1, 0),
					class("ext-a", profiles.PlatformExternal, 2, 0),
				}, nil)
				in.Demand, in.Current, in.Running = cpu(2800), "", nil
			},
			want: want{count: 5, class: "cloud", rewrite: true,
				capacity: &CapacityRequest{Class: "cloud", CPUMHz: 5000, MemoryMB: 5120}},
		},
		{
			name: "no external room: the free room of other external classes is counted before buying",
			edit: func(in *Input) {
				in.Room = NewRoom([]profiles.Class{
					class("cloud", profiles.PlatformProvider, 1, 0),
					class("ext-a", profiles.PlatformExternal, 2, 0),
					class("ext-b", profiles.PlatformExternal, 1, 2), // 2 of the 3 fit here
				}, nil)
				in.Demand = cpu(2800)
			},
			want: want{count: 5, class: "ext-a",
				capacity: &CapacityRequest{Class: "cloud", CPUMHz: 1000, MemoryMB: 1024}},
		},
		{
			name: "allocations that already spilled onto provider capacity are not bought again",
			edit: func(in *Input) {
				in.Room = NewRoom([]profiles.Class{
					class("cloud", profiles.PlatformProvider, 1, 0), // full with the group's 4
					class("ext-a", profiles.PlatformExternal, 2, 0),
				}, map[string]Resources{"cloud": {CPUMHz: 4000, MemoryMB: 16384}})
				n := 9
				in.Count, in.Want, in.Running = n, &n, map[string]int{"ext-a": 2, "cloud": 4}
			},
			// 9 − 2 on ext-a − 4 on cloud = 3 more, and a node of 4 is on
			// its way: nothing to buy.
			want: want{count: 9, class: "ext-a"},
		},
		{
			name: "capacity already arriving is counted: no new request",
			edit: func(in *Input) {
				in.Room = NewRoom([]profiles.Class{
					class("cloud", profiles.PlatformProvider, 1, 0),
					class("ext-a", profiles.PlatformExternal, 2, 0),
				}, map[string]Resources{"cloud": {CPUMHz: 8000, MemoryMB: 32768}})
				in.Demand = cpu(2800)
			},
			// The full external class is kept: the allocations it cannot
			// hold spill onto the arriving provider capacity.
			want: want{count: 5, class: "ext-a", reason: "class stays ext-a although it is full"},
		},
		{
			name: "a full external class is left for a provider class only when it is clearly better",
			edit: func(in *Input) {
				in.Room = NewRoom([]profiles.Class{
					class("cloud", profiles.PlatformProvider, 1, 0),
					class("ext-a", profiles.PlatformExternal, 2, 0),
				}, map[string]Resources{"cloud": {CPUMHz: 8000, MemoryMB: 32768}})
				in.Count, in.Demand = 5, cpu(2800)
				in.Scores = scores("cloud", 80, "ext-a", 10)
			},
			want: want{count: 5, class: "cloud", rewrite: true},
		},
		{
			name: "a class change waits while the count rises: the rolling replacement would leave the group short",
			edit: func(in *Input) {
				in.Room = NewRoom([]profiles.Class{
					class("cloud", profiles.PlatformProvider, 1, 0),
					class("ext-a", profiles.PlatformExternal, 2, 0),
				}, map[string]Resources{"cloud": {CPUMHz: 8000, MemoryMB: 32768}})
				in.Demand = cpu(2800)
				in.Scores = scores("cloud", 80, "ext-a", 10)
			},
			want: want{count: 5, class: "ext-a", reason: "the count rises first"},
		},
		{
			name: "without managed affinities a full external class is kept like a managed one: the overflow spills onto provider capacity",
			edit: func(in *Input) {
				in.Room = NewRoom([]profiles.Class{
					class("cloud", profiles.PlatformProvider, 2, 4),
					class("ext-a", profiles.PlatformExternal, 2, 0),
				}, nil)
				in.Current, in.Count, in.Demand = "", 5, cpu(2800)
				in.Scores = scores("cloud", 55, "ext-a", 50)
			},
			want: want{count: 5, class: "", reason: "class not set: the group stays on ext-a although it is full: provider class cloud scores only 5.0 more"},
		},
		{
			name: "without managed affinities and no room anywhere, the group stays where it runs and only the overflow is bought",
			edit: func(in *Input) {
				in.Room = NewRoom([]profiles.Class{
					class("cloud", profiles.PlatformProvider, 1, 0),
					class("ext-a", profiles.PlatformExternal, 2, 0),
				}, nil)
				in.Current, in.Count, in.Demand = "", 5, cpu(2800)
			},
			want: want{count: 5, class: "",
				capacity: &CapacityRequest{Class: "cloud", CPUMHz: 3000, MemoryMB: 3072}},
		},
		{
			name: "a home Foresight cannot mark, with room, buys nothing and is kept",
			edit: func(in *Input) {
				c := class("ext-n", profiles.PlatformExternal, 2, 2)
				c.Targets = []profiles.Target{{Attribute: "${node.class}", Value: "n"}}
				in.Room = NewRoom([]profiles.Class{class("cloud", profiles.PlatformProvider, 1, 0), c}, nil)
				in.Current, in.Running = "", map[string]int{"ext-n": 2}
				in.Scores = scores("ext-n", 50, "cloud", 30)
			},
			want: want{count: 2, class: ""},
		},
		{
			name: "no room and no provider class: unplaceable",
			edit: func(in *Input) {
				in.Room = NewRoom([]profiles.Class{class("ext-a", profiles.PlatformExternal, 2, 0)}, nil)
				in.Demand = cpu(2800)
			},
			want: want{count: 5, class: "ext-a", unplaceable: true, reason: "no provider class"},
		},
		{
			name: "a class Foresight cannot mark is never a target",
			edit: func(in *Input) {
				c := class("ext-b", profiles.PlatformExternal, 2, 2)
				c.Targets = []profiles.Target{{Attribute: "${node.class}", Value: "b"}}
				in.Room = NewRoom([]profiles.Class{class("ext-a", profiles.PlatformExternal, 2, 2), c}, nil)
				in.Scores = scores("ext-b", 100, "ext-a", 0)
			},
			want: want{count: 2, class: "ext-a"},
		},
		{
			name: "rewrite budget spent: no move",
			edit: func(in *Input) {
				in.Scores = scores("ext-a", 0, "ext-b", 90, "cloud", 0)
				in.Damping.Rewrites = []time.Time{t0.Add(-50 * time.Minute), t0.Add(-10 * time.Minute)}
			},
			want: want{count: 2, class: "ext-a", reason: "rewrite budget spent (2 of 2"},
		},
		{
			name: "rewrites older than an hour do not count",
			edit: func(in *Input) {
				in.Scores = scores("ext-a", 0, "ext-b", 90, "cloud", 0)
				in.Damping.Rewrites = []time.Time{t0.Add(-70 * time.Minute), t0.Add(-10 * time.Minute)}
			},
			want: want{count: 2, class: "ext-b", rewrite: true},
		},
		{
			name: "rightsize off: usage ignored",
			edit: func(in *Input) { in.Usage = &Resources{CPUMHz: 300, MemoryMB: 200} },
			want: want{count: 2, class: "ext-a"},
		},
		{
			name: "rightsize on: usage quantile plus margin, and the count follows",
			edit: func(in *Input) {
				in.GroupMeta[MetaRightsize] = "true"
				in.Usage = &Resources{CPUMHz: 600, MemoryMB: 400}
				in.Demand = cpu(2800)
			},
			// 600·1.15 = 690 MHz, 400·1.15 = 460 MB; ⌈2800·1.1/(690·0.7)⌉ = 7.
			want: want{count: 7, class: "ext-a", resources: &Resources{CPUMHz: 690, MemoryMB: 460}},
		},
		{
			name: "rightsize on: within bounds",
			edit: func(in *Input) {
				in.GroupMeta[MetaRightsize] = "true"
				in.Usage = &Resources{CPUMHz: 5, MemoryMB: 10}
			},
			want: want{count: 2, class: "ext-a", resources: &Resources{CPUMHz: DefaultMinCPUMHz, MemoryMB: DefaultMinMemoryMB}},
		},
		{
			name: "rightsize on: a small change is not worth a rewrite",
			edit: func(in *Input) {
				in.GroupMeta[MetaRightsize] = "true"
				in.Usage = &Resources{CPUMHz: 900, MemoryMB: 900}
			},
			want: want{count: 2, class: "ext-a", reason: "within 10% of the reservation"},
		},
		{
			name: "rightsize on: no usage yet",
			edit: func(in *Input) { in.GroupMeta[MetaRightsize] = "true" },
			want: want{count: 2, class: "ext-a", reason: "no per-allocation usage yet"},
		},
		{
			name: "rightsize on: budget spent",
			edit: func(in *Input) {
				in.GroupMeta[MetaRightsize] = "true"
				in.Usage = &Resources{CPUMHz: 300, MemoryMB: 300}
				in.Damping.Rewrites = []time.Time{t0, t0}
			},
			want: want{count: 2, class: "ext-a", reason: "resources unchanged: rewrite budget spent"},
		},
		{
			name: "bad policy: the group is left alone",
			edit: func(in *Input) { in.Demand = cpu(9000); in.GroupMeta[MetaMin], in.GroupMeta[MetaMax] = "5", "3" },
			want: want{count: 2, class: "ext-a", hold: "foresight.min = 5 exceeds foresight.max = 3"},
		},
		{
			name: "mode off: the group is left alone",
			edit: func(in *Input) { in.Demand = cpu(9000); in.GroupMeta[MetaMode] = "off" },
			want: want{count: 2, class: "ext-a", hold: "foresight.mode = off"},
		},
		{
			name: "recommend mode decides all the same",
			edit: func(in *Input) { in.Demand = cpu(2800); delete(in.GroupMeta, MetaMode) },
			want: want{count: 5, class: "ext-a"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := base()
			if tc.edit != nil {
				tc.edit(&in)
			}
			d := Decide(tc.cfg, in)
			again := Decide(tc.cfg, in)
			if strings.Join(d.Reasons, "\n") != strings.Join(again.Reasons, "\n") {
				t.Fatalf("not deterministic:\n%v\n%v", d.Reasons, again.Reasons)
			}
			w := tc.want
			if d.Count != w.count || d.Class != w.class || d.Rewrite != w.rewrite || d.Unplaceable != w.unplaceable {
				t.Errorf("count %d class %q rewrite %v unplaceable %v; want %d %q %v %v",
					d.Count, d.Class, d.Rewrite, d.Unplaceable, w.count, w.class, w.rewrite, w.unplaceable)
			}
			if (d.Hold == "") != (w.hold == "") || !strings.Contains(d.Hold, w.hold) {
				t.Errorf("hold %q, want %q", d.Hold, w.hold)
			}
			if (d.Capacity == nil) != (w.capacity == nil) || d.Capacity != nil && *d.Capacity != *w.capacity {
				t.Errorf("capacity %+v, want %+v", d.Capacity, w.capacity)
			}
			if (d.Resources == nil) != (w.resources == nil) || d.Resources != nil && *d.Resources != *w.resources {
				t.Errorf("resources %+v, want %+v", d.Resources, w.resources)
			}
			if w.reason != "" && !strings.Contains(strings.Join(d.Reasons, "\n"), w.reason) {
				t.Errorf("no reason says %q:\n%s", w.reason, strings.Join(d.Reasons, "\n"))
			}
			if d.Rewrite && (len(d.Affinities) == 0 || d.Affinities[0].Class != d.Class) {
				t.Errorf("rewrite without the chosen class first: %+v", d.Affinities)
			}
		})
	}
}

func TestDecideMovesToTheClassWithRoom(t *testing.T) {
	in := base()
	in.Demand = cpu(4500) // 8 allocations
	in.Room = NewRoom([]profiles.Class{
		class("cloud", profiles.PlatformProvider, 2, 4),
		class("ext-a", profiles.PlatformExternal, 2, 1), // room for 2 beside the 2 running: 4 < 8
		class("ext-b", profiles.PlatformExternal, 4, 2), // room for 8
	}, nil)
	// The count rises first; the extra allocations find ext-b's room
	// under the soft affinities.
	d := Decide(Config{}, in)
	if d.Count != 8 || d.Class != "ext-a" || d.Rewrite || d.Capacity != nil {
		t.Fatalf("got count %d class %s rewrite %v capacity %+v; want 8 staying on ext-a\n%s",
			d.Count, d.Class, d.Rewrite, d.Capacity, strings.Join(d.Reasons, "\n"))
	}
	// Once the count is there, the group moves.
	in.Count = 8
	d = Decide(Config{}, in)
	if d.Count != 8 || d.Class != "ext-b" || !d.Rewrite || d.Capacity != nil {
		t.Fatalf("got count %d class %s rewrite %v capacity %+v; want 8 on ext-b\n%s",
			d.Count, d.Class, d.Rewrite, d.Capacity, strings.Join(d.Reasons, "\n"))
	}
}

func TestManagedAffinities(t *testing.T) {
	in := base()
	in.Current, in.Running = "", nil
	in.Scores = scores("ext-b", 20, "ext-a", 15, "cloud", -40)
	d := Decide(Config{}, in)
	want := []Affinity{
		{Class: "ext-b", Attribute: "${meta.foresight.class}", Value: "ext-b", Weight: minSteerWeight},
		{Class: "ext-a", Attribute: "${meta.foresight.class}", Value: "ext-a", Weight: 15},
	}
	if len(d.Affinities) != len(want) {
		t.Fatalf("affinities %+v, want %+v", d.Affinities, want)
	}
	for i := range want {
		if d.Affinities[i] != want[i] {
			t.Errorf("affinity %d: %+v, want %+v", i, d.Affinities[i], want[i])
		}
	}
}

func TestPeakDemand(t *testing.T) {
	f := forecast.Forecast{
		Mean:      []float64{1, 2, 3},
		Levels:    []float64{0.5, 0.95},
		Quantiles: [][]float64{{1, 2, 3}, {2, 5, 4}},
	}
	got, err := PeakDemand(f, 0.95)
	if err != nil || got != 5 {
		t.Fatalf("got %v, %v; want 5", got, err)
	}
	if _, err := PeakDemand(f, 0.99); err == nil || !strings.Contains(err.Error(), "no quantile 0.99") {
		t.Fatalf("missing level: %v", err)
	}
	f.Quantiles[1][0] = math.NaN()
	if _, err := PeakDemand(f, 0.95); err == nil {
		t.Fatal("NaN step accepted")
	}
}

func TestTheTargetAndFallbacksAreTheBestWithRoom(t *testing.T) {
	var cls []profiles.Class
	for _, id := range []string{"a", "b", "c", "d", "e", "full"} {
		free := 2
		if id == "full" {
			free = 0
		}
		cls = append(cls, class(id, profiles.PlatformExternal, 2, free))
	}
	in := base()
	in.Room, in.Current, in.Running = NewRoom(cls, nil), "", nil
	in.Scores = scores("c", 30, "full", 99, "a", 10, "e", 70, "b", 55, "d", 40)
	d := Decide(Config{}, in)
	var got []string
	for _, a := range d.Affinities {
		got = append(got, fmt.Sprintf("%s:%d", a.Class, a.Weight))
	}
	if strings.Join(got, " ") != "e:70 b:55 d:40" {
		t.Fatalf("affinities %v, want e:70 b:55 d:40 (full has no room)", got)
	}

	// The current class is found however far down it ranks.
	in.Current = "a"
	in.Running = map[string]int{"a": 2}
	in.Scores = scores("c", 30, "full", 99, "a", 65, "e", 70, "b", 69, "d", 68) // a ranks fourth
	if d := Decide(Config{}, in); d.Class != "a" || d.Rewrite {
		t.Fatalf("class %s rewrite %v; want to stay on a (e is only 5 better)", d.Class, d.Rewrite)
	}
}
