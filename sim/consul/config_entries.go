package consul

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config entry kinds sim stores and validates.
const (
	KindServiceDefaults = "service-defaults"
	KindServiceResolver = "service-resolver"
	KindServiceSplitter = "service-splitter"
	KindProxyDefaults   = "proxy-defaults"
)

// proxyDefaultsName is the only name a proxy-defaults entry may have.
const proxyDefaultsName = "global"

// defaultProtocol is the protocol of a service no entry gives one to.
const defaultProtocol = "tcp"

// unsupportedKinds are the other kinds Consul 1.16 knows. sim refuses them
// with a clear error instead of Consul's "invalid config entry kind".
var unsupportedKinds = []string{
	"service-router", "ingress-gateway", "terminating-gateway", "service-intentions", "mesh",
	"exported-services", "sameness-group", "api-gateway", "bound-api-gateway", "http-route",
	"tcp-route", "inline-certificate", "jwt-provider", "control-plane-request-limit",
}

// entryKey and entryRaft open and close every entry, so that each kind
// encodes with Consul's field order: Kind and Name first, indexes last.
type entryKey struct {
	Kind      string
	Name      string
	Partition string `json:",omitempty"`
	Namespace string `json:",omitempty"`
}

type entryRaft struct {
	Meta        map[string]string `json:",omitempty"`
	CreateIndex uint64
	ModifyIndex uint64
}

func (k *entryKey) key() *entryKey    { return k }
func (r *entryRaft) raft() *entryRaft { return r }

// configEntry is a stored entry of any kind.
type configEntry interface {
	key() *entryKey
	raft() *entryRaft
	// normalize fills defaults and validates the entry on its own.
	normalize() error
}

// Sub-structures shared by the proxy-related kinds. Consul always writes
// them, as {} when empty.
type (
	transparentProxy struct {
		OutboundListenerPort int  `json:",omitempty"`
		DialedDirectly       bool `json:",omitempty"`
	}
	meshGateway struct {
		Mode string `json:",omitempty"`
	}
	exposeConfig struct {
		Checks bool              `json:",omitempty"`
		Paths  []json.RawMessage `json:",omitempty"`
	}
)

// serviceDefaults is a service-defaults entry. Fields sim does not
// interpret are kept as given and returned unchanged.
type serviceDefaults struct {
	entryKey
	Protocol                  string `json:",omitempty"`
	Mode                      string `json:",omitempty"`
	TransparentProxy          transparentProxy
	MutualTLSMode             string `json:",omitempty"`
	MeshGateway               meshGateway
	Expose                    exposeConfig
	ExternalSNI               string          `json:",omitempty"`
	UpstreamConfig            json.RawMessage `json:",omitempty"`
	Destination               json.RawMessage `json:",omitempty"`
	MaxInboundConnections     int             `json:",omitempty"`
	LocalConnectTimeoutMs     int             `json:",omitempty"`
	LocalRequestTimeoutMs     int             `json:",omitempty"`
	BalanceInboundConnections string          `json:",omitempty"`
	RateLimits                json.RawMessage `json:",omitempty"`
	EnvoyExtensions           json.RawMessage `json:",omitempty"`
	MaxRequestHeadersKB       *uint32         `json:",omitempty"`
	entryRaft
}

func (e *serviceDefaults) normalize() error {
	if e.Name == "" {
		return errors.New("Name is required")
	}
	e.Protocol = strings.ToLower(e.Protocol)
	return nil
}

// proxyDefaults is the proxy-defaults entry, named "global".
type proxyDefaults struct {
	entryKey
	Mode                 string `json:",omitempty"`
	TransparentProxy     transparentProxy
	MutualTLSMode        string         `json:",omitempty"`
	Config               map[string]any `json:",omitempty"`
	MeshGateway          meshGateway
	Expose               exposeConfig
	AccessLogs           json.RawMessage `json:",omitempty"`
	EnvoyExtensions      json.RawMessage `json:",omitempty"`
	FailoverPolicy       json.RawMessage `json:",omitempty"`
	PrioritizeByLocality json.RawMessage `json:",omitempty"`
	entryRaft
}

func (e *proxyDefaults) normalize() error {
	if e.Name != "" && e.Name != proxyDefaultsName {
		return fmt.Errorf("invalid name (%q), only %q is supported", e.Name, proxyDefaultsName)
	}
	e.Name = proxyDefaultsName
	if p, ok := e.Config["protocol"].(string); ok {
		e.Config["protocol"] = strings.ToLower(p)
	}
	return nil
}

// protocol is the default protocol proxy-defaults gives, if any.
func (e *proxyDefaults) protocol() string {
	p, _ := e.Config["protocol"].(string)
	return p
}

// resolverSubset is a named subset of a service's instances.
type resolverSubset struct {
	Filter      string `json:",omitempty"`
	OnlyPassing bool   `json:",omitempty"`
}

// serviceResolver is a service-resolver entry.
type serviceResolver struct {
	entryKey
	DefaultSubset        string                    `json:",omitempty"`
	Subsets              map[string]resolverSubset `json:",omitempty"`
	Redirect             json.RawMessage           `json:",omitempty"`
	Failover             json.RawMessage           `json:",omitempty"`
	ConnectTimeout       duration                  `json:",omitempty"`
	RequestTimeout       duration                  `json:",omitempty"`
	PrioritizeByLocality json.RawMessage           `json:",omitempty"`
	LoadBalancer         json.RawMessage           `json:",omitempty"`
	entryRaft
}

// subsetName is what Consul accepts as a subset name: a DNS label.
var subsetName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

func (e *serviceResolver) normalize() error {
	if e.Name == "" {
		return errors.New("Name is required")
	}
	for _, name := range slices.Sorted(maps.Keys(e.Subsets)) {
		if name == "" {
			return errors.New("Subset defined with empty name")
		}
		if !subsetName.MatchString(name) {
			return fmt.Errorf("Subset %q is invalid: must be a valid DNS label", name)
		}
	}
	if _, ok := e.Subsets[e.DefaultSubset]; e.DefaultSubset != "" && !ok {
		return fmt.Errorf("DefaultSubset %q is not a valid subset", e.DefaultSubset)
	}
	if e.ConnectTimeout < 0 {
		return fmt.Errorf("Bad ConnectTimeout '%s', must be >= 0", time.Duration(e.ConnectTimeout))
	}
	if e.RequestTimeout < 0 {
		return fmt.Errorf("Bad RequestTimeout '%s', must be >= 0", time.Duration(e.RequestTimeout))
	}
	return nil
}

// split is one leg of a service-splitter.
type split struct {
	Weight          float32
	Service         string          `json:",omitempty"`
	ServiceSubset   string          `json:",omitempty"`
	Namespace       string          `json:",omitempty"`
	Partition       string          `json:",omitempty"`
	RequestHeaders  json.RawMessage `json:",omitempty"`
	ResponseHeaders json.RawMessage `json:",omitempty"`
}

// serviceSplitter is a service-splitter entry.
type serviceSplitter struct {
	entryKey
	Splits []split `json:",omitempty"`
	entryRaft
}

func (e *serviceSplitter) normalize() error {
	if e.Name == "" {
		return errors.New("Name is required")
	}
	if len(e.Splits) == 0 {
		return errors.New("no splits configured")
	}
	type dest struct{ service, subset string }
	seen := map[dest]bool{}
	for _, sp := range e.Splits {
		d := dest{service: cmp.Or(sp.Service, e.Name), subset: sp.ServiceSubset}
		if seen[d] {
			return fmt.Errorf("split destination occurs more than once: service=%q, subset=%q", d.service, d.subset)
		}
		seen[d] = true
	}
	// Consul sums weights in hundredths of a percent, so 33.33+33.33+33.34
	// is exactly 100.
	sum := 0
	for _, sp := range e.Splits {
		sum += int(math.Round(float64(sp.Weight * 100)))
	}
	if sum != 100*100 {
		return fmt.Errorf("the sum of all split weights must be 100, not %f", float32(sum)/100)
	}
	return nil
}

// duration is a time.Duration that travels as a Go duration string, as
// Consul writes resolver timeouts; a number of nanoseconds is read too.
type duration time.Duration

// MarshalJSON writes the duration as a string such as "5s".
func (d duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string or a number of nanoseconds.
func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if s == "" {
			*d = 0
			return nil
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration must be a string or a number of nanoseconds, not %s", b)
	}
	*d = duration(n)
	return nil
}

// newEntry returns an empty entry of kind, or an error saying why sim
// cannot store that kind.
func newEntry(kind string) (configEntry, error) {
	switch kind {
	case KindServiceDefaults:
		return &serviceDefaults{}, nil
	case KindServiceResolver:
		return &serviceResolver{}, nil
	case KindServiceSplitter:
		return &serviceSplitter{}, nil
	case KindProxyDefaults:
		return &proxyDefaults{}, nil
	}
	if slices.Contains(unsupportedKinds, kind) {
		return nil, errorf(http.StatusBadRequest, "sim: config entry kind %q is not supported", kind)
	}
	return nil, fmt.Errorf("invalid config entry kind: %s", kind)
}

// decodeEntry reads an entry from a PUT /v1/config body. Like Consul it
// finds the kind first, then refuses keys the kind does not have.
func decodeEntry(body []byte) (configEntry, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, err
	}
	kind := ""
	for k, v := range top {
		if strings.EqualFold(k, "kind") {
			if err := json.Unmarshal(v, &kind); err != nil {
				return nil, fmt.Errorf("Kind must be a string: %w", err)
			}
		}
	}
	if kind == "" {
		return nil, errors.New("Payload does not contain a kind/Kind key at the top level")
	}
	e, err := newEntry(kind)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(e); err != nil {
		return nil, err
	}
	e.key().Kind = kind
	return e, nil
}

// configStore holds entries by kind and name. Every method expects the
// Server's mu to be held.
type configStore struct {
	entries map[string]map[string]configEntry
	index   uint64
}

func newConfigStore() configStore {
	return configStore{entries: map[string]map[string]configEntry{}}
}

func (cs *configStore) get(kind, name string) configEntry {
	return cs.entries[kind][name]
}

// with returns a view of the store with e in place of its namesake, or
// without kind/name when e is nil, for validating a proposed change.
func (cs *configStore) with(kind, name string, e configEntry) configStore {
	view := configStore{entries: maps.Clone(cs.entries)}
	byName := maps.Clone(view.entries[kind])
	if byName == nil {
		byName = map[string]configEntry{}
	}
	if e == nil {
		delete(byName, name)
	} else {
		byName[name] = e
	}
	view.entries[kind] = byName
	return view
}

// protocolOf is the protocol of a service's discovery chain: its
// service-defaults, else proxy-defaults, else tcp.
func (cs *configStore) protocolOf(service string) string {
	if sd, ok := cs.get(KindServiceDefaults, service).(*serviceDefaults); ok && sd.Protocol != "" {
		return sd.Protocol
	}
	if pd, ok := cs.get(KindProxyDefaults, proxyDefaultsName).(*proxyDefaults); ok && pd.protocol() != "" {
		return pd.protocol()
	}
	return defaultProtocol
}

// validateChains compiles, in the way that matters to Foresight, the
// discovery chain of every service with a splitter, and returns the error
// Consul's compiler would: a split must name subsets its target's resolver
// defines, and splitting needs an HTTP-family protocol shared by the chain.
func (cs *configStore) validateChains() error {
	for _, name := range slices.Sorted(maps.Keys(cs.entries[KindServiceSplitter])) {
		sp := cs.entries[KindServiceSplitter][name].(*serviceSplitter)
		for _, leg := range sp.Splits {
			target := cmp.Or(leg.Service, name)
			if leg.ServiceSubset == "" {
				continue
			}
			res, _ := cs.get(KindServiceResolver, target).(*serviceResolver)
			if res == nil {
				return fmt.Errorf("service %q does not have a subset named %q", target, leg.ServiceSubset)
			}
			if _, ok := res.Subsets[leg.ServiceSubset]; !ok {
				return fmt.Errorf("service %q does not have a subset named %q", target, leg.ServiceSubset)
			}
		}
		protocol := cs.protocolOf(name)
		switch protocol {
		case "http", "http2", "grpc":
		default:
			return fmt.Errorf("discovery chain %q uses a protocol %q that does not permit advanced routing or splitting behavior", name, protocol)
		}
		for _, leg := range sp.Splits {
			target := cmp.Or(leg.Service, name)
			if p := cs.protocolOf(target); p != protocol {
				return fmt.Errorf("discovery chain %q uses inconsistent protocols; service %q has %q which is not %q", name, target, p, protocol)
			}
		}
	}
	return nil
}

// ConfigEntryProtocol is the protocol the config entries give a service,
// as its discovery chain would use it.
func (s *Server) ConfigEntryProtocol(service string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.config.protocolOf(service)
}

// upsertEntry writes e, with an optional check-and-set on its current
// ModifyIndex (0: only if absent). It reports whether it wrote.
func (s *Server) upsertEntry(e configEntry, cas *uint64) (bool, error) {
	if err := e.normalize(); err != nil {
		return false, err
	}
	k := e.key()
	s.mu.Lock()
	defer s.unlock()
	old := s.config.get(k.Kind, k.Name)
	if cas != nil {
		if (old == nil && *cas != 0) || (old != nil && old.raft().ModifyIndex != *cas) {
			return false, nil
		}
	}
	view := s.config.with(k.Kind, k.Name, e)
	if err := view.validateChains(); err != nil {
		return false, err
	}
	idx := s.commit()
	r := e.raft()
	r.CreateIndex, r.ModifyIndex = idx, idx
	if old != nil {
		r.CreateIndex = old.raft().CreateIndex
	}
	s.config.entries = view.entries
	s.config.index = idx
	return true, nil
}

// deleteEntry removes kind/name, with an optional check-and-set on its
// ModifyIndex, refusing to break a discovery chain that depends on it.
func (s *Server) deleteEntry(kind, name string, cas *uint64) (bool, error) {
	s.mu.Lock()
	defer s.unlock()
	old := s.config.get(kind, name)
	if cas != nil && (old == nil || old.raft().ModifyIndex != *cas) {
		return false, nil
	}
	if old == nil {
		return true, nil
	}
	view := s.config.with(kind, name, nil)
	if err := view.validateChains(); err != nil {
		return false, err
	}
	s.config.entries = view.entries
	s.config.index = s.commit()
	return true, nil
}

func (s *Server) routeConfig(mux *http.ServeMux) {
	mux.Handle("/v1/config", endpoint(s.serveConfigApply, http.MethodPut))
	mux.Handle("/v1/config/", endpoint(s.serveConfig, http.MethodGet, http.MethodDelete))
}

func (s *Server) serveConfigApply(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkDatacenter(r); err != nil {
		return err
	}
	var body bytes.Buffer
	if _, err := body.ReadFrom(r.Body); err != nil {
		return fmt.Errorf("read config entry: %w", err)
	}
	e, err := decodeEntry(body.Bytes())
	if err != nil {
		var he *httpError
		if errors.As(err, &he) {
			return err
		}
		return errorf(http.StatusBadRequest, "Request decoding failed: %v", err)
	}
	cas, err := casParam(r)
	if err != nil {
		return err
	}
	ok, err := s.upsertEntry(e, cas)
	if err != nil {
		return err
	}
	return writeJSON(w, ok)
}

// casParam reads ?cas; Consul answers an unparsable one with the parse
// error and 500.
func casParam(r *http.Request) (*uint64, error) {
	v := r.URL.Query().Get("cas")
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return nil, err
	}
	return &n, nil
}

func (s *Server) serveConfig(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkDatacenter(r); err != nil {
		return err
	}
	kind, name, hasName := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v1/config/"), "/")
	if r.Method == http.MethodDelete {
		if !hasName || name == "" {
			return errorf(http.StatusNotFound, "Must provide both a kind and name to delete")
		}
		if _, err := newEntry(kind); err != nil {
			return errorf(http.StatusBadRequest, "%v", err)
		}
		cas, err := casParam(r)
		if err != nil {
			return err
		}
		deleted, err := s.deleteEntry(kind, name, cas)
		if err != nil {
			return err
		}
		if cas != nil {
			return writeJSON(w, deleted)
		}
		return writeJSON(w, struct{}{})
	}
	if _, err := newEntry(kind); err != nil {
		return err
	}
	q, err := s.parseQuery(r)
	if err != nil {
		return err
	}
	if hasName {
		var found configEntry
		index := s.blockingRead(r.Context(), q, func() uint64 {
			found = s.config.get(kind, name)
			return s.config.index
		})
		setMeta(w, index, "")
		if found == nil {
			return errorf(http.StatusNotFound, "Config entry not found for %q / %q", kind, name)
		}
		return writeJSON(w, found)
	}
	var list []configEntry
	index := s.blockingRead(r.Context(), q, func() uint64 {
		byName := s.config.entries[kind]
		list = make([]configEntry, 0, len(byName))
		for _, n := range slices.Sorted(maps.Keys(byName)) {
			list = append(list, byName[n])
		}
		return s.config.index
	})
	setMeta(w, index, "")
	return writeJSON(w, list)
}
