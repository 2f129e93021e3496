package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/foresight-nomad/foresight/agent/node/ship"
	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/internal/testca"
	"github.com/foresight-nomad/foresight/telemetry/wire"
	"github.com/foresight-nomad/foresight/telemetry/wire/ingestpb"
)

// With mutual TLS on, the leader takes batches only from clients with a
// certificate signed by its CA; a client without one, with one from another
// CA, or speaking plaintext is refused before anything reaches the store.
func TestTLSRefusesClientsWithoutAValidCertificate(t *testing.T) {
	dir := t.TempDir()
	ca, rogue := testca.New(t, "foresight-ca"), testca.New(t, "rogue-ca")
	caFile := filepath.Join(dir, "ca.pem")
	testca.WriteFile(t, caFile, ca.PEM)
	serverCert, serverKey := ca.Issue(t, dir, "leader")
	agentCert, agentKey := ca.Issue(t, dir, "node-1")
	rogueCert, rogueKey := rogue.Issue(t, dir, "rogue")

	serverTLS, err := wire.LoadTLS(caFile, serverCert, serverKey, true)
	if err != nil {
		t.Fatal(err)
	}
	agentTLS, err := wire.LoadTLS(caFile, agentCert, agentKey, false)
	if err != nil {
		t.Fatal(err)
	}
	rogueTLS, err := wire.LoadTLS(caFile, rogueCert, rogueKey, false)
	if err != nil {
		t.Fatal(err)
	}
	noCertTLS := agentTLS.Clone()
	noCertTLS.Certificates = nil

	clk := clock.NewVirtual(t0)
	sink := newSink()
	srv := newServer(t, sink, clk, Limits{})
	l := startLeader(t, srv, serverTLS)

	for _, c := range []struct {
		name string
		tls  *tls.Config
	}{{"no client certificate", noCertTLS}, {"certificate from another CA", rogueTLS}, {"plaintext", nil}} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			st, err := rawStream(t, ctx, l.addr, c.tls)
			if err == nil {
				st.Send(helloMsg("intruder", 1, 1))
				st.Send(batchMsg("intruder", 1, false, wire.EncodeBlock(samplesAt(t0, 1))))
				_, err = st.Recv()
			}
			if err == nil {
				t.Fatal("stream accepted")
			}
			if ctx.Err() != nil {
				t.Fatalf("refusal took until the deadline: %v", err)
			}
			t.Logf("refused: %v", err)
		})
	}
	if sink.Total() != 0 || len(srv.Agents()) != 0 {
		t.Fatalf("refused clients reached the leader: store took %d samples, agents %+v", sink.Total(), srv.Agents())
	}

	// A shipper with a valid certificate gets through.
	buf, _ := openBuffer(t, clk)
	sh, _ := runShipper(t, ship.Config{AgentID: "node-1", NodeID: "node-1", Buffer: buf, Resolve: newAddr(l.addr).resolve, Clock: clk, TLS: agentTLS})
	want := samplesAt(t0, 3)
	if _, err := sh.Enqueue(want); err != nil {
		t.Fatal(err)
	}
	eventually(t, clk, "batch over mutual TLS acknowledged", func() bool { return buf.Stats().Acked == 1 })
	sink.checkExactlyOnce(t, want)
}

// With mutual TLS on, an agent speaks only for the node its certificate
// names (node ID or Nomad node name) and only of the allocations Nomad
// placed there; each refusal is counted, and nothing refused reaches the
// store.
func TestTLSBindsAgentsToTheirNodes(t *testing.T) {
	dir := t.TempDir()
	ca := testca.New(t, "foresight-ca")
	caFile := filepath.Join(dir, "ca.pem")
	testca.WriteFile(t, caFile, ca.PEM)
	serverCert, serverKey := ca.Issue(t, dir, "leader")
	load := func(name string, server bool) *tls.Config {
		cert, key := ca.Issue(t, dir, name)
		cfg, err := wire.LoadTLS(caFile, cert, key, server)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	serverTLS, err := wire.LoadTLS(caFile, serverCert, serverKey, true)
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewVirtual(t0)
	sink := newSink()
	reg := prometheus.NewRegistry()
	srv, err := NewServer(ServerConfig{Sink: sink, Clock: clk, Logger: testLogger(t), Registerer: reg,
		NodeName: func(_ context.Context, id string) (string, error) {
			return map[string]string{"node-b": "client-b.example"}[id], nil
		},
		AllocNode: func(_ context.Context, alloc string) (string, bool) {
			return "node-a", alloc == "alloc-0001" // the second task's allocation runs on node-a
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	l := startLeader(t, srv, serverTLS)
	send := func(tlsCfg *tls.Config, agent, node string, samples int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		st, err := rawStream(t, ctx, l.addr, tlsCfg)
		if err != nil {
			return err
		}
		hello := &ingestpb.Hello{AgentId: agent, NodeId: node, BufferId: 1, FirstSeq: 1}
		if err := st.Send(&ingestpb.AgentMessage{Body: &ingestpb.AgentMessage_Hello{Hello: hello}}); err != nil {
			return err
		}
		batch := &ingestpb.Batch{AgentId: agent, NodeId: node, Seq: 1, Samples: wire.EncodeBlock(samplesAt(t0, samples))}
		if err := st.Send(&ingestpb.AgentMessage{Body: &ingestpb.AgentMessage_Batch{Batch: batch}}); err != nil {
			return err
		}
		m, err := st.Recv()
		if err != nil {
			return err
		}
		if e := m.GetAck().GetError(); e != "" {
			return errors.New(e)
		}
		return nil
	}
	certA, certB := load("node-a", false), load("client-b.example", false)
	for _, c := range []struct {
		name        string
		tls         *tls.Config
		agent, node string
		samples     int
		refused     bool
	}{
		{"node-a's certificate speaking for node-c", certA, "node-c", "node-c", 1, true},
		{"node-a's certificate, agent and node IDs differ", certA, "node-a", "node-c", 1, true},
		{"node-b's certificate naming its Nomad name, with node-a's allocation", certB, "node-b", "node-b", 2, true},
		{"node-b's certificate naming its Nomad name", certB, "node-b", "node-b", 1, false},
		{"node-a's certificate with its own allocations", certA, "node-a", "node-a", 2, false},
	} {
		err := send(c.tls, c.agent, c.node, c.samples)
		if (err != nil) != c.refused {
			t.Errorf("%s: error %v, want refused %v", c.name, err, c.refused)
		}
	}
	if want := len(samplesAt(t0, 1)) + len(samplesAt(t0, 2)); sink.Total() != want {
		t.Errorf("the store took %d samples, want the %d of the two accepted batches", sink.Total(), want)
	}
	for what, want := range map[string]float64{"stream": 2, "batch": 1} {
		if got := testutil.ToFloat64(srv.refused.WithLabelValues(what)); got != want {
			t.Errorf("foresight_leader_agent_binding_refusals_total{what=%q} = %v, want %v", what, got, want)
		}
	}
}
