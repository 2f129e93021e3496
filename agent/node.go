package agent

import (
	"context"
	"fmt"

	"github.com/foresight-nomad/foresight/agent/buffer"
	"github.com/foresight-nomad/foresight/agent/election"
	"github.com/foresight-nomad/foresight/agent/ingest"
	"github.com/foresight-nomad/foresight/agent/sampler"
	"github.com/foresight-nomad/foresight/agent/store"
)

// nodeRole is what every agent runs: the sampler writes into the durable
// buffer, the shipper streams the buffer to the leader.
type nodeRole struct {
	buf     *buffer.Buffer
	sampler *sampler.Sampler
	shipper *ingest.Shipper
}

func (a *Agent) openNodeRole(_ context.Context, nodeID, bufferPath string, extra sampler.Extra) (*nodeRole, error) {
	buf, err := buffer.Open(bufferPath, buffer.Options{
		MaxBytes: a.s.BufferBytes, MaxAge: a.s.BufferAge, Clock: a.clock, Logger: a.log.Named("buffer"),
	})
	if err != nil {
		return nil, fmt.Errorf("open telemetry buffer: %w", err)
	}
	tlsCfg, err := a.tls(false)
	if err != nil {
		buf.Close()
		return nil, err
	}
	shipper, err := ingest.NewShipper(ingest.ShipperConfig{
		AgentID: nodeID, NodeID: nodeID, Buffer: buf, TLS: tlsCfg,
		Resolve:    a.resolveLeader,
		Clock:      a.clock,
		Logger:     a.log.Named("ship"),
		Registerer: a.reg,
	})
	if err != nil {
		buf.Close()
		return nil, fmt.Errorf("shipper: %w", err)
	}
	smp, err := sampler.New(sampler.Config{
		Nomad: a.nomad, NodeID: nodeID, Interval: a.s.SampleInterval, Clock: a.clock, Extra: extra,
		Logger: a.log.Named("sample"),
		Sink: func(samples []store.Sample) error {
			_, err := shipper.Enqueue(samples)
			return err
		},
	})
	if err != nil {
		buf.Close()
		return nil, err
	}
	return &nodeRole{buf: buf, sampler: smp, shipper: shipper}, nil
}

// ship runs the shipper until ctx ends.
func (n *nodeRole) ship(ctx context.Context) error { return n.shipper.Run(ctx) }

// Close closes the buffer; call it after the sampler and shipper stopped.
func (n *nodeRole) Close() error { return n.buf.Close() }

// resolveLeader returns the leader's gRPC address from the election key;
// an empty address means there is no leader yet.
func (a *Agent) resolveLeader(ctx context.Context) (string, error) {
	leader, ok, err := election.Current(ctx, a.consul, a.s.LeaderKey)
	if err != nil || !ok {
		return "", err
	}
	return leader.GRPC, nil
}

// tls loads the mutual TLS configuration, or nil when TLS is off.
func (a *Agent) tls(server bool) (*tlsConfig, error) {
	if !a.s.TLSEnabled() {
		return nil, nil
	}
	cfg, err := ingest.LoadTLS(a.s.TLS.CAFile, a.s.TLS.CertFile, a.s.TLS.KeyFile, server)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return cfg, nil
}
