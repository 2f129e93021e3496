package ingest

import (
	"context"
	"crypto/tls"
	"path/filepath"
	"testing"
	"time"

	"github.com/foresight-nomad/foresight/agent/node/ship"
	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/internal/testca"
	"github.com/foresight-nomad/foresight/telemetry/wire"
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
	agentCert, agentKey := ca.Issue(t, dir, "agent")
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
	sh, _ := runShipper(t, ship.Config{Buffer: buf, Resolve: newAddr(l.addr).resolve, Clock: clk, TLS: agentTLS})
	want := samplesAt(t0, 3)
	if _, err := sh.Enqueue(want); err != nil {
		t.Fatal(err)
	}
	eventually(t, clk, "batch over mutual TLS acknowledged", func() bool { return buf.Stats().Acked == 1 })
	sink.checkExactlyOnce(t, want)
}
