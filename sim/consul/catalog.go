package consul

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Health check statuses.
const (
	// StatusPassing is a healthy check.
	StatusPassing = "passing"
	// StatusWarning is a check that is failing but not yet critical.
	StatusWarning = "warning"
	// StatusCritical is a failed check; it invalidates sessions tied to it.
	StatusCritical = "critical"
)

// serviceAddress is one tagged address of a service.
type serviceAddress struct {
	Address string
	Port    int
}

// weights are the DNS SRV weights of a service, by health.
type weights struct {
	Passing int
	Warning int
}

// service is one service instance on sim's node.
type service struct {
	Kind              string
	ID                string
	Name              string
	Tags              []string
	Meta              map[string]string
	Port              int
	Address           string
	SocketPath        string
	TaggedAddresses   map[string]serviceAddress
	Weights           weights
	EnableTagOverride bool
	CreateIndex       uint64
	ModifyIndex       uint64
	// agent is false for the catalog-only "consul" service, which the
	// agent endpoints do not list.
	agent bool
}

// same reports whether a registration would leave the service unchanged,
// in which case the agent's anti-entropy sync writes nothing.
func (sv *service) same(o *service) bool {
	return sv.Kind == o.Kind && sv.ID == o.ID && sv.Name == o.Name && slices.Equal(sv.Tags, o.Tags) &&
		maps.Equal(sv.Meta, o.Meta) && sv.Port == o.Port && sv.Address == o.Address &&
		sv.SocketPath == o.SocketPath && maps.Equal(sv.TaggedAddresses, o.TaggedAddresses) &&
		sv.Weights == o.Weights && sv.EnableTagOverride == o.EnableTagOverride && sv.agent == o.agent
}

// check is one health check on sim's node: a node check when ServiceID is
// empty, else a check of that service. sim runs no probes: a check's status
// changes only through SetCheckStatus, the agent's TTL check endpoints, or
// a TTL check's deadline passing.
type check struct {
	checkJSON
	// ttl is the TTL of a "ttl" check, which goes critical unless updated
	// before ttlExpires.
	ttl        time.Duration
	ttlExpires time.Time
}

// same reports whether storing o would change nothing but indexes.
func (c *check) same(o *check) bool {
	a, b := c.checkJSON, o.checkJSON
	a.CreateIndex, a.ModifyIndex = 0, 0
	b.CreateIndex, b.ModifyIndex = 0, 0
	return reflect.DeepEqual(a, b) && c.ttl == o.ttl
}

// catalogStore is the catalog and the agent's local state of sim's one
// node. Every method expects the Server's mu to be held.
type catalogStore struct {
	nodeCreateIndex uint64
	nodeModifyIndex uint64
	services        map[string]*service
	checks          map[string]*check
	// Table indexes, and per service name the highest index of a change to
	// an instance of it or to one of their checks.
	nodesIndex    uint64
	servicesIndex uint64
	checksIndex   uint64
	serviceIndex  map[string]uint64
}

func newCatalogStore() catalogStore {
	return catalogStore{
		services:     map[string]*service{},
		checks:       map[string]*check{},
		serviceIndex: map[string]uint64{},
	}
}

// bootstrapCatalogLocked registers what a fresh Consul dev agent shows: its
// node, the node's serfHealth check and the "consul" service.
func (s *Server) bootstrapCatalogLocked() {
	idx := s.commit()
	s.catalog.nodeCreateIndex, s.catalog.nodeModifyIndex, s.catalog.nodesIndex = idx, idx, idx
	s.putCheckLocked(s.txn(), &check{checkJSON: checkJSON{
		CheckID: serfCheckID, Name: "Serf Health Status", Status: StatusPassing,
		Output: "Agent alive and reachable",
	}})
	s.putServiceLocked(s.txn(), &service{
		ID: "consul", Name: "consul", Port: serverRPCPort, Weights: weights{Passing: 1, Warning: 1},
		Meta: map[string]string{
			"non_voter": "false", "raft_version": "3", "read_replica": "false",
			"serf_protocol_current": "2", "serf_protocol_max": "5", "serf_protocol_min": "1",
			"version": Version,
		},
	})
}

// txn hands out one raft index for a group of writes that Consul applies
// as one, such as a service and its checks, and only if something changed.
type txn struct {
	s   *Server
	idx uint64
}

func (s *Server) txn() *txn { return &txn{s: s} }

// index returns the group's raft index, allocating it on first use.
func (t *txn) index() uint64 {
	if t.idx == 0 {
		t.idx = t.s.commit()
	}
	return t.idx
}

// putServiceLocked stores a service registration, writing only if it
// changed, and returns the stored service.
func (s *Server) putServiceLocked(t *txn, sv *service) *service {
	if sv.Tags == nil {
		sv.Tags = []string{}
	}
	if sv.Meta == nil {
		sv.Meta = map[string]string{}
	}
	old, ok := s.catalog.services[sv.ID]
	if ok && old.same(sv) {
		return old
	}
	idx := t.index()
	sv.CreateIndex, sv.ModifyIndex = idx, idx
	if ok {
		sv.CreateIndex = old.CreateIndex
		s.catalog.serviceIndex[old.Name] = idx
	}
	s.catalog.services[sv.ID] = sv
	s.catalog.servicesIndex = idx
	s.catalog.serviceIndex[sv.Name] = idx
	return sv
}

// putCheckLocked stores a check, writing only if it changed. A check that
// is stored critical invalidates the sessions tied to it.
func (s *Server) putCheckLocked(t *txn, c *check) {
	if c.ServiceTags == nil {
		c.ServiceTags = []string{}
	}
	c.Node = s.node.Name
	old, ok := s.catalog.checks[c.CheckID]
	if ok && old.same(c) {
		return
	}
	idx := t.index()
	c.CreateIndex, c.ModifyIndex = idx, idx
	if ok {
		c.CreateIndex = old.CreateIndex
	}
	s.catalog.checks[c.CheckID] = c
	s.touchCheckLocked(idx, c)
	if c.Status == StatusCritical {
		s.invalidateSessionsForCheckLocked(c.CheckID)
	}
}

// removeCheckLocked deletes a check; sessions tied to it are invalidated.
func (s *Server) removeCheckLocked(t *txn, id string) {
	c, ok := s.catalog.checks[id]
	if !ok {
		return
	}
	idx := t.index()
	delete(s.catalog.checks, id)
	s.touchCheckLocked(idx, c)
	s.invalidateSessionsForCheckLocked(id)
}

// touchCheckLocked moves the indexes a check change is visible through: the
// checks table, and the health of its service or, for a node check, of every
// service on the node.
func (s *Server) touchCheckLocked(idx uint64, c *check) {
	s.catalog.checksIndex = idx
	if c.ServiceID != "" {
		s.catalog.serviceIndex[c.ServiceName] = idx
		return
	}
	for _, sv := range s.catalog.services {
		s.catalog.serviceIndex[sv.Name] = idx
	}
}

// removeServiceLocked deregisters a service and its checks. It reports
// whether the service existed.
func (s *Server) removeServiceLocked(t *txn, id string) bool {
	sv, ok := s.catalog.services[id]
	if !ok {
		return false
	}
	for _, cid := range s.serviceCheckIDsLocked(id) {
		s.removeCheckLocked(t, cid)
	}
	idx := t.index()
	delete(s.catalog.services, id)
	s.catalog.servicesIndex = idx
	s.catalog.serviceIndex[sv.Name] = idx
	return true
}

// serviceCheckIDsLocked lists the IDs of a service's checks, sorted.
func (s *Server) serviceCheckIDsLocked(serviceID string) []string {
	var ids []string
	for id, c := range s.catalog.checks {
		if c.ServiceID == serviceID {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// SetCheckStatus sets the status and output of a check, as a check runner
// would. Setting a check critical invalidates the sessions tied to it.
func (s *Server) SetCheckStatus(checkID, status, output string) error {
	switch status {
	case StatusPassing, StatusWarning, StatusCritical:
	default:
		return fmt.Errorf("set status of check %q: unknown status %q", checkID, status)
	}
	s.mu.Lock()
	defer s.unlock()
	old, ok := s.catalog.checks[checkID]
	if !ok {
		return fmt.Errorf("set status of check %q: no such check", checkID)
	}
	c := *old
	c.Status, c.Output = status, output
	s.putCheckLocked(s.txn(), &c)
	s.armCheckTTLLocked(checkID)
	return nil
}

// usableForSession checks that a session may be tied to a check of the
// node: it must exist and not be critical.
func (st *catalogStore) usableForSession(id string) error {
	c, ok := st.checks[id]
	if !ok {
		return fmt.Errorf("Missing check '%s' registration", id)
	}
	if c.Status == StatusCritical {
		return fmt.Errorf("Check '%s' is in %s state", id, c.Status)
	}
	return nil
}

// sortedServices returns the services matching keep, ordered by ID.
func (st *catalogStore) sortedServices(keep func(*service) bool) []*service {
	var out []*service
	for _, sv := range st.services {
		if keep(sv) {
			out = append(out, sv)
		}
	}
	slices.SortFunc(out, func(a, b *service) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// nodeChecks and serviceChecks list checks in the order Consul's health
// endpoints show them: node checks first, each group sorted by ID.
func (st *catalogStore) nodeChecks() []*check {
	return st.sortedChecks(func(c *check) bool { return c.ServiceID == "" })
}

func (st *catalogStore) serviceChecks(serviceID string) []*check {
	return st.sortedChecks(func(c *check) bool { return c.ServiceID == serviceID })
}

func (st *catalogStore) sortedChecks(keep func(*check) bool) []*check {
	var out []*check
	for _, c := range st.checks {
		if keep(c) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b *check) int { return strings.Compare(a.CheckID, b.CheckID) })
	return out
}

// nameIndex is the index of health and catalog reads of one service name.
func (st *catalogStore) nameIndex(name string) uint64 {
	if idx, ok := st.serviceIndex[name]; ok {
		return idx
	}
	return max(st.servicesIndex, st.nodesIndex)
}

// defaultTaggedAddresses adds the lan/wan addresses the agent derives from
// a service's own address when the registration gave none for them.
func defaultTaggedAddresses(sv *service) {
	ip := net.ParseIP(sv.Address)
	if ip == nil {
		return
	}
	if sv.TaggedAddresses == nil {
		sv.TaggedAddresses = map[string]serviceAddress{}
	}
	lan, wan := "lan_ipv6", "wan_ipv6"
	if ip.To4() != nil {
		lan, wan = "lan_ipv4", "wan_ipv4"
	}
	for _, tag := range []string{lan, wan} {
		if _, ok := sv.TaggedAddresses[tag]; !ok {
			sv.TaggedAddresses[tag] = serviceAddress{Address: sv.Address, Port: sv.Port}
		}
	}
}

// hasTags reports whether a service carries every tag, compared without
// case as Consul's tag filter does.
func hasTags(sv *service, tags []string) bool {
	for _, want := range tags {
		if !slices.ContainsFunc(sv.Tags, func(t string) bool { return strings.EqualFold(t, want) }) {
			return false
		}
	}
	return true
}

// Catalog and health responses, field for field as Consul 1.16 writes them.
type (
	nodeJSON struct {
		ID              string
		Node            string
		Address         string
		Datacenter      string
		TaggedAddresses map[string]string
		Meta            map[string]string
		CreateIndex     uint64
		ModifyIndex     uint64
	}
	proxyJSON struct {
		Mode        string
		MeshGateway struct{}
		Expose      struct{}
	}
	catalogServiceJSON struct {
		ID                       string
		Node                     string
		Address                  string
		Datacenter               string
		TaggedAddresses          map[string]string
		NodeMeta                 map[string]string
		ServiceKind              string
		ServiceID                string
		ServiceName              string
		ServiceTags              []string
		ServiceAddress           string
		ServiceTaggedAddresses   map[string]serviceAddress `json:",omitempty"`
		ServiceWeights           weights
		ServiceMeta              map[string]string
		ServicePort              int
		ServiceSocketPath        string
		ServiceEnableTagOverride bool
		ServiceProxy             proxyJSON
		ServiceConnect           struct{}
		ServiceLocality          *struct{}
		CreateIndex              uint64
		ModifyIndex              uint64
	}
	healthServiceJSON struct {
		ID                string
		Service           string
		Tags              []string
		Address           string
		TaggedAddresses   map[string]serviceAddress `json:",omitempty"`
		Meta              map[string]string
		Port              int
		Weights           weights
		EnableTagOverride bool
		Proxy             proxyJSON
		Connect           struct{}
		PeerName          string
		CreateIndex       uint64
		ModifyIndex       uint64
	}
	checkJSON struct {
		Node        string
		CheckID     string
		Name        string
		Status      string
		Notes       string
		Output      string
		ServiceID   string
		ServiceName string
		ServiceTags []string
		Type        string
		Interval    string
		Timeout     string
		ExposedPort int
		Definition  struct{}
		CreateIndex uint64
		ModifyIndex uint64
	}
	serviceEntryJSON struct {
		Node    nodeJSON
		Service healthServiceJSON
		Checks  []checkJSON
	}
)

func (s *Server) nodeJSON() nodeJSON {
	a := s.node.Address
	return nodeJSON{
		ID: s.node.ID, Node: s.node.Name, Address: a, Datacenter: s.node.Datacenter,
		TaggedAddresses: map[string]string{"lan": a, "lan_ipv4": a, "wan": a, "wan_ipv4": a},
		Meta:            nodeMeta(),
		CreateIndex:     s.catalog.nodeCreateIndex, ModifyIndex: s.catalog.nodeModifyIndex,
	}
}

func nodeMeta() map[string]string {
	return map[string]string{"consul-network-segment": "", "consul-version": Version}
}

func (s *Server) catalogServiceJSON(sv *service) catalogServiceJSON {
	n := s.nodeJSON()
	return catalogServiceJSON{
		ID: n.ID, Node: n.Node, Address: n.Address, Datacenter: n.Datacenter,
		TaggedAddresses: n.TaggedAddresses, NodeMeta: n.Meta,
		ServiceKind: sv.Kind, ServiceID: sv.ID, ServiceName: sv.Name, ServiceTags: slices.Clone(sv.Tags),
		ServiceAddress: sv.Address, ServiceTaggedAddresses: maps.Clone(sv.TaggedAddresses),
		ServiceWeights: sv.Weights, ServiceMeta: maps.Clone(sv.Meta), ServicePort: sv.Port,
		ServiceSocketPath: sv.SocketPath, ServiceEnableTagOverride: sv.EnableTagOverride,
		CreateIndex: sv.CreateIndex, ModifyIndex: sv.ModifyIndex,
	}
}

func healthServiceOf(sv *service) healthServiceJSON {
	return healthServiceJSON{
		ID: sv.ID, Service: sv.Name, Tags: slices.Clone(sv.Tags), Address: sv.Address,
		TaggedAddresses: maps.Clone(sv.TaggedAddresses), Meta: maps.Clone(sv.Meta), Port: sv.Port,
		Weights: sv.Weights, EnableTagOverride: sv.EnableTagOverride,
		CreateIndex: sv.CreateIndex, ModifyIndex: sv.ModifyIndex,
	}
}

// toJSON copies the check for answering outside the lock.
func (c *check) toJSON() checkJSON {
	out := c.checkJSON
	out.ServiceTags = slices.Clone(c.ServiceTags)
	return out
}

func (s *Server) routeCatalog(mux *http.ServeMux) {
	mux.Handle("/v1/catalog/services", endpoint(s.serveCatalogServices, http.MethodGet))
	mux.Handle("/v1/catalog/service/", endpoint(s.serveCatalogService, http.MethodGet))
	mux.Handle("/v1/catalog/nodes", endpoint(s.serveCatalogNodes, http.MethodGet))
	mux.Handle("/v1/health/service/", endpoint(s.serveHealthService, http.MethodGet))
	mux.Handle("/v1/health/checks/", endpoint(s.serveHealthChecks, http.MethodGet))
	mux.Handle("/v1/health/state/", endpoint(s.serveHealthState, http.MethodGet))
}

// refuseParams answers 400 for query parameters sim does not evaluate
// (filter expressions, node meta, sorting by distance, peers), rather than
// silently answering as if they were absent.
func refuseParams(r *http.Request, names ...string) error {
	for _, p := range names {
		if _, ok := r.URL.Query()[p]; ok {
			return errorf(http.StatusBadRequest, "sim: the ?%s parameter is not supported", p)
		}
	}
	return nil
}

// catalogRead answers a blocking catalog or health read. read runs under
// mu and returns the answer and its index.
func (s *Server) catalogRead(w http.ResponseWriter, r *http.Request, read func() (any, uint64)) error {
	if err := refuseParams(r, "filter", "node-meta", "near", "peer"); err != nil {
		return err
	}
	q, err := s.parseQuery(r)
	if err != nil {
		return err
	}
	var out any
	index := s.blockingRead(r.Context(), q, func() uint64 {
		var idx uint64
		out, idx = read()
		return idx
	})
	setMeta(w, index, q.consistency)
	return writeJSON(w, out)
}

// pathName is the service name that ends a catalog or health path.
func pathName(r *http.Request, prefix string) (string, error) {
	name := strings.TrimPrefix(r.URL.Path, prefix)
	if name == "" {
		return "", errorf(http.StatusBadRequest, "Missing service name")
	}
	return name, nil
}

func (s *Server) serveCatalogServices(w http.ResponseWriter, r *http.Request) error {
	return s.catalogRead(w, r, func() (any, uint64) {
		out := map[string][]string{}
		for _, sv := range s.catalog.sortedServices(func(*service) bool { return true }) {
			tags, ok := out[sv.Name]
			if !ok {
				tags = []string{}
			}
			for _, t := range sv.Tags {
				if !slices.Contains(tags, t) {
					tags = append(tags, t)
				}
			}
			out[sv.Name] = tags
		}
		return out, s.catalog.servicesIndex
	})
}

func (s *Server) serveCatalogService(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r, "/v1/catalog/service/")
	if err != nil {
		return err
	}
	tags := r.URL.Query()["tag"]
	return s.catalogRead(w, r, func() (any, uint64) {
		out := []catalogServiceJSON{}
		for _, sv := range s.catalog.sortedServices(func(sv *service) bool { return sv.Name == name && hasTags(sv, tags) }) {
			out = append(out, s.catalogServiceJSON(sv))
		}
		return out, s.catalog.nameIndex(name)
	})
}

func (s *Server) serveCatalogNodes(w http.ResponseWriter, r *http.Request) error {
	return s.catalogRead(w, r, func() (any, uint64) {
		return []nodeJSON{s.nodeJSON()}, s.catalog.nodesIndex
	})
}

func (s *Server) serveHealthService(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r, "/v1/health/service/")
	if err != nil {
		return err
	}
	passingOnly, err := flagSet(r, "passing")
	if err != nil {
		return err
	}
	tags := r.URL.Query()["tag"]
	return s.catalogRead(w, r, func() (any, uint64) {
		out := []serviceEntryJSON{}
		nodeChecks := s.catalog.nodeChecks()
		for _, sv := range s.catalog.sortedServices(func(sv *service) bool { return sv.Name == name && hasTags(sv, tags) }) {
			entry := serviceEntryJSON{Node: s.nodeJSON(), Service: healthServiceOf(sv), Checks: []checkJSON{}}
			healthy := true
			for _, c := range append(slices.Clone(nodeChecks), s.catalog.serviceChecks(sv.ID)...) {
				entry.Checks = append(entry.Checks, c.toJSON())
				healthy = healthy && c.Status == StatusPassing
			}
			if passingOnly && !healthy {
				continue
			}
			out = append(out, entry)
		}
		return out, s.catalog.nameIndex(name)
	})
}

func (s *Server) serveHealthChecks(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r, "/v1/health/checks/")
	if err != nil {
		return err
	}
	return s.catalogRead(w, r, func() (any, uint64) {
		out := []checkJSON{}
		for _, c := range s.catalog.sortedChecks(func(c *check) bool { return c.ServiceName == name && c.ServiceID != "" }) {
			out = append(out, c.toJSON())
		}
		return out, s.catalog.nameIndex(name)
	})
}

func (s *Server) serveHealthState(w http.ResponseWriter, r *http.Request) error {
	state := strings.TrimPrefix(r.URL.Path, "/v1/health/state/")
	switch state {
	case "any", StatusPassing, StatusWarning, StatusCritical:
	case "":
		return errorf(http.StatusBadRequest, "Missing check state")
	default:
		return errorf(http.StatusBadRequest, "Invalid check state")
	}
	return s.catalogRead(w, r, func() (any, uint64) {
		out := []checkJSON{}
		for _, c := range s.catalog.sortedChecks(func(c *check) bool { return state == "any" || c.Status == state }) {
			out = append(out, c.toJSON())
		}
		return out, s.catalog.checksIndex
	})
}
