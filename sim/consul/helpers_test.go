package consul

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/internal/wait"
	"github.com/hashicorp/consul/api"
)

// start is when every test's virtual clock begins.
var start = time.Date(2026, 11, 27, 2, 29, 0, 0, time.UTC)

// testCluster is a sim served over real HTTP on loopback, with an official
// client pointed at it.
type testCluster struct {
	sim    *Server
	clock  *clock.Virtual
	url    string
	client *api.Client
}

func newTestCluster(t *testing.T) *testCluster {
	t.Helper()
	clk := clock.NewVirtual(start)
	sim := New(Options{Clock: clk})
	hs := httptest.NewServer(sim.Handler())
	// Cleanups run last-in first-out: release blocked queries, then stop
	// the listener, which waits for in-flight requests.
	t.Cleanup(hs.Close)
	t.Cleanup(sim.Close)
	client, err := api.NewClient(&api.Config{Address: hs.Listener.Addr().String(), Scheme: "http"})
	if err != nil {
		t.Fatalf("new consul client: %v", err)
	}
	return &testCluster{sim: sim, clock: clk, url: hs.URL, client: client}
}

// waitBlocked waits until at least n queries are parked in a blocking read.
func (c *testCluster) waitBlocked(t *testing.T, n int64) {
	t.Helper()
	wait.Until(t, 10*time.Second, "blocked queries", func() bool { return c.sim.blocked.Load() >= n })
}

// rawResponse is a response read in full.
type rawResponse struct {
	status int
	header http.Header
	body   string
}

// do sends a raw request, for what the official client hides: status
// codes, headers and exact bodies.
func (c *testCluster) do(t *testing.T, method, path, body string) rawResponse {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.url+path, rd)
	if err != nil {
		t.Fatalf("new request %s %s: %v", method, path, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s %s: %v", method, path, err)
	}
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// recv waits for a value on ch, failing the test if none comes in time.
func recv[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}
