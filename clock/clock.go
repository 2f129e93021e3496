// Package clock gives every component of Foresight its sense of time, so that
// sim, backtests and tests can drive logic on a virtual clock while production
// runs on the wall clock.
package clock

import (
	"sort"
	"sync"
	"time"
)

// Clock is what a component asks for the time and for timers.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives the time once d has passed.
	After(d time.Duration) <-chan time.Time
}

// Real is the wall clock.
type Real struct{}

// Now returns time.Now.
func (Real) Now() time.Time { return time.Now() }

// After is time.After.
func (Real) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Virtual is a clock that moves only when told to. Timers fire in deadline
// order while the clock is advanced, each seeing the time it was due.
// It is safe for concurrent use.
type Virtual struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

// NewVirtual returns a virtual clock that reads start.
func NewVirtual(start time.Time) *Virtual {
	return &Virtual{now: start}
}

// Now returns the virtual time.
func (v *Virtual) Now() time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.now
}

// After returns a channel that receives the virtual time once the clock has
// been advanced by at least d. A d of zero or less fires at once.
func (v *Virtual) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	v.mu.Lock()
	defer v.mu.Unlock()
	if d <= 0 {
		ch <- v.now
		return ch
	}
	v.waiters = append(v.waiters, waiter{at: v.now.Add(d), ch: ch})
	return ch
}

// Pending is how many timers wait for the clock to move: a test that
// sees a component's timer pending knows the component is waiting on the
// clock, not still on its way there.
func (v *Virtual) Pending() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.waiters)
}

// Advance moves the clock forward by d, firing due timers in order.
func (v *Virtual) Advance(d time.Duration) {
	v.Set(v.Now().Add(d))
}

// Set moves the clock to t, firing every timer due at or before t. Moving
// backwards is ignored: virtual time never runs back.
func (v *Virtual) Set(t time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if t.Before(v.now) {
		return
	}
	v.now = t
	sort.SliceStable(v.waiters, func(i, j int) bool { return v.waiters[i].at.Before(v.waiters[j].at) })
	n := 0
	for _, w := range v.waiters {
		if w.at.After(t) {
			v.waiters[n] = w
			n++
			continue
		}
		w.ch <- w.at
	}
	clear(v.waiters[n:])
	v.waiters = v.waiters[:n]
}
