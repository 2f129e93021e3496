// Package election makes one Foresight agent the leader through a Consul
// lock, and tells everyone else where the leader is.
//
// The promise, and its limits:
//
//   - Run calls lead only while this agent holds the lock, with a context
//     that is cancelled the moment consul/api reports the lock lost (its
//     lock channel closes: the session was invalidated or destroyed, the key
//     was deleted or taken, or the lock could not be confirmed) or when Run's
//     own context ends. lead must return promptly once its context is done;
//     Run waits for it before contending again, so one agent never runs two
//     leaders.
//   - Two agents never hold the lock at once as far as Consul guarantees it:
//     a new holder can only acquire after the old session is gone and the
//     lock-delay (default 15 s) has passed, which gives a deposed leader that
//     long to notice and stop.
//   - A term that ends on its own (lead returned while this agent still
//     held the lock: it could not lead, say because its ingest TLS files
//     are bad) releases the lock, and Run waits before contending again, by
//     internal/backoff's rule from 5 s doubling up to 1 min; so does a
//     failed attempt to take the lock. An agent with a persistent error
//     leaves the lock to others and costs Consul a trickle of requests,
//     never a lock/unlock spin. A term that ends because the lock was lost,
//     or that lasted longer than the longest wait, clears the count:
//     contending again at once is right after a loss.
//   - Limit: an agent cut off from Consul learns of the loss only when its
//     lock monitor's query fails, or when the session TTL lapses and Consul
//     invalidates it. Work that must never overlap with a successor's (job
//     writes) is therefore also guarded by Nomad's check-and-set, not by the
//     lock alone.
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

	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/internal/backoff"
	"github.com/foresight-nomad/foresight/leaderapi"
	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
)

// Defaults, as DESIGN.md sets them.
const (
	DefaultSessionTTL = 15 * time.Second
	DefaultLockDelay  = 15 * time.Second
	// retryMin and retryMax bound the wait after a failed attempt or a
	// failed term (see the package comment).
	retryMin = 5 * time.Second
	retryMax = time.Minute
)

// Config says which lock to contend for and how.
type Config struct {
	// Key is the Consul KV key of the lock; leaderapi.DefaultKey when empty.
	Key string
	// Self is what this agent writes into the key when it leads.
	Self leaderapi.Record
	// SessionTTL is the TTL of the lock's session; DefaultSessionTTL when 0.
	SessionTTL time.Duration
	// LockDelay is how long Consul refuses the lock after its holder's
	// session was lost; DefaultLockDelay when 0.
	LockDelay time.Duration
	// Clock paces the waits after failures; the wall clock when nil.
	Clock clock.Clock
}

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
	if cfg.LockDelay == 0 {
		cfg.LockDelay = DefaultLockDelay
	}
	if cfg.SessionTTL < 10*time.Second {
		return nil, fmt.Errorf("session TTL %s is below Consul's minimum of 10s", cfg.SessionTTL)
	}
	if cfg.Self.GRPC == "" || cfg.Self.HTTP == "" {
		return nil, errors.New("the leader's advertised gRPC and HTTP addresses are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if log == nil {
		log = hclog.NewNullLogger()
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
		lock, err := e.client.LockOpts(&api.LockOptions{
			Key:   e.cfg.Key,
			Value: value,
			SessionOpts: &api.SessionEntry{
				Name:      "foresight-leader",
				TTL:       e.cfg.SessionTTL.String(),
				LockDelay: e.cfg.LockDelay,
				Behavior:  api.SessionBehaviorDelete,
			},
			MonitorRetries: 0,
		})
		if err != nil {
			return fmt.Errorf("prepare lock %q: %w", e.cfg.Key, err)
		}
		lost, err := lock.Lock(ctx.Done())
		if err != nil {
			e.log.Warn("contending for leadership failed", "key", e.cfg.Key, "failures", retry.Failures()+1, "error", err)
			if !retry.Wait(ctx, e.cfg.Clock) {
				break
			}
			continue
		}
		if lost == nil { // ctx ended while waiting
			break
		}
		e.log.Info("leading", "key", e.cfg.Key)
		leadCtx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-lost:
				e.log.Warn("leadership lost", "key", e.cfg.Key)
			case <-leadCtx.Done():
			}
			cancel()
		}()
		began := e.cfg.Clock.Now()
		lead(leadCtx)
		cancel()
		wasLost := false
		select {
		case <-lost:
			wasLost = true
		default:
		}
		if err := lock.Unlock(); err != nil && !errors.Is(err, api.ErrLockNotHeld) {
			e.log.Warn("release leadership", "error", err)
		}
		switch {
		case ctx.Err() != nil:
		case wasLost:
			retry.Reset()
		default:
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
