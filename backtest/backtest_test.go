package backtest

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/foresight-nomad/foresight/internal/shared"
)

// csvTrace renders a per-minute trace of f(minute) for n minutes as CSV.
func csvTrace(n int, f func(i int) float64) []byte {
	var b bytes.Buffer
	b.WriteString("ts,value\n")
	t0 := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC).Unix()
	for i := range n {
		fmt.Fprintf(&b, "%d,%.4f\n", t0+int64(i)*60, f(i))
	}
	return b.Bytes()
}

// daily is a smooth daily cycle between 20 and 100 with a burst from 30 to
// 110 at 13:00 each day, the kind of jump a reactive scaler is late for.
func daily(i int) float64 {
	m := i % 1440
	v := 60 - 40*math.Cos(2*math.Pi*float64(m)/1440)
	if m >= 13*60 && m < 13*60+30 {
		v += 50
	}
	return v
}

func mustTrace(t testing.TB, src []byte) *Trace {
	t.Helper()
	tr, err := ReadTrace(src, "")
	if err != nil {
		t.Fatal(err)
	}
	tr.Name = "test"
	return tr
}

func TestRunMeasuresEveryPolicyOnTheSameDemand(t *testing.T) {
	tr := mustTrace(t, csvTrace(5*1440, daily))
	rep, err := Run(tr, Options{Warmup: 48 * time.Hour, Series: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Scored != 3*1440-1 {
		t.Fatalf("scored %d minutes, want %d", rep.Scored, 3*1440-1)
	}
	s := rep.Series
	for _, name := range PolicyNames {
		res, ok := rep.Result(name)
		if !ok {
			t.Fatalf("no result for %s", name)
		}
		// What sim measured agrees with the per-minute record: a
		// violation is a scored minute with demand above the running
		// allocations' capacity.
		viol, readyMin := 0, 0.0
		for i := s.Scored; i < len(s.Demand); i++ {
			if s.Demand[i] > s.Ready[name][i]+1e-9 {
				viol++
			}
			readyMin += s.Ready[name][i]
		}
		if viol != res.ViolationMinutes {
			t.Errorf("%s: sim counted %d violation minutes, the series %d", name, res.ViolationMinutes, viol)
		}
		if res.ResourceHours < readyMin/60-1e-9 {
			t.Errorf("%s: %.1f resource-hours, less than the %.1f hours of running allocations", name, res.ResourceHours, readyMin/60)
		}
		if res.MeanUtilization <= 0 || res.MeanUtilization > 1 {
			t.Errorf("%s: mean utilisation %g outside (0, 1]", name, res.MeanUtilization)
		}
		// No policy spends less than perfect foresight could at its
		// violation minutes.
		if least := rep.hind.hours(res.ViolationMinutes); res.ResourceHours < least {
			t.Errorf("%s: %.1f resource-hours at %d violation minutes, under the hindsight bound %.1f",
				name, res.ResourceHours, res.ViolationMinutes, least)
		}
		t.Logf("%+v", res)
	}
	st, _ := rep.Result(PolicyStatic)
	if want := StaticAllocs * float64(rep.Scored) / 60; math.Abs(st.ResourceHours-want) > 1e-6 || st.ScalingActions != 0 {
		t.Errorf("static: %.2f resource-hours and %d actions, want %.2f and none", st.ResourceHours, st.ScalingActions, want)
	}
	// The burst needs provider nodes; the reactive scaler sees it only
	// when it has arrived, so it must violate, and by more than the
	// predictive policy that saw the same burst the day before.
	re, _ := rep.Result(PolicyReactive)
	pr, _ := rep.Result(PolicyPredictive)
	if re.ViolationMinutes == 0 || pr.ViolationMinutes >= re.ViolationMinutes {
		t.Errorf("violation minutes: predictive %d, reactive %d; want reactive late for the daily burst and predictive ahead of it",
			pr.ViolationMinutes, re.ViolationMinutes)
	}
	if pr.ResourceHours >= st.ResourceHours {
		t.Errorf("predictive %.0f resource-hours, not fewer than static's %.0f", pr.ResourceHours, st.ResourceHours)
	}
}

// TestCapacityArrivesLate checks that the delays are real: a step in demand
// beyond the external pool is met only after a provider node has joined
// and the allocations on it have started.
func TestCapacityArrivesLate(t *testing.T) {
	// Flat at 10, then 100 from minute 1500: p99 is 100.
	src := csvTrace(1440+180, func(i int) float64 {
		if i >= 1500 {
			return 100
		}
		return 10
	})
	violations := func(alloc, node time.Duration) int {
		rep, err := Run(mustTrace(t, src), Options{Policies: []string{PolicyReactive}, AllocStart: alloc, ProvisionDelay: node})
		if err != nil {
			t.Fatal(err)
		}
		return rep.Results[0].ViolationMinutes
	}
	fast, slow := violations(time.Minute, 4*time.Minute), violations(time.Minute, 12*time.Minute)
	slowAlloc := violations(5*time.Minute, 4*time.Minute)
	t.Logf("violation minutes: %d with 4m nodes, %d with 12m nodes, %d with 5m allocations", fast, slow, slowAlloc)
	if fast == 0 || slow <= fast {
		t.Errorf("violation minutes %d with 4m provisioning and %d with 12m: want slower nodes to cost more", fast, slow)
	}
	if slowAlloc <= fast {
		t.Errorf("violation minutes %d with 1m allocation start and %d with 5m: want slower starts to cost more", fast, slowAlloc)
	}
}

func TestBadInput(t *testing.T) {
	good := csvTrace(1440+120, daily)
	cases := []struct {
		name string
		src  []byte
		col  string
		opt  Options
		want string
	}{
		{"missing column", good, "cpu", Options{}, `"cpu"`},
		{"too short", csvTrace(1440+30, daily), "", Options{}, "too short"},
		{"no demand", csvTrace(1440+120, func(int) float64 { return 0 }), "", Options{}, "no demand"},
		{"unknown policy", good, "", Options{Policies: []string{"magic"}}, `unknown policy "magic"`},
		{"bad quantile", good, "", Options{Quantile: 1.5}, "quantile"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, err := ReadTrace(c.src, c.col)
			if err == nil {
				_, err = Run(tr, c.opt)
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %s", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

func TestPlotIsWellFormedSVG(t *testing.T) {
	rep, err := Run(mustTrace(t, csvTrace(1440+240, daily)), Options{Series: true})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WritePlot(&buf, rep); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(&buf)
	lines, bands := 0, 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "path" {
			for _, a := range se.Attr {
				switch {
				case a.Name.Local == "class" && a.Value == "line":
					lines++
				case a.Name.Local == "class" && a.Value == "band":
					bands++
				}
			}
		}
	}
	// Demand plus one line per policy, and the forecast band.
	if lines != 1+len(PolicyNames) || bands != 1 {
		t.Errorf("%d lines and %d bands, want %d and 1", lines, bands, 1+len(PolicyNames))
	}
	if err := WritePlot(io.Discard, &Report{}); err == nil {
		t.Error("a report without series plotted without error")
	}
}

func TestGoals(t *testing.T) {
	rep := &Report{Results: []Result{
		{Policy: PolicyPredictive, ViolationMinutes: 10, ResourceHours: 100},
		{Policy: PolicyReactive, ViolationMinutes: 20, ResourceHours: 96},
		{Policy: PolicyStatic, ViolationMinutes: 4, ResourceHours: 150},
	}}
	g := rep.Goals()
	if len(g) != 2 || !g[0].Met || g[1].Met {
		t.Fatalf("goals %+v: want vs reactive met (−50%% at ×1.04) and vs static missed (−33%% but 10 > 2×4 violations)", g)
	}
	rep.Results[1].ResourceHours = 95
	if rep.Goals()[0].Met {
		t.Error("vs reactive met at ×1.053 resource-hours")
	}
}

func TestHindsightBound(t *testing.T) {
	h := newHindsight(needs([]float64{0, 400, 500, 501, 2400}))
	// Needs 0, 1, 1, 2, 5: 9 allocation-minutes with no violation; the
	// neediest minutes left without capacity save 5, 2, 1, 1, then
	// nothing.
	for v, want := range []float64{9, 4, 2, 1, 0, 0, 0} {
		if got := h.hours(v) * 60; math.Abs(got-want) > 1e-9 {
			t.Errorf("%d violation minutes: bound %g allocation-minutes, want %g", v, got, want)
		}
	}
	rep := &Report{hind: h, Results: []Result{
		{Policy: PolicyPredictive, ViolationMinutes: 1, ResourceHours: 6.0 / 60},
		{Policy: PolicyReactive, ViolationMinutes: 2, ResourceHours: 3.5 / 60},
		{Policy: PolicyStatic, ViolationMinutes: 0, ResourceHours: 25.0 / 60},
	}}
	g := rep.Goals()
	// vs reactive: 1 violation minute allowed, where the bound is 4
	// allocation-minutes and the goal allows 3.675: impossible. vs static:
	// none allowed, bound 9, allowed 17.5: possible.
	if b := g[0].Hindsight; b == nil || b.ViolationMinutes != 1 || b.Possible {
		t.Errorf("vs reactive bound %+v, want 1 violation minute and impossible", b)
	}
	if b := g[1].Hindsight; b == nil || b.ViolationMinutes != 0 || !b.Possible {
		t.Errorf("vs static bound %+v, want 0 violation minutes and possible", b)
	}
	if b := rep.Possible(); b == nil || b.ViolationMinutes != 0 || b.Possible {
		t.Errorf("both goals %+v: want 0 violation minutes within 3.675 allocation-minutes, impossible", b)
	}
}

func TestSweepScoresEverySettingAgainstTheBaselines(t *testing.T) {
	tr := mustTrace(t, csvTrace(4*1440, daily))
	rep, err := Run(tr, Options{Warmup: 24 * time.Hour, Sweep: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Sweep) != len(Settings) {
		t.Fatalf("%d trials, want one per setting (%d)", len(rep.Sweep), len(Settings))
	}
	pr, _ := rep.Result(PolicyPredictive)
	defaults, holds := 0, 0
	for _, tr := range rep.Sweep {
		if tr.IsDefault {
			defaults++
			// The same settings on the same trace: the same run.
			if tr.Result != pr {
				t.Errorf("the default setting scored %+v in the sweep and %+v as the predictive policy", tr.Result, pr)
			}
		}
		if tr.Setting.BurstHold > 0 {
			holds++
		}
		g := rep.goalsOf(tr.Result)
		if tr.Reactive != g[0].Met || tr.Static != g[1].Met {
			t.Errorf("%v: meets vs reactive %v, vs static %v; the goals say %+v", tr.Setting, tr.Reactive, tr.Static, g)
		}
	}
	if defaults != 1 || holds != len(Settings)/2 {
		t.Errorf("%d default settings and %d with a burst hold among %d, want 1 and half", defaults, holds, len(Settings))
	}
	// Less capacity per unit of demand costs fewer resource-hours.
	lean, fat := rep.Sweep[len(Settings)-1].Result, rep.Sweep[0].Result
	if lean.ResourceHours >= fat.ResourceHours {
		t.Errorf("target utilisation 1.0 spent %.0f resource-hours, 0.6 %.0f", lean.ResourceHours, fat.ResourceHours)
	}
	if _, err := Run(tr, Options{Sweep: true, Warmup: 24 * time.Hour, Policies: []string{PolicyPredictive}}); err == nil {
		t.Error("a sweep without the baselines to compare with ran")
	}
}

// goalTraces are the shared traces (held out: the repository's
// examples/traces are the development set) on which `go test` checks the
// goals, with the reason for each miss the full table shows. A goal must be
// met unless a reason is given, and missed when one is, so that the list
// stays the truth. 5f5533 and input13 were picked before any result was
// seen; ac20cd was added after an earlier full table. The full table over
// every shared trace is `foresight backtest -trace ../shared/data/traces`.
var goalTraces = []struct {
	name                     string
	missReactive, missStatic string
	// impossible names the goal the perfect-foresight bound rules out.
	impossible string
}{
	{
		name:         "nab/ec2_cpu_utilization_5f5533.csv",
		missReactive: "a smooth trace: reactive's 43 % buffer violates no minute in 13 days, predictive 2",
		missStatic:   "static's mean utilisation is 0.83: 30 % fewer resource-hours would need more than 100 %",
		impossible:   goalStatic,
	},
	{name: "crane/input13.csv"},
	{
		name:         "nab/ec2_cpu_utilization_ac20cd.csv",
		missReactive: "violations cut by 31 %, not 50 %: reactive already violates only 16 minutes in 13 days, and predictive's 11 are jumps inside the 6-minute lead time that no forecast saw",
	},
}

func TestGoalsOnSharedTraces(t *testing.T) {
	if testing.Short() {
		t.Skip("replays three 14-day traces")
	}
	for _, gt := range goalTraces {
		path := sharedTrace(t, gt.name)
		tr, err := LoadTrace(path, "")
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Run(tr, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range rep.Goals() {
			why := gt.missReactive
			if g.Name == "vs static" {
				why = gt.missStatic
			}
			t.Logf("%s %s: met %v: %s", gt.name, g.Name, g.Met, g.Detail)
			if b := g.Hindsight; b == nil || b.Possible != (g.Name != gt.impossible) {
				t.Errorf("%s %s: perfect foresight %+v, want possible %v", gt.name, g.Name, b, g.Name != gt.impossible)
			}
			switch {
			case !g.Met && why == "":
				t.Errorf("%s: goal %s missed: %s", gt.name, g.Name, g.Detail)
			case g.Met && why != "":
				t.Errorf("%s: goal %s is now met (%s): drop the reason %q", gt.name, g.Name, g.Detail, why)
			}
		}
	}
}

func BenchmarkBacktest14Days(b *testing.B) {
	src, err := os.ReadFile("../examples/traces/crane-input9.csv")
	if err != nil {
		b.Fatal(err)
	}
	// The first 14 days (and the point that closes the last minute).
	lines := bytes.SplitAfter(src, []byte("\n"))
	src = bytes.Join(lines[:1+14*1440+1], nil)
	tr := mustTrace(b, src)
	if tr.Duration() < 14*24*time.Hour {
		b.Fatalf("trace is %v long, want 14 days", tr.Duration())
	}
	var rep *Report
	for b.Loop() {
		rep, err = Run(tr, Options{})
		if err != nil {
			b.Fatal(err)
		}
	}
	for _, r := range rep.Results {
		b.Logf("%+v", r)
	}
}

func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }

func sharedTrace(t testing.TB, name string) string {
	t.Helper()
	return shared.Path(t, "data", "traces", name)
}

// TestReactiveFollowsTheAutoscaler checks the reactive policy against the
// Nomad Autoscaler's target-value arithmetic (new count ⌈count × metric ÷
// target⌉, nothing within 1 % of the target) and its handler's cooldown
// (out of cooldown only after the action's time plus the cooldown).
func TestReactiveFollowsTheAutoscaler(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
	// 10 allocations running, demand worth 30 of them.
	over := func(now time.Time) observation {
		return observation{now: now, demand: 30 * AllocMHz, utilization: 300, capped: 100, running: 10}
	}
	cases := []struct {
		name   string
		capped bool
		want   int
	}{
		{"uncapped load per allocation", false, 43}, // ⌈10 × 300/70⌉
		{"capped CPU utilisation", true, 15},        // ⌈10 × 100/70⌉
	}
	for _, c := range cases {
		p := newReactive(c.capped)
		got, err := p.decide(over(t0), 10)
		if err != nil || got != c.want {
			t.Errorf("%s: count %d (%v), want %d", c.name, got, err, c.want)
		}
	}
	p := newReactive(false)
	if got, _ := p.decide(over(t0), 10); got != 43 {
		t.Fatalf("count %d, want 43", got)
	}
	for m := 1; m <= 5; m++ {
		if got, _ := p.decide(over(t0.Add(time.Duration(m)*time.Minute)), 43); got != 43 {
			t.Errorf("%d minutes after an action with a 5m cooldown: count %d, want it kept at 43", m, got)
		}
	}
	// 6 minutes on: 30 allocations' demand on 43 running is 69.8 %, within
	// the 1 % threshold of 70: no action.
	in := observation{now: t0.Add(6 * time.Minute), demand: 30 * AllocMHz, utilization: 100 * 30.0 / 43, running: 43}
	if got, _ := p.decide(in, 43); got != 43 {
		t.Errorf("at 69.8 %% of a 70 %% target: count %d, want 43 kept", got)
	}
	in.utilization, in.demand = 50, 21.5*AllocMHz
	if got, _ := p.decide(in, 43); got != 31 { // ⌈43 × 50/70⌉
		t.Errorf("at 50 %% after the cooldown: count %d, want 31", got)
	}
}

// TestReactiveCappedIsAWeakerBaseline checks what the capped metric costs:
// after a step in demand, CPU utilisation capped at 100 % lets the
// autoscaler grow only 1/0.7 per cooldown, so it serves less of the demand
// than the uncapped load per allocation, which reaches it in one action.
func TestReactiveCappedIsAWeakerBaseline(t *testing.T) {
	src := csvTrace(1440+180, func(i int) float64 {
		if i >= 1500 {
			return 100
		}
		return 10
	})
	unmet := func(capped bool) (Result, string) {
		rep, err := Run(mustTrace(t, src), Options{Policies: []string{PolicyReactive}, ReactiveCapped: capped})
		if err != nil {
			t.Fatal(err)
		}
		return rep.Results[0], rep.Reactive
	}
	open, openDesc := unmet(false)
	capped, cappedDesc := unmet(true)
	t.Logf("uncapped %+v\ncapped %+v", open, capped)
	if capped.UnmetDemandPct <= open.UnmetDemandPct || capped.ViolationMinutes <= open.ViolationMinutes {
		t.Errorf("capped metric: %d violation minutes, %.2f %% unmet; uncapped: %d, %.2f %%; want the capped one worse",
			capped.ViolationMinutes, capped.UnmetDemandPct, open.ViolationMinutes, open.UnmetDemandPct)
	}
	if !strings.Contains(openDesc, "uncapped") || !strings.Contains(cappedDesc, "capped at 100") {
		t.Errorf("reports do not say what reactive observed: %q, %q", openDesc, cappedDesc)
	}
}
