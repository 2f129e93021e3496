package leader

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/foresight-nomad/foresight/internal/backoff"
)

// DefaultPauseKey is the Consul key that pauses actuation cluster-wide.
const DefaultPauseKey = "foresight/paused"

// PauseSwitch is the cluster-wide switch that stops all actuation. It lives
// in Consul so that it holds across leader changes: a new leader reads it
// before it acts. A paused cluster still samples, stores and forecasts; it
// only stops changing jobs, capacity and routing.
type PauseSwitch struct {
	kv     *consulapi.KV
	key    string
	log    hclog.Logger
	paused atomic.Bool
	known  atomic.Bool
}

// NewPauseSwitch returns a switch backed by key (DefaultPauseKey if empty).
func NewPauseSwitch(client *consulapi.Client, key string, log hclog.Logger) *PauseSwitch {
	if key == "" {
		key = DefaultPauseKey
	}
	return &PauseSwitch{kv: client.KV(), key: key, log: log}
}

// Paused reports whether actuation is paused. Until the switch has been
// read once it reports true: not knowing is no licence to act.
func (p *PauseSwitch) Paused() bool { return !p.known.Load() || p.paused.Load() }

// Set pauses or resumes actuation cluster-wide.
func (p *PauseSwitch) Set(ctx context.Context, paused bool) error {
	q := (&consulapi.WriteOptions{}).WithContext(ctx)
	var err error
	if paused {
		_, err = p.kv.Put(&consulapi.KVPair{Key: p.key, Value: []byte("true")}, q)
	} else {
		_, err = p.kv.Delete(p.key, q)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", p.key, err)
	}
	p.paused.Store(paused)
	p.known.Store(true)
	return nil
}

// Watch keeps the switch current with blocking queries until ctx ends.
func (p *PauseSwitch) Watch(ctx context.Context) {
	var index uint64
	// A short first wait and a low cap: while the switch cannot be read,
	// actuation follows the last value read, so it must not stay stale long.
	retry := backoff.Backoff{Min: time.Second, Max: 15 * time.Second}
	for ctx.Err() == nil {
		pair, meta, err := p.kv.Get(p.key, (&consulapi.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Minute}).WithContext(ctx))
		if err != nil {
			if ctx.Err() == nil {
				p.log.Warn("read the pause switch", "key", p.key, "error", err)
				retry.Wait(ctx, nil)
			}
			continue
		}
		retry.Reset()
		paused := pair != nil && string(pair.Value) == "true"
		if was := p.paused.Swap(paused); was != paused || !p.known.Load() {
			p.log.Info("actuation", "paused", paused)
		}
		p.known.Store(true)
		index = meta.LastIndex
	}
}
