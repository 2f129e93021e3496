package consul

import (
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/foresight-nomad/foresight/internal/wait"
)

func TestServiceRegistrationInCatalogAndHealth(t *testing.T) {
	c := newTestCluster(t)
	agent := c.client.Agent()
	regs := []*api.AgentServiceRegistration{
		{ID: "api-1", Name: "api", Tags: []string{"primary"}, Address: "127.0.0.1", Port: 9091,
			Meta: map[string]string{"version": "v1"}, Weights: &api.AgentWeights{Passing: 10, Warning: 1},
			Check: &api.AgentServiceCheck{TTL: "30s", Status: api.HealthPassing}},
		{ID: "api-2", Name: "api", Tags: []string{"canary"}, Address: "127.0.0.1", Port: 9092,
			Meta:  map[string]string{"version": "v2"},
			Check: &api.AgentServiceCheck{TTL: "30s"}},
	}
	for _, r := range regs {
		if err := agent.ServiceRegister(r); err != nil {
			t.Fatalf("register %s: %v", r.ID, err)
		}
	}

	svc, _, err := agent.Service("api-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if svc.Weights != (api.AgentWeights{Passing: 10, Warning: 1}) || svc.Meta["version"] != "v1" ||
		svc.TaggedAddresses["lan_ipv4"].Port != 9091 || svc.ContentHash == "" || svc.Datacenter != "dc1" {
		t.Fatalf("agent service api-1: %+v", svc)
	}
	if s2, _, _ := agent.Service("api-2", nil); s2.Weights != (api.AgentWeights{Passing: 1, Warning: 1}) {
		t.Fatalf("api-2 weights %+v, want the default 1/1", s2.Weights)
	}

	services, _, err := c.client.Catalog().Services(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(services["api"], []string{"primary", "canary"}) || services["consul"] == nil {
		t.Fatalf("catalog services: %v", services)
	}
	entries, _, err := c.client.Catalog().Service("api", "canary", nil)
	if err != nil || len(entries) != 1 || entries[0].ServiceID != "api-2" || entries[0].ServiceMeta["version"] != "v2" {
		t.Fatalf("catalog service api tag canary: %+v %v", entries, err)
	}

	// api-2's check starts critical, as Consul's checks do.
	health, meta, err := c.client.Health().Service("api", "", true, nil)
	if err != nil || len(health) != 1 || health[0].Service.ID != "api-1" || health[0].Service.Weights.Passing != 10 {
		t.Fatalf("passing api instances: %+v %v", health, err)
	}
	if ids := checkIDs(health[0].Checks); !slices.Equal(ids, []string{"serfHealth", "service:api-1"}) {
		t.Fatalf("checks of api-1: %v", ids)
	}
	done := make(chan []*api.ServiceEntry, 1)
	go func() {
		e, _, _ := c.client.Health().Service("api", "", true, &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: time.Minute})
		done <- e
	}()
	c.waitBlocked(t, 1)
	if err := agent.PassTTL("service:api-2", "up"); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, "the blocking health query", done); len(got) != 2 {
		t.Fatalf("passing api instances after api-2 passed: %d", len(got))
	}

	if err := agent.ServiceDeregister("api-1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := agent.Service("api-1", nil); err == nil {
		t.Fatal("deregistered service still served")
	}
	checks, _ := agent.Checks()
	if _, ok := checks["service:api-1"]; ok {
		t.Fatal("check of a deregistered service kept")
	}
	if err := agent.ServiceDeregister("api-1"); err == nil {
		t.Fatal("deregistering an unknown service succeeded")
	}
}

func checkIDs(checks api.HealthChecks) []string {
	var ids []string
	for _, c := range checks {
		ids = append(ids, c.CheckID)
	}
	return ids
}

func TestAgentServiceHashBlocking(t *testing.T) {
	c := newTestCluster(t)
	agent := c.client.Agent()
	reg := &api.AgentServiceRegistration{ID: "web-1", Name: "web", Port: 80, Tags: []string{"v1"}}
	if err := agent.ServiceRegister(reg); err != nil {
		t.Fatal(err)
	}
	svc, meta, err := agent.Service("web-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if meta.LastContentHash != svc.ContentHash {
		t.Fatalf("X-Consul-Contenthash %q differs from ContentHash %q", meta.LastContentHash, svc.ContentHash)
	}
	// Re-registering the same service changes neither hash nor indexes.
	before, _, _ := c.client.Catalog().Service("web", "", nil)
	if err := agent.ServiceRegister(reg); err != nil {
		t.Fatal(err)
	}
	after, _, _ := c.client.Catalog().Service("web", "", nil)
	if before[0].ModifyIndex != after[0].ModifyIndex {
		t.Fatalf("identical re-registration moved ModifyIndex %d -> %d", before[0].ModifyIndex, after[0].ModifyIndex)
	}
	done := make(chan *api.AgentService, 1)
	go func() {
		s, _, _ := agent.Service("web-1", &api.QueryOptions{WaitHash: meta.LastContentHash, WaitTime: time.Minute})
		done <- s
	}()
	c.waitBlocked(t, 1)
	reg.Tags = []string{"v2"}
	if err := agent.ServiceRegister(reg); err != nil {
		t.Fatal(err)
	}
	got := recv(t, "the hash-blocking query", done)
	if got.ContentHash == svc.ContentHash || !slices.Equal(got.Tags, []string{"v2"}) {
		t.Fatalf("after change: %+v", got)
	}
}

func TestNomadServicesAndSessionChecks(t *testing.T) {
	c := newTestCluster(t)
	const alloc = "a757d750-ef31-4ab1-a859-3b03365c53df"
	reg, err := c.sim.RegisterNomadService(NomadService{
		AllocID: alloc, Group: "web", Name: "web", PortLabel: "http", Address: "127.0.0.1", Port: 22794,
		Tags: []string{"v2", "fixtures"}, Meta: map[string]string{"version": "2"},
		Checks: []NomadCheck{{Type: "http", Path: "/", Interval: 5 * time.Second, Timeout: 2 * time.Second}},
	})
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.sim.RegisterNomadService(NomadService{
		AllocID: alloc, Group: "web", Task: "server", Name: "web-admin", PortLabel: "admin", Address: "127.0.0.1", Port: 22795,
		Checks: []NomadCheck{{Type: "script", Interval: 10 * time.Second, Status: StatusPassing}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if task.ServiceID != "_nomad-task-"+alloc+"-server-web-admin-admin" {
		t.Fatalf("task service ID %s", task.ServiceID)
	}
	wantID := "_nomad-task-" + alloc + "-group-web-web-http"
	if reg.ServiceID != wantID || len(reg.CheckIDs) != 1 {
		t.Fatalf("registration %+v, want service %s and one check", reg, wantID)
	}
	services, err := c.client.Agent().Services()
	if err != nil {
		t.Fatal(err)
	}
	svc := services[wantID]
	if svc == nil || !maps.Equal(svc.Meta, map[string]string{"external-source": "nomad", "version": "2"}) {
		t.Fatalf("agent service %s: %+v", wantID, svc)
	}
	checks, err := c.client.Agent().Checks()
	if err != nil {
		t.Fatal(err)
	}
	chk := checks[reg.CheckIDs[0]]
	if chk == nil || chk.Name != `service: "web" check` || chk.Type != "http" || chk.Status != api.HealthCritical ||
		chk.ServiceID != wantID {
		t.Fatalf("nomad check: %+v", chk)
	}

	// A session tied to the check lives while it passes and ends when it
	// goes critical, releasing what the session held.
	if err := c.sim.SetServiceHealth(wantID, StatusPassing, "HTTP GET: 200 OK"); err != nil {
		t.Fatal(err)
	}
	id, _, err := c.client.Session().Create(&api.SessionEntry{
		Name: "tied", ServiceChecks: []api.ServiceCheck{{ID: reg.CheckIDs[0]}}, LockDelay: time.Millisecond,
	}, nil)
	if err != nil {
		t.Fatalf("create session tied to a passing check: %v", err)
	}
	if ok, _, _ := c.client.KV().Acquire(&api.KVPair{Key: "held", Session: id}, nil); !ok {
		t.Fatal("acquire by the tied session failed")
	}
	if err := c.sim.SetCheckStatus(reg.CheckIDs[0], StatusCritical, "connection refused"); err != nil {
		t.Fatal(err)
	}
	if e, _, _ := c.client.Session().Info(id, nil); e != nil {
		t.Fatalf("session survived its check going critical: %+v", e)
	}
	if p, _, _ := c.client.KV().Get("held", nil); p == nil || p.Session != "" {
		t.Fatalf("key of the invalidated session: %+v, want released", p)
	}

	script := checks[task.CheckIDs[0]]
	if script == nil || script.Type != "ttl" || script.Status != api.HealthPassing {
		t.Fatalf("script check as registered: %+v", script)
	}
	c.clock.Advance(41 * time.Second)
	wait.Until(t, 10*time.Second, "the unrenewed script check to go critical", func() bool {
		checks, _ := c.client.Agent().Checks()
		return checks[task.CheckIDs[0]].Status == api.HealthCritical
	})

	if n := c.sim.DeregisterAlloc(alloc); n != 2 {
		t.Fatalf("DeregisterAlloc removed %d services, want 2", n)
	}
	if entries, _, _ := c.client.Catalog().Service("web", "", nil); len(entries) != 0 {
		t.Fatalf("catalog still lists %d web instances", len(entries))
	}
}

func TestRegistrationBadInput(t *testing.T) {
	c := newTestCluster(t)
	tests := []struct {
		name, body string
		status     int
		want       string
	}{
		{"malformed", `{"Name":`, http.StatusBadRequest, "Request decode failed: unexpected EOF"},
		{"no name", `{"ID":"x"}`, http.StatusBadRequest, "Missing service name"},
		{"zero passing weight", `{"Name":"x","Weights":{"Passing":0,"Warning":1}}`, http.StatusBadRequest, "Invalid Weights: Passing must be greater than 0"},
		{"huge weight", `{"Name":"x","Weights":{"Passing":70000,"Warning":1}}`, http.StatusBadRequest, "Invalid Weights: DNS Weight must be between 0 and 65535"},
		{"check without interval", `{"Name":"x","Check":{"HTTP":"http://x/"}}`, http.StatusBadRequest, "Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP or UDP checks"},
		{"check of no kind", `{"Name":"x","Check":{"Name":"c"}}`, http.StatusBadRequest, "Invalid check: TTL must be > 0 for TTL checks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := c.do(t, http.MethodPut, "/v1/agent/service/register", tt.body)
			if resp.status != tt.status || resp.body != tt.want {
				t.Fatalf("register %s = %d %q, want %d %q", tt.body, resp.status, resp.body, tt.status, tt.want)
			}
		})
	}
	resp := c.do(t, http.MethodGet, "/v1/health/service/x?passing=maybe", "")
	if resp.status != http.StatusBadRequest || resp.body != "Invalid value for ?passing" {
		t.Fatalf("bad ?passing: %d %q", resp.status, resp.body)
	}
}

func TestTTLCheckGoesCriticalWithoutUpdates(t *testing.T) {
	c := newTestCluster(t)
	agent := c.client.Agent()
	reg := &api.AgentServiceRegistration{ID: "worker-1", Name: "worker",
		Check: &api.AgentServiceCheck{CheckID: "worker-alive", TTL: "30s", Status: api.HealthPassing}}
	if err := agent.ServiceRegister(reg); err != nil {
		t.Fatal(err)
	}
	status := func() *api.AgentCheck {
		checks, err := agent.Checks()
		if err != nil {
			t.Fatal(err)
		}
		return checks["worker-alive"]
	}
	c.clock.Advance(20 * time.Second)
	if err := agent.UpdateTTL("worker-alive", "still here", api.HealthPassing); err != nil {
		t.Fatal(err)
	}
	// The update restarted the TTL: 20s more is within it.
	c.clock.Advance(20 * time.Second)
	if got := status(); got.Status != api.HealthPassing {
		t.Fatalf("check after an update and 20s: %+v", got)
	}
	c.clock.Advance(11 * time.Second)
	wait.Until(t, 10*time.Second, "the TTL check to go critical", func() bool { return status().Status == api.HealthCritical })
	if got := status().Output; got != "TTL expired (last output before timeout follows): still here" {
		t.Fatalf("output of the expired check: %q", got)
	}
	resp := c.do(t, http.MethodPut, "/v1/agent/check/pass/nope", "")
	if resp.status != http.StatusNotFound {
		t.Fatalf("pass of an unknown check: %d %q", resp.status, resp.body)
	}
}
