package profiles_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/foresight-nomad/foresight/profiles"
	"github.com/foresight-nomad/foresight/telemetry"
)

// workload is a synthetic group: allocations on nodes, a hidden efficiency
// per node, and per-MHz coefficients for memory, disk and network.
type workload struct {
	group  string
	nodes  []string           // one allocation per entry
	eff    map[string]float64 // by node; 1 when missing
	memMB  float64            // MB per MHz of work
	ioBps  float64            // bytes/s per MHz of work
	netBps float64
	noise  float64 // multiplicative noise on CPU, σ of ln
	// weights, when set, split the work unevenly over the allocations and
	// report it as throughput.
	weights []float64
}

// rounds feeds n rounds of w, with a demand that follows a daily-ish wave.
func (w workload) rounds(t *testing.T, p *profiles.Profiler, rng *rand.Rand, n int) {
	t.Helper()
	for r := range n {
		if err := p.Observe(w.round(rng, r)); err != nil {
			t.Fatal(err)
		}
	}
}

func (w workload) round(rng *rand.Rand, r int) []profiles.Observation {
	demand := 3000 * (1.2 + math.Sin(float64(r)/20))
	var out []profiles.Observation
	for i, n := range w.nodes {
		share := demand / float64(len(w.nodes))
		if w.weights != nil {
			var sum float64
			for _, x := range w.weights {
				sum += x
			}
			share = demand * w.weights[i] / sum
		}
		e := 1.0
		if v, ok := w.eff[n]; ok {
			e = v
		}
		cpu := share / e * math.Exp(w.noise*rng.NormFloat64())
		o := profiles.Observation{
			Group: w.group, Alloc: w.group + "-" + string(rune('a'+i)), Node: n, Duration: 5 * time.Minute,
			CPUMHz: cpu, MemRSSBytes: (128 + w.memMB*share) * (1 << 20), IOWriteBps: w.ioBps * share, NetTxBps: w.netBps * share,
			ReservedCPUMHz: 4000, ReservedMemoryMB: 4096,
		}
		o.MemUsageBytes = o.MemRSSBytes
		if w.weights != nil {
			o.Throughput = share / 10 // requests/s at 10 MHz·s each
		}
		out = append(out, o)
	}
	return out
}

// threeClasses is a small cluster: a general, a memory-rich and a provider
// class, two nodes each.
func threeClasses(t *testing.T, cfg profiles.Config) *profiles.Profiler {
	t.Helper()
	p, err := profiles.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	nodes := []profiles.Node{
		node("g1", "general", "external", "ssd", "standard", 8000, 16384),
		node("g2", "general", "external", "ssd", "standard", 8000, 16384),
		node("m1", "himem", "external", "hdd", "xhigh", 8000, 65536),
		node("m2", "himem", "external", "hdd", "xhigh", 8000, 65536),
		node("c1", "cloud", "provider", "ssd", "standard", 8000, 16384),
		node("c2", "cloud", "provider", "ssd", "standard", 8000, 16384),
	}
	if err := p.SetNodes(nodes); err != nil {
		t.Fatal(err)
	}
	return p
}

const (
	general = "external-ssd-standard-10g"
	himem   = "external-hdd-xhigh-10g"
	cloud   = "provider-ssd-standard-10g"
)

func scoreOf(t *testing.T, scores []profiles.Score, class string) profiles.Score {
	t.Helper()
	for _, s := range scores {
		if s.Class == class {
			return s
		}
	}
	t.Fatalf("no score for %s in %v", class, scores)
	return profiles.Score{}
}

func TestScoresRecoverTheHiddenEfficiency(t *testing.T) {
	p := threeClasses(t, profiles.Config{})
	w := workload{group: "default/app/web", nodes: []string{"g1", "g2", "m1", "c1", "c2"},
		eff: map[string]float64{"m1": 0.9, "c1": 1.2, "c2": 1.2}, noise: 0.05}
	w.rounds(t, p, rand.New(rand.NewPCG(1, 2)), 12*12) // 12 h of 5-minute rounds

	scores := p.Scores(w.group)
	if scores[0].Class != cloud || scores[2].Class != himem {
		t.Fatalf("order %s, %s, %s; want cloud, general, himem", scores[0].Class, scores[1].Class, scores[2].Class)
	}
	// The efficiencies are relative to the group's average class; their
	// ratios are what the evidence measures.
	got := scoreOf(t, scores, cloud).Efficiency / scoreOf(t, scores, general).Efficiency
	if math.Abs(got-1.2) > 0.03 {
		t.Errorf("cloud/general efficiency %.3f, want 1.2 ± 0.03", got)
	}
	for _, s := range scores {
		if s.Confidence < 0.8 || s.Value < -100 || s.Value > 100 {
			t.Errorf("%s: confidence %.2f value %.1f after 12 h on it, want ≥ 0.8 and in −100…100", s.Class, s.Confidence, s.Value)
		}
		if !strings.HasPrefix(s.Reason, "observed ") {
			t.Errorf("%s: reason %q does not cite the observation", s.Class, s.Reason)
		}
	}
}

func TestThroughputReplacesTheEvenShareWhenReported(t *testing.T) {
	// The balancer sends twice as much to the cloud allocations, which
	// are no more efficient: only throughput tells that apart from a
	// class that uses twice the CPU for the same work.
	w := workload{group: "default/app/api", nodes: []string{"g1", "c1"}, weights: []float64{1, 2}}
	p := threeClasses(t, profiles.Config{})
	w.rounds(t, p, rand.New(rand.NewPCG(3, 4)), 48)
	ratio := scoreOf(t, p.Scores(w.group), cloud).Efficiency / scoreOf(t, p.Scores(w.group), general).Efficiency
	if math.Abs(ratio-1) > 0.01 {
		t.Errorf("with throughput: cloud/general efficiency %.3f, want 1", ratio)
	}

	// Without it, the even-share assumption reads the extra load as cost.
	blind := threeClasses(t, profiles.Config{})
	rng := rand.New(rand.NewPCG(3, 4))
	for r := range 48 {
		round := w.round(rng, r)
		for i := range round {
			round[i].Throughput = 0
		}
		if err := blind.Observe(round); err != nil {
			t.Fatal(err)
		}
	}
	ratio = scoreOf(t, blind.Scores(w.group), cloud).Efficiency / scoreOf(t, blind.Scores(w.group), general).Efficiency
	if ratio > 0.6 {
		t.Errorf("without throughput: cloud/general efficiency %.3f, want about 0.5", ratio)
	}
}

func TestConfidenceFollowsTheEvidence(t *testing.T) {
	confidence := func(rounds int, noise float64) float64 {
		p := threeClasses(t, profiles.Config{})
		w := workload{group: "default/app/web", nodes: []string{"g1", "c1"}, eff: map[string]float64{"c1": 1.2}, noise: noise}
		w.rounds(t, p, rand.New(rand.NewPCG(5, 6)), rounds)
		s := scoreOf(t, p.Scores(w.group), cloud)
		// One allocation on the class for rounds of 5 minutes, each
		// round's hours discounted by the half-life since.
		var want float64
		decay := math.Exp2(-(5 * time.Minute).Hours() / profiles.DefaultEvidenceHalfLife.Hours())
		for range rounds {
			want = want*decay + 1.0/12
		}
		if math.Abs(s.Compared-want) > 1e-9 {
			t.Errorf("compared hours %.4f, want %.4f", s.Compared, want)
		}
		return s.Confidence
	}
	hour, day := confidence(12, 0.02), confidence(12*24, 0.02)
	noisyDay := confidence(12*24, 0.3)
	if !(0 < hour && hour < day && day < 1) {
		t.Errorf("confidence after 1 h %.2f, after 24 h %.2f: want 0 < 1 h < 24 h < 1", hour, day)
	}
	if noisyDay >= day {
		t.Errorf("confidence after 24 h of noisy evidence %.2f, of clean %.2f: want noisy lower", noisyDay, day)
	}
	p := threeClasses(t, profiles.Config{})
	for _, s := range p.Scores("default/never/seen") {
		if s.Confidence != 0 || s.AllocHours != 0 {
			t.Errorf("unobserved group on %s: confidence %.2f, %.1f alloc-hours; want none", s.Class, s.Confidence, s.AllocHours)
		}
	}
}

func TestOldEvidenceFades(t *testing.T) {
	// For two weeks the group does best on cloud (1.2×); then a release
	// makes it do best on general (1.3× over cloud). Six days later the
	// recent evidence must win, as it would not if nothing faded.
	best := func(cfg profiles.Config) string {
		p := threeClasses(t, cfg)
		rng := rand.New(rand.NewPCG(13, 14))
		before := workload{group: "default/app/web", nodes: []string{"g1", "c1"}, eff: map[string]float64{"c1": 1.2}}
		after := workload{group: "default/app/web", nodes: []string{"g1", "c1"}, eff: map[string]float64{"g1": 1.3}}
		before.rounds(t, p, rng, 14*288)
		after.rounds(t, p, rng, 6*288)
		return p.Scores(before.group)[0].Class
	}
	if got := best(profiles.Config{}); got != general {
		t.Errorf("with the default half-life %s ranks first, want %s", got, general)
	}
	if got := best(profiles.Config{EvidenceHalfLife: 10 * 365 * 24 * time.Hour}); got != cloud {
		t.Errorf("without fading %s ranks first, want %s (else this test shows nothing)", got, cloud)
	}
}

func TestPriorMatchesNeedsToTraits(t *testing.T) {
	p := threeClasses(t, profiles.Config{})
	rng := rand.New(rand.NewPCG(7, 8))
	// Every allocation on one class: nothing is compared, so the scores
	// are the prior from the profiles alone.
	heavy := workload{group: "default/db/cache", nodes: []string{"g1", "g2"}, memMB: 2}
	light := workload{group: "default/web/web", nodes: []string{"g1", "g2"}, memMB: 0.05}
	disk := workload{group: "default/etl/load", nodes: []string{"g1", "g2"}, memMB: 0.05, ioBps: 50000}
	for r := range 24 {
		var round []profiles.Observation
		for _, w := range []workload{heavy, light, disk} {
			round = append(round, w.round(rng, r)...)
		}
		if err := p.Observe(round); err != nil {
			t.Fatal(err)
		}
	}
	prof, ok := p.Profile(heavy.group)
	if !ok || prof.Intensity.Memory <= 1 {
		t.Fatalf("memory intensity of the cache %.2f, want > 1", prof.Intensity.Memory)
	}
	if s := p.Scores(heavy.group); s[0].Class != himem || !strings.Contains(s[0].Reason, "memory-heavy group on memory-rich class") {
		t.Errorf("memory-heavy group ranks %s first (%s), want the memory-rich class", s[0].Class, s[0].Reason)
	}
	if s := p.Scores(disk.group); s[2].Class != himem || !strings.Contains(s[2].Reason, "disk-heavy group on hdd class") {
		t.Errorf("disk-heavy group ranks %s last (%s), want the hdd class", s[2].Class, s[2].Reason)
	}
	// General and cloud differ only in platform: external first.
	s := p.Scores(light.group)
	if g, c := scoreOf(t, s, general), scoreOf(t, s, cloud); g.Value <= c.Value || g.Confidence != 0 {
		t.Errorf("light group: external %.1f, provider %.1f; want external ahead, on the prior alone", g.Value, c.Value)
	}
}

func TestProfileMeasuresBurstinessAndPressure(t *testing.T) {
	p := threeClasses(t, profiles.Config{})
	var rounds [][]profiles.Observation
	for i, demand := range []float64{1000, 1000, 1000, 5000} {
		load := demand / 2 / 2000
		psi := 60 * load
		rounds = append(rounds, []profiles.Observation{
			{Group: "g", Alloc: "a" + string(rune('0'+i)), Node: "g1", Duration: time.Minute, CPUMHz: demand / 2, PSICPU: psi, ReservedCPUMHz: 2000},
			{Group: "g", Alloc: "b" + string(rune('0'+i)), Node: "g2", Duration: time.Minute, CPUMHz: demand / 2, PSICPU: psi, ReservedCPUMHz: 2000},
		})
	}
	for _, r := range rounds {
		if err := p.Observe(r); err != nil {
			t.Fatal(err)
		}
	}
	prof, _ := p.Profile("g")
	// Demand 1000, 1000, 1000, 5000: mean 2000, σ 2000, peak 2.5×.
	if math.Abs(prof.Burstiness.CV-1) > 1e-9 || math.Abs(prof.Burstiness.PeakToMean-2.5) > 1e-9 {
		t.Errorf("burstiness %+v, want CV 1 and peak to mean 2.5", prof.Burstiness)
	}
	// Stall rises 60 points per unit of load.
	if got := prof.Sensitivity[telemetry.PSICPUSome]; math.Abs(got-60) > 1e-6 {
		t.Errorf("psi_cpu sensitivity %.2f, want 60", got)
	}
	if math.Abs(prof.AllocHours-8.0/60) > 1e-12 || prof.Mean[telemetry.CPUMHz] != 1000 {
		t.Errorf("alloc-hours %.3f mean cpu %.0f, want %.3f and 1000", prof.AllocHours, prof.Mean[telemetry.CPUMHz], 8.0/60)
	}
}

func TestObserveRejectsBadInputAndKeepsNothing(t *testing.T) {
	good := profiles.Observation{Group: "g", Alloc: "a", Node: "g1", Duration: time.Minute, CPUMHz: 100}
	tests := []struct {
		name string
		edit func(*profiles.Observation)
		want string
	}{
		{"nan", func(o *profiles.Observation) { o.CPUMHz = math.NaN() }, "cpu_mhz"},
		{"psi over 100", func(o *profiles.Observation) { o.PSIIO = 101 }, "psi_io_some"},
		{"throttled over 1", func(o *profiles.Observation) { o.ThrottledRatio = 1.5 }, "cpu_throttled_ratio"},
		{"unknown node", func(o *profiles.Observation) { o.Node = "nowhere" }, "no known class"},
		{"no duration", func(o *profiles.Observation) { o.Duration = 0 }, "duration"},
		{"no group", func(o *profiles.Observation) { o.Group = "" }, "no group"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := threeClasses(t, profiles.Config{})
			bad := good
			tt.edit(&bad)
			err := p.Observe([]profiles.Observation{good, bad})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error naming %q", err, tt.want)
			}
			if g := p.Groups(); len(g) != 0 {
				t.Errorf("a rejected round left groups %v", g)
			}
		})
	}
}

func TestNewRejectsImpossibleConfig(t *testing.T) {
	for _, cfg := range []profiles.Config{
		{EvidenceHours: -1},
		{ExploreShare: 2},
		{ScoreScale: math.Inf(1)},
		{ExploreMinCount: -3},
		{EvidenceHalfLife: -time.Hour},
	} {
		if _, err := profiles.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted it", cfg)
		}
	}
}
