package orchestrator

import (
	"context"
	"math"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/sim"
	"github.com/foresight-nomad/foresight/sim/consul"
)

// routingSim is sim's cluster of testdata/routing.hcl with its Consul, both
// served to the official clients.
type routingSim struct {
	cluster *sim.Cluster
	nomad   *nomadapi.Client
	consul  *consulapi.Client
}

func startRoutingSim(t *testing.T) *routingSim {
	t.Helper()
	cfg, err := sim.LoadConfig("testdata/routing.hcl")
	if err != nil {
		t.Fatal(err)
	}
	cs := consul.New(consul.Options{})
	t.Cleanup(cs.Close)
	c, err := sim.New(cfg, sim.Options{Consul: cs, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	nomadSrv := httptest.NewServer(c.Handler())
	t.Cleanup(nomadSrv.Close)
	consulSrv := httptest.NewServer(cs.Handler())
	t.Cleanup(consulSrv.Close)
	nc, err := nomadapi.NewClient(&nomadapi.Config{Address: nomadSrv.URL})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := consulapi.NewClient(&consulapi.Config{Address: consulSrv.Listener.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute) // web's three allocations run
	return &routingSim{cluster: c, nomad: nc, consul: cc}
}

// speakHTTP is the operator's service-defaults that lets Consul split web.
func (s *routingSim) speakHTTP(t *testing.T) {
	t.Helper()
	if _, _, err := s.consul.ConfigEntries().Set(&consulapi.ServiceConfigEntry{Kind: consulapi.ServiceDefaults, Name: "web", Protocol: "http"}, nil); err != nil {
		t.Fatal(err)
	}
}

func (s *routingSim) job(t *testing.T) *nomadapi.Job {
	t.Helper()
	job, _, err := s.nomad.Jobs().Info("web", nil)
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// running counts web's running allocations by the platform of their node,
// as Nomad reports them: the truth the weights must follow.
func (s *routingSim) running(t *testing.T) map[string]int {
	t.Helper()
	allocs, _, err := s.nomad.Jobs().Allocations("web", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, a := range allocs {
		if a.ClientStatus != nomadapi.AllocClientStatusRunning || a.DesiredStatus != nomadapi.AllocDesiredStatusRun {
			continue
		}
		node, _, err := s.nomad.Nodes().Info(a.NodeID, nil)
		if err != nil {
			t.Fatal(err)
		}
		out[node.Meta["foresight.platform"]]++
	}
	return out
}

func (s *routingSim) route(t *testing.T, r *Router) ServiceRoute {
	t.Helper()
	res, err := r.Route(context.Background(), s.job(t), "web")
	if err != nil {
		t.Fatal(err)
	}
	for _, sr := range res.Services {
		if sr.Service == "web" {
			return sr
		}
	}
	t.Fatalf("no result for service web: %+v", res)
	return ServiceRoute{}
}

func (s *routingSim) splitter(t *testing.T) map[string]float64 {
	t.Helper()
	e, _, err := s.consul.ConfigEntries().Get(consulapi.ServiceSplitter, "web", nil)
	if err != nil {
		t.Fatal(err)
	}
	return splitterWeights(e.(*consulapi.ServiceSplitterConfigEntry))
}

func (s *routingSim) resolver(t *testing.T) *consulapi.ServiceResolverConfigEntry {
	t.Helper()
	e, _, err := s.consul.ConfigEntries().Get(consulapi.ServiceResolver, "web", nil)
	if err != nil {
		t.Fatal(err)
	}
	return e.(*consulapi.ServiceResolverConfigEntry)
}

// proportional checks weights against instance counts: each side's share,
// to the hundredth, and no leg for an empty side.
func proportional(t *testing.T, what string, w map[string]float64, n map[string]int) {
	t.Helper()
	total := n["external"] + n["provider"]
	sum := 0.0
	for _, p := range []string{"external", "provider"} {
		want := float64(n[p]) * 100 / float64(total)
		if _, ok := w[p]; n[p] == 0 && ok {
			t.Fatalf("%s %v: a leg for %s, which has no instance (%v)", what, w, p, n)
		}
		if math.Abs(w[p]-want) > 0.01 {
			t.Fatalf("%s %v do not follow instances %v", what, w, n)
		}
		sum += w[p]
	}
	if math.Round(sum*100) != 10000 {
		t.Fatalf("%s %v sum to %g, not 100", what, w, sum)
	}
}

func (s *routingSim) instances(t *testing.T) []*consulapi.ServiceEntry {
	t.Helper()
	entries, _, err := s.consul.Health().Service("web", "", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func TestRouteWeightsFollowInstancesAcrossAMove(t *testing.T) {
	s := startRoutingSim(t)
	s.speakHTTP(t)
	r := &Router{Consul: s.consul}
	before := s.instances(t)

	n := s.running(t)
	if n["external"] != 1 || n["provider"] != 2 {
		t.Fatalf("setup: running %v, want 1 external and 2 provider", n)
	}
	res, err := r.Route(context.Background(), s.job(t), "web")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, sr := range res.Services {
		names = append(names, sr.Service)
	}
	if strings.Join(names, ",") != "web,web-admin" {
		t.Fatalf("services routed %v, want the Consul ones: web, web-admin", names)
	}
	web, admin := res.Services[0], res.Services[1]
	if !slices.Equal(web.Written, []string{"service-resolver web", "service-splitter web"}) {
		t.Fatalf("written %v; reasons %v", web.Written, web.Reasons)
	}
	proportional(t, "result", web.After, n)
	proportional(t, "splitter", s.splitter(t), n)
	res0 := s.resolver(t)
	if res0.DefaultSubset != "external" || res0.Meta[ManagedByMeta] != ManagedByValue ||
		res0.Subsets["provider"].Filter != `Service.Meta.foresight_platform == "provider"` || res0.Failover["external"].ServiceSubset != "provider" {
		t.Fatalf("resolver %+v", res0)
	}
	if len(admin.Written) != 0 || !strings.Contains(strings.Join(admin.Reasons, "\n"), `meta { foresight_platform = "${meta.foresight.platform}" }`) {
		t.Fatalf("web-admin has no platform meta: want it left alone with the stanza to add, got %+v", admin)
	}
	if _, _, err := s.consul.ConfigEntries().Get(consulapi.ServiceResolver, "web-admin", nil); err == nil {
		t.Fatal("a resolver was written for web-admin, which has no platform meta")
	}
	// Nomad's own registrations are as Nomad made them.
	after := s.instances(t)
	if len(after) != len(before) {
		t.Fatalf("instances %d → %d", len(before), len(after))
	}
	for i := range before {
		b, a := before[i].Service, after[i].Service
		if a.ID != b.ID || a.ModifyIndex != b.ModifyIndex || !slices.Equal(a.Tags, b.Tags) {
			t.Fatalf("registration %s changed: %+v → %+v", b.ID, b, a)
		}
	}

	// Nothing moved: nothing written.
	if again := s.route(t, r); len(again.Written) != 0 {
		t.Fatalf("second pass wrote %v: %v", again.Written, again.Reasons)
	}

	// The user steers web to the provider side: a rolling update moves one
	// allocation at a time, and the weights follow each pass.
	job := s.job(t)
	job.TaskGroups[0].Affinities[0].RTarget = "provider"
	if _, _, err := s.nomad.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 30 {
		s.cluster.Advance(5 * time.Second)
		n := s.running(t)
		if n["external"]+n["provider"] == 0 {
			continue
		}
		sr := s.route(t, r)
		proportional(t, "result", sr.After, n)
		proportional(t, "splitter", s.splitter(t), n)
		seen[countsString(n)] = true
		if n["external"] == 0 && n["provider"] == 3 {
			break
		}
	}
	if got := s.splitter(t); len(got) != 1 || got["provider"] != 100 {
		t.Fatalf("after the move the splitter is %v, want provider 100 (seen %v)", got, seen)
	}
	if s.resolver(t).DefaultSubset != "provider" {
		t.Fatalf("default subset %q after the move, want provider", s.resolver(t).DefaultSubset)
	}
	if len(seen) < 2 {
		t.Fatalf("the move went through too few states to tell: %v", seen)
	}
}

func TestRouteLeavesUserEntriesAndUnsplittableServicesAlone(t *testing.T) {
	s := startRoutingSim(t)
	r := &Router{Consul: s.consul}

	// web speaks tcp: Consul cannot split it, and a resolver alone would pin
	// every request to one side.
	sr := s.route(t, r)
	if len(sr.Written) != 0 || !strings.Contains(strings.Join(sr.Reasons, "\n"), "speaks tcp") {
		t.Fatalf("tcp service: %+v", sr)
	}

	s.speakHTTP(t)
	user := &consulapi.ServiceResolverConfigEntry{
		Kind: consulapi.ServiceResolver, Name: "web", DefaultSubset: "v1",
		Subsets: map[string]consulapi.ServiceResolverSubset{"v1": {Filter: `Service.Meta.version == "1"`}},
	}
	if _, _, err := s.consul.ConfigEntries().Set(user, nil); err != nil {
		t.Fatal(err)
	}
	idx := s.resolver(t).ModifyIndex
	sr = s.route(t, r)
	if len(sr.Written) != 0 || !strings.Contains(strings.Join(sr.Reasons, "\n"), "belongs to the user") {
		t.Fatalf("user's resolver: %+v", sr)
	}
	if got := s.resolver(t); got.ModifyIndex != idx || got.DefaultSubset != "v1" {
		t.Fatalf("user's resolver changed: %+v", got)
	}
	if _, _, err := s.consul.ConfigEntries().Get(consulapi.ServiceSplitter, "web", nil); err == nil {
		t.Fatal("a splitter was written beside the user's resolver")
	}
}

func TestRouteFabioLinesKeepForeignOnes(t *testing.T) {
	s := startRoutingSim(t)
	s.speakHTTP(t)
	const key = "fabio/config"
	foreign := []string{
		"route add other /other http://10.0.0.1:80/",
		"# canary, by hand",
		`route weight other /other weight 0.50 tags "green"`,
	}
	if _, err := s.consul.KV().Put(&consulapi.KVPair{Key: key, Value: []byte(strings.Join(foreign, "\n") + "\n")}, nil); err != nil {
		t.Fatal(err)
	}
	r := &Router{Consul: s.consul, FabioKey: key}
	if n := s.running(t); n["external"] != 1 || n["provider"] != 2 {
		t.Fatalf("setup: running %v, want 1 external and 2 provider", n)
	}
	sr := s.route(t, r)
	if !slices.Contains(sr.Written, "kv "+key) {
		t.Fatalf("Fabio key not written: %+v", sr)
	}
	want := append(slices.Clone(foreign),
		`route weight web /web weight 0.3333 tags "foresight_platform=external"`,
		`route weight web /web weight 0.6667 tags "foresight_platform=provider"`,
		`route weight web shop.example.com/cart weight 0.3333 tags "foresight_platform=external"`,
		`route weight web shop.example.com/cart weight 0.6667 tags "foresight_platform=provider"`,
	)
	if got := s.kvLines(t, key); !slices.Equal(got, want) {
		t.Fatalf("Fabio routes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	if again := s.route(t, r); len(again.Written) != 0 {
		t.Fatalf("nothing moved, yet %v written: %v", again.Written, again.Reasons)
	}

	// The user adds a line of their own after ours; web then moves entirely
	// to the provider side.
	lines := append(s.kvLines(t, key), "route del other /old")
	if _, err := s.consul.KV().Put(&consulapi.KVPair{Key: key, Value: []byte(strings.Join(lines, "\n") + "\n")}, nil); err != nil {
		t.Fatal(err)
	}
	job := s.job(t)
	job.TaskGroups[0].Affinities[0].RTarget = "provider"
	if _, _, err := s.nomad.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	for range 30 {
		s.cluster.Advance(10 * time.Second)
		if n := s.running(t); n["external"] == 0 && n["provider"] == 3 {
			break
		}
	}
	s.route(t, r)
	want = append(slices.Clone(foreign),
		`route weight web /web weight 1.0000 tags "foresight_platform=provider"`,
		`route weight web shop.example.com/cart weight 1.0000 tags "foresight_platform=provider"`,
		"route del other /old",
	)
	if got := s.kvLines(t, key); !slices.Equal(got, want) {
		t.Fatalf("Fabio routes after the move:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func (s *routingSim) kvLines(t *testing.T, key string) []string {
	t.Helper()
	p, _, err := s.consul.KV().Get(key, nil)
	if err != nil || p == nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return strings.Split(strings.TrimSuffix(string(p.Value), "\n"), "\n")
}

func TestRouteConcurrentWritesAreNotLost(t *testing.T) {
	s := startRoutingSim(t)
	s.speakHTTP(t)
	const key = "fabio/config"
	r := &Router{Consul: s.consul, FabioKey: key}

	// Between Foresight's read and its write, the user writes the Fabio key
	// and another writer the splitter: both CAS writes are refused, read
	// again and made on top of the new values.
	raced := map[string]bool{}
	r.beforeWrite = func(what string) {
		if raced[what] {
			return
		}
		raced[what] = true
		switch what {
		case "kv":
			if _, err := s.consul.KV().Put(&consulapi.KVPair{Key: key, Value: []byte("route add other /other http://10.0.0.1:80/\n")}, nil); err != nil {
				t.Error(err)
			}
		case "service-splitter":
			other := wantSplitter("web", map[string]float64{"external": 50, "provider": 50})
			if _, _, err := s.consul.ConfigEntries().Set(other, nil); err != nil {
				t.Error(err)
			}
		}
	}
	sr := s.route(t, r)
	n := s.running(t)
	proportional(t, "splitter", s.splitter(t), n)
	got := s.kvLines(t, key)
	if len(got) != 5 || got[0] != "route add other /other http://10.0.0.1:80/" {
		t.Fatalf("the user's concurrent line was lost, or ours: %q", got)
	}
	reasons := strings.Join(sr.Reasons, "\n")
	if !strings.Contains(reasons, "service-splitter \"web\" changed since it was read") || !strings.Contains(reasons, "Fabio routes \"fabio/config\" changed since they were read") {
		t.Fatalf("refusals not reported: %s", reasons)
	}

	// A user who takes the resolver over between read and write wins: the
	// refused write reads again and leaves the user's entry alone.
	s2 := startRoutingSim(t)
	s2.speakHTTP(t)
	r2 := &Router{Consul: s2.consul}
	var userIndex uint64
	r2.beforeWrite = func(what string) {
		if what != "service-resolver" || userIndex != 0 {
			return
		}
		user := &consulapi.ServiceResolverConfigEntry{Kind: consulapi.ServiceResolver, Name: "web", ConnectTimeout: 3 * time.Second}
		if _, _, err := s2.consul.ConfigEntries().Set(user, nil); err != nil {
			t.Error(err)
		}
		userIndex = s2.resolver(t).ModifyIndex
	}
	sr = s2.route(t, r2)
	if len(sr.Written) != 0 || !strings.Contains(strings.Join(sr.Reasons, "\n"), "belongs to the user") {
		t.Fatalf("after the user's concurrent resolver: %+v", sr)
	}
	if got := s2.resolver(t); got.ModifyIndex != userIndex || got.ConnectTimeout != 3*time.Second {
		t.Fatalf("the user's resolver was overwritten: %+v", got)
	}
}

func TestSplitWeightsSumToExactlyOneHundred(t *testing.T) {
	for _, c := range []struct {
		ext, prov int
		want      map[string]float64
	}{
		{1, 2, map[string]float64{"external": 33.33, "provider": 66.67}},
		{2, 1, map[string]float64{"external": 66.67, "provider": 33.33}},
		{1, 5, map[string]float64{"external": 16.67, "provider": 83.33}},
		{3, 0, map[string]float64{"external": 100}},
		{0, 7, map[string]float64{"provider": 100}},
	} {
		got := splitWeights(map[string]int{"external": c.ext, "provider": c.prov})
		if len(got) != len(c.want) {
			t.Fatalf("%d/%d: %v, want %v", c.ext, c.prov, got, c.want)
		}
		sum := 0
		for p, w := range c.want {
			if got[p] != w {
				t.Fatalf("%d/%d: %v, want %v", c.ext, c.prov, got, c.want)
			}
			// As Consul checks: float32 weights, scaled to hundredths.
			sum += int(math.Round(float64(float32(got[p]) * 100)))
		}
		if sum != 10000 {
			t.Fatalf("%d/%d: %v sum to %d hundredths", c.ext, c.prov, got, sum)
		}
	}
}
