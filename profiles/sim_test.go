package profiles_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/agent/fingerprint"
	"github.com/foresight-nomad/foresight/profiles"
	"github.com/foresight-nomad/foresight/sim"
)

// The end-to-end story: a cluster runs services whose efficiency per node
// class is hidden in the cluster file. The test plays the two other
// Foresight roles around the profiler, through the Nomad API as they would:
// the agents (publish each node's traits as foresight.* metadata, read
// every allocation's stats and the extra telemetry every round) and the
// orchestrator (apply the profiler's explorations: an affinity towards the
// class, then stop one allocation so Nomad places its replacement there).
// After 12 simulated hours the profiler must rank each group's truly best
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
	explored int
}

func newHarness(t *testing.T, path string) *harness {
	t.Helper()
	cfg, err := sim.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sim.New(cfg, sim.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	client, err := api.NewClient(&api.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	prof, err := profiles.New(profiles.Config{})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, cluster: c, cfg: cfg, client: client, url: srv.URL, prof: prof,
		asks: map[string]ask{}, simClass: map[string]string{}}
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
	telemetry := map[string]*sim.NodeTelemetry{}
	var round []profiles.Observation
	for _, a := range allocs {
		if a.ClientStatus != api.AllocClientStatusRunning {
			continue
		}
		tel := telemetry[a.NodeID]
		if tel == nil {
			tel = &sim.NodeTelemetry{}
			h.get("/v1/sim/node/"+a.NodeID+"/telemetry", tel)
			telemetry[a.NodeID] = tel
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
			o.IOReadBps += m[profiles.MetricIORead]
			o.IOWriteBps += m[profiles.MetricIOWrite]
			o.NetRxBps += m[profiles.MetricNetRx]
			o.NetTxBps += m[profiles.MetricNetTx]
			o.PSICPU = math.Max(o.PSICPU, m[profiles.MetricPSICPU])
			o.PSIMem = math.Max(o.PSIMem, m[profiles.MetricPSIMem])
			o.PSIIO = math.Max(o.PSIIO, m[profiles.MetricPSIIO])
			o.ThrottledRatio = math.Max(o.ThrottledRatio, m[profiles.MetricCPUThrottled])
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
	running := map[string]map[string][]string{} // group → class → alloc IDs
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
			running[key] = map[string][]string{}
		}
		running[key][class] = append(running[key][class], a.ID)
	}
	var placements []profiles.Placement
	for key, k := range h.asks {
		pl := profiles.Placement{Group: key, Count: k.count, CPUMHz: k.cpu, MemoryMB: k.mem, Running: map[string]int{}}
		for class, ids := range running[key] {
			pl.Running[class] = len(ids)
		}
		placements = append(placements, pl)
	}
	sort.Slice(placements, func(i, j int) bool { return placements[i].Group < placements[j].Group })
	moves, err := h.prof.Explore(placements)
	if err != nil {
		h.t.Fatal(err)
	}
	targets := map[string][]profiles.Target{}
	for _, c := range h.prof.Classes() {
		targets[c.ID] = c.Targets
	}
	for _, m := range moves {
		parts := strings.SplitN(m.Group, "/", 3)
		job, _, err := h.client.Jobs().Info(parts[1], &api.QueryOptions{Namespace: parts[0]})
		if err != nil {
			h.t.Fatal(err)
		}
		for _, tg := range job.TaskGroups {
			if *tg.Name != parts[2] {
				continue
			}
			// Keep the user's affinities; replace only Foresight's own.
			var kept []*api.Affinity
			for _, a := range tg.Affinities {
				if !strings.HasPrefix(a.LTarget, "${meta.foresight.") {
					kept = append(kept, a)
				}
			}
			// A positive affinity alone loses to bin-packing when the
			// target's nodes are empty (Nomad averages the node-affinity
			// score with bin-packing and appends it only where it is not
			// zero), so the other classes get a negative one as well.
			for _, tgt := range targets[m.To] {
				kept = append(kept, api.NewAffinity(tgt.Attribute, "=", tgt.Value, 100))
			}
			first := targets[m.To][0]
			kept = append(kept, api.NewAffinity(first.Attribute, "!=", first.Value, -100))
			tg.Affinities = kept
		}
		if _, _, err := h.client.Jobs().EnforceRegister(job, *job.JobModifyIndex, nil); err != nil {
			h.t.Fatalf("steer %s to %s: %v", m.Group, m.To, err)
		}
		ids := running[m.Group][m.From]
		sort.Strings(ids)
		if _, err := h.client.Allocations().Stop(&api.Allocation{ID: ids[0]}, nil); err != nil {
			h.t.Fatalf("stop %s: %v", ids[0], err)
		}
		h.explored++
	}
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
	t.Logf("after 1 h: %d/%d best first, mean top confidence %.2f; after 12 h: %d/%d, %.2f; %d explorations",
		early.right, early.groups, early.topConfidence, late.right, late.groups, late.topConfidence, h.explored)

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
	if r.right != r.groups {
		t.Errorf("after 12 h the best class ranks first for %d of %d groups, want all", r.right, r.groups)
	}
	checkConfidenceFollowsEvidence(t, h.prof, truth)
}
