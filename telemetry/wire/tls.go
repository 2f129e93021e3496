package wire

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// LoadTLS builds the mutual-TLS configuration of agent↔leader traffic from
// the files of a `tls { ca_file cert_file key_file }` block, as Nomad and
// Consul agents configure theirs. All three files are required.
//
// With server set, the result is for the leader's ingest port: it presents
// cert_file and refuses any client that does not present a certificate
// signed by ca_file. Otherwise it is for an agent: it presents cert_file and
// trusts only servers whose certificate is signed by ca_file and valid for
// the address dialled (set ServerName on the result to verify another name,
// such as Nomad's "server.<region>.nomad").
func LoadTLS(caFile, certFile, keyFile string, server bool) (*tls.Config, error) {
	if caFile == "" || certFile == "" || keyFile == "" {
		return nil, errors.New("tls: ca_file, cert_file and key_file are all required for mutual TLS")
	}
	pool, err := loadCA(caFile)
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls cert_file %s / key_file %s: %w", certFile, keyFile, err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	}
	if server {
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	} else {
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// LoadClientTLS builds the configuration of a client of an agent's HTTPS
// API (the CLI, the plugins): it trusts servers whose certificate caFile
// signed, or the system's roots when caFile is empty, and presents
// certFile when one is given.
func LoadClientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := loadCA(caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("tls: a client certificate needs both its cert and key files")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("tls client cert %s / key %s: %w", certFile, keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func loadCA(caFile string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("tls ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls ca_file %s: no PEM certificate found", caFile)
	}
	return pool, nil
}
