package agent

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/foresight-nomad/foresight/agent/leader"
	"github.com/foresight-nomad/foresight/internal/wait"
	"github.com/foresight-nomad/foresight/leaderapi"
	"github.com/foresight-nomad/foresight/sim"
	"github.com/foresight-nomad/foresight/sim/consul"
)

// TestLosingTheLockStopsLeaderWorkAtOnce destroys the leader's session under
// it: the term ends, its store takes nothing more, and its API stops
// answering as the leader.
func TestLosingTheLockStopsLeaderWorkAtOnce(t *testing.T) {
	agents, stop := startTestAgents(t, 1, 0)
	defer stop()
	a := agents[0]
	client := a.consul

	var term *leader.Published
	wait.Until(t, time.Minute, "the agent to lead and store samples", func() bool {
		term = a.term.Load()
		return term != nil && ingested(t, term) > 0
	})
	pair, _, err := client.KV().Get(leaderapi.DefaultKey, nil)
	if err != nil || pair == nil || pair.Session == "" {
		t.Fatalf("no lock held: %v", err)
	}
	if _, err := client.Session().Destroy(pair.Session, nil); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, time.Minute, "the term to end", func() bool { return a.term.Load() != term })
	taken := ingested(t, term)

	// The agent keeps sampling and shipping; the old term takes none of it.
	time.Sleep(time.Second)
	if got := ingested(t, term); got != taken {
		t.Fatalf("the ended term's store took %v more samples after the lock was lost", got-taken)
	}
	if cur := a.term.Load(); cur == nil {
		resp, err := http.Get("http://" + a.HTTPAddr() + "/v1/status")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("a standby answered /v1/status as if it led")
		}
	}
}

// ingested is how many samples a term's store took.
func ingested(t *testing.T, term *leader.Published) float64 {
	t.Helper()
	families, err := term.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "foresight_leader_ingested_samples_total" {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// startTestAgents runs n agents in sim mode, one per node, against an
// in-process sim of sim/testdata/small.hcl, sampling every 100 ms.
func startTestAgents(t *testing.T, n int, profileRound time.Duration, edit ...func(*Config)) ([]*Agent, func()) {
	agents, _, stop := startTestCluster(t, n, profileRound, edit...)
	return agents, stop
}

// startTestCluster is startTestAgents that also returns the cluster, whose
// virtual clock the test advances.
func startTestCluster(t *testing.T, n int, profileRound time.Duration, edit ...func(*Config)) ([]*Agent, *sim.Cluster, func()) {
	t.Helper()
	cfg, err := sim.LoadConfig("../sim/testdata/small.hcl")
	if err != nil {
		t.Fatal(err)
	}
	return startTestClusterOn(t, cfg, n, profileRound, edit...)
}

// startTestClusterOn is startTestCluster on the cluster cfg; with ACLs on
// in cfg, the agents hold the bootstrap token unless an edit gives them
// another.
func startTestClusterOn(t *testing.T, cfg *sim.Config, n int, profileRound time.Duration, edit ...func(*Config)) ([]*Agent, *sim.Cluster, func()) {
	t.Helper()
	cs := consul.New(consul.Options{})
	t.Cleanup(cs.Close)
	cluster, err := sim.New(cfg, sim.Options{Consul: cs, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	nomadSrv := httptest.NewServer(cluster.Handler())
	t.Cleanup(nomadSrv.Close)
	consulSrv := httptest.NewServer(cs.Handler())
	t.Cleanup(consulSrv.Close)
	cluster.Advance(time.Minute) // allocations run

	ctx, cancel := context.WithCancel(context.Background())
	var agents []*Agent
	var done []chan error
	for _, node := range nodeIDs(t, nomadSrv.URL, cluster.BootstrapToken())[:n] {
		settings, err := (&Config{
			NodeID:         node,
			DataDir:        t.TempDir(),
			Bind:           "127.0.0.1:0",
			GRPCBind:       "127.0.0.1:0",
			SampleInterval: "100ms",
			Nomad:          &NomadConfig{Address: nomadSrv.URL, Token: cluster.BootstrapToken()},
			Consul:         &ConsulConfig{Address: consulSrv.Listener.Addr().String()},
			Sim:            &SimConfig{Enabled: true},
			Leader:         &LeaderConfig{SessionTTL: "10s", LockDelay: "2s"},
		}).resolveWith(edit)
		if err != nil {
			t.Fatal(err)
		}
		a, err := New(settings, Options{ProfileRound: profileRound})
		if err != nil {
			t.Fatal(err)
		}
		ch := make(chan error, 1)
		go func() { ch <- a.Run(ctx) }()
		agents = append(agents, a)
		done = append(done, ch)
	}
	return agents, cluster, func() {
		cancel()
		for _, ch := range done {
			<-ch
		}
	}
}

// nodeIDs lists the sim's ready nodes.
func nodeIDs(t *testing.T, nomadURL, token string) []string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, nomadURL+"/v1/nodes", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Nomad-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var nodes []struct{ ID, Status string }
	if err := json.NewDecoder(resp.Body).Decode(&nodes); err != nil || len(nodes) == 0 {
		t.Fatalf("list nodes: %v", err)
	}
	var ids []string
	for _, n := range nodes {
		if n.Status == "ready" {
			ids = append(ids, n.ID)
		}
	}
	return ids
}

// TestGroupViewShowsAffinityLearnedFromTelemetry runs the leader on sim and
// checks that the group view scores each class from observed evidence.
func TestGroupViewShowsAffinityLearnedFromTelemetry(t *testing.T) {
	// One agent per node: the group runs on both classes.
	agents, stop := startTestAgents(t, 2, time.Second)
	defer stop()
	a := agents[0]
	var view leaderapi.GroupView
	wait.Until(t, time.Minute, "affinity scores backed by evidence on both classes", func() bool {
		resp, err := http.Get("http://" + a.HTTPAddr() + "/v1/group/default/app/app")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		view = leaderapi.GroupView{}
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&view) != nil {
			return false
		}
		compared := 0
		for _, s := range view.Affinity {
			if s.Compared > 0 {
				compared++
			}
		}
		return compared >= 2 && view.Profile != nil
	})
	for _, s := range view.Affinity {
		if s.Value < -100 || s.Value > 100 || s.Confidence < 0 || s.Confidence > 1 || s.Reason == "" {
			t.Fatalf("score out of range or unexplained: %+v", s)
		}
	}
}

func (c *Config) resolveWith(edits []func(*Config)) (*Settings, error) {
	for _, e := range edits {
		e(c)
	}
	return c.Resolve()
}

// TestStandbyRedirectsTheDashboard runs two agents: the leader serves the
// dashboard, the standby sends browsers to it as it does API calls.
func TestStandbyRedirectsTheDashboard(t *testing.T) {
	agents, stop := startTestAgents(t, 2, 0)
	defer stop()
	var leader, standby *Agent
	wait.Until(t, time.Minute, "a leader", func() bool {
		for i, a := range agents {
			if a.term.Load() != nil {
				leader, standby = a, agents[1-i]
				return true
			}
		}
		return false
	})
	resp, err := http.Get("http://" + leader.HTTPAddr() + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "Capacity by resource class") {
		t.Fatalf("the leader's overview: HTTP %d\n%s", resp.StatusCode, page)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noFollow.Get("http://" + standby.HTTPAddr() + "/ui/group/default/app/app")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := leader.self.HTTP + "/ui/group/default/app/app"; resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != want {
		t.Fatalf("standby answered %d to %q, want 307 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
}
