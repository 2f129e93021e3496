package election

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
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
	// cause is why its context ended.
	cause error
	// atEnd is what the test's onEnd hook found when the term ended.
	atEnd any
}

type recorder struct {
	mu      sync.Mutex
	terms   []term
	started chan string
	// onEnd, when set, runs as a term ends, before lead returns: what it
	// sees is the state of the world at the last instant the old leader
	// could still have written.
	onEnd func(id string) any
}

func (r *recorder) lead(id string) func(ctx context.Context) {
	return func(ctx context.Context) {
		r.mu.Lock()
		r.terms = append(r.terms, term{id: id, start: time.Now()})
		i := len(r.terms) - 1
		r.mu.Unlock()
		r.started <- id
		<-ctx.Done()
		var atEnd any
		if r.onEnd != nil {
			atEnd = r.onEnd(id)
		}
		r.mu.Lock()
		r.terms[i].end, r.terms[i].cause, r.terms[i].atEnd = time.Now(), context.Cause(ctx), atEnd
		r.mu.Unlock()
	}
}

func (r *recorder) term(i int) term {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.terms[i]
}

// startConsul serves sim's Consul on the wall clock, as `foresight sim`
// does, and returns its address.
func startConsul(t *testing.T) string {
	t.Helper()
	addr, _ := startCountingConsul(t)
	return addr
}

// startCountingConsul is startConsul, counting the requests that try to
// take a lock (a KV write with ?acquire).
func startCountingConsul(t *testing.T) (string, *atomic.Int64) {
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
	return hs.Listener.Addr().String(), &acquires
}

func clientOf(t *testing.T, addr string) *api.Client {
	t.Helper()
	client, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// agents runs one election per id until the test ends; stop ends one.
type agents struct {
	wg    sync.WaitGroup
	stops map[string]context.CancelFunc
	done  map[string]chan struct{}
}

func runAgents(t *testing.T, rec *recorder, cfg Config, clients map[string]*api.Client, ids ...string) *agents {
	t.Helper()
	a := &agents{stops: map[string]context.CancelFunc{}, done: map[string]chan struct{}{}}
	for _, id := range ids {
		c := cfg
		c.Self = leaderapi.Record{ID: id, GRPC: id + ":7461", HTTP: "http://" + id + ":7460"}
		e, err := New(clients[id], c, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		a.stops[id], a.done[id] = cancel, done
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			defer close(done)
			_ = e.Run(ctx, rec.lead(id))
		}()
	}
	t.Cleanup(func() {
		for _, stop := range a.stops {
			stop()
		}
		a.wg.Wait()
	})
	return a
}

// stop ends one agent's Run and waits for it to return.
func (a *agents) stop(t *testing.T, id string) {
	t.Helper()
	a.stops[id]()
	select {
	case <-a.done[id]:
	case <-time.After(30 * time.Second): // a hang guard, not a timing assertion
		t.Fatalf("%s's Run did not return after its context ended", id)
	}
}

// holder is the session holding key, "" when none.
func holder(t *testing.T, client *api.Client, key string) string {
	t.Helper()
	pair, _, err := client.KV().Get(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pair == nil {
		return ""
	}
	return pair.Session
}

func alive(client *api.Client, session string) bool {
	info, _, err := client.Session().Info(session, nil)
	return err == nil && info != nil
}

func TestLosingTheLockEndsTheTermBeforeAnotherBegins(t *testing.T) {
	client := clientOf(t, startConsul(t))
	rec := &recorder{started: make(chan string, 4)}
	clients := map[string]*api.Client{"a": client, "b": client}
	// An operator destroying the session frees the key at once, and the
	// leader learns of it one blocking query later: this is what a
	// lock-delay is for.
	ag := runAgents(t, rec, Config{Key: "test/leader", LockDelay: time.Second}, clients, "a", "b")

	first := waitFor(t, rec.started)
	leader, ok, err := leaderapi.Current(context.Background(), client, "test/leader")
	if err != nil || !ok || leader.ID != first {
		t.Fatalf("Current = %+v, %v, %v; want %q leading", leader, ok, err, first)
	}

	// The session is destroyed under the leader: its term ends, and
	// whoever wins next starts only after that.
	if _, err := client.Session().Destroy(holder(t, client, "test/leader"), nil); err != nil {
		t.Fatal(err)
	}
	second := waitFor(t, rec.started)
	old, next := rec.term(0), rec.term(1)
	if old.end.IsZero() || !old.end.Before(next.start) {
		t.Fatalf("terms overlap: %q led until %v, %q from %v", old.id, old.end, next.id, next.start)
	}
	if !errors.Is(old.cause, errLockLost) {
		t.Fatalf("the first term ended because %v, want the lock lost", old.cause)
	}

	// The leader shuts down: the other agent takes over.
	ag.stop(t, second)
	third := waitFor(t, rec.started)
	if third == second {
		t.Fatalf("%q led again after it stopped", second)
	}
	if leader, _, _ := leaderapi.Current(context.Background(), client, "test/leader"); leader.ID != third {
		t.Fatalf("key names %q, want the new leader %q", leader.ID, third)
	}
	ag.stop(t, third)
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
	addr, acquires := startCountingConsul(t)
	client := clientOf(t, addr)
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

// TestStoppedLeaderReleasesAtOnce: a leader that is stopped (SIGTERM, a
// rolling update) gives the key up and destroys its session as its Run
// returns, so a standby does not wait for the session to expire.
func TestStoppedLeaderReleasesAtOnce(t *testing.T) {
	client := clientOf(t, startConsul(t))
	rec := &recorder{started: make(chan string, 4)}
	ag := runAgents(t, rec, Config{Key: "test/leader"}, map[string]*api.Client{"a": client}, "a")
	waitFor(t, rec.started)
	session := holder(t, client, "test/leader")
	standby := runAgents(t, rec, Config{Key: "test/leader"}, map[string]*api.Client{"b": client}, "b")

	ag.stop(t, "a")
	if alive(client, session) {
		t.Fatal("a's Run returned with its session still alive")
	}
	if h := holder(t, client, "test/leader"); h == session {
		t.Fatal("a's Run returned with the key still held by its session")
	}
	if next := waitFor(t, rec.started); next != "b" {
		t.Fatalf("%q leads, want the standby b", next)
	}
	standby.stop(t, "b")
}

// blackHole forwards HTTP to a target until it is cut; from then on every
// request, including those already under way, hangs until its client gives
// up, as when a network partition drops every packet.
type blackHole struct {
	proxy  *httputil.ReverseProxy
	cut    atomic.Bool
	closed chan struct{}
}

func (b *blackHole) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if b.cut.Load() {
		b.hang(r)
		return
	}
	rec := httptest.NewRecorder()
	b.proxy.ServeHTTP(rec, r)
	if b.cut.Load() {
		b.hang(r)
		return
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

func (b *blackHole) hang(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-b.closed:
	}
}

func startBlackHole(t *testing.T, target string) (*blackHole, string) {
	t.Helper()
	u, err := url.Parse("http://" + target)
	if err != nil {
		t.Fatal(err)
	}
	b := &blackHole{proxy: httputil.NewSingleHostReverseProxy(u), closed: make(chan struct{})}
	hs := httptest.NewServer(b)
	t.Cleanup(hs.Close)
	t.Cleanup(func() { close(b.closed) })
	return b, hs.Listener.Addr().String()
}

// TestPartitionedLeaderStepsDownBeforeItsSessionExpires cuts the leader off
// from Consul, on the defaults (TTL 10 s, no lock-delay). Its requests hang
// rather than fail, so only its own clock can tell it to stop. It must end
// its term while its session is still alive, that is before anyone else can
// take the key; the standby takes over once Consul invalidates the session.
func TestPartitionedLeaderStepsDownBeforeItsSessionExpires(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a session to expire on the wall clock (20 s)")
	}
	addr := startConsul(t)
	direct := clientOf(t, addr)
	hole, viaHole := startBlackHole(t, addr)
	var session atomic.Value // the partitioned leader's session
	rec := &recorder{started: make(chan string, 4), onEnd: func(id string) any {
		if id != "a" {
			return nil
		}
		return alive(direct, session.Load().(string))
	}}
	runAgents(t, rec, Config{Key: "test/leader"}, map[string]*api.Client{"a": clientOf(t, viaHole)}, "a")
	if first := waitFor(t, rec.started); first != "a" {
		t.Fatalf("%q leads, want a", first)
	}
	session.Store(holder(t, direct, "test/leader"))
	runAgents(t, rec, Config{Key: "test/leader"}, map[string]*api.Client{"b": direct}, "b")

	hole.cut.Store(true)
	if next := waitFor(t, rec.started); next != "b" {
		t.Fatalf("%q leads after the partition, want b", next)
	}
	old, next := rec.term(0), rec.term(1)
	if !errors.Is(old.cause, ErrLeaseLapsed) {
		t.Fatalf("a's term ended because %v, want its lease lapsed", old.cause)
	}
	if stillAlive, _ := old.atEnd.(bool); !stillAlive {
		t.Fatal("a's term ended after its session was gone: another agent could already have led")
	}
	if !old.end.Before(next.start) {
		t.Fatalf("terms overlap: a led until %v, b from %v", old.end, next.start)
	}
	if alive(direct, session.Load().(string)) {
		t.Fatal("b leads while a's session is alive")
	}
	t.Logf("a stepped down %s before b took over", next.start.Sub(old.end).Round(100*time.Millisecond))
}

func TestNoLeaderWhenTheKeyIsFree(t *testing.T) {
	client := clientOf(t, startConsul(t))
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
	client := clientOf(t, startConsul(t))
	self := leaderapi.Record{GRPC: "x:1", HTTP: "http://x:2"}
	for _, cfg := range []Config{
		{Self: self, SessionTTL: time.Second},
		{Self: self, LockDelay: -time.Second},
		{Self: self, LockDelay: 90 * time.Second},
		{},
	} {
		if _, err := New(client, cfg, nil); err == nil {
			t.Errorf("config %+v was accepted", cfg)
		}
	}
	e, err := New(client, Config{Self: self}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The defaults keep the step-down well inside Consul's promise that a
	// session lives at least its TTL after its last renewal.
	if e.cfg.SessionTTL != DefaultSessionTTL || e.cfg.LockDelay != 0 || e.cfg.StepDownAfter() >= e.cfg.SessionTTL || e.cfg.RenewEvery() >= e.cfg.StepDownAfter() {
		t.Fatalf("defaults: %+v, renew every %s, step down after %s", e.cfg, e.cfg.RenewEvery(), e.cfg.StepDownAfter())
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
