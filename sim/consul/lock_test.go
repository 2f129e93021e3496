package consul

import (
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/foresight-nomad/foresight/internal/wait"
)

const leaderKey = "service/foresight/leader"

// lockOpts are contender options for a fast test: a short lock-delay, a
// TTL at Consul's minimum, and a short wait per blocking read.
func lockOpts(name string) *api.LockOptions {
	return &api.LockOptions{
		Key:          leaderKey,
		Value:        []byte(name),
		SessionOpts:  &api.SessionEntry{Name: name, TTL: "10s", LockDelay: 5 * time.Second, Behavior: api.SessionBehaviorRelease},
		LockWaitTime: 2 * time.Second,
	}
}

// holder reads who holds the leader key.
func holder(t *testing.T, c *testCluster) *api.KVPair {
	t.Helper()
	pair, _, err := c.client.KV().Get(leaderKey, nil)
	if err != nil {
		t.Fatalf("read lock key: %v", err)
	}
	return pair
}

func TestLockHandoverWhenHolderSessionExpires(t *testing.T) {
	c := newTestCluster(t)
	a, err := c.client.LockOpts(lockOpts("a"))
	if err != nil {
		t.Fatal(err)
	}
	lostA, err := a.Lock(nil)
	if err != nil || lostA == nil {
		t.Fatalf("a takes the lock: %v", err)
	}
	defer a.Unlock()
	if p := holder(t, c); string(p.Value) != "a" || p.LockIndex != 1 || p.Flags != api.LockFlagValue {
		t.Fatalf("lock key after a: %+v", p)
	}

	// b's session has no TTL: advancing virtual time, which renewals in
	// real time cannot keep up with, must only expire a's.
	optsB := lockOpts("b")
	optsB.SessionOpts.TTL = ""
	b, err := c.client.LockOpts(optsB)
	if err != nil {
		t.Fatal(err)
	}
	wonB := make(chan (<-chan struct{}), 1)
	go func() {
		ch, err := b.Lock(nil)
		if err != nil {
			t.Errorf("b waits for the lock: %v", err)
		}
		wonB <- ch
	}()
	defer b.Unlock()
	// a's monitor and b's wait are both parked on the key.
	c.waitBlocked(t, 2)

	// a's session is never renewed in virtual time: past twice its TTL it
	// is invalidated; past the lock-delay after that, b may take the key.
	c.clock.Advance(2*10*time.Second + 5*time.Second)

	recv(t, "a's lock channel to close", lostA)
	if ch := recv(t, "b to win the lock", wonB); ch == nil {
		t.Fatal("b's Lock returned without the lock")
	}
	if p := holder(t, c); string(p.Value) != "b" || p.LockIndex != 2 {
		t.Fatalf("lock key after b: %+v, want b's value and LockIndex 2", p)
	}
	sessions, _, err := c.client.Session().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sessions {
		if s.Name == "a" {
			t.Fatalf("a's expired session is still listed: %+v", s)
		}
	}
}

func TestLockLostWhenHolderSessionDestroyed(t *testing.T) {
	c := newTestCluster(t)
	a, err := c.client.LockOpts(lockOpts("a"))
	if err != nil {
		t.Fatal(err)
	}
	lostA, err := a.Lock(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Unlock()
	sessionA := holder(t, c).Session

	if _, err := c.client.Session().Destroy(sessionA, nil); err != nil {
		t.Fatalf("destroy a's session: %v", err)
	}
	recv(t, "a's lock channel to close", lostA)
	if p := holder(t, c); p == nil || p.Session != "" || p.LockIndex != 1 {
		t.Fatalf("lock key after destroy: %+v, want it kept (Behavior release) without a session", p)
	}

	// During the lock-delay no session may take the key.
	other, _, err := c.client.Session().Create(&api.SessionEntry{Name: "other"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ok, _, err := c.client.KV().Acquire(&api.KVPair{Key: leaderKey, Session: other}, nil)
	if err != nil || ok {
		t.Fatalf("acquire during lock-delay: ok=%v err=%v, want false", ok, err)
	}
	c.clock.Advance(5 * time.Second)

	b, err := c.client.LockOpts(lockOpts("b"))
	if err != nil {
		t.Fatal(err)
	}
	lostB, err := b.Lock(nil)
	if err != nil || lostB == nil {
		t.Fatalf("b takes the lock after the lock-delay: %v", err)
	}
	defer b.Unlock()
	if p := holder(t, c); string(p.Value) != "b" || p.LockIndex != 2 {
		t.Fatalf("lock key after b: %+v", p)
	}
}

func TestAcquireReleaseSemantics(t *testing.T) {
	c := newTestCluster(t)
	kv, sess := c.client.KV(), c.client.Session()
	a, _, err := sess.Create(&api.SessionEntry{Name: "a", LockDelay: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := sess.Create(&api.SessionEntry{Name: "b"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	acquire := func(session, value string) bool {
		t.Helper()
		ok, _, err := kv.Acquire(&api.KVPair{Key: "lock", Session: session, Value: []byte(value)}, nil)
		if err != nil {
			t.Fatalf("acquire by %s: %v", session, err)
		}
		return ok
	}
	if !acquire(a, "a1") {
		t.Fatal("a cannot take a free key")
	}
	first := holder2(t, kv)
	if !acquire(a, "a2") {
		t.Fatal("a cannot re-acquire its own key")
	}
	again := holder2(t, kv)
	if again.LockIndex != 1 || string(again.Value) != "a2" || again.ModifyIndex <= first.ModifyIndex {
		t.Fatalf("re-acquire by the holder: %+v, want LockIndex 1, value a2, a new ModifyIndex", again)
	}
	if acquire(b, "b1") {
		t.Fatal("b took a key a holds")
	}
	if ok, _, _ := kv.Release(&api.KVPair{Key: "lock", Session: b}, nil); ok {
		t.Fatal("b released a key a holds")
	}
	if ok, _, _ := kv.Release(&api.KVPair{Key: "lock", Session: a, Value: []byte("free")}, nil); !ok {
		t.Fatal("a cannot release its key")
	}
	// An explicit release starts no lock-delay.
	if !acquire(b, "b1") {
		t.Fatal("b cannot take the released key")
	}
	if p := holder2(t, kv); p.LockIndex != 2 || p.Session != b {
		t.Fatalf("after b's acquire: %+v, want LockIndex 2 held by b", p)
	}

	// Behavior delete removes held keys with the session.
	d, _, err := sess.Create(&api.SessionEntry{Name: "d", Behavior: api.SessionBehaviorDelete}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := kv.Acquire(&api.KVPair{Key: "ephemeral", Session: d}, nil); !ok {
		t.Fatal("d cannot take a free key")
	}
	c.sim.DestroySession(d)
	if p, _, _ := kv.Get("ephemeral", nil); p != nil {
		t.Fatalf("key of a Behavior delete session survived it: %+v", p)
	}
	resp := c.do(t, http.MethodGet, "/v1/kv/ephemeral", "")
	if resp.status != http.StatusNotFound || resp.body != "" || resp.header.Get("Content-Type") != "" || resp.header.Get("X-Consul-Index") == "" {
		t.Fatalf("get of a deleted key: %d %q %v", resp.status, resp.body, resp.header)
	}
}

func holder2(t *testing.T, kv *api.KV) *api.KVPair {
	t.Helper()
	p, _, err := kv.Get("lock", nil)
	if err != nil || p == nil {
		t.Fatalf("get lock: %v %v", p, err)
	}
	return p
}

func TestSessionsEndpoints(t *testing.T) {
	c := newTestCluster(t)
	sess := c.client.Session()
	id, _, err := sess.Create(&api.SessionEntry{Name: "s", TTL: "15s", Behavior: api.SessionBehaviorDelete}, nil)
	if err != nil {
		t.Fatal(err)
	}
	info, _, err := sess.Info(id, nil)
	if err != nil || info == nil {
		t.Fatalf("info: %v %v", info, err)
	}
	if info.Node != "dev-node" || info.LockDelay != 15*time.Second || info.TTL != "15s" ||
		len(info.NodeChecks) != 1 || info.NodeChecks[0] != "serfHealth" || info.Behavior != "delete" {
		t.Fatalf("session info: %+v", info)
	}
	if list, _, _ := sess.Node("dev-node", nil); len(list) != 1 {
		t.Fatalf("sessions of dev-node: %v", list)
	}
	// Renewing keeps the session alive past its original deadline.
	c.clock.Advance(25 * time.Second)
	if e, _, err := sess.Renew(id, nil); err != nil || e == nil {
		t.Fatalf("renew: %v %v", e, err)
	}
	c.clock.Advance(25 * time.Second)
	wait.Until(t, 10*time.Second, "the renewed session to stay", func() bool {
		e, _, _ := sess.Info(id, nil)
		return e != nil
	})
	c.clock.Advance(10 * time.Second)
	wait.Until(t, 10*time.Second, "the session to expire", func() bool {
		e, _, _ := sess.Info(id, nil)
		return e == nil
	})
	if e, _, err := sess.Renew(id, nil); err != nil || e != nil {
		t.Fatalf("renew of an expired session: %v %v, want nil, nil (404)", e, err)
	}
	resp := c.do(t, http.MethodPut, "/v1/session/renew/"+id, "")
	if resp.status != http.StatusNotFound || resp.body != "Session id '"+id+"' not found" {
		t.Fatalf("raw renew: %d %q", resp.status, resp.body)
	}

	bad := []struct{ body, want string }{
		{`{"TTL": "5s"}`, "Invalid Session TTL '5000000000', must be between [10s=24h0m0s]"},
		{`{"Behavior": "explode"}`, "Invalid Behavior setting 'explode'"},
		{`{"Checks": ["nope"]}`, "Missing check 'nope' registration"},
		{`{"Node": "elsewhere"}`, "Missing node registration"},
	}
	for _, b := range bad {
		resp := c.do(t, http.MethodPut, "/v1/session/create", b.body)
		if resp.status != http.StatusInternalServerError || resp.body != b.want {
			t.Errorf("create %s = %d %q, want 500 %q", b.body, resp.status, resp.body, b.want)
		}
	}
	resp = c.do(t, http.MethodPut, "/v1/session/create", `{"Name":`)
	if resp.status != http.StatusBadRequest || resp.body != "Request decode failed: unexpected EOF" {
		t.Errorf("malformed create = %d %q", resp.status, resp.body)
	}
}

func TestGoSessionAPI(t *testing.T) {
	c := newTestCluster(t)
	id, err := c.sim.CreateSession(SessionOptions{Name: "go", TTL: 10 * time.Second, Behavior: "delete"})
	if err != nil {
		t.Fatal(err)
	}
	info, _, err := c.client.Session().Info(id, nil)
	if err != nil || info == nil || info.Behavior != "delete" || info.TTL != "10s" || info.LockDelay != 15*time.Second {
		t.Fatalf("session made from Go: %+v %v", info, err)
	}
	if _, err := c.sim.CreateSession(SessionOptions{TTL: time.Second}); err == nil {
		t.Fatal("a TTL under Consul's 10s minimum was accepted")
	}
	c.clock.Advance(20 * time.Second)
	wait.Until(t, 10*time.Second, "the session to expire after twice its TTL", func() bool {
		e, _, _ := c.client.Session().Info(id, nil)
		return e == nil
	})
	if c.sim.DestroySession(id) {
		t.Fatal("DestroySession reported an expired session as existing")
	}
}
