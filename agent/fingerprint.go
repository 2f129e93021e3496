package agent

import (
	"context"
	"fmt"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/agent/fingerprint"
	"github.com/foresight-nomad/foresight/agent/sampler"
)

// fingerprintLoop publishes the node's traits as dynamic node metadata at
// start and whenever they change, until ctx ends. Only foresight.* keys are
// ever written, and only when their value differs.
func (a *Agent) fingerprintLoop(ctx context.Context, nodeID string) error {
	for {
		if err := a.publishFingerprint(ctx, nodeID); err != nil && ctx.Err() == nil {
			a.log.Warn("publish fingerprint", "error", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-a.clock.After(fingerprintInterval):
		}
	}
}

func (a *Agent) publishFingerprint(ctx context.Context, nodeID string) error {
	q := (&nomadapi.QueryOptions{}).WithContext(ctx)
	node, _, err := a.nomad.Nodes().Info(nodeID, q)
	if err != nil {
		return fmt.Errorf("read node %s: %w", nodeID, err)
	}
	traits, err := a.traits(ctx, node)
	if err != nil {
		// Detect still returns what it could tell; unknown traits say so.
		a.log.Debug("fingerprint incomplete", "error", err)
	}
	changes := fingerprint.MetaChanges(node.Meta, traits.Meta())
	if len(changes) == 0 {
		return nil
	}
	if _, err := a.nomad.Nodes().Meta().Apply(&nomadapi.NodeMetaApplyRequest{NodeID: nodeID, Meta: changes}, (&nomadapi.QueryOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("write node metadata: %w", err)
	}
	a.log.Info("published fingerprint", "class", traits.Class(), "keys", len(changes))
	return nil
}

// traits fingerprints the node: from the host's /proc and /sys, or in sim
// from the simulated node's hardware.
func (a *Agent) traits(ctx context.Context, node *nomadapi.Node) (fingerprint.Traits, error) {
	if !a.s.Sim {
		return fingerprint.Detect(fingerprint.Config{
			SysRoot: a.s.Host.SysRoot, ProcRoot: a.s.Host.ProcRoot, AllocDir: a.s.Host.AllocDir,
			Interface: a.s.Host.NetworkInterface, Platform: fingerprint.Platform(a.s.Platform),
		}, node.Attributes)
	}
	sn, err := sampler.ReadSimNode(ctx, a.nomad, node.ID)
	if err != nil {
		return fingerprint.Traits{}, fmt.Errorf("read simulated host: %w", err)
	}
	h := sn.Host
	memBytes := uint64(h.MemoryMB) << 20
	return fingerprint.Traits{
		Platform:      fingerprint.PlatformOf(fingerprint.Platform(a.s.Platform), node.Attributes),
		Storage:       fingerprint.Storage(h.Storage),
		MemTier:       fingerprint.MemTierOf(memBytes, h.Cores),
		NetTier:       fingerprint.NetTierOf(int64(h.NetMbits)),
		CPU:           fingerprint.CPUInfo{Model: h.CPUModel, CPUs: h.Cores, Cores: h.Cores},
		MemTotalBytes: memBytes,
		LinkSpeedMbps: int64(h.NetMbits),
	}, nil
}
