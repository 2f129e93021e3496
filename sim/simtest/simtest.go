// Package simtest serves a simulated cluster to the official Nomad client,
// for the tests of packages that run against sim.
package simtest

import (
	"net/http/httptest"
	"testing"

	"github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/sim"
)

// Server is a simulated cluster served over HTTP on loopback.
type Server struct {
	Cluster *sim.Cluster
	Config  *sim.Config
	// Client is the official Nomad client, pointed at URL.
	Client *api.Client
	URL    string
}

// Start loads a cluster file, builds the cluster with seed 1 (so IDs repeat
// from run to run) and serves it until the test ends.
func Start(tb testing.TB, path string) *Server {
	tb.Helper()
	cfg, err := sim.LoadConfig(path)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := sim.New(cfg, sim.Options{Seed: 1})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	tb.Cleanup(srv.Close)
	client, err := api.NewClient(&api.Config{Address: srv.URL})
	if err != nil {
		tb.Fatal(err)
	}
	return &Server{Cluster: c, Config: cfg, Client: client, URL: srv.URL}
}
