package main

import (
	"syscall"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/foresight-nomad/foresight/internal/wait"
	"github.com/foresight-nomad/foresight/leaderapi"
)

// BenchmarkFailover measures how long a cluster of three agents (real
// processes, on sim) is without a leader when its leader goes away:
//
//   - kill: b.N times the leader is killed with SIGKILL, so it releases
//     nothing and its session must expire in Consul, and restarted at once as
//     Nomad restarts a system job's task; the time runs from the kill until
//     another session holds the election key. It reports the worst and the
//     mean kill.
//   - stop: then the leader is stopped with SIGTERM (nomad job stop, a
//     rolling update): it releases the key and destroys its session.
//
// "defaults" runs the agents on the election's defaults; "ttl15s-delay15s"
// on the previous defaults (session TTL 15 s, lock-delay 15 s), the
// baseline. Run it alone on a quiet machine:
//
//	go test -run '^$' -bench BenchmarkFailover -benchtime 5x ./cmd/foresight
func BenchmarkFailover(b *testing.B) {
	for _, bc := range []struct{ name, config string }{
		{"defaults", ""},
		{"ttl15s-delay15s", "leader {\n  session_ttl = \"15s\"\n  lock_delay  = \"15s\"\n}\n"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := startClusterAt(b, freeAddr(b), bc.config)
			wait.UntilEvery(b, 60*time.Second, 200*time.Millisecond, "a first leader", func() bool { _, ok := c.leader(); return ok && c.session() != "" })

			// handover signals the leader, restarts it when it was killed,
			// and returns how long until another session holds the key.
			handover := func(sig syscall.Signal) time.Duration {
				l, ok := c.leader()
				old := c.session()
				if !ok || old == "" {
					b.Fatal("no leader to take over from")
				}
				cmd := c.agents[l.ID]
				at := time.Now()
				if err := cmd.Process.Signal(sig); err != nil {
					b.Fatal(err)
				}
				took := c.awaitNewSession(b, old, 120*time.Second).Sub(at)
				_, _ = cmd.Process.Wait()
				c.agents[l.ID] = c.start("agent-restarted-"+l.ID, c.agentArgs[l.ID]...)
				return took
			}

			b.ResetTimer()
			var worst, sum time.Duration
			for range b.N {
				d := handover(syscall.SIGKILL)
				b.Logf("SIGKILL: %s", d.Round(10*time.Millisecond))
				worst, sum = max(worst, d), sum+d
			}
			stop := handover(syscall.SIGTERM)
			b.Logf("SIGTERM: %s", stop.Round(10*time.Millisecond))
			b.ReportMetric(worst.Seconds(), "max-s/kill")
			b.ReportMetric(sum.Seconds()/float64(b.N), "mean-s/kill")
			b.ReportMetric(stop.Seconds(), "s/sigterm")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// awaitNewSession watches the election key with blocking queries, so that
// the moment a session other than old holds it is seen within a round trip,
// and returns that moment.
func (c *cluster) awaitNewSession(b testing.TB, old string, limit time.Duration) time.Time {
	b.Helper()
	deadline := time.Now().Add(limit) // a hang guard, not a timing assertion
	var index uint64
	for time.Now().Before(deadline) {
		pair, meta, err := c.consul.KV().Get(leaderapi.DefaultKey, &consulapi.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second})
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if pair != nil && pair.Session != "" && pair.Session != old {
			return time.Now()
		}
		index = meta.LastIndex
	}
	b.Fatalf("no new leadership term within %s", limit)
	return time.Time{}
}
