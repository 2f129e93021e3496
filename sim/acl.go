package sim

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/internal/nomadacl"
)

// Nomad's ACL tables.
const (
	tableACLPolicies = "acl_policy"
	tableACLTokens   = "acl_token"
)

// Nomad's ACL answers, word for word.
const (
	msgPermissionDenied = "Permission denied"
	msgTokenNotFound    = "ACL token not found"
	msgACLDisabled      = "ACL support disabled"
)

// ACLConfig is the cluster file's acl block: Nomad's ACL system, on or
// off, with the policies it starts with.
type ACLConfig struct {
	Enabled bool
	// BootstrapToken is the management token's secret; made up at start
	// when empty.
	BootstrapToken string
	// Policies are applied at start, as `nomad acl policy apply` would.
	Policies []ACLPolicyConfig
	// Tokens are client tokens made at start with the secrets given, so
	// that a test or a demo can hand them out before sim runs.
	Tokens []ACLTokenConfig
}

// ACLTokenConfig is a client token of the acl block.
type ACLTokenConfig struct {
	Name, Secret string
	Policies     []string
}

// ACLPolicyConfig is one policy of the acl block.
type ACLPolicyConfig struct {
	Name, Description, Rules string
}

// aclState is the cluster's ACL system. It is guarded by the cluster's
// mutex.
type aclState struct {
	enabled  bool
	policies map[string]*aclPolicy
	// tokens by accessor ID and by secret.
	tokens  map[string]*aclToken
	secrets map[string]*aclToken
	// bootstrap is the management token made at start.
	bootstrap string
	resetIdx  uint64
}

type aclPolicy struct {
	name, description, rules string
	parsed                   *nomadacl.Policy
	createIndex, modifyIndex uint64
}

type aclToken struct {
	api.ACLToken
}

// setupACL turns the ACL system on as the cluster file says: a bootstrap
// management token and the file's policies. Called by New, under the lock.
func (c *Cluster) setupACL(cfg ACLConfig) error {
	c.acl = aclState{enabled: cfg.Enabled, policies: map[string]*aclPolicy{}, tokens: map[string]*aclToken{}, secrets: map[string]*aclToken{}}
	if !cfg.Enabled {
		return nil
	}
	secret := cfg.BootstrapToken
	if secret == "" {
		secret = randomUUID()
	}
	idx := c.bump(tableACLTokens)
	c.acl.resetIdx = idx
	c.acl.bootstrap = secret
	c.addToken(&api.ACLToken{Name: "Bootstrap Token", Type: "management", Global: true, SecretID: secret}, idx)
	for _, p := range cfg.Policies {
		if _, err := c.upsertPolicyLocked(p.Name, p.Description, p.Rules); err != nil {
			return fmt.Errorf("acl policy %q: %w", p.Name, err)
		}
	}
	for _, t := range cfg.Tokens {
		if !uuidShape.MatchString(t.Secret) || c.acl.secrets[t.Secret] != nil {
			return fmt.Errorf("acl token %q: secret must be a new UUID, not %q", t.Name, t.Secret)
		}
		if len(t.Policies) == 0 {
			return fmt.Errorf("acl token %q: a client token needs policies", t.Name)
		}
		c.addToken(&api.ACLToken{Name: t.Name, Type: "client", Policies: t.Policies, SecretID: t.Secret}, c.bump(tableACLTokens))
	}
	return nil
}

// ACLEnabled reports whether the cluster enforces ACLs.
func (c *Cluster) ACLEnabled() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.acl.enabled
}

// BootstrapToken is the secret of the management token made at start, ""
// when ACLs are off.
func (c *Cluster) BootstrapToken() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.acl.bootstrap
}

// UpsertACLPolicy applies a policy, as `nomad acl policy apply` does.
func (c *Cluster) UpsertACLPolicy(name, description, rules string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.acl.enabled {
		return fmt.Errorf("%w: %s", ErrInvalid, msgACLDisabled)
	}
	_, err := c.upsertPolicyLocked(name, description, rules)
	return err
}

// CreateACLToken makes a client token of the policies and returns it, as
// `nomad acl token create` does.
func (c *Cluster) CreateACLToken(name string, policies ...string) (*api.ACLToken, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.createTokenLocked(&api.ACLToken{Name: name, Type: "client", Policies: policies})
}

func (c *Cluster) upsertPolicyLocked(name, description, rules string) (*aclPolicy, error) {
	if name == "" || len(name) > 128 || strings.ContainsAny(name, " /") {
		return nil, fmt.Errorf("%w: invalid name %q", ErrInvalid, name)
	}
	parsed, err := nomadacl.Parse(rules)
	if err != nil {
		return nil, fmt.Errorf("%w: policy %s: %v", ErrInvalid, name, err)
	}
	idx := c.bump(tableACLPolicies)
	p := c.acl.policies[name]
	if p == nil {
		p = &aclPolicy{name: name, createIndex: idx}
		c.acl.policies[name] = p
	}
	p.description, p.rules, p.parsed, p.modifyIndex = description, rules, parsed, idx
	return p, nil
}

func (c *Cluster) createTokenLocked(t *api.ACLToken) (*api.ACLToken, error) {
	switch t.Type {
	case "client":
		if len(t.Policies) == 0 {
			return nil, fmt.Errorf("%w: client token missing policies", ErrInvalid)
		}
	case "management":
		if len(t.Policies) > 0 {
			return nil, fmt.Errorf("%w: management token cannot be associated with policies", ErrInvalid)
		}
	default:
		return nil, fmt.Errorf("%w: token type must be client or management", ErrInvalid)
	}
	t.SecretID = randomUUID()
	tok := c.addToken(t, c.bump(tableACLTokens))
	out := tok.ACLToken
	return &out, nil
}

func (c *Cluster) addToken(t *api.ACLToken, idx uint64) *aclToken {
	tok := &aclToken{ACLToken: *t}
	tok.AccessorID = randomUUID()
	tok.CreateTime = c.clock.Now()
	tok.CreateIndex, tok.ModifyIndex = idx, idx
	c.acl.tokens[tok.AccessorID] = tok
	c.acl.secrets[tok.SecretID] = tok
	return tok
}

// resolveLocked is what the secret may do: the anonymous policy for no
// secret, everything for a management token, its policies' merge
// otherwise. An unknown secret is errTokenNotFound.
func (c *Cluster) resolveLocked(secret string) (*nomadacl.ACL, *aclToken, error) {
	if secret == "" {
		if p := c.acl.policies["anonymous"]; p != nil {
			return nomadacl.New(p.parsed), nil, nil
		}
		return nomadacl.New(), nil, nil
	}
	tok := c.acl.secrets[secret]
	if tok == nil || tok.ExpirationTime != nil && !tok.ExpirationTime.After(c.clock.Now()) {
		return nil, nil, errTokenNotFound
	}
	if tok.Type == "management" {
		return nomadacl.Management(), tok, nil
	}
	var ps []*nomadacl.Policy
	for _, name := range tok.Policies {
		if p := c.acl.policies[name]; p != nil {
			ps = append(ps, p.parsed)
		}
	}
	return nomadacl.New(ps...), tok, nil
}

var errTokenNotFound = errors.New(msgTokenNotFound)

// uuidShape is the shape of a Nomad secret ID.
var uuidShape = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// requestToken is the secret a request carries, as Nomad's HTTP server
// reads it: X-Nomad-Token, else an Authorization bearer.
func requestToken(r *http.Request) string {
	if t := r.Header.Get("X-Nomad-Token"); t != "" {
		return t
	}
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(v)
	}
	return ""
}

func randomUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// aclRule is what one route of the Nomad API asks of a token. Read and
// write rules are kept apart by method (GET reads; PUT, POST and DELETE
// write).
type aclRule struct {
	// open routes ask nothing (status, regions; sim's own endpoints).
	open bool
	// scope and write: a node, agent or operator rule.
	scope nomadacl.Scope
	write bool
	// caps: any of these in the namespace of the request (or of the
	// allocation the path names, with byAlloc).
	caps    []string
	byAlloc bool
	// filter: a list whose elements are kept only in namespaces where the
	// token holds caps, as Nomad filters a `namespace=*` list (and a
	// node's allocations) rather than refusing it.
	filter bool
}

// aclRoutes are Nomad's ACL requirements of the routes sim serves, keyed
// by the mux pattern's path and read (GET) or write (any other method).
// A route not listed asks read-job to read and submit-job to write, in
// the request's namespace.
var aclRoutes = map[string][2]aclRule{
	"/v1/agent/self":                   {{scope: nomadacl.Agent}},
	"/v1/agent/members":                {{scope: nomadacl.Node}},
	"/v1/status/leader":                {{open: true}},
	"/v1/status/peers":                 {{open: true}},
	"/v1/regions":                      {{open: true}},
	"/v1/nodes":                        {{scope: nomadacl.Node}},
	"/v1/node/pools":                   {{scope: nomadacl.Node}},
	"/v1/node/{id}":                    {{scope: nomadacl.Node}},
	"/v1/node/{id}/{sub}":              {{scope: nomadacl.Node, caps: []string{nomadacl.CapReadJob}, filter: true}},
	"/v1/client/metadata":              {{scope: nomadacl.Node}, {scope: nomadacl.Node, write: true}},
	"/v1/client/stats":                 {{scope: nomadacl.Node}},
	"/v1/client/allocation/{id}/stats": {{caps: []string{nomadacl.CapReadJob}, byAlloc: true}},
	"/v1/jobs":                         {{caps: []string{nomadacl.CapListJobs}, filter: true}, {caps: []string{nomadacl.CapSubmitJob}}},
	"/v1/jobs/parse":                   {{}, {caps: []string{nomadacl.CapParseJob, nomadacl.CapSubmitJob}}},
	"/v1/job/{id}/scale":               {{caps: []string{nomadacl.CapReadJobScaling, nomadacl.CapReadJob}}, {caps: []string{nomadacl.CapScaleJob, nomadacl.CapSubmitJob}}},
	"/v1/scaling/policies":             {{caps: []string{nomadacl.CapListScalingPolicies, nomadacl.CapListJobs}, filter: true}},
	"/v1/scaling/policy/{id}":          {{caps: []string{nomadacl.CapReadScalingPolicy, nomadacl.CapReadJob}}},
	"/v1/allocations":                  {{caps: []string{nomadacl.CapReadJob}, filter: true}},
	"/v1/allocation/{id}":              {{caps: []string{nomadacl.CapReadJob}, byAlloc: true}},
	"/v1/allocation/{id}/stop":         {{}, {caps: []string{nomadacl.CapAllocLifecycle}, byAlloc: true}},
	"/v1/evaluations":                  {{caps: []string{nomadacl.CapReadJob}, filter: true}},
	"/v1/services":                     {{caps: []string{nomadacl.CapReadJob}, filter: true}},
	"/v1/sim/nodegroups":               {{open: true}, {open: true}},
	"/v1/sim/nodegroups/{name}":        {{open: true}, {open: true}},
	"/v1/sim/node/{id}/telemetry":      {{open: true}},
	"/v1/sim/status":                   {{open: true}},
	"/v1/sim/advance":                  {{open: true}, {open: true}},
}

// withACL enforces the cluster's ACLs in front of mux, as Nomad's
// endpoints do: 403 "Permission denied" for a token without the rule,
// 403 "ACL token not found" for an unknown secret, lists filtered to what
// the token may read. The /v1/acl endpoints check their own rules. With
// ACLs off every request passes, as in Nomad.
func (h *nomadAPI) withACL(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := h.c
		c.mu.Lock()
		enabled := c.acl.enabled
		c.mu.Unlock()
		_, pattern := mux.Handler(r)
		_, path, _ := strings.Cut(pattern, " ")
		if !enabled || pattern == "" || strings.HasPrefix(path, "/v1/acl/") {
			mux.ServeHTTP(w, r)
			return
		}
		rules, listed := aclRoutes[path]
		rule := rules[0]
		if r.Method != http.MethodGet {
			rule = rules[1]
		}
		if !listed {
			rule = aclRule{caps: []string{nomadacl.CapReadJob}}
			if r.Method != http.MethodGet {
				rule = aclRule{caps: []string{nomadacl.CapSubmitJob}}
			}
		}
		if rule.open {
			mux.ServeHTTP(w, r)
			return
		}
		c.mu.Lock()
		acl, _, err := c.resolveLocked(requestToken(r))
		ns := namespace(r)
		if rule.byAlloc {
			if a := c.allocs[allocIDOf(path, r.URL.Path)]; a != nil {
				ns = a.api.Namespace
			}
		}
		c.mu.Unlock()
		if err != nil {
			failText(w, http.StatusForbidden, msgTokenNotFound)
			return
		}
		allowed := true
		if rule.scope != "" {
			allowed = acl.Allow(rule.scope, rule.write)
		}
		filtered := rule.filter && (ns == "*" || rule.scope != "")
		if len(rule.caps) > 0 && !filtered {
			allowed = allowed && acl.AllowNamespace(ns, rule.caps...)
		}
		if len(rule.caps) == 0 && rule.scope == "" {
			allowed = acl.IsManagement() // an empty rule: a route Nomad serves only to management tokens here
		}
		if !allowed {
			failText(w, http.StatusForbidden, msgPermissionDenied)
			return
		}
		if !filtered || acl.IsManagement() {
			mux.ServeHTTP(w, r)
			return
		}
		rec := &bufferedResponse{header: w.Header(), status: http.StatusOK}
		mux.ServeHTTP(rec, r)
		body := rec.body.Bytes()
		if rec.status == http.StatusOK {
			body = filterByNamespace(body, func(ns string) bool { return acl.AllowNamespace(ns, rule.caps...) })
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(body)
	})
}

// allocIDOf is the allocation ID in a path whose pattern names it {id}.
func allocIDOf(pattern, path string) string {
	ps, vs := strings.Split(pattern, "/"), strings.Split(path, "/")
	for i, p := range ps {
		if p == "{id}" && i < len(vs) {
			return vs[i]
		}
	}
	return ""
}

// bufferedResponse holds an answer so that a list can be filtered before
// it is sent.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header         { return b.header }
func (b *bufferedResponse) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferedResponse) WriteHeader(status int)      { b.status = status }

// filterByNamespace keeps the elements of a JSON array whose Namespace the
// token may read; anything else passes unchanged. Compact JSON, as Nomad
// sends.
func filterByNamespace(body []byte, allow func(ns string) bool) []byte {
	var list []json.RawMessage
	if json.Unmarshal(body, &list) != nil {
		return body
	}
	kept := make([]json.RawMessage, 0, len(list))
	for _, el := range list {
		var probe struct{ Namespace *string }
		if json.Unmarshal(el, &probe) == nil && probe.Namespace != nil && !allow(*probe.Namespace) {
			continue
		}
		kept = append(kept, el)
	}
	out, err := json.Marshal(kept)
	if err != nil {
		return body
	}
	return out
}

// registerACL serves Nomad's /v1/acl endpoints.
func (h *nomadAPI) registerACL(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/acl/bootstrap", h.aclBootstrap)
	mux.HandleFunc("PUT /v1/acl/bootstrap", h.aclBootstrap)
	mux.HandleFunc("GET /v1/acl/policies", h.aclPolicies)
	mux.HandleFunc("GET /v1/acl/policy/{name}", h.aclPolicyRead)
	mux.HandleFunc("POST /v1/acl/policy/{name}", h.aclPolicyWrite)
	mux.HandleFunc("PUT /v1/acl/policy/{name}", h.aclPolicyWrite)
	mux.HandleFunc("DELETE /v1/acl/policy/{name}", h.aclPolicyDelete)
	mux.HandleFunc("GET /v1/acl/token/self", h.aclTokenSelf)
	mux.HandleFunc("GET /v1/acl/tokens", h.aclTokens)
	mux.HandleFunc("POST /v1/acl/token", h.aclTokenCreate)
	mux.HandleFunc("PUT /v1/acl/token", h.aclTokenCreate)
	mux.HandleFunc("GET /v1/acl/token/{id}", h.aclTokenRead)
	mux.HandleFunc("DELETE /v1/acl/token/{id}", h.aclTokenDelete)
}

// aclCall runs fn under the cluster lock with the caller's ACL, after the
// checks every /v1/acl endpoint makes: ACLs on, and a known token.
func (h *nomadAPI) aclCall(w http.ResponseWriter, r *http.Request, fn func(acl *nomadacl.ACL, tok *aclToken) (any, uint64, error)) {
	c := h.c
	c.mu.Lock()
	if !c.acl.enabled {
		c.mu.Unlock()
		failText(w, http.StatusBadRequest, msgACLDisabled)
		return
	}
	acl, tok, err := c.resolveLocked(requestToken(r))
	if err != nil {
		c.mu.Unlock()
		failText(w, http.StatusForbidden, msgTokenNotFound)
		return
	}
	v, idx, err := fn(acl, tok)
	var body []byte
	if err == nil && v != nil {
		body = mustJSON(v)
	}
	c.mu.Unlock()
	switch {
	case errors.Is(err, errPermissionDenied):
		failText(w, http.StatusForbidden, msgPermissionDenied)
	case err != nil:
		fail(w, err)
	case v == nil:
		respond(w, http.StatusOK, nil, idx, false)
	default:
		respond(w, http.StatusOK, body, idx, r.Method == http.MethodGet)
	}
}

var errPermissionDenied = errors.New(msgPermissionDenied)

func (h *nomadAPI) aclBootstrap(w http.ResponseWriter, r *http.Request) {
	c := h.c
	c.mu.Lock()
	enabled, reset := c.acl.enabled, c.acl.resetIdx
	c.mu.Unlock()
	if !enabled {
		failText(w, http.StatusBadRequest, msgACLDisabled)
		return
	}
	// sim bootstraps at start and prints the token.
	failText(w, http.StatusBadRequest, fmt.Sprintf("ACL bootstrap already done (reset index: %d)", reset))
}

// policyWire is a policy as Nomad's policy endpoint sends it.
type policyWire struct {
	CreateIndex uint64
	Description string
	Hash        string
	JobACL      *api.JobACL
	ModifyIndex uint64
	Name        string
	Rules       string
	RulesJSON   rulesJSON
}

// rulesJSON is the parsed policy, in the shape of Nomad's RulesJSON.
type rulesJSON struct {
	Agent       *coarseJSON
	HostVolumes []namespaceJSON
	Namespaces  []namespaceJSON
	Node        *coarseJSON
	NodePools   []struct{}
	Operator    *coarseJSON
	Plugin      *coarseJSON
	Quota       *coarseJSON
	Raw         string
}

type coarseJSON struct{ Policy string }

type namespaceJSON struct {
	Capabilities []string
	Name         string
	Policy       string
	Variables    *struct{}
}

func (p *aclPolicy) wire() policyWire {
	coarse := func(level string) *coarseJSON {
		if level == "" {
			return nil
		}
		return &coarseJSON{Policy: level}
	}
	rules := func(rs []nomadacl.NamespaceRule) []namespaceJSON {
		var out []namespaceJSON
		for _, r := range rs {
			out = append(out, namespaceJSON{Capabilities: r.Capabilities, Name: r.Name, Policy: r.Policy})
		}
		return out
	}
	sum := sha256.Sum256([]byte(p.name + "\x00" + p.description + "\x00" + p.rules))
	return policyWire{
		CreateIndex: p.createIndex, ModifyIndex: p.modifyIndex, Name: p.name, Description: p.description,
		Hash: base64.StdEncoding.EncodeToString(sum[:]), Rules: p.rules,
		RulesJSON: rulesJSON{Agent: coarse(p.parsed.Agent), Node: coarse(p.parsed.Node), Operator: coarse(p.parsed.Operator),
			Plugin: coarse(p.parsed.Plugin), Quota: coarse(p.parsed.Quota), Namespaces: rules(p.parsed.Namespaces),
			HostVolumes: rules(p.parsed.HostVolumes), Raw: p.rules},
	}
}

func (h *nomadAPI) aclPolicies(w http.ResponseWriter, r *http.Request) {
	h.aclCall(w, r, func(acl *nomadacl.ACL, tok *aclToken) (any, uint64, error) {
		c := h.c
		out := []*api.ACLPolicyListStub{}
		for _, name := range sortedKeys(c.acl.policies) {
			if !acl.IsManagement() && (tok == nil || !slices.Contains(tok.Policies, name)) {
				continue
			}
			p := c.acl.policies[name]
			out = append(out, &api.ACLPolicyListStub{Name: p.name, Description: p.description, CreateIndex: p.createIndex, ModifyIndex: p.modifyIndex})
		}
		return out, c.tableIndex(tableACLPolicies), nil
	})
}

// aclPolicyRead answers a management token, or a token that holds the
// policy.
func (h *nomadAPI) aclPolicyRead(w http.ResponseWriter, r *http.Request) {
	h.aclCall(w, r, func(acl *nomadacl.ACL, tok *aclToken) (any, uint64, error) {
		name := r.PathValue("name")
		// The anonymous token holds the anonymous policy.
		held := tok == nil && name == "anonymous" || tok != nil && slices.Contains(tok.Policies, name)
		if !acl.IsManagement() && !held {
			return nil, 0, errPermissionDenied
		}
		p := h.c.acl.policies[name]
		if p == nil {
			return nil, 0, fmt.Errorf("%w: ACL policy not found", ErrNotFound)
		}
		return p.wire(), p.modifyIndex, nil
	})
}

func (h *nomadAPI) aclPolicyWrite(w http.ResponseWriter, r *http.Request) {
	var in api.ACLPolicy
	if !decode(w, r, &in) {
		return
	}
	h.writes.Add(1)
	h.aclCall(w, r, func(acl *nomadacl.ACL, _ *aclToken) (any, uint64, error) {
		if !acl.IsManagement() {
			return nil, 0, errPermissionDenied
		}
		if in.Name != r.PathValue("name") {
			return nil, 0, fmt.Errorf("%w: Policy name does not match request path", ErrInvalid)
		}
		p, err := h.c.upsertPolicyLocked(in.Name, in.Description, in.Rules)
		if err != nil {
			return nil, 0, err
		}
		return nil, p.modifyIndex, nil
	})
}

func (h *nomadAPI) aclPolicyDelete(w http.ResponseWriter, r *http.Request) {
	h.writes.Add(1)
	h.aclCall(w, r, func(acl *nomadacl.ACL, _ *aclToken) (any, uint64, error) {
		if !acl.IsManagement() {
			return nil, 0, errPermissionDenied
		}
		delete(h.c.acl.policies, r.PathValue("name"))
		return nil, h.c.bump(tableACLPolicies), nil
	})
}

// tokenWire is a token as Nomad's token endpoints send it.
type tokenWire struct {
	ExpirationTTL  string
	AccessorID     string
	SecretID       string
	Name           string
	Type           string
	Policies       []string
	Roles          []*api.ACLTokenRoleLink
	Global         bool
	Hash           string
	CreateTime     time.Time
	ExpirationTime *time.Time
	CreateIndex    uint64
	ModifyIndex    uint64
}

func (t *aclToken) wire() tokenWire {
	sum := sha256.Sum256([]byte(t.AccessorID + "\x00" + t.Name + "\x00" + t.Type + "\x00" + strings.Join(t.Policies, ",")))
	return tokenWire{AccessorID: t.AccessorID, SecretID: t.SecretID, Name: t.Name, Type: t.Type, Policies: t.Policies,
		Roles: t.Roles, Global: t.Global, Hash: base64.StdEncoding.EncodeToString(sum[:]), CreateTime: t.CreateTime,
		ExpirationTime: t.ExpirationTime, CreateIndex: t.CreateIndex, ModifyIndex: t.ModifyIndex}
}

// aclTokenSelf answers any known token with itself; an unknown one, or
// none, is 404 "ACL token not found", as Nomad answers.
func (h *nomadAPI) aclTokenSelf(w http.ResponseWriter, r *http.Request) {
	c := h.c
	c.mu.Lock()
	if !c.acl.enabled {
		c.mu.Unlock()
		failText(w, http.StatusBadRequest, msgACLDisabled)
		return
	}
	_, tok, err := c.resolveLocked(requestToken(r))
	idx := c.tableIndex(tableACLTokens)
	var body []byte
	if err == nil && tok != nil {
		body = mustJSON(tok.wire())
	}
	c.mu.Unlock()
	if body == nil {
		w.Header().Set("X-Nomad-Index", fmt.Sprint(idx))
		w.Header().Set("X-Nomad-Knownleader", "true")
		w.Header().Set("X-Nomad-Lastcontact", "0")
		failText(w, http.StatusNotFound, msgTokenNotFound)
		return
	}
	respond(w, http.StatusOK, body, idx, true)
}

func (h *nomadAPI) aclTokens(w http.ResponseWriter, r *http.Request) {
	h.aclCall(w, r, func(acl *nomadacl.ACL, _ *aclToken) (any, uint64, error) {
		if !acl.IsManagement() {
			return nil, 0, errPermissionDenied
		}
		out := []*api.ACLTokenListStub{}
		for _, id := range sortedKeys(h.c.acl.tokens) {
			t := h.c.acl.tokens[id]
			out = append(out, &api.ACLTokenListStub{AccessorID: t.AccessorID, Name: t.Name, Type: t.Type, Policies: t.Policies,
				Global: t.Global, CreateTime: t.CreateTime, CreateIndex: t.CreateIndex, ModifyIndex: t.ModifyIndex})
		}
		return out, h.c.tableIndex(tableACLTokens), nil
	})
}

func (h *nomadAPI) aclTokenCreate(w http.ResponseWriter, r *http.Request) {
	var in api.ACLToken
	if !decode(w, r, &in) {
		return
	}
	h.writes.Add(1)
	h.aclCall(w, r, func(acl *nomadacl.ACL, _ *aclToken) (any, uint64, error) {
		if !acl.IsManagement() {
			return nil, 0, errPermissionDenied
		}
		if in.AccessorID != "" {
			return nil, 0, fmt.Errorf("%w: sim does not update tokens; delete and create one", ErrInvalid)
		}
		t, err := h.c.createTokenLocked(&in)
		if err != nil {
			return nil, 0, err
		}
		return (&aclToken{ACLToken: *t}).wire(), t.ModifyIndex, nil
	})
}

func (h *nomadAPI) aclTokenRead(w http.ResponseWriter, r *http.Request) {
	h.aclCall(w, r, func(acl *nomadacl.ACL, tok *aclToken) (any, uint64, error) {
		id := r.PathValue("id")
		if !acl.IsManagement() && (tok == nil || tok.AccessorID != id) {
			return nil, 0, errPermissionDenied
		}
		t := h.c.acl.tokens[id]
		if t == nil {
			return nil, 0, fmt.Errorf("%w: ACL token not found", ErrNotFound)
		}
		return t.wire(), t.ModifyIndex, nil
	})
}

func (h *nomadAPI) aclTokenDelete(w http.ResponseWriter, r *http.Request) {
	h.writes.Add(1)
	h.aclCall(w, r, func(acl *nomadacl.ACL, _ *aclToken) (any, uint64, error) {
		if !acl.IsManagement() {
			return nil, 0, errPermissionDenied
		}
		if t := h.c.acl.tokens[r.PathValue("id")]; t != nil {
			delete(h.c.acl.tokens, t.AccessorID)
			delete(h.c.acl.secrets, t.SecretID)
		}
		return nil, h.c.bump(tableACLTokens), nil
	})
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
