package node

import (
	"context"
	"fmt"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/agent/node/fingerprint"
	"github.com/foresight-nomad/foresight/agent/node/sampler"
)

// fingerprintInterval is how often the node's traits are checked again;
// metadata is written only when they changed.
const fingerprintInterval = 5 * time.Minute

// fingerprintLoop publishes the node's traits as dynamic node metadata at
// start and whenever they change, until ctx ends. Only foresight.* keys are
// ever written, and only when their value differs.
func (r *Role) fingerprintLoop(ctx context.Context) error {
	nodeID := r.cfg.NodeID
	for {
		if err := r.publishFingerprint(ctx, nodeID); err != nil && ctx.Err() == nil {
			r.log.Warn("publish fingerprint", "error", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.cfg.Clock.After(fingerprintInterval):
		}
	}
}

func (r *Role) publishFingerprint(ctx context.Context, nodeID string) error {
	q := (&nomadapi.QueryOptions{}).WithContext(ctx)
	node, _, err := r.cfg.Nomad.Nodes().Info(nodeID, q)
	if err != nil {
		return fmt.Errorf("read node %s: %w", nodeID, err)
	}
	traits, err := r.traits(ctx, node)
	if err != nil {
		// Detect still returns what it could tell; unknown traits say so.
		r.log.Debug("fingerprint incomplete", "error", err)
	}
	changes := fingerprint.MetaChanges(node.Meta, traits.Meta())
	if len(changes) == 0 {
		return nil
	}
	if _, err := r.cfg.Nomad.Nodes().Meta().Apply(&nomadapi.NodeMetaApplyRequest{NodeID: nodeID, Meta: changes}, (&nomadapi.QueryOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("write node metadata: %w", err)
	}
	r.log.Info("published fingerprint", "class", traits.Class(), "keys", len(changes))
	return nil
}

// traits fingerprints the node: from the host's /proc and /sys, or in sim
// from the simulated node's hardware.
func (r *Role) traits(ctx context.Context, node *nomadapi.Node) (fingerprint.Traits, error) {
	if !r.cfg.Sim {
		return fingerprint.Detect(fingerprint.Config{
			SysRoot: r.cfg.Host.SysRoot, ProcRoot: r.cfg.Host.ProcRoot, AllocDir: r.cfg.Host.AllocDir,
			Interface: r.cfg.Host.NetworkInterface, Platform: fingerprint.Platform(r.cfg.Platform),
		}, node.Attributes)
	}
	sn, err := sampler.ReadSimNode(ctx, r.cfg.Nomad, node.ID)
	if err != nil {
		return fingerprint.Traits{}, fmt.Errorf("read simulated host: %w", err)
	}
	h := sn.Host
	memBytes := uint64(h.MemoryMB) << 20
	return fingerprint.Traits{
		Platform:      fingerprint.PlatformOf(fingerprint.Platform(r.cfg.Platform), node.Attributes),
		Storage:       fingerprint.Storage(h.Storage),
		MemTier:       fingerprint.MemTierOf(memBytes, h.Cores),
		NetTier:       fingerprint.NetTierOf(int64(h.NetMbits)),
		CPU:           fingerprint.CPUInfo{Model: h.CPUModel, CPUs: h.Cores, Cores: h.Cores},
		MemTotalBytes: memBytes,
		LinkSpeedMbps: int64(h.NetMbits),
	}, nil
}
