package election

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/foresight-nomad/foresight/leaderapi"
	"github.com/foresight-nomad/foresight/sim/consul"
)

// term records one spell of leadership.
type term struct {
	id         string
	start, end time.Time
}

type recorder struct {
	mu      sync.Mutex
	terms   []term
	started chan string
}

func (r *recorder) lead(id string) func(ctx context.Context) {
	return func(ctx context.Context) {
		r.mu.Lock()
		r.terms = append(r.terms, term{id: id, start: time.Now()})
		i := len(r.terms) - 1
		r.mu.Unlock()
		r.started <- id
		<-ctx.Done()
		r.mu.Lock()
		r.terms[i].end = time.Now()
		r.mu.Unlock()
	}
}

func startConsul(t *testing.T) *api.Client {
	t.Helper()
	srv := consul.New(consul.Options{})
	t.Cleanup(srv.Close)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	client, err := api.NewClient(&api.Config{Address: hs.Listener.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func TestLosingTheLockEndsTheTermBeforeAnotherBegins(t *testing.T) {
	client := startConsul(t)
	rec := &recorder{started: make(chan string, 4)}
	stops := map[string]context.CancelFunc{}
	var wg sync.WaitGroup
	for _, id := range []string{"a", "b"} {
		e, err := New(client, Config{
			Key:        "test/leader",
			Self:       leaderapi.Record{ID: id, GRPC: id + ":7461", HTTP: "http://" + id + ":7460"},
			SessionTTL: 10 * time.Second,
			LockDelay:  100 * time.Millisecond,
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		stops[id] = cancel
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = e.Run(ctx, rec.lead(id))
		}()
	}
	defer func() {
		for _, stop := range stops {
			stop()
		}
		wg.Wait()
	}()

	first := waitFor(t, rec.started)
	leader, ok, err := leaderapi.Current(context.Background(), client, "test/leader")
	if err != nil || !ok || leader.ID != first {
		t.Fatalf("Current = %+v, %v, %v; want %q leading", leader, ok, err, first)
	}

	// The session is destroyed under the leader: its term ends, and
	// whoever wins next starts only after that.
	pair, _, err := client.KV().Get("test/leader", nil)
	if err != nil || pair == nil {
		t.Fatalf("read lock key: %v", err)
	}
	if _, err := client.Session().Destroy(pair.Session, nil); err != nil {
		t.Fatal(err)
	}
	second := waitFor(t, rec.started)
	rec.mu.Lock()
	old, next := rec.terms[0], rec.terms[1]
	rec.mu.Unlock()
	if old.end.IsZero() || !old.end.Before(next.start) {
		t.Fatalf("terms overlap: %q led until %v, %q from %v", old.id, old.end, next.id, next.start)
	}

	// The leader shuts down: the other agent takes over.
	stops[second]()
	third := waitFor(t, rec.started)
	if third == second {
		t.Fatalf("%q led again after it stopped", second)
	}
	if leader, _, _ := leaderapi.Current(context.Background(), client, "test/leader"); leader.ID != third {
		t.Fatalf("key names %q, want the new leader %q", leader.ID, third)
	}
	stops[third]()
	wg.Wait()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, tm := range rec.terms {
		if tm.end.IsZero() {
			t.Fatalf("%q still leading after Run returned", tm.id)
		}
	}
}

func TestNoLeaderWhenTheKeyIsFree(t *testing.T) {
	client := startConsul(t)
	if _, ok, err := leaderapi.Current(context.Background(), client, "test/leader"); err != nil || ok {
		t.Fatalf("Current on a free key = %v, %v; want no leader", ok, err)
	}
	if _, err := client.KV().Put(&api.KVPair{Key: "test/leader", Value: []byte("not json")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := leaderapi.Current(context.Background(), client, "test/leader"); err != nil || ok {
		t.Fatalf("a value without a session is no leader: %v, %v", ok, err)
	}
}

func TestConfigIsChecked(t *testing.T) {
	client := startConsul(t)
	if _, err := New(client, Config{Self: leaderapi.Record{GRPC: "x:1", HTTP: "http://x:2"}, SessionTTL: time.Second}, nil); err == nil {
		t.Fatal("a TTL below Consul's minimum was accepted")
	}
	if _, err := New(client, Config{}, nil); err == nil {
		t.Fatal("a leader without addresses was accepted")
	}
}

func waitFor(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case id := <-ch:
		return id
	case <-time.After(60 * time.Second): // a hang guard, not a timing assertion
		t.Fatal("nobody became leader")
		return ""
	}
}
