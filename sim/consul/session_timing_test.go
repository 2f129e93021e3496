package consul

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// TestSessionTimingRules checks Consul's timing rules for a TTL session that
// holds a lock: invalidation exactly 2 × TTL after the last renewal (not
// before, not after), the lock-delay counted from the invalidation and capped
// at 60 s, and no lock-delay after a release. The clock is virtual, so every
// instant is exact.
func TestSessionTimingRules(t *testing.T) {
	const ttl = 10 * time.Second
	cases := []struct {
		name string
		// delay is the session's LockDelay as sent; renewAt the virtual
		// times of renewals; release frees the key before anything expires.
		delay   string
		renewAt []time.Duration
		release bool
		// diesAt is when the session is gone (0: it is not);
		// freeAt when another session may take the key.
		diesAt, freeAt time.Duration
	}{
		{name: "never renewed, no lock-delay", delay: "0s", diesAt: 2 * ttl, freeAt: 2 * ttl},
		{name: "renewed twice", delay: "0s", renewAt: []time.Duration{7 * time.Second, 15 * time.Second}, diesAt: 15*time.Second + 2*ttl, freeAt: 15*time.Second + 2*ttl},
		{name: "default lock-delay runs from the invalidation", delay: "15s", renewAt: []time.Duration{5 * time.Second}, diesAt: 5*time.Second + 2*ttl, freeAt: 5*time.Second + 2*ttl + 15*time.Second},
		{name: "lock-delay capped at 60s", delay: "90s", diesAt: 2 * ttl, freeAt: 2*ttl + 60*time.Second},
		{name: "released key has no lock-delay", delay: "15s", release: true, diesAt: 2 * ttl, freeAt: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCluster(t)
			kv := c.client.KV()
			create := func(body string) string {
				t.Helper()
				r := c.do(t, http.MethodPut, "/v1/session/create", body)
				if r.status != http.StatusOK {
					t.Fatalf("create session: %d %s", r.status, r.body)
				}
				var out struct{ ID string }
				if err := json.Unmarshal([]byte(r.body), &out); err != nil || out.ID == "" {
					t.Fatalf("create session answered %q", r.body)
				}
				return out.ID
			}
			a := create(fmt.Sprintf(`{"Name":"a","TTL":"10s","LockDelay":%q,"Behavior":"release","NodeChecks":[]}`, tc.delay))
			b := create(`{"Name":"b","NodeChecks":[]}`)
			if ok, _, err := kv.Acquire(&api.KVPair{Key: "lock", Value: []byte("a"), Session: a}, nil); err != nil || !ok {
				t.Fatalf("a acquires: %v %v", ok, err)
			}
			if tc.release {
				if ok, _, err := kv.Release(&api.KVPair{Key: "lock", Session: a}, nil); err != nil || !ok {
					t.Fatalf("a releases: %v %v", ok, err)
				}
			}
			// now is the virtual time since the session was created.
			now := time.Duration(0)
			moveTo := func(at time.Duration) {
				c.clock.Advance(at - now)
				now = at
			}
			alive := func() bool {
				info, _, err := c.client.Session().Info(a, nil)
				if err != nil {
					t.Fatal(err)
				}
				return info != nil
			}
			for _, at := range tc.renewAt {
				moveTo(at)
				if entry, _, err := c.client.Session().Renew(a, nil); err != nil || entry == nil {
					t.Fatalf("renew at %s: %v, %v", at, entry, err)
				}
			}
			moveTo(tc.diesAt - time.Millisecond)
			if !alive() {
				t.Fatalf("session gone at %s, before 2 × TTL after its last renewal (%s)", now, tc.diesAt)
			}
			moveTo(tc.diesAt)
			if alive() {
				t.Fatalf("session alive at %s, 2 × TTL after its last renewal", now)
			}
			// Past its expiry the session cannot be brought back.
			if entry, _, err := c.client.Session().Renew(a, nil); err != nil || entry != nil {
				t.Fatalf("renewing an expired session: %v, %v; want not found", entry, err)
			}
			take := func() bool {
				ok, _, err := kv.Acquire(&api.KVPair{Key: "lock", Value: []byte("b"), Session: b}, nil)
				if err != nil {
					t.Fatal(err)
				}
				return ok
			}
			if tc.freeAt > now {
				moveTo(tc.freeAt - time.Millisecond)
				if take() {
					t.Fatalf("b took the key at %s, during the lock-delay (until %s)", now, tc.freeAt)
				}
				moveTo(tc.freeAt)
			}
			if !take() {
				t.Fatalf("b cannot take the key at %s", now)
			}
		})
	}
}
