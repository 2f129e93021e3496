package backtest

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/sim"
)

// The simulated service.
const (
	namespace    = "default"
	jobID        = "service"
	groupName    = "service"
	externalPool = "external"
	providerPool = "provider"
)

// observation is what a policy sees at the end of a minute.
type observation struct {
	now time.Time
	// demand is the group's work in MHz; utilization the load per running
	// allocation over its reservation, in %: demand ÷ ready capacity,
	// above 100 when demand exceeds it (capped utilization: at most 100,
	// used ÷ allocated as nomad-apm reports a CPU limit that cannot burst).
	demand, utilization, capped float64
	running                     int
}

// countPolicy decides the group's count once a minute.
type countPolicy interface {
	decide(obs observation, count int) (int, error)
}

// run is one policy's simulated cluster and its score so far.
type run struct {
	name    string
	cluster *sim.Cluster
	nomad   *api.Client
	policy  countPolicy
	pred    *predictive
	count   int

	scoring bool
	base    sim.Totals
	// Sums over scored minutes.
	allocMinutes, nodeMinutes, readyMHzMinutes float64
	actions                                    int
	// ready is the running allocations per minute, when series are kept.
	ready []float64
}

func newRun(t *Trace, name string, scale float64, opt Options, horizon int) (*run, error) {
	provider := (StaticAllocs - ExternalNodes*NodeAllocs + NodeAllocs - 1) / NodeAllocs
	cfg := &sim.Config{
		Region:     "global",
		Start:      t.start,
		Step:       step,
		AllocStart: opt.AllocStart,
		NodeGroups: []*sim.NodeGroupConfig{
			nodeGroup(externalPool, sim.PlatformExternal, ExternalNodes, ExternalNodes, opt.ProvisionDelay),
			nodeGroup(providerPool, sim.PlatformProvider, provider, MaxCount/NodeAllocs, opt.ProvisionDelay),
		},
		Jobs: []*sim.JobConfig{{
			Job:       serviceJob(StaticAllocs),
			Workloads: []*sim.WorkloadConfig{{Group: groupName, Trace: t.tr, Scale: scale, MemoryBaseMB: 64}},
		}},
	}
	c, err := sim.New(cfg, sim.Options{Seed: 1})
	if err != nil {
		return nil, fmt.Errorf("build the simulated cluster: %w", err)
	}
	client, err := api.NewClient(&api.Config{Address: "http://sim", HttpClient: &http.Client{Transport: inProcess{c.Handler()}}})
	if err != nil {
		return nil, err
	}
	r := &run{name: name, cluster: c, nomad: client, count: StaticAllocs}
	switch name {
	case PolicyStatic:
		r.policy = staticPolicy{count: StaticAllocs}
	case PolicyReactive:
		r.policy = newReactive(opt.ReactiveCapped)
	case PolicyPredictive:
		r.pred = newPredictive(opt, horizon)
		r.policy = r.pred
	}
	return r, nil
}

// nodeGroup is a pool of identical nodes of NodeAllocs allocations each.
func nodeGroup(name, platform string, count, maxCount int, delay time.Duration) *sim.NodeGroupConfig {
	return &sim.NodeGroupConfig{
		Name: name, Platform: platform, Count: count, Min: 0, Max: maxCount,
		Datacenter: "dc1", NodePool: "default", NodeClass: name,
		CPUMHz: NodeAllocs * AllocMHz / 4, Cores: 4, MemoryMB: 16384, DiskMB: 100000,
		IOMBps: 500, NetMbits: 10000, Storage: "ssd", ProvisionDelay: delay,
	}
}

// serviceJob is the one service, preferring the external pool as an
// operator's job does when that capacity is already paid for.
func serviceJob(count int) *api.Job {
	job := &api.Job{
		ID: ptr(jobID), Name: ptr(jobID), Namespace: ptr(namespace), Type: ptr("service"),
		Datacenters: []string{"dc1"}, NodePool: ptr("default"),
		TaskGroups: []*api.TaskGroup{{
			Name:  ptr(groupName),
			Count: ptr(count),
			Affinities: []*api.Affinity{{
				LTarget: "${node.class}", RTarget: externalPool, Operand: "=", Weight: ptr(int8(50)),
			}},
			Tasks: []*api.Task{{
				Name: "main", Driver: "docker", Config: map[string]any{"image": "service:1"},
				Resources: &api.Resources{CPU: ptr(AllocMHz), MemoryMB: ptr(AllocMemoryMB)},
			}},
		}},
	}
	// What sim fills in on register (the config path registers as is).
	job.Canonicalize()
	job.DispatchIdempotencyToken = ptr("")
	for _, tg := range job.TaskGroups {
		tg.Consul = &api.Consul{}
		for _, t := range tg.Tasks {
			t.Resources.DiskMB, t.Resources.IOPS, t.Resources.MemoryMaxMB = ptr(0), ptr(0), ptr(0)
		}
	}
	return job
}

func ptr[T any](v T) *T { return &v }

// inProcess serves the official client's requests with sim's handler, in
// the same process, without a socket.
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// minute observes the state at the end of minute i, scores it, lets the
// policy decide, resizes the provider pool and advances the clock (except
// after the last minute). Minute i's state is what sim measured at its
// step i.
func (r *run) minute(i int, last bool) error {
	now := r.cluster.Now()
	demand, ok := r.cluster.GroupDemand(namespace, jobID, groupName)
	if !ok {
		return fmt.Errorf("sim has no workload for %s", groupName)
	}
	sum, _, err := r.nomad.Jobs().Summary(jobID, nil)
	if err != nil {
		return fmt.Errorf("job summary: %w", err)
	}
	tg := sum.Summary[groupName]
	ready := float64(tg.Running * AllocMHz)
	util, capped := 0.0, 0.0
	if ready > 0 {
		util = 100 * demand / ready
		capped = 100 * math.Min(demand, ready) / ready
	}
	if r.ready != nil {
		r.ready[i] = float64(tg.Running)
	}
	prov, err := r.cluster.NodeGroup(providerPool)
	if err != nil {
		return err
	}
	if r.scoring {
		r.allocMinutes += float64(tg.Running + tg.Starting)
		r.readyMHzMinutes += ready
		r.nodeMinutes += float64(prov.Ready + prov.Provisioning)
	}
	want, err := r.policy.decide(observation{now: now, demand: demand, utilization: util, capped: capped, running: tg.Running}, r.count)
	if err != nil {
		return err
	}
	want = max(1, min(MaxCount, want))
	if want != r.count {
		n := int64(want)
		_, err := r.cluster.Scale(namespace, jobID, groupName, &n, r.name+" policy", false, nil, 0)
		switch {
		case errors.Is(err, sim.ErrScaleBlocked):
			// Nomad refuses a count while the job's deployment runs; the
			// autoscaler's Nomad target takes it as a no-op, and the
			// policy asks again next minute.
		case err != nil:
			return fmt.Errorf("scale to %d: %w", want, err)
		default:
			r.count = want
			if r.scoring {
				r.actions++
			}
		}
	}
	// The same cluster rule for every policy: provider nodes for what the
	// external pool cannot hold, bought at once and released at once (the
	// least busy first, as the autoscaler's default node selector does).
	nodes := (max(0, r.count-ExternalNodes*NodeAllocs) + NodeAllocs - 1) / NodeAllocs
	if nodes != prov.Desired {
		if _, err := r.cluster.ScaleNodeGroup(providerPool, nodes); err != nil {
			return fmt.Errorf("provider pool to %d nodes: %w", nodes, err)
		}
	}
	if !last {
		r.cluster.Advance(step)
	}
	return nil
}

// result is the score of the minutes after the warm-up.
func (r *run) result() Result {
	tot := r.cluster.Totals()
	demand := tot.DemandMHzSeconds - r.base.DemandMHzSeconds
	unmet := tot.UnmetMHzSeconds - r.base.UnmetMHzSeconds
	res := Result{
		Policy:            r.name,
		ViolationMinutes:  int(math.Round((tot.ViolationSeconds - r.base.ViolationSeconds) / step.Seconds())),
		ResourceHours:     r.allocMinutes / 60,
		ScalingActions:    r.actions,
		ProviderNodeHours: r.nodeMinutes / 60,
	}
	if demand > 0 {
		res.UnmetDemandPct = 100 * unmet / demand
	}
	if r.readyMHzMinutes > 0 {
		res.MeanUtilization = (demand - unmet) / (r.readyMHzMinutes * step.Seconds())
	}
	return res
}
