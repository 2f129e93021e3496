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

// Sample implements Extra.
func (e SimExtra) Sample(ctx context.Context, _ []Task) (map[string]map[string]map[string]float64, error) {
	var resp struct {
		Allocations map[string]map[string]map[string]float64
	}
	if _, err := e.Nomad.Raw().Query("/v1/sim/node/"+e.NodeID+"/telemetry", &resp, (&api.QueryOptions{}).WithContext(ctx)); err != nil {
		return nil, fmt.Errorf("read sim telemetry of node %s: %w", e.NodeID, err)
	}
	return resp.Allocations, nil
}
