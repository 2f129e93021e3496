package agent

import "github.com/prometheus/client_golang/prometheus"

// agentMetrics are the agent's own Prometheus metrics; the shipper and, on
// the leader, ingest register theirs beside them.
type agentMetrics struct {
	isLeader prometheus.Gauge
}

func newAgentMetrics(reg prometheus.Registerer) agentMetrics {
	m := agentMetrics{
		isLeader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "foresight_leader_is_leader",
			Help: "1 while this agent leads, else 0.",
		}),
	}
	reg.MustRegister(m.isLeader)
	return m
}
