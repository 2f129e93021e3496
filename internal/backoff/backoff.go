// Package backoff paces the retries of a loop that talks to something that
// can fail for a while (the leader, Nomad, Consul): every retry loop of the
// agent waits by the same rule, so that a persistent error costs a bounded
// trickle of attempts and agents cut off together do not come back together.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/foresight-nomad/foresight/clock"
)

// Backoff counts the failures of one loop in a row. The wait after the
// n-th failure (n from 1) is drawn uniformly from [d/2, d], where
// d = Min·2^(n−1) capped at Max: jittered, capped exponential backoff.
// Reset after a success, so the next failure waits Min again. The zero
// value is not ready: set Min and Max.
type Backoff struct {
	// Min is the longest first wait; Max caps every wait. Max below Min
	// counts as Min.
	Min, Max time.Duration
	failures int
}

// Next records a failure and returns how long to wait before trying again.
func (b *Backoff) Next() time.Duration {
	b.failures++
	d := b.Min
	for i := 1; i < b.failures && d < b.Max; i++ {
		d *= 2
	}
	d = max(b.Min, min(d, b.Max))
	return d/2 + rand.N(d/2+1)
}

// Reset forgets the failures after a success.
func (b *Backoff) Reset() { b.failures = 0 }

// Failures is how many failures in a row Next has recorded since the last
// Reset.
func (b *Backoff) Failures() int { return b.failures }

// Wait records a failure and waits its delay on clk (the wall clock when
// nil). It reports false, at once, if ctx ends first.
func (b *Backoff) Wait(ctx context.Context, clk clock.Clock) bool {
	if clk == nil {
		clk = clock.Real{}
	}
	select {
	case <-ctx.Done():
		return false
	case <-clk.After(b.Next()):
		return ctx.Err() == nil
	}
}
