package sampler

import (
	"context"
	"fmt"

	"github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/telemetry"
)

// SimExtra reads the metrics Nomad does not serve from a simulated
// cluster's `/v1/sim/node/<id>/telemetry`, at the Nomad client's address.
type SimExtra struct {
	Nomad  *api.Client
	NodeID string
}

// SimNode is what sim's telemetry endpoint says of one node: the extra
// metrics of its running tasks (allocation → task → metric), how a host
// agent would have read each, why the ones it could not are missing, and
// the hardware a real agent would fingerprint on the host.
type SimNode struct {
	Allocations map[string]map[string]map[string]float64
	// Sources and Absent are keyed as Allocations: the telemetry.Source*
	// of each metric, and the telemetry.Absent* reason of each missing one.
	Sources map[string]map[string]map[string]string
	Absent  map[string]map[string]map[string]string
	Host    struct {
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

// Sample implements Extra. A metric sim gives no source for is said to
// come from sim.
func (e SimExtra) Sample(ctx context.Context, tasks []Task) (map[Task]*TaskExtra, error) {
	n, err := ReadSimNode(ctx, e.Nomad, e.NodeID)
	if err != nil {
		return nil, err
	}
	out := map[Task]*TaskExtra{}
	for _, t := range tasks {
		te := &TaskExtra{}
		for name, v := range n.Allocations[t.AllocID][t.Name] {
			src := n.Sources[t.AllocID][t.Name][name]
			if src == "" {
				src = telemetry.SourceSim
			}
			te.put(name, v, src)
		}
		for name, reason := range n.Absent[t.AllocID][t.Name] {
			te.absent(name, reason)
		}
		out[t] = te
	}
	return out, nil
}
