package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/foresight-nomad/foresight/agent/election"
	"github.com/foresight-nomad/foresight/sim"
	"github.com/foresight-nomad/foresight/sim/consul"
)

// TestLosingTheLockStopsLeaderWorkAtOnce destroys the leader's session under
// it: the term ends, its store takes nothing more, and its API stops
// answering as the leader.
func TestLosingTheLockStopsLeaderWorkAtOnce(t *testing.T) {
	cfg, err := sim.LoadConfig("../sim/testdata/small.hcl")
	if err != nil {
		t.Fatal(err)
	}
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

	client, err := consulapi.NewClient(&consulapi.Config{Address: consulSrv.Listener.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	settings, err := (&Config{
		NodeID:         firstNode(t, nomadSrv.URL),
		DataDir:        t.TempDir(),
		Bind:           "127.0.0.1:0",
		GRPCBind:       "127.0.0.1:0",
		SampleInterval: "100ms",
		Nomad:          &NomadConfig{Address: nomadSrv.URL},
		Consul:         &ConsulConfig{Address: consulSrv.Listener.Addr().String()},
		Sim:            &SimConfig{Enabled: true},
		Leader:         &LeaderConfig{SessionTTL: "10s", LockDelay: "2s"},
	}).Resolve()
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(settings, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	var term *leaderState
	waitUntil(t, "the agent to lead and store samples", func() bool {
		term = a.leader.Load()
		return term != nil && term.store.Stats().Samples > 0
	})
	pair, _, err := client.KV().Get(election.DefaultKey, nil)
	if err != nil || pair == nil || pair.Session == "" {
		t.Fatalf("no lock held: %v", err)
	}
	if _, err := client.Session().Destroy(pair.Session, nil); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the term to end", func() bool { return a.leader.Load() != term })
	taken := term.store.Stats().Samples

	// The agent keeps sampling and shipping; the old term takes none of it.
	time.Sleep(time.Second)
	if got := term.store.Stats().Samples; got != taken {
		t.Fatalf("the ended term's store took %d more samples after the lock was lost", got-taken)
	}
	if cur := a.leader.Load(); cur == nil {
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

func firstNode(t *testing.T, nomadURL string) string {
	t.Helper()
	resp, err := http.Get(nomadURL + "/v1/nodes")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var nodes []struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&nodes); err != nil || len(nodes) == 0 {
		t.Fatalf("list nodes: %v", err)
	}
	return nodes[0].ID
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second) // a hang guard, not a timing assertion
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
