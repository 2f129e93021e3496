package consul

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"
)

func apiSplitter() *api.ServiceSplitterConfigEntry {
	return &api.ServiceSplitterConfigEntry{
		Kind: api.ServiceSplitter, Name: "api",
		Splits: []api.ServiceSplit{{Weight: 90, ServiceSubset: "v1"}, {Weight: 10, ServiceSubset: "v2"}},
	}
}

func TestConfigEntriesDiscoveryChain(t *testing.T) {
	c := newTestCluster(t)
	ce := c.client.ConfigEntries()

	// A splitter needs subsets from a resolver, then an HTTP protocol.
	_, _, err := ce.Set(apiSplitter(), nil)
	if err == nil || !strings.Contains(err.Error(), `500 (service "api" does not have a subset named "v1")`) {
		t.Fatalf("splitter before resolver: %v", err)
	}
	resolver := &api.ServiceResolverConfigEntry{
		Kind: api.ServiceResolver, Name: "api", DefaultSubset: "v1",
		Subsets: map[string]api.ServiceResolverSubset{
			"v1": {Filter: "Service.Meta.version == v1"},
			"v2": {Filter: "Service.Meta.version == v2"},
		},
	}
	if ok, _, err := ce.Set(resolver, nil); err != nil || !ok {
		t.Fatalf("resolver: %v %v", ok, err)
	}
	_, _, err = ce.Set(apiSplitter(), nil)
	if err == nil || !strings.Contains(err.Error(), `discovery chain "api" uses a protocol "tcp" that does not permit advanced routing or splitting behavior`) {
		t.Fatalf("splitter on a tcp service: %v", err)
	}
	if ok, _, err := ce.Set(&api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "api", Protocol: "HTTP"}, nil); err != nil || !ok {
		t.Fatalf("service-defaults: %v %v", ok, err)
	}
	if ok, _, err := ce.Set(apiSplitter(), nil); err != nil || !ok {
		t.Fatalf("splitter: %v %v", ok, err)
	}

	entry, meta, err := ce.Get(api.ServiceSplitter, "api", nil)
	if err != nil {
		t.Fatal(err)
	}
	sp := entry.(*api.ServiceSplitterConfigEntry)
	if len(sp.Splits) != 2 || sp.Splits[0].Weight != 90 || sp.Splits[1].ServiceSubset != "v2" ||
		sp.CreateIndex == 0 || sp.ModifyIndex != sp.CreateIndex || meta.LastIndex != sp.ModifyIndex {
		t.Fatalf("splitter read back: %+v (index %d)", sp, meta.LastIndex)
	}
	if e, _, _ := ce.Get(api.ServiceDefaults, "api", nil); e.(*api.ServiceConfigEntry).Protocol != "http" {
		t.Fatalf("protocol not normalized: %+v", e)
	}

	// CAS: a stale index is refused, the current one accepted.
	sp.Splits = []api.ServiceSplit{{Weight: 50, ServiceSubset: "v1"}, {Weight: 50, ServiceSubset: "v2"}}
	stale := sp.ModifyIndex
	if ok, _, err := ce.CAS(sp, stale, nil); err != nil || !ok {
		t.Fatalf("cas with the current index: %v %v", ok, err)
	}
	if ok, _, err := ce.CAS(sp, stale, nil); err != nil || ok {
		t.Fatalf("cas with a stale index: %v %v", ok, err)
	}
	created := apiSplitter()
	created.Name = "other"
	if ok, _, err := ce.CAS(created, 1, nil); err != nil || ok {
		t.Fatalf("cas of a missing entry with a non-zero index: %v %v", ok, err)
	}

	// Removing what the splitter depends on is refused; removing it first works.
	if _, err := ce.Delete(api.ServiceResolver, "api", nil); err == nil {
		t.Fatal("deleted the resolver a splitter uses")
	}
	if _, err := ce.Delete(api.ServiceDefaults, "api", nil); err == nil {
		t.Fatal("deleted the service-defaults that make a splitter legal")
	}
	entries, _, err := ce.List(api.ServiceSplitter, nil)
	if err != nil || len(entries) != 1 {
		t.Fatalf("list splitters: %v %v", entries, err)
	}
	current, _, _ := ce.Get(api.ServiceSplitter, "api", nil)
	if ok, _, err := ce.DeleteCAS(api.ServiceSplitter, "api", current.GetModifyIndex()-1, nil); err != nil || ok {
		t.Fatalf("delete with a stale index: %v %v", ok, err)
	}
	if ok, _, err := ce.DeleteCAS(api.ServiceSplitter, "api", current.GetModifyIndex(), nil); err != nil || !ok {
		t.Fatalf("delete with the current index: %v %v", ok, err)
	}
	if _, err := ce.Delete(api.ServiceResolver, "api", nil); err != nil {
		t.Fatalf("delete the resolver once unused: %v", err)
	}
}

func TestConfigEntriesProtocolFromProxyDefaults(t *testing.T) {
	c := newTestCluster(t)
	ce := c.client.ConfigEntries()
	split := &api.ServiceSplitterConfigEntry{Kind: api.ServiceSplitter, Name: "web", Splits: []api.ServiceSplit{{Weight: 100}}}
	if _, _, err := ce.Set(split, nil); err == nil {
		t.Fatal("splitter on a tcp service accepted")
	}
	pd := &api.ProxyConfigEntry{Kind: api.ProxyDefaults, Name: "global", Config: map[string]any{"protocol": "http"}}
	if ok, _, err := ce.Set(pd, nil); err != nil || !ok {
		t.Fatalf("proxy-defaults: %v %v", ok, err)
	}
	if ok, _, err := ce.Set(split, nil); err != nil || !ok {
		t.Fatalf("splitter with a global http protocol: %v %v", ok, err)
	}
	if got := c.sim.ConfigEntryProtocol("web"); got != "http" {
		t.Fatalf("protocol of web = %q", got)
	}
}

func TestConfigEntriesBadInput(t *testing.T) {
	c := newTestCluster(t)
	tests := []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"malformed", http.MethodPut, "/v1/config", `{"Kind":`, http.StatusBadRequest, "Request decoding failed: unexpected end of JSON input"},
		{"no kind", http.MethodPut, "/v1/config", `{"Name":"x"}`, http.StatusBadRequest, "Request decoding failed: Payload does not contain a kind/Kind key at the top level"},
		{"unknown kind", http.MethodPut, "/v1/config", `{"Kind":"nonsense","Name":"x"}`, http.StatusBadRequest, "Request decoding failed: invalid config entry kind: nonsense"},
		{"unknown field", http.MethodPut, "/v1/config", `{"Kind":"service-defaults","Name":"x","Colour":"red"}`, http.StatusBadRequest, `Request decoding failed: json: unknown field "Colour"`},
		{"weights off", http.MethodPut, "/v1/config", `{"Kind":"service-splitter","Name":"x","Splits":[{"Weight":60},{"Weight":30,"Service":"y"}]}`, http.StatusInternalServerError, "the sum of all split weights must be 100, not 90.000000"},
		{"no splits", http.MethodPut, "/v1/config", `{"Kind":"service-splitter","Name":"x"}`, http.StatusInternalServerError, "no splits configured"},
		{"bad default subset", http.MethodPut, "/v1/config", `{"Kind":"service-resolver","Name":"x","DefaultSubset":"v9"}`, http.StatusInternalServerError, `DefaultSubset "v9" is not a valid subset`},
		{"proxy-defaults name", http.MethodPut, "/v1/config", `{"Kind":"proxy-defaults","Name":"mine"}`, http.StatusInternalServerError, `invalid name ("mine"), only "global" is supported`},
		{"unsupported kind", http.MethodPut, "/v1/config", `{"Kind":"service-router","Name":"x"}`, http.StatusBadRequest, `sim: config entry kind "service-router" is not supported`},
		{"get unknown kind", http.MethodGet, "/v1/config/nonsense/x", "", http.StatusInternalServerError, "invalid config entry kind: nonsense"},
		{"get missing", http.MethodGet, "/v1/config/service-splitter/nope", "", http.StatusNotFound, `Config entry not found for "service-splitter" / "nope"`},
		{"delete without name", http.MethodDelete, "/v1/config/service-splitter", "", http.StatusNotFound, "Must provide both a kind and name to delete"},
		{"get on apply path", http.MethodGet, "/v1/config", "", http.StatusMethodNotAllowed, "method GET not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := c.do(t, tt.method, tt.path, tt.body)
			if resp.status != tt.status || resp.body != tt.want {
				t.Fatalf("%s %s %s = %d %q, want %d %q", tt.method, tt.path, tt.body, resp.status, resp.body, tt.status, tt.want)
			}
		})
	}
}
