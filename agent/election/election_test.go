package election

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/internal/wait"
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
	client, _ := startCountingConsul(t)
	return client
}

// startCountingConsul is sim's Consul, counting the requests that try to
// take a lock (a KV write with ?acquire).
func startCountingConsul(t *testing.T) (*api.Client, *atomic.Int64) {
	t.Helper()
	srv := consul.New(consul.Options{})
	t.Cleanup(srv.Close)
	var acquires atomic.Int64
	h := srv.Handler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.URL.Query().Has("acquire") {
			acquires.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	client, err := api.NewClient(&api.Config{Address: hs.Listener.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	return client, &acquires
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

func TestAFailedTermBacksOffBeforeContendingAgain(t *testing.T) {
	// A lone agent that cannot lead: every term ends as soon as it begins,
	// as when the ingest TLS files are bad.
	client, acquires := startCountingConsul(t)
	clk := clock.NewVirtual(time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC))
	e, err := New(client, Config{Key: "test/leader", Self: leaderapi.Record{ID: "a", GRPC: "a:7461", HTTP: "http://a:7460"}, Clock: clk}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var terms atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, func(context.Context) { terms.Add(1) }) }()
	defer func() {
		cancel()
		<-done
	}()

	for n := int64(1); n <= 6; n++ {
		// The n-th term failed and Run waits on the clock: while the clock
		// stands still, nothing contends for the lock.
		wait.Until(t, time.Minute, "the election to wait after a failed term", func() bool { return clk.Pending() == 1 || acquires.Load() > n })
		if got, led := acquires.Load(), terms.Load(); got != n || led != n {
			t.Fatalf("after %d failed terms: %d lock attempts and %d terms, want %d each", n, got, led, n)
		}
		// The wait after the n-th failure is at least half of
		// min(5 s·2^(n−1), 1 min): the clock may go almost that far and
		// the election still waits.
		upper := min(retryMin<<(n-1), retryMax)
		clk.Advance(upper/2 - time.Millisecond)
		if clk.Pending() != 1 {
			t.Fatalf("after failure %d the election contended again within %v, before its backoff of at least %v", n, upper/2-time.Millisecond, upper/2)
		}
		clk.Advance(upper/2 + time.Millisecond)
		wait.Until(t, time.Minute, "the next term", func() bool { return terms.Load() == n+1 })
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
