package sampler

import (
	"context"
	"fmt"

	"github.com/hashicorp/nomad/api"
)

// SimExtra reads the metrics Nomad does not serve from a simulated
// cluster's `/v1/sim/node/<id>/telemetry`, at the Nomad client's address.
type SimExtra struct {
	Nomad  *api.Client
	NodeID string
}

// SimNode is what sim's telemetry endpoint says of one node: the extra
// metrics of its running tasks (allocation → task → metric) and the
// hardware a real agent would fingerprint on the host.
type SimNode struct {
	Allocations map[string]map[string]map[string]float64
	Host        struct {
		Storage  string
		CPUModel string
		Cores    int
		CPUMHz   int
		MemoryMB int
		NetMbits int
	}
}

// ReadSimNode reads sim's `/v1/sim/node/<id>/telemetry` at the Nomad
// client's address.
func ReadSimNode(ctx context.Context, nomad *api.Client, nodeID string) (*SimNode, error) {
	var n SimNode
	if _, err := nomad.Raw().Query("/v1/sim/node/"+nodeID+"/telemetry", &n, (&api.QueryOptions{}).WithContext(ctx)); err != nil {
		return nil, fmt.Errorf("read sim telemetry of node %s: %w", nodeID, err)
	}
	return &n, nil
}

// Sample implements Extra.
func (e SimExtra) Sample(ctx context.Context, _ []Task) (map[string]map[string]map[string]float64, error) {
	n, err := ReadSimNode(ctx, e.Nomad, e.NodeID)
	if err != nil {
		return nil, err
	}
	return n.Allocations, nil
}
