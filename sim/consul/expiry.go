package consul

import (
	"maps"
	"slices"
	"time"
)

// rearmSlack is how far the clock may move while the reaper arms its timer
// before the reaper re-reads it; it keeps a virtual clock that jumps during
// arming from pushing a deadline late.
const rearmSlack = time.Millisecond

// ttlExpiredOutput prefixes the output of a TTL check that was not updated
// in time, as Consul's agent writes it.
const ttlExpiredOutput = "TTL expired (last output before timeout follows): "

// wakeReaper makes the reaper look again for the next deadline, after one
// was added that may come before the one it waits for.
func (s *Server) wakeReaper() {
	select {
	case s.reaperWake <- struct{}{}:
	default:
	}
}

// reap runs the TTLs of sessions and of TTL checks on the injected clock,
// until Close.
func (s *Server) reap() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		next, ok := s.nextDeadlineLocked()
		s.mu.Unlock()
		var fire <-chan time.Time
		if ok {
			now := s.now()
			fire = s.clock.After(next.Sub(now))
			if s.now().Sub(now) > rearmSlack {
				continue
			}
		}
		select {
		case <-fire:
			s.expireDue()
		case <-s.reaperWake:
		case <-s.done:
			return
		}
	}
}

// nextDeadlineLocked is the earliest session expiry or TTL check deadline.
func (s *Server) nextDeadlineLocked() (time.Time, bool) {
	var next time.Time
	found := false
	consider := func(t time.Time) {
		if !t.IsZero() && (!found || t.Before(next)) {
			next, found = t, true
		}
	}
	for _, ss := range s.sessions.byID {
		consider(ss.expires)
	}
	for _, c := range s.catalog.checks {
		consider(c.ttlExpires)
	}
	return next, found
}

// expireDue invalidates the sessions whose TTL ran out, each as of its
// expiry time so that its keys' lock-delay runs from then, and turns
// critical the TTL checks that were not updated in time.
func (s *Server) expireDue() {
	s.mu.Lock()
	defer s.unlock()
	s.expireDueLocked()
}

// expireDueLocked is expireDue with mu held. Every read and every write
// that depends on a session's life calls it first, so that an expiry the
// reaper has not run yet (the clock moved in between) still counts: a
// session past its expiry is neither seen, renewed nor used to acquire, as
// in Consul, whose timer invalidates it on time.
func (s *Server) expireDueLocked() {
	now := s.now()
	for _, id := range slices.Sorted(maps.Keys(s.sessions.byID)) {
		ss := s.sessions.byID[id]
		if !ss.expires.IsZero() && !ss.expires.After(now) {
			s.invalidateSessionLocked(id, ss.expires, "ttl expired")
		}
	}
	for _, id := range slices.Sorted(maps.Keys(s.catalog.checks)) {
		c := s.catalog.checks[id]
		if c.ttlExpires.IsZero() || c.ttlExpires.After(now) {
			continue
		}
		c.ttlExpires = time.Time{}
		expired := *c
		expired.Status, expired.Output = StatusCritical, ttlExpiredOutput+c.Output
		s.putCheckLocked(s.txn(), &expired)
	}
}

// armCheckTTLLocked restarts the deadline of a TTL check, as registering or
// updating it does.
func (s *Server) armCheckTTLLocked(id string) {
	if c, ok := s.catalog.checks[id]; ok && c.ttl > 0 {
		c.ttlExpires = s.now().Add(c.ttl)
		s.wakeReaper()
	}
}
