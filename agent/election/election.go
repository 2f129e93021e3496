// Package election makes one Foresight agent the leader through a Consul
// lock, and tells everyone else where the leader is.
//
// The promise, and its limits:
//
//   - Run calls lead only while this agent holds the lock and its lease is
//     confirmed, with a context that is cancelled the moment either ends:
//     consul/api reports the lock lost (its lock channel closes: the
//     session was invalidated or destroyed, the key was deleted or taken, or
//     the lock could not be confirmed), or no renewal of the session has
//     succeeded for StepDownAfter, or Run's own context ends. lead must
//     return promptly once its context is done; Run waits for it before it
//     releases the lock or contends again, so one agent never runs two
//     leaders.
//   - A deposed leader stops before anyone else can take the lock. Consul
//     invalidates a TTL session no earlier than TTL after its last renewal
//     (its contract; in practice 2 × TTL, when the leader's timer fires),
//     and only then may another session acquire the key. The leader counts
//     StepDownAfter = TTL/2 from when it *sent* its last successful renewal,
//     on its own clock, so its term ends at least TTL/2 before Consul can
//     free the key, however long its requests hang. That, not the
//     lock-delay, is what keeps two leaders apart, which is why the lock
//     delay defaults to 0. The session watches no health check (serfHealth
//     included): only its TTL, an explicit destroy or the node's
//     deregistration can invalidate it, never a check the leader cannot see
//     fail.
//   - Failover: a leader that dies without a word (SIGKILL, a crashed node)
//     is replaced once Consul invalidates its session, at most 2 × TTL
//     after its last renewal (20 s with the defaults, renewals every TTL/4),
//     plus the lock delay (0), plus the standbys' reaction (one blocking
//     query). A leader that stops (SIGTERM, `nomad job stop`, a rolling
//     update) releases the key and destroys its session after its term
//     ends, so a standby takes over at once.
//   - A term that ends on its own (lead returned while this agent still
//     held the lock: it could not lead, say because its ingest TLS files
//     are bad) releases the lock, and Run waits before contending again, by
//     internal/backoff's rule from 5 s doubling up to 1 min; so does a
//     failed attempt to take the lock. An agent with a persistent error
//     leaves the lock to others and costs Consul a trickle of requests,
//     never a lock/unlock spin. A term that ends because the lock was lost
//     or the lease lapsed, or that lasted longer than the longest wait,
//     clears the count: contending again at once is right after a loss.
//   - Limits: the step-down runs on this process's clock, so a process that
//     is frozen (SIGSTOP, a VM paused) for longer than TTL/2 may, when it
//     resumes, issue a write that was already under way before its context
//     is cancelled; an operator destroying the session, or the Consul agent
//     leaving the cluster, frees the key at once while the leader learns of
//     it one blocking query later. Work that must never overlap with a
//     successor's (job writes) is therefore also guarded by Nomad's
//     check-and-set (orchestrator/jobs.go), not by the lock alone.
//
// Standbys hold no session: they wait on the key with a blocking query and
// create a session only when it is free, so the cluster renews one session,
// the leader's, however many agents it has.
//
// Why the session is this package's and not consul/api's: for a session it
// creates, api.Lock runs Session.RenewPeriodic, which renews every TTL/2,
// retries a failed renewal every second and, after TTL without success,
// returns without telling anyone; the lock channel closes only when the
// lock's monitor (a blocking query of up to 5 minutes, MonitorRetries
// retries on errors) fails or sees the key change. A leader whose requests
// hang would lead on. api.Lock also creates sessions without a zero
// lock-delay and with serfHealth. So Run creates and renews the session
// itself and hands it to api.Lock, which then only takes and watches the
// key.
//
// The lock's value is the leader's advertised addresses (a
// leaderapi.Record), so agents, the CLI and the plugins find the leader by
// reading the key (leaderapi.Current).
package election

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/internal/backoff"
	"github.com/foresight-nomad/foresight/leaderapi"
)

// Defaults and Consul's bounds.
const (
	// DefaultSessionTTL is Consul's minimum TTL: the shortest failover
	// Consul allows when a leader dies without releasing the lock.
	DefaultSessionTTL = 10 * time.Second
	// DefaultLockDelay is 0: the leader steps down on its own clock before
	// its session can be invalidated (see the package comment), so a
	// lock-delay would only lengthen every failover.
	DefaultLockDelay = 0
	// minSessionTTL and maxLockDelay are Consul's: a shorter TTL is
	// refused, a longer lock-delay is silently cut to 60 s.
	minSessionTTL = 10 * time.Second
	maxLockDelay  = 60 * time.Second
	// retryMin and retryMax bound the wait after a failed attempt or a
	// failed term (see the package comment).
	retryMin = 5 * time.Second
	retryMax = time.Minute
	// lockTryWait is how long one attempt to take a free key waits for it
	// when another agent won the race, before going back to waiting
	// without a session.
	lockTryWait = time.Second
	// releaseTimeout bounds releasing the key and destroying the session at
	// the end of a term, so that a shutdown is not held up by a Consul that
	// does not answer (the session then expires on its own).
	releaseTimeout = 5 * time.Second
)

// sessionName is the name of every leader session, for `consul operator`.
const sessionName = "foresight-leader"

// Errors that end a term from the renewal side.
var (
	// ErrSessionGone is why a term ends when Consul no longer knows the
	// session (renew answered 404).
	ErrSessionGone = errors.New("the session is gone")
	// ErrLeaseLapsed is why a term ends when no renewal has succeeded for
	// StepDownAfter.
	ErrLeaseLapsed = errors.New("the session's lease could not be confirmed")
	// errLockLost is why a term ends when consul/api reports the lock lost.
	errLockLost = errors.New("the lock was lost")
)

// Config says which lock to contend for and how.
type Config struct {
	// Key is the Consul KV key of the lock; leaderapi.DefaultKey when empty.
	Key string
	// Self is what this agent writes into the key when it leads.
	Self leaderapi.Record
	// SessionTTL is the TTL of the leader's session; DefaultSessionTTL when
	// 0. It sets the renewal cadence (TTL/4), the step-down (TTL/2 without
	// a successful renewal) and the failover after a crash (up to 2 × TTL).
	SessionTTL time.Duration
	// LockDelay is how long Consul refuses the key after the session that
	// held it was invalidated (not after a release); 0 by default. Any
	// value lengthens every crash failover by itself and by consul/api's
	// retry period (5 s) while it runs.
	LockDelay time.Duration
	// Clock paces the waits after failures; the wall clock when nil. The
	// session's renewals and step-down always run on the wall clock,
	// Consul's.
	Clock clock.Clock
}

// RenewEvery is how often the leader renews its session.
func (c Config) RenewEvery() time.Duration { return c.SessionTTL / 4 }

// StepDownAfter is how long after sending its last successful renewal the
// leader ends its term if no renewal has succeeded since.
func (c Config) StepDownAfter() time.Duration { return c.SessionTTL / 2 }

// renewRetry is how soon a failed renewal is tried again: often enough for
// several tries before StepDownAfter.
func (c Config) renewRetry() time.Duration { return c.SessionTTL / 10 }

// Election contends for leadership.
type Election struct {
	client *api.Client
	cfg    Config
	log    hclog.Logger
}

// New returns an Election that uses client and logs to log.
func New(client *api.Client, cfg Config, log hclog.Logger) (*Election, error) {
	if cfg.Key == "" {
		cfg.Key = leaderapi.DefaultKey
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	switch {
	case cfg.SessionTTL < minSessionTTL:
		return nil, fmt.Errorf("session TTL %s is below Consul's minimum of %s", cfg.SessionTTL, minSessionTTL)
	case cfg.LockDelay < 0:
		return nil, fmt.Errorf("lock delay %s is negative", cfg.LockDelay)
	case cfg.LockDelay > maxLockDelay:
		return nil, fmt.Errorf("lock delay %s is above Consul's maximum of %s", cfg.LockDelay, maxLockDelay)
	case cfg.Self.GRPC == "" || cfg.Self.HTTP == "":
		return nil, errors.New("the leader's advertised gRPC and HTTP addresses are required")
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	return &Election{client: client, cfg: cfg, log: log}, nil
}

// Run contends for the lock until ctx ends, running lead each time this
// agent wins; see the package comment for what it guarantees.
func (e *Election) Run(ctx context.Context, lead func(ctx context.Context)) error {
	value, err := json.Marshal(e.cfg.Self)
	if err != nil {
		return fmt.Errorf("encode leader value: %w", err)
	}
	retry := backoff.Backoff{Min: retryMin, Max: retryMax}
	for ctx.Err() == nil {
		began := e.cfg.Clock.Now()
		ended, err := e.term(ctx, value, lead)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			e.log.Warn("contending for leadership failed", "key", e.cfg.Key, "failures", retry.Failures()+1, "error", err)
			if !retry.Wait(ctx, e.cfg.Clock) {
				return ctx.Err()
			}
		case ended == termLost:
			retry.Reset()
		case ended == termEnded:
			if e.cfg.Clock.Now().Sub(began) > retryMax {
				retry.Reset() // a long term was a success that ended
			}
			e.log.Warn("the term ended on its own; waiting before contending again", "key", e.cfg.Key, "failures", retry.Failures()+1)
			if !retry.Wait(ctx, e.cfg.Clock) {
				return ctx.Err()
			}
		}
	}
	return ctx.Err()
}

// termEnd says how a term came to an end, for Run's backoff.
type termEnd int

const (
	// termNone: no term ran (another agent won the key first).
	termNone termEnd = iota
	// termLost: the lock was lost or the lease lapsed.
	termLost
	// termEnded: lead returned while the lock and the lease held.
	termEnded
)

// term waits for the key to be free, takes it with a new session, runs lead
// while the lock and the lease hold, and then releases the key and
// destroys the session. It says how the term ended (termNone when another
// agent won the key first), or returns an error when Consul failed us.
func (e *Election) term(ctx context.Context, value []byte, lead func(context.Context)) (termEnd, error) {
	if err := e.waitFree(ctx); err != nil {
		return termNone, err
	}
	id, created, err := e.createSession(ctx)
	if err != nil {
		return termNone, err
	}
	held := false
	defer func() { e.release(id, value, held) }()

	lease, expire := context.WithCancelCause(ctx)
	renewing := make(chan struct{})
	go func() {
		defer close(renewing)
		e.renew(lease, expire, id, created)
	}()
	defer func() {
		expire(nil)
		<-renewing
	}()

	lock, err := e.client.LockOpts(&api.LockOptions{
		Key:          e.cfg.Key,
		Value:        value,
		Session:      id, // ours: consul/api neither renews nor destroys it
		LockTryOnce:  true,
		LockWaitTime: lockTryWait,
		// No retries: a failed query of the key ends the term at once.
		MonitorRetries: 0,
	})
	if err != nil {
		return termNone, fmt.Errorf("prepare lock %q: %w", e.cfg.Key, err)
	}
	lost, err := lock.Lock(lease.Done())
	if err != nil {
		return termNone, fmt.Errorf("take lock %q: %w", e.cfg.Key, err)
	}
	if lost == nil {
		// Another agent took the key first, or a lock-delay runs, or the
		// lease lapsed while trying: wait again, without a session.
		if cause := context.Cause(lease); ctx.Err() == nil && cause != nil && !errors.Is(cause, context.Canceled) {
			return termNone, cause
		}
		return termNone, nil
	}
	held = true
	e.log.Info("leading", "key", e.cfg.Key, "session", id)
	leadCtx, stop := context.WithCancelCause(lease)
	go func() {
		select {
		case <-lost:
			stop(errLockLost)
		case <-leadCtx.Done():
		}
	}()
	lead(leadCtx)
	stop(nil)
	if cause := context.Cause(leadCtx); ctx.Err() == nil && cause != nil && !errors.Is(cause, context.Canceled) {
		e.log.Warn("leadership lost", "key", e.cfg.Key, "session", id, "reason", cause)
		return termLost, nil
	}
	return termEnded, nil
}

// waitFree blocks until no session holds the key, or ctx ends.
func (e *Election) waitFree(ctx context.Context) error {
	var index uint64
	for {
		pair, meta, err := e.client.KV().Get(e.cfg.Key, (&api.QueryOptions{WaitIndex: index}).WithContext(ctx))
		if err != nil {
			return fmt.Errorf("watch lock %q: %w", e.cfg.Key, err)
		}
		if pair == nil || pair.Session == "" {
			return nil
		}
		if meta.LastIndex < index {
			// Consul's rule for an index that went backwards: start over.
			index = 0
		} else {
			index = meta.LastIndex
		}
	}
}

// createSession creates the leader's session and returns its ID and when
// the request was sent: Consul starts the TTL no earlier than that. It goes
// through the raw endpoint because consul/api's Create leaves out a zero
// LockDelay (Consul then applies 15 s) and always keeps serfHealth.
func (e *Election) createSession(ctx context.Context) (string, time.Time, error) {
	body := map[string]any{
		"Name":       sessionName,
		"TTL":        e.cfg.SessionTTL.String(),
		"LockDelay":  e.cfg.LockDelay.String(),
		"Behavior":   api.SessionBehaviorDelete,
		"NodeChecks": []string{},
	}
	var out struct{ ID string }
	sent := time.Now()
	if _, err := e.client.Raw().Write("/v1/session/create", body, &out, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		return "", time.Time{}, fmt.Errorf("create session: %w", err)
	}
	if out.ID == "" {
		return "", time.Time{}, errors.New("create session: Consul returned no session ID")
	}
	return out.ID, sent, nil
}

// renew keeps the session alive every RenewEvery until ctx ends, and
// cancels the lease with ErrSessionGone or ErrLeaseLapsed when it can no
// longer vouch for it. confirmed is when the request that last confirmed
// the session was sent.
func (e *Election) renew(ctx context.Context, expire context.CancelCauseFunc, id string, confirmed time.Time) {
	deadline := confirmed.Add(e.cfg.StepDownAfter())
	wait := e.cfg.RenewEvery()
	var lastErr error
	for {
		next := time.Now().Add(wait)
		if next.After(deadline) {
			next = deadline
		}
		if !sleep(ctx, time.Until(next)) {
			return
		}
		if !time.Now().Before(deadline) {
			e.log.Warn("stepping down: no renewal succeeded in time", "session", id, "step_down_after", e.cfg.StepDownAfter(), "error", lastErr)
			expire(fmt.Errorf("%w: no renewal succeeded for %s (last error: %v)", ErrLeaseLapsed, e.cfg.StepDownAfter(), lastErr))
			return
		}
		sent := time.Now()
		rctx, cancel := context.WithDeadline(ctx, deadline)
		entry, _, err := e.client.Session().Renew(id, (&api.WriteOptions{}).WithContext(rctx))
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			lastErr = err
			wait = e.cfg.renewRetry()
			e.log.Debug("session renewal failed", "session", id, "error", err)
		case entry == nil:
			e.log.Warn("stepping down: Consul no longer knows the session", "session", id)
			expire(ErrSessionGone)
			return
		default:
			deadline = sent.Add(e.cfg.StepDownAfter())
			wait = e.cfg.RenewEvery()
		}
	}
}

// release gives the key up, if this session held it, and destroys the
// session. Releasing first frees the key without a lock-delay (Consul
// applies it only to keys of an invalidated session).
func (e *Election) release(id string, value []byte, held bool) {
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	wo := (&api.WriteOptions{}).WithContext(ctx)
	if held {
		pair := &api.KVPair{Key: e.cfg.Key, Value: value, Flags: api.LockFlagValue, Session: id}
		if _, _, err := e.client.KV().Release(pair, wo); err != nil {
			e.log.Warn("release leadership", "key", e.cfg.Key, "error", err)
		}
	}
	if _, err := e.client.Session().Destroy(id, wo); err != nil {
		e.log.Warn("destroy session; it expires on its own", "session", id, "error", err)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
