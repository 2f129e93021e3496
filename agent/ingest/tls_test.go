package ingest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/foresight-nomad/foresight/clock"
)

// testCA is a certificate authority made up for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue writes a certificate signed by the CA (for loopback, usable by
// servers and clients) and its key to dir, and returns their paths.
func (ca *testCA) issue(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	writeFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	return certFile, keyFile
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// With mutual TLS on, the leader takes batches only from clients with a
// certificate signed by its CA; a client without one, with one from another
// CA, or speaking plaintext is refused before anything reaches the store.
func TestTLSRefusesClientsWithoutAValidCertificate(t *testing.T) {
	dir := t.TempDir()
	ca, rogue := newCA(t, "foresight-ca"), newCA(t, "rogue-ca")
	caFile := filepath.Join(dir, "ca.pem")
	writeFile(t, caFile, ca.pem)
	serverCert, serverKey := ca.issue(t, dir, "leader")
	agentCert, agentKey := ca.issue(t, dir, "agent")
	rogueCert, rogueKey := rogue.issue(t, dir, "rogue")

	serverTLS, err := LoadTLS(caFile, serverCert, serverKey, true)
	if err != nil {
		t.Fatal(err)
	}
	agentTLS, err := LoadTLS(caFile, agentCert, agentKey, false)
	if err != nil {
		t.Fatal(err)
	}
	rogueTLS, err := LoadTLS(caFile, rogueCert, rogueKey, false)
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
				st.Send(batchMsg("intruder", 1, false, EncodeBlock(samplesAt(t0, 1))))
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
	sh, _ := runShipper(t, ShipperConfig{Buffer: buf, Resolve: newAddr(l.addr).resolve, Clock: clk, TLS: agentTLS})
	want := samplesAt(t0, 3)
	if _, err := sh.Enqueue(want); err != nil {
		t.Fatal(err)
	}
	eventually(t, clk, "batch over mutual TLS acknowledged", func() bool { return buf.Stats().Acked == 1 })
	sink.checkExactlyOnce(t, want)
}

func TestLoadTLSReportsBadFiles(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "ca")
	caFile := filepath.Join(dir, "ca.pem")
	writeFile(t, caFile, ca.pem)
	cert, key := ca.issue(t, dir, "x")
	notPEM := filepath.Join(dir, "junk.pem")
	writeFile(t, notPEM, []byte("junk"))
	for _, c := range []struct{ name, ca, cert, key string }{
		{"missing ca", "", cert, key},
		{"ca not found", filepath.Join(dir, "nope.pem"), cert, key},
		{"ca not PEM", notPEM, cert, key},
		{"key does not match", caFile, cert, notPEM},
	} {
		if _, err := LoadTLS(c.ca, c.cert, c.key, true); err == nil {
			t.Errorf("%s: LoadTLS succeeded", c.name)
		}
	}
	cfg, err := LoadTLS(caFile, cert, key, true)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.ClientCAs == nil {
		t.Fatal("server config does not require client certificates")
	}
}
