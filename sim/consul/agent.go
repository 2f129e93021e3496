package consul

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// maxWeight is the largest DNS SRV weight.
const maxWeight = 65535

// agentServiceJSON is a service as the agent endpoints return it, field for
// field as Consul 1.16 writes it.
type agentServiceJSON struct {
	Kind              string `json:",omitempty"`
	ID                string
	Service           string
	Tags              []string
	Meta              map[string]string
	Port              int
	Address           string
	SocketPath        string                    `json:",omitempty"`
	TaggedAddresses   map[string]serviceAddress `json:",omitempty"`
	Weights           weights
	EnableTagOverride bool
	ContentHash       string `json:",omitempty"`
	Datacenter        string
}

func (s *Server) agentServiceJSON(sv *service) agentServiceJSON {
	return agentServiceJSON{
		Kind: sv.Kind, ID: sv.ID, Service: sv.Name, Tags: slices.Clone(sv.Tags), Meta: maps.Clone(sv.Meta),
		Port: sv.Port, Address: sv.Address, SocketPath: sv.SocketPath,
		TaggedAddresses: maps.Clone(sv.TaggedAddresses), Weights: sv.Weights,
		EnableTagOverride: sv.EnableTagOverride, Datacenter: s.node.Datacenter,
	}
}

// contentHash is the hash the agent reports for a service, used for
// hash-based blocking on /v1/agent/service/<id>. Consul hashes its internal
// structure; sim hashes the JSON form, so values differ but change exactly
// when the service does.
func contentHash(v agentServiceJSON) string {
	v.ContentHash = ""
	buf, _ := json.Marshal(v) // plain strings, ints and maps cannot fail
	h := fnv.New64a()
	_, _ = h.Write(buf)
	return strconv.FormatUint(h.Sum64(), 16)
}

// RegisterService registers a service on sim's agent exactly as
// PUT /v1/agent/service/register does, with its checks. Re-registering an
// unchanged service writes nothing. Checks that are not in reg are kept
// unless replaceChecks is set (?replace-existing-checks).
func (s *Server) RegisterService(reg *api.AgentServiceRegistration, replaceChecks bool) error {
	sv, checks, err := s.serviceFromRegistration(reg)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.unlock()
	t := s.txn()
	if old, ok := s.catalog.services[sv.ID]; ok && old.Name != sv.Name {
		// Consul drops the old instance's checks along with the rename.
		replaceChecks = true
	}
	s.putServiceLocked(t, sv)
	keep := map[string]bool{}
	for _, c := range checks {
		keep[c.CheckID] = true
		if old, ok := s.catalog.checks[c.CheckID]; ok && c.Status == "" {
			c.Status, c.Output = old.Status, old.Output
		}
		if c.Status == "" {
			c.Status = StatusCritical
		}
		s.putCheckLocked(t, c)
		s.armCheckTTLLocked(c.CheckID)
	}
	if replaceChecks {
		for _, id := range s.serviceCheckIDsLocked(sv.ID) {
			if !keep[id] {
				s.removeCheckLocked(t, id)
			}
		}
	}
	return nil
}

// DeregisterService removes a service and its checks from sim's agent, as
// PUT /v1/agent/service/deregister/<id> does.
func (s *Server) DeregisterService(id string) error {
	s.mu.Lock()
	defer s.unlock()
	sv, ok := s.catalog.services[id]
	if !ok || !sv.agent {
		return errorf(http.StatusNotFound,
			"Unknown service ID %q. Ensure that the service ID is passed, not the service name.", id)
	}
	s.removeServiceLocked(s.txn(), id)
	return nil
}

// serviceFromRegistration validates a registration as the agent does and
// turns it into a service and its checks. Check statuses are left empty
// unless the registration sets them.
func (s *Server) serviceFromRegistration(reg *api.AgentServiceRegistration) (*service, []*check, error) {
	if reg == nil || reg.Name == "" {
		return nil, nil, errorf(http.StatusBadRequest, "Missing service name")
	}
	if reg.Kind != api.ServiceKindTypical {
		return nil, nil, errorf(http.StatusBadRequest, "sim: service kind %q is not supported", reg.Kind)
	}
	sv := &service{
		ID: reg.ID, Name: reg.Name, Tags: slices.Clone(reg.Tags), Meta: maps.Clone(reg.Meta), Port: reg.Port,
		Address: reg.Address, SocketPath: reg.SocketPath, EnableTagOverride: reg.EnableTagOverride,
		Weights: weights{Passing: 1, Warning: 1}, agent: true,
	}
	if sv.ID == "" {
		sv.ID = sv.Name
	}
	if w := reg.Weights; w != nil {
		if w.Passing <= 0 {
			return nil, nil, errorf(http.StatusBadRequest, "Invalid Weights: Passing must be greater than 0")
		}
		if w.Warning < 0 {
			return nil, nil, errorf(http.StatusBadRequest, "Invalid Weights: Warning must be greater or equal than 0")
		}
		if w.Passing > maxWeight || w.Warning > maxWeight {
			return nil, nil, errorf(http.StatusBadRequest, "Invalid Weights: DNS Weight must be between 0 and %d", maxWeight)
		}
		sv.Weights = weights{Passing: w.Passing, Warning: w.Warning}
	}
	if len(reg.TaggedAddresses) > 0 {
		sv.TaggedAddresses = map[string]serviceAddress{}
		for tag, a := range reg.TaggedAddresses {
			sv.TaggedAddresses[tag] = serviceAddress{Address: a.Address, Port: a.Port}
		}
	}
	defaultTaggedAddresses(sv)
	var defs api.AgentServiceChecks
	if reg.Check != nil {
		defs = append(defs, reg.Check)
	}
	defs = append(defs, reg.Checks...)
	var checks []*check
	for i, def := range defs {
		c, err := checkFromDefinition(sv, def, i+1, len(defs))
		if err != nil {
			return nil, nil, errorf(http.StatusBadRequest, "Invalid check: %v", err)
		}
		checks = append(checks, c)
	}
	return sv, checks, nil
}

// checkFromDefinition builds the n-th of total checks of a service with
// the agent's defaults: IDs service:<id> or service:<id>:<n>, and a name
// derived from the service name.
func checkFromDefinition(sv *service, def *api.AgentServiceCheck, n, total int) (*check, error) {
	c := &check{checkJSON: checkJSON{
		CheckID: def.CheckID, Name: def.Name, Status: def.Status, Notes: def.Notes,
		ServiceID: sv.ID, ServiceName: sv.Name, ServiceTags: slices.Clone(sv.Tags),
	}}
	if c.CheckID == "" {
		c.CheckID = "service:" + sv.ID
		if total > 1 {
			c.CheckID += ":" + strconv.Itoa(n)
		}
	}
	if c.Name == "" {
		c.Name = fmt.Sprintf("Service '%s' check", sv.Name)
	}
	switch c.Status {
	case "", StatusPassing, StatusWarning, StatusCritical:
	default:
		return nil, fmt.Errorf("Status must be one of passing, warning, critical, not %q", c.Status)
	}
	interval, err := parseCheckDuration("Interval", def.Interval)
	if err != nil {
		return nil, err
	}
	timeout, err := parseCheckDuration("Timeout", def.Timeout)
	if err != nil {
		return nil, err
	}
	ttl, err := parseCheckDuration("TTL", def.TTL)
	if err != nil {
		return nil, err
	}
	switch {
	case def.HTTP != "":
		c.Type = "http"
	case def.TCP != "":
		c.Type = "tcp"
	case def.UDP != "":
		c.Type = "udp"
	case def.GRPC != "":
		c.Type = "grpc"
	case def.H2PING != "":
		c.Type = "h2ping"
	case len(def.Args) > 0 && def.DockerContainerID != "":
		c.Type = "docker"
	case len(def.Args) > 0:
		c.Type = "script"
	case def.AliasService != "" || def.AliasNode != "":
		c.Type = "alias"
	case ttl > 0:
		c.Type = "ttl"
		c.ttl = ttl
	}
	switch c.Type {
	case "":
		if interval > 0 {
			return nil, errors.New("Interval must be > 0 for Script, HTTP, H2PING, TCP or UDP checks")
		}
		return nil, errors.New("TTL must be > 0 for TTL checks")
	case "ttl", "alias":
		if interval > 0 {
			return nil, fmt.Errorf("Interval cannot be set for %s checks", strings.ToUpper(c.Type[:1])+c.Type[1:])
		}
	default:
		if ttl > 0 {
			return nil, errors.New("Interval and TTL cannot both be specified")
		}
		if interval <= 0 {
			return nil, errors.New("Interval must be > 0 for Script, HTTP, H2PING, TCP or UDP checks")
		}
		c.Interval = interval.String()
		if timeout > 0 {
			c.Timeout = timeout.String()
		}
	}
	return c, nil
}

func parseCheckDuration(field, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s %q: %v", field, v, err)
	}
	return d, nil
}

func (s *Server) routeAgent(mux *http.ServeMux) {
	mux.Handle("/v1/agent/self", endpoint(s.serveAgentSelf, http.MethodGet))
	mux.Handle("/v1/agent/members", endpoint(s.serveAgentMembers, http.MethodGet))
	mux.Handle("/v1/agent/services", endpoint(s.serveAgentServices, http.MethodGet))
	mux.Handle("/v1/agent/service/", endpoint(s.serveAgentService, http.MethodGet))
	mux.Handle("/v1/agent/service/register", endpoint(s.serveAgentServiceRegister, http.MethodPut))
	mux.Handle("/v1/agent/service/deregister/", endpoint(s.serveAgentServiceDeregister, http.MethodPut))
	mux.Handle("/v1/agent/checks", endpoint(s.serveAgentChecks, http.MethodGet))
	for _, status := range []string{"pass", "warn", "fail"} {
		mux.Handle("/v1/agent/check/"+status+"/", endpoint(s.serveAgentCheckTTL, http.MethodPut))
	}
	mux.Handle("/v1/agent/check/update/", endpoint(s.serveAgentCheckTTL, http.MethodPut))
}

// agentMember is the serf LAN member of sim's agent.
func (s *Server) agentMember() map[string]any {
	return map[string]any{
		"Name": s.node.Name,
		"Addr": s.node.Address,
		"Port": serfLANPort,
		"Tags": map[string]string{
			"acls": "0", "bootstrap": "1", "build": Version + ":sim", "dc": s.node.Datacenter,
			"id": s.node.ID, "port": strconv.Itoa(serverRPCPort), "raft_vsn": "3", "role": "consul",
			"segment": "", "vsn": "2", "vsn_max": "3", "vsn_min": "2",
		},
		"Status":      1,
		"ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
		"DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4,
	}
}

func (s *Server) serveAgentSelf(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, map[string]any{
		"Config": map[string]any{
			"Datacenter": s.node.Datacenter, "PrimaryDatacenter": s.node.Datacenter,
			"NodeName": s.node.Name, "NodeID": s.node.ID, "Partition": "", "Revision": "sim",
			"Server": true, "Version": Version, "BuildDate": "",
		},
		"DebugConfig": map[string]any{
			"Datacenter": s.node.Datacenter, "NodeName": s.node.Name, "NodeID": s.node.ID,
			"ServerMode": true, "Bootstrap": true, "DevMode": true, "ACLsEnabled": false,
			"SessionTTLMin": sessionTTLMin.String(), "KVMaxValueSize": maxValueSize,
		},
		"Member": s.agentMember(),
		"Meta":   nodeMeta(),
		"Stats": map[string]any{
			"agent":  map[string]string{"check_monitors": "0", "check_ttls": "0", "checks": "0", "services": "0"},
			"consul": map[string]string{"bootstrap": "true", "known_datacenters": "1", "leader": "true", "leader_addr": s.LeaderAddr(), "server": "true"},
		},
	})
}

func (s *Server) serveAgentMembers(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, []map[string]any{s.agentMember()})
}

func (s *Server) serveAgentServices(w http.ResponseWriter, r *http.Request) error {
	if err := refuseParams(r, "filter"); err != nil {
		return err
	}
	s.mu.Lock()
	out := map[string]agentServiceJSON{}
	for _, sv := range s.catalog.services {
		if sv.agent {
			out[sv.ID] = s.agentServiceJSON(sv)
		}
	}
	s.mu.Unlock()
	return writeJSON(w, out)
}

// serveAgentService answers GET /v1/agent/service/<id>, blocking on ?hash
// until the service's content hash differs from it.
func (s *Server) serveAgentService(w http.ResponseWriter, r *http.Request) error {
	id := strings.TrimPrefix(r.URL.Path, "/v1/agent/service/")
	q, err := s.parseQuery(r)
	if err != nil {
		return err
	}
	wantHash := r.URL.Query().Get("hash")
	var out *agentServiceJSON
	s.block(r.Context(), wantHash != "", q.wait, func() bool {
		out = nil
		sv, ok := s.catalog.services[id]
		if !ok || !sv.agent {
			return true
		}
		v := s.agentServiceJSON(sv)
		v.ContentHash = contentHash(v)
		out = &v
		return v.ContentHash != wantHash
	})
	if out == nil {
		return errorf(http.StatusNotFound, "unknown service ID: %s", id)
	}
	w.Header().Set("X-Consul-Contenthash", out.ContentHash)
	return writeJSON(w, out)
}

func (s *Server) serveAgentServiceRegister(w http.ResponseWriter, r *http.Request) error {
	var reg api.AgentServiceRegistration
	if err := json.NewDecoder(r.Body).Decode(&reg); err != nil {
		return errorf(http.StatusBadRequest, "Request decode failed: %v", err)
	}
	replace, err := flagSet(r, "replace-existing-checks")
	if err != nil {
		return err
	}
	if err := s.RegisterService(&reg, replace); err != nil {
		return err
	}
	// Consul answers a registration with an empty 200 and no content type.
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) serveAgentServiceDeregister(w http.ResponseWriter, r *http.Request) error {
	id := strings.TrimPrefix(r.URL.Path, "/v1/agent/service/deregister/")
	if id == "" {
		return errorf(http.StatusBadRequest, "Missing service ID")
	}
	if err := s.DeregisterService(id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) serveAgentChecks(w http.ResponseWriter, r *http.Request) error {
	if err := refuseParams(r, "filter"); err != nil {
		return err
	}
	s.mu.Lock()
	out := map[string]checkJSON{}
	for id, c := range s.catalog.checks {
		if c.ServiceID == "" {
			continue // serfHealth belongs to the catalog, not the agent
		}
		v := c.toJSON()
		// The agent's local state carries no raft indexes.
		v.CreateIndex, v.ModifyIndex = 0, 0
		out[id] = v
	}
	s.mu.Unlock()
	return writeJSON(w, out)
}

// serveAgentCheckTTL answers the TTL check updates: pass, warn and fail
// with ?note, and update with a {Status, Output} body.
func (s *Server) serveAgentCheckTTL(w http.ResponseWriter, r *http.Request) error {
	rest := strings.TrimPrefix(r.URL.Path, "/v1/agent/check/")
	verb, id, _ := strings.Cut(rest, "/")
	status, output := "", r.URL.Query().Get("note")
	switch verb {
	case "pass":
		status = StatusPassing
	case "warn":
		status = StatusWarning
	case "fail":
		status = StatusCritical
	case "update":
		var body struct{ Status, Output string }
		if err := decodeJSON(r, &body); err != nil {
			return errorf(http.StatusBadRequest, "Request decode failed: %v", err)
		}
		switch body.Status {
		case StatusPassing, StatusWarning, StatusCritical:
		default:
			return errorf(http.StatusBadRequest, "Invalid check status: '%s'", body.Status)
		}
		status, output = body.Status, body.Output
	}
	s.mu.Lock()
	c, ok := s.catalog.checks[id]
	known := ok && c.ServiceID != ""
	isTTL := known && c.Type == "ttl"
	s.mu.Unlock()
	if !known {
		return errorf(http.StatusNotFound, "Unknown check ID %q. Ensure that the check ID is passed, not the check name.", id)
	}
	if !isTTL {
		return fmt.Errorf("CheckID %q does not have associated TTL", id)
	}
	if err := s.SetCheckStatus(id, status, output); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
