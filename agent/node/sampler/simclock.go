package sampler

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/clock"
)

// DefaultSimClockPoll is how often, in wall time, a SimClock reads sim's
// time: at sim's usual speeds (up to 60×) it lags sim by a few virtual
// seconds at most, well under a sample interval.
const DefaultSimClockPoll = 100 * time.Millisecond

// SimClock is a simulated cluster's virtual clock as an agent sees it over
// HTTP: the time `GET /v1/sim/status` reports, read every poll. An agent
// against a sim that runs faster (or slower) than the wall clock takes it
// as its clock, so that its samples are stamped, and its leader's store
// windows, profiling rounds and decision interval run, in cluster time.
//
// Between reads the time stands still; timers fire, in deadline order, when
// a read passes them. Time never runs backwards.
type SimClock struct {
	nomad *api.Client
	poll  time.Duration
	wall  clock.Clock
	log   hclog.Logger
	v     *clock.Virtual
}

// NewSimClock reads sim's time once, through the Nomad client's address,
// and returns a clock that reads it. It fails when the address is not a
// sim. Call Run to keep it moving.
func NewSimClock(ctx context.Context, nomad *api.Client, log hclog.Logger) (*SimClock, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	now, err := simNow(ctx, nomad)
	if err != nil {
		return nil, err
	}
	return &SimClock{nomad: nomad, poll: DefaultSimClockPoll, wall: clock.Real{}, log: log, v: clock.NewVirtual(now)}, nil
}

// simNow is sim's virtual time.
func simNow(ctx context.Context, nomad *api.Client) (time.Time, error) {
	var st struct{ Now time.Time }
	if _, err := nomad.Raw().Query("/v1/sim/status", &st, (&api.QueryOptions{}).WithContext(ctx)); err != nil {
		return time.Time{}, fmt.Errorf("read sim's clock (is NOMAD_ADDR a foresight sim?): %w", err)
	}
	if st.Now.IsZero() {
		return time.Time{}, fmt.Errorf("sim's status carries no time")
	}
	return st.Now, nil
}

// Now is sim's time as last read.
func (c *SimClock) Now() time.Time { return c.v.Now() }

// After fires once sim's time, as read, has moved on by d.
func (c *SimClock) After(d time.Duration) <-chan time.Time { return c.v.After(d) }

// Sync reads sim's time now and moves the clock to it.
func (c *SimClock) Sync(ctx context.Context) error {
	now, err := simNow(ctx, c.nomad)
	if err != nil {
		return err
	}
	c.v.Set(now)
	return nil
}

// Run reads sim's time every poll until ctx ends. A failed read is logged
// and the clock stands still until sim answers again.
func (c *SimClock) Run(ctx context.Context) {
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wall.After(c.poll):
		}
		err := c.Sync(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			c.log.Warn("sim's clock stands still: cannot read it", "error", err)
			failing = true
		case err == nil && failing:
			c.log.Info("reading sim's clock again")
			failing = false
		}
	}
}
