package profiles_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/agent/node/fingerprint"
	"github.com/foresight-nomad/foresight/profiles"
	"github.com/foresight-nomad/foresight/sim"
	"github.com/foresight-nomad/foresight/sim/simtest"
	"github.com/foresight-nomad/foresight/telemetry"
)

// The end-to-end story: a cluster runs services whose efficiency per node
// class is hidden in the cluster file. The test plays the two other
// Foresight roles around the profiler, through the Nomad API as they would:
// the agents (publish each node's traits as foresight.* metadata, read
// every allocation's stats and the extra telemetry every round) and the
// orchestrator (apply the profiler's explorations: one job write whose
// spread on the class attribute gives the explored class one allocation's
// share, carried out by Nomad's rolling update, see steer). After 12
// simulated hours the profiler must rank each group's truly best
// class first.

// Cadences of the story, in simulated time.
const (
	sampleEvery  = 10 * time.Minute // an agent round: evidence is compared within a round, so finer rounds add reads, not accuracy
	nodesEvery   = 30 * time.Minute // re-read nodes: capacity, new nodes
	exploreEvery = 30 * time.Minute // the orchestrator's exploration pass
)

// ask is what one allocation of a group reserves, and how many it wants.
type ask struct {
	cpu, mem float64
	count    int
}

type harness struct {
	t       *testing.T
	cluster *sim.Cluster
	cfg     *sim.Config
	client  *api.Client
	url     string
	prof    *profiles.Profiler
	asks    map[string]ask // by group key
	// simClass is the sim node class of every node, to judge the result.
	simClass map[string]string
	// explored counts explorations applied, landed those that put an
	// allocation on their class (checked at the next pass), escalated the
	// writes that added an affinity because the spread alone had placed
	// nothing there; steered is the class each group was last steered to,
	// until the next pass checks it.
	explored, landed, escalated int
	steered                     map[string]string
}

func newHarness(t *testing.T, path string) *harness {
	t.Helper()
	s := simtest.Start(t, path)
	c, cfg, client := s.Cluster, s.Config, s.Client
	prof, err := profiles.New(profiles.Config{})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, cluster: c, cfg: cfg, client: client, url: s.URL, prof: prof,
		asks: map[string]ask{}, simClass: map[string]string{}, steered: map[string]string{}}
	jobs, _, err := client.Jobs().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, stub := range jobs {
		job, _, err := client.Jobs().Info(stub.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, tg := range job.TaskGroups {
			var a ask
			for _, task := range tg.Tasks {
				a.cpu += float64(*task.Resources.CPU)
				a.mem += float64(*task.Resources.MemoryMB)
			}
			a.count = *tg.Count
			h.asks[groupKey(*job.Namespace, *job.ID, *tg.Name)] = a
		}
	}
	return h
}

func groupKey(ns, job, group string) string { return ns + "/" + job + "/" + group }

// get decodes a sim-only endpoint, which the Nomad client does not know.
func (h *harness) get(path string, out any) {
	h.t.Helper()
	resp, err := http.Get(h.url + path)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
}

// refreshNodes is the agents' fingerprint and the leader's node view: a
// node that has not published its traits gets them (measured as the agent
// measures them: platform from Nomad's cloud attributes, memory tier from
// memory per core, storage and link speed from the host), then all nodes
// go to the profiler with what their allocations hold.
func (h *harness) refreshNodes() {
	h.t.Helper()
	stubs, _, err := h.client.Nodes().List(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	allocs, _, err := h.client.Allocations().List(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	usedCPU, usedMem := map[string]float64{}, map[string]float64{}
	for _, a := range allocs {
		if a.ClientStatus == api.AllocClientStatusPending || a.ClientStatus == api.AllocClientStatusRunning {
			k := h.asks[groupKey(a.Namespace, a.JobID, a.TaskGroup)]
			usedCPU[a.NodeID] += k.cpu
			usedMem[a.NodeID] += k.mem
		}
	}
	var nodes []profiles.Node
	for _, s := range stubs {
		n, _, err := h.client.Nodes().Info(s.ID, nil)
		if err != nil {
			h.t.Fatal(err)
		}
		h.simClass[n.ID] = n.NodeClass
		if n.Status != api.NodeStatusReady {
			continue
		}
		if n.Meta[fingerprint.MetaClass] == "" {
			n.Meta = h.publishTraits(n)
		}
		var mbits float64
		for _, net := range n.NodeResources.Networks {
			if net.MBits != nil {
				mbits = math.Max(mbits, float64(*net.MBits))
			}
		}
		nodes = append(nodes, profiles.Node{
			ID: n.ID, Name: n.Name, Datacenter: n.Datacenter, Pool: n.NodePool, NodeClass: n.NodeClass,
			Attributes: n.Attributes, Meta: n.Meta,
			CPUMHz:       float64(n.NodeResources.Cpu.CpuShares),
			MemoryMB:     float64(n.NodeResources.Memory.MemoryMB),
			NetworkMbits: mbits,
			UsedCPUMHz:   usedCPU[n.ID], UsedMemoryMB: usedMem[n.ID],
			Ready: n.SchedulingEligibility == api.NodeSchedulingEligible && !n.Drain,
		})
	}
	if err := h.prof.SetNodes(nodes); err != nil {
		h.t.Fatal(err)
	}
}

// publishTraits writes a node's foresight.* metadata as its agent does.
func (h *harness) publishTraits(n *api.Node) map[string]string {
	h.t.Helper()
	var tel sim.NodeTelemetry
	h.get("/v1/sim/node/"+n.ID+"/telemetry", &tel)
	var memBytes uint64
	fmt.Sscan(n.Attributes["memory.totalbytes"], &memBytes)
	traits := fingerprint.Traits{
		Platform: fingerprint.PlatformOf("", n.Attributes),
		Storage:  fingerprint.Storage(tel.Host.Storage),
		MemTier:  fingerprint.MemTierOf(memBytes, tel.Host.Cores),
		NetTier:  fingerprint.NetTierOf(int64(tel.Host.NetMbits)),
	}
	changes := fingerprint.MetaChanges(n.Meta, traits.Meta())
	resp, err := h.client.Nodes().Meta().Apply(&api.NodeMetaApplyRequest{NodeID: n.ID, Meta: changes}, nil)
	if err != nil {
		h.t.Fatalf("publish traits of %s: %v", n.Name, err)
	}
	return resp.Meta
}

// sample is one agent round over the whole cluster. Alloc stats come from
// Nomad's client API; the extra metrics from sim's telemetry, which stands
// in for the agent's cgroup and network-namespace readers.
func (h *harness) sample() {
	h.t.Helper()
	allocs, _, err := h.client.Allocations().List(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	nodeTel := map[string]*sim.NodeTelemetry{}
	var round []profiles.Observation
	for _, a := range allocs {
		if a.ClientStatus != api.AllocClientStatusRunning {
			continue
		}
		tel := nodeTel[a.NodeID]
		if tel == nil {
			tel = &sim.NodeTelemetry{}
			h.get("/v1/sim/node/"+a.NodeID+"/telemetry", tel)
			nodeTel[a.NodeID] = tel
		}
		st, err := h.client.Allocations().Stats(&api.Allocation{ID: a.ID}, nil)
		if err != nil {
			h.t.Fatalf("stats of %s: %v", a.ID, err)
		}
		key := groupKey(a.Namespace, a.JobID, a.TaskGroup)
		o := profiles.Observation{
			Group: key, Alloc: a.ID, Node: a.NodeID, Duration: sampleEvery,
			CPUMHz:         st.ResourceUsage.CpuStats.TotalTicks,
			MemRSSBytes:    float64(st.ResourceUsage.MemoryStats.RSS),
			MemUsageBytes:  float64(st.ResourceUsage.MemoryStats.Usage),
			ReservedCPUMHz: h.asks[key].cpu, ReservedMemoryMB: h.asks[key].mem,
		}
		for _, m := range tel.Allocations[a.ID] {
			o.IOReadBps += m[telemetry.IOReadBPS]
			o.IOWriteBps += m[telemetry.IOWriteBPS]
			o.NetRxBps += m[telemetry.NetRxBPS]
			o.NetTxBps += m[telemetry.NetTxBPS]
			o.PSICPU = math.Max(o.PSICPU, m[telemetry.PSICPUSome])
			o.PSIMem = math.Max(o.PSIMem, m[telemetry.PSIMemSome])
			o.PSIIO = math.Max(o.PSIIO, m[telemetry.PSIIOSome])
			o.ThrottledRatio = math.Max(o.ThrottledRatio, m[telemetry.CPUThrottledRatio])
		}
		round = append(round, o)
	}
	if err := h.prof.Observe(round); err != nil {
		h.t.Fatal(err)
	}
}

// explore is the orchestrator's exploration pass: it asks the profiler
// where to explore and applies each proposal through the Nomad API.
func (h *harness) explore() {
	h.t.Helper()
	allocs, _, err := h.client.Allocations().List(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	// Only running allocations count: while a group's rollout is under
	// way one of them is pending, so the profiler leaves the group alone
	// (it explores only groups with every allocation running) and no
	// write restarts a rollout half done.
	running := map[string]map[string]int{} // group → class → allocations
	for _, a := range allocs {
		if a.ClientStatus != api.AllocClientStatusRunning {
			continue
		}
		class, ok := h.prof.ClassOf(a.NodeID)
		if !ok {
			continue
		}
		key := groupKey(a.Namespace, a.JobID, a.TaskGroup)
		if running[key] == nil {
			running[key] = map[string]int{}
		}
		running[key][class]++
	}
	var placements []profiles.Placement
	for key, k := range h.asks {
		pl := profiles.Placement{Group: key, Count: k.count, CPUMHz: k.cpu, MemoryMB: k.mem, Running: map[string]int{}}
		for class, n := range running[key] {
			pl.Running[class] = n
		}
		placements = append(placements, pl)
	}
	sort.Slice(placements, func(i, j int) bool { return placements[i].Group < placements[j].Group })
	moves, err := h.prof.Explore(placements)
	if err != nil {
		h.t.Fatal(err)
	}
	// An exploration has landed when the group runs on its class at the
	// next pass (the rollout takes minutes, a pass comes every half hour).
	for _, pl := range placements {
		if to, ok := h.steered[pl.Group]; ok {
			if pl.Running[to] > 0 {
				h.landed++
			}
			delete(h.steered, pl.Group)
		}
	}
	for _, m := range moves {
		h.steer(m, placements)
		h.steered[m.Group] = m.To
		h.explored++
	}
}

// steer applies one exploration as an orchestrator can under Nomad's
// rules, in one job write. It replaces Foresight's spread on the class
// attribute with targets that keep the group where it runs, one
// allocation fewer on m.From, and give m.To one allocation's share. A
// changed spread is a destructive update: Nomad replaces every allocation
// of the group, max_parallel at a time, and the spread puts each
// replacement where the targets are still short, so the group ends up
// where it was with one allocation on m.To. The user's affinities and
// spreads are left as they are; Foresight's are the ones on
// ${meta.foresight.*}.
//
// A spread only penalises a value above its target (one exactly on target
// gets no boost), so when m.To's nodes are far emptier than the group's,
// bin-packing wins and the rollout leaves nothing there. The job then
// still asks m.To for a share it does not hold; if the profiler proposes
// m.To again, the write also adds an affinity to it, which the spread
// keeps to about its share. Without that the write would repeat the
// spread, change nothing, and the group would never explore again.
func (h *harness) steer(m profiles.Exploration, placements []profiles.Placement) {
	h.t.Helper()
	var pl profiles.Placement
	for _, p := range placements {
		if p.Group == m.Group {
			pl = p
		}
	}
	targets := map[string][]profiles.Target{}
	for _, c := range h.prof.Classes() {
		targets[c.ID] = c.Targets
	}
	to := targets[m.To][0]
	want := map[string]int{m.To: 1}
	for class, k := range pl.Running {
		want[class] += k
	}
	want[m.From]--
	// A spread names values of one attribute: every class the group is
	// to hold must be told apart by it.
	values := map[string]int{}
	for class, k := range want {
		v, ok := "", false
		for _, tgt := range targets[class] {
			if tgt.Attribute == to.Attribute {
				v, ok = tgt.Value, true
			}
		}
		if !ok {
			h.t.Logf("explore %s: class %s has no %s; not steered", m.Group, class, to.Attribute)
			return
		}
		values[v] += k
	}
	parts := strings.SplitN(m.Group, "/", 3)
	job, _, err := h.client.Jobs().Info(parts[1], &api.QueryOptions{Namespace: parts[0]})
	if err != nil {
		h.t.Fatal(err)
	}
	for _, tg := range job.TaskGroups {
		if *tg.Name != parts[2] {
			continue
		}
		var spreads []*api.Spread
		missed := false
		for _, s := range tg.Spreads {
			if !strings.HasPrefix(s.Attribute, "${meta.foresight.") {
				spreads = append(spreads, s)
				continue
			}
			for _, t := range s.SpreadTarget {
				missed = missed || (s.Attribute == to.Attribute && t.Value == to.Value && t.Percent > 0)
			}
		}
		tg.Spreads = append(spreads, api.NewSpread(to.Attribute, 100, spreadTargets(values, to.Value, pl.Count)))
		var affinities []*api.Affinity
		for _, a := range tg.Affinities {
			if !strings.HasPrefix(a.LTarget, "${meta.foresight.") {
				affinities = append(affinities, a)
			}
		}
		if missed {
			affinities = append(affinities, api.NewAffinity(to.Attribute, "=", to.Value, 100))
			h.escalated++
		}
		tg.Affinities = affinities
	}
	if _, _, err := h.client.Jobs().EnforceRegister(job, *job.JobModifyIndex, nil); err != nil {
		h.t.Fatalf("steer %s to %s: %v", m.Group, m.To, err)
	}
}

// spreadTargets turns the allocations wanted per attribute value into
// spread percentages that sum to 100, so that no other value is wanted:
// the explored value gets one allocation's share rounded up, so that its
// desired count is never below one, and the others share the rest in
// proportion to what they are to hold (largest remainder first).
func spreadTargets(want map[string]int, explored string, count int) []*api.SpreadTarget {
	values := make([]string, 0, len(want))
	others := 0
	for v, k := range want {
		if k > 0 {
			values = append(values, v)
			if v != explored {
				others += k
			}
		}
	}
	sort.Strings(values)
	pct := map[string]int{explored: (100*want[explored] + count - 1) / count}
	rest := 100 - pct[explored]
	type share struct {
		v    string
		frac float64
	}
	var fracs []share
	given := 0
	for _, v := range values {
		if v == explored || others == 0 {
			continue
		}
		exact := float64(rest) * float64(want[v]) / float64(others)
		pct[v] = int(exact)
		given += pct[v]
		fracs = append(fracs, share{v, exact - float64(pct[v])})
	}
	sort.SliceStable(fracs, func(i, j int) bool { return fracs[i].frac > fracs[j].frac })
	for i := 0; given < rest && len(fracs) > 0; i = (i + 1) % len(fracs) {
		pct[fracs[i].v]++
		given++
	}
	var out []*api.SpreadTarget
	for _, v := range values {
		out = append(out, api.NewSpreadTarget(v, uint8(pct[v])))
	}
	return out
}

// run drives the story for d of simulated time.
func (h *harness) run(d time.Duration) {
	h.t.Helper()
	for elapsed := time.Duration(0); elapsed < d; elapsed += sampleEvery {
		if elapsed%nodesEvery == 0 {
			h.refreshNodes()
		}
		if elapsed%exploreEvery == 0 && elapsed > 0 {
			h.explore()
		}
		h.cluster.Advance(sampleEvery)
		h.sample()
	}
}

// truth is each group's best sim node class by hidden efficiency; groups
// whose best is tied are left out (the cluster files give each group a
// unique best, so none is).
func (h *harness) truth() map[string]string {
	classes := map[string]bool{}
	for _, ng := range h.cfg.NodeGroups {
		classes[ng.NodeClass] = true
	}
	out := map[string]string{}
	for _, jc := range h.cfg.Jobs {
		for _, w := range jc.Workloads {
			best, bestE, tied := "", 0.0, false
			for class := range classes {
				e := 1.0
				if v, ok := w.Efficiency[class]; ok {
					e = v
				}
				switch {
				case e > bestE:
					best, bestE, tied = class, e, false
				case e == bestE:
					tied = true
				}
			}
			if !tied {
				out[groupKey(*jc.Job.Namespace, *jc.Job.ID, w.Group)] = best
			}
		}
	}
	return out
}

// simClassOf is the sim node class of a profiler class.
func (h *harness) simClassOf(classID string) string {
	for _, c := range h.prof.Classes() {
		if c.ID == classID {
			return h.simClass[c.Nodes[0]]
		}
	}
	return ""
}

// result is how the profiler ranks groups against the truth.
type result struct {
	right, groups int
	// topConfidence is the mean confidence of the top-ranked classes.
	topConfidence float64
}

func (h *harness) judge(truth map[string]string, logf func(string, ...any)) result {
	var r result
	keys := make([]string, 0, len(truth))
	for k := range truth {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, g := range keys {
		scores := h.prof.Scores(g)
		top := scores[0]
		ok := h.simClassOf(top.Class) == truth[g]
		if ok {
			r.right++
		}
		r.groups++
		r.topConfidence += top.Confidence
		if logf != nil {
			var seen []string
			for _, s := range scores {
				if s.Compared > 0 {
					seen = append(seen, fmt.Sprintf("%s:%.1fh", h.simClassOf(s.Class), s.Compared))
				}
			}
			logf("compared: %v", seen)
			logf("%-26s best %-14s ranked %-14s %v  score %5.1f conf %.2f  %s", g, truth[g], h.simClassOf(top.Class), ok, top.Value, top.Confidence, top.Reason)
		}
	}
	r.topConfidence /= float64(r.groups)
	return r
}

func TestSimRanksTheBestClassFirst(t *testing.T) {
	h := newHarness(t, "../examples/sim/many.hcl")
	truth := h.truth()
	if len(truth) < 20 || len(h.cfg.NodeGroups) < 5 {
		t.Fatalf("many.hcl must have ≥20 groups with a unique best and ≥5 classes, has %d and %d", len(truth), len(h.cfg.NodeGroups))
	}

	h.run(time.Hour)
	early := h.judge(truth, nil)
	h.run(11 * time.Hour)
	late := h.judge(truth, t.Logf)
	t.Logf("after 1 h: %d/%d best first, mean top confidence %.2f; after 12 h: %d/%d, %.2f; %d explorations, %d landed, %d with an affinity",
		early.right, early.groups, early.topConfidence, late.right, late.groups, late.topConfidence, h.explored, h.landed, h.escalated)

	if float64(late.right) < 0.9*float64(late.groups) {
		t.Errorf("after 12 h the best class ranks first for %d of %d groups, want ≥ 90 %%", late.right, late.groups)
	}
	if late.topConfidence <= early.topConfidence || late.topConfidence < 0.7 {
		t.Errorf("mean confidence of the top class went from %.2f (1 h) to %.2f (12 h): want it to grow with evidence, past 0.7",
			early.topConfidence, late.topConfidence)
	}
	for _, c := range h.prof.Classes() {
		t.Logf("class %s (%s): %d nodes, free %.0f MHz, most on one node %.0f MHz / %.0f MB", c.ID, h.simClassOf(c.ID), len(c.Nodes), c.FreeCPUMHz, c.MaxFreeCPUMHz, c.MaxFreeMemoryMB)
	}
	checkConfidenceFollowsEvidence(t, h.prof, truth)
	if h.explored == 0 {
		t.Error("no exploration was proposed, although groups start on few classes")
	}
}

// checkConfidenceFollowsEvidence: in every group, a class never compared
// has no confidence, and more compared allocation-hours never mean less.
func checkConfidenceFollowsEvidence(t *testing.T, p *profiles.Profiler, truth map[string]string) {
	t.Helper()
	for g := range truth {
		scores := p.Scores(g)
		sort.Slice(scores, func(i, j int) bool { return scores[i].Compared < scores[j].Compared })
		for i, s := range scores {
			if s.Compared == 0 && s.Confidence != 0 {
				t.Errorf("%s on %s: confidence %.2f without compared evidence", g, s.Class, s.Confidence)
			}
			if i > 0 && s.Compared > scores[i-1].Compared && s.Confidence < scores[i-1].Confidence {
				t.Errorf("%s: %s has more evidence (%.1f h) than %s (%.1f h) but less confidence (%.2f < %.2f)",
					g, s.Class, s.Compared, scores[i-1].Class, scores[i-1].Compared, s.Confidence, scores[i-1].Confidence)
			}
		}
	}
}

func TestSimHybridFindsEachServicesClass(t *testing.T) {
	h := newHarness(t, "../examples/sim/hybrid.hcl")
	// The provider pool starts empty; the capacity actuator (not what is
	// tested here) buys two nodes so that every class exists.
	if _, err := h.cluster.ScaleNodeGroup("cloud", 2); err != nil {
		t.Fatal(err)
	}
	truth := h.truth()
	h.run(12 * time.Hour)
	r := h.judge(truth, t.Logf)
	t.Logf("after 12 h: %d/%d best first; %d explorations, %d landed, %d with an affinity", r.right, r.groups, h.explored, h.landed, h.escalated)
	if r.right != r.groups {
		t.Errorf("after 12 h the best class ranks first for %d of %d groups, want all", r.right, r.groups)
	}
	checkConfidenceFollowsEvidence(t, h.prof, truth)
}

// TestSpreadTargetsKeepTheGroupAndGiveOneShare checks the percentages the
// harness writes: they sum to 100 (no other class is wanted), the explored
// value's desired count is at least one allocation, and the rest follow
// what each value holds.
func TestSpreadTargetsKeepTheGroupAndGiveOneShare(t *testing.T) {
	tests := []struct {
		want  map[string]int
		count int
		pct   map[string]uint8
	}{
		{map[string]int{"home": 5, "new": 1}, 6, map[string]uint8{"home": 83, "new": 17}},
		{map[string]int{"home": 3, "other": 2, "new": 1}, 6, map[string]uint8{"home": 50, "other": 33, "new": 17}},
		{map[string]int{"home": 2, "new": 1}, 3, map[string]uint8{"home": 66, "new": 34}},
		{map[string]int{"a": 1, "b": 1, "c": 1, "new": 1}, 4, map[string]uint8{"a": 25, "b": 25, "c": 25, "new": 25}},
		{map[string]int{"home": 6, "gone": 0, "new": 1}, 7, map[string]uint8{"home": 85, "new": 15}},
	}
	for _, tt := range tests {
		got := map[string]uint8{}
		sum := 0
		for _, st := range spreadTargets(tt.want, "new", tt.count) {
			got[st.Value] = st.Percent
			sum += int(st.Percent)
		}
		if sum != 100 || fmt.Sprint(got) != fmt.Sprint(tt.pct) {
			t.Errorf("spreadTargets(%v, count %d) = %v (sum %d), want %v", tt.want, tt.count, got, sum, tt.pct)
		}
		if desired := float64(got["new"]) / 100 * float64(tt.count); desired < 1 {
			t.Errorf("%v: the explored value's desired count is %.2f, below one allocation", tt.want, desired)
		}
	}
}
