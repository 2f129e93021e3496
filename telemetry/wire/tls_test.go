package wire

import (
	"crypto/tls"
	"path/filepath"
	"testing"

	"github.com/foresight-nomad/foresight/internal/testca"
)

func TestLoadTLSReportsBadFiles(t *testing.T) {
	dir := t.TempDir()
	ca := testca.New(t, "ca")
	caFile := filepath.Join(dir, "ca.pem")
	testca.WriteFile(t, caFile, ca.PEM)
	cert, key := ca.Issue(t, dir, "x")
	notPEM := filepath.Join(dir, "junk.pem")
	testca.WriteFile(t, notPEM, []byte("junk"))
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
