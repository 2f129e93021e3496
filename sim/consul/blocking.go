package consul

import (
	"context"
	"math/rand/v2"
	"time"
)

// Blocking query limits, as in Consul: a wait of zero means the default, a
// longer wait is cut to the maximum, and a random stagger of up to 1/16 of the
// wait is added so that many watchers do not return in lockstep.
const (
	defaultQueryTime = 5 * time.Minute
	maxQueryTime     = 10 * time.Minute
	jitterFraction   = 16
)

// queryTimeout is how long a blocking query waits for a change.
func queryTimeout(requested time.Duration) time.Duration {
	wait := requested
	switch {
	case wait <= 0:
		wait = defaultQueryTime
	case wait > maxQueryTime:
		wait = maxQueryTime
	}
	if stagger := int64(wait / jitterFraction); stagger > 0 {
		wait += time.Duration(rand.Int64N(stagger))
	}
	return wait
}

// blockingRead answers an index-based blocking query. read runs under mu,
// captures what the endpoint will answer and returns the index of it; it runs
// again after every write until that index passes q.minIndex, the wait runs
// out, the client goes away or the server closes. The final run is the one
// answered, so a timed-out query returns the current state with its index,
// which is the unchanged index when nothing changed. Without ?index the query
// does not block. An index of 0 is reported as 1, as Consul does, so that
// clients never spin.
func (s *Server) blockingRead(ctx context.Context, q queryOptions, read func() uint64) uint64 {
	var index uint64
	s.block(ctx, q.minIndex > 0, q.wait, func() bool {
		index = max(read(), 1)
		return index > q.minIndex
	})
	return index
}

// block is the loop behind blocking queries, shared with the agent's
// hash-based ones. read runs under mu and reports whether it saw something
// fresh. Real time bounds the wait: it is an HTTP concern, while the state the
// query waits on may be moved by a virtual clock.
//
// Every write wakes every blocked query, which re-runs its read; that is
// cheaper to get right than Consul's per-table watch sets and fast enough for
// the number of watchers a simulated cluster has.
func (s *Server) block(ctx context.Context, blocking bool, wait time.Duration, read func() (fresh bool)) {
	var timeout <-chan time.Time
	for {
		s.mu.Lock()
		// A TTL that ran out is applied before anything is read, so no
		// answer shows a session or check past its deadline; unlock then
		// wakes whoever waits on what the expiry changed.
		s.expireDueLocked()
		fresh := read()
		changed := s.notify
		s.unlock()
		if fresh || !blocking {
			return
		}
		if timeout == nil {
			t := time.NewTimer(queryTimeout(wait))
			defer t.Stop()
			timeout = t.C
		}
		s.blocked.Add(1)
		select {
		case <-changed:
		case <-timeout:
			blocking = false
		case <-ctx.Done():
			blocking = false
		case <-s.done:
			blocking = false
		}
		s.blocked.Add(-1)
	}
}
