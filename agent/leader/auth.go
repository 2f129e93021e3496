package leader

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/internal/nomadacl"
	"github.com/foresight-nomad/foresight/leaderapi"
)

// The promise of the leader's API: nothing is done or shown through it that
// the caller's Nomad token would not be allowed in Nomad itself. Every
// request's token (X-Nomad-Token, an Authorization bearer, or the
// dashboard's cookie) is resolved through Nomad — /v1/acl/token/self and
// the token's policies, read with the caller's own token — and checked
// with Nomad's rules before its handler runs:
//
//   - scale a group: scale-job or submit-job in the group's namespace;
//   - pause, resume: operator write (a management token has it);
//   - a group, its series, forecast, scale status and dashboard page:
//     read-job in its namespace (scale status also read-job-scaling);
//   - lists (groups, decisions, plan, the overview): only the groups of
//     namespaces where the token has read-job;
//   - status: any valid token.
//
// When Nomad's ACLs are off, everything is allowed, as Nomad allows it. A
// refusal is 403 "Permission denied" (401 for a malformed or unknown
// token) and its handler never runs, so it changes nothing. When Nomad
// cannot be asked, requests are refused (503): no answer is no licence.
// A token's answer is kept for authCacheTTL, so a revoked token or a
// changed policy takes effect within that time. Tokens are never logged;
// the cache keys them by their SHA-256.

// authCacheTTL is how long a token's resolution is reused.
const authCacheTTL = 30 * time.Second

// authCacheMax bounds the tokens remembered; past it the cache starts over.
const authCacheMax = 4096

// msgPermissionDenied is Nomad's refusal, word for word.
const msgPermissionDenied = "Permission denied"

// tokenCookie holds the dashboard's token.
const tokenCookie = "foresight_token"

// uuidRE is the shape of a Nomad secret ID.
var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// errBadToken refuses a token that is malformed, unknown or expired: 401.
var errBadToken = leaderapi.Errorf(http.StatusUnauthorized, "%s", "ACL token not found")

// authorizer resolves callers' Nomad tokens into what they may do.
type authorizer struct {
	// nomad carries no token of its own: every request sends the caller's.
	nomad *nomadapi.Client
	now   func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]resolved
}

type resolved struct {
	acl     *nomadacl.ACL
	err     error
	expires time.Time
}

// newAuthorizer asks the Nomad that cfg reaches, without cfg's token.
func newAuthorizer(cfg *nomadapi.Config) (*authorizer, error) {
	c := *cfg
	c.SecretID = ""
	nomad, err := nomadapi.NewClient(&c)
	if err != nil {
		return nil, fmt.Errorf("nomad client for token checks: %w", err)
	}
	return &authorizer{nomad: nomad, now: time.Now, cache: map[[32]byte]resolved{}}, nil
}

// requestToken is the token a request carries: X-Nomad-Token, else an
// Authorization bearer, else (for dashboard pages) the login cookie.
func requestToken(r *http.Request) string {
	if t := r.Header.Get("X-Nomad-Token"); t != "" {
		return t
	}
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(v)
	}
	if strings.HasPrefix(r.URL.Path, dashboardBase+"/") {
		if c, err := r.Cookie(tokenCookie); err == nil {
			return c.Value
		}
	}
	return ""
}

// resolve is what token may do. ACLs off in Nomad allow everything, as a
// management token.
func (a *authorizer) resolve(ctx context.Context, token string) (*nomadacl.ACL, error) {
	if token != "" && !uuidRE.MatchString(token) {
		return nil, errBadToken
	}
	key := sha256.Sum256([]byte(token))
	now := a.now()
	a.mu.Lock()
	if c, ok := a.cache[key]; ok && now.Before(c.expires) {
		a.mu.Unlock()
		return c.acl, c.err
	}
	a.mu.Unlock()
	acl, err := a.ask(ctx, token)
	var coded *leaderapi.Error
	if err != nil && !errors.As(err, &coded) {
		// Nomad did not answer: ask again next time.
		return nil, leaderapi.Errorf(http.StatusServiceUnavailable, "check the Nomad token: %v", err)
	}
	a.mu.Lock()
	if len(a.cache) >= authCacheMax {
		a.cache = map[[32]byte]resolved{}
	}
	a.cache[key] = resolved{acl: acl, err: err, expires: now.Add(authCacheTTL)}
	a.mu.Unlock()
	return acl, err
}

// ask resolves token through Nomad with the token itself.
func (a *authorizer) ask(ctx context.Context, token string) (*nomadacl.ACL, error) {
	q := (&nomadapi.QueryOptions{AuthToken: token}).WithContext(ctx)
	self, _, err := a.nomad.ACLTokens().Self(q)
	switch {
	case err != nil && isACLDisabled(err):
		return nomadacl.Management(), nil
	case err != nil && token == "":
		// No token is Nomad's anonymous token: the "anonymous" policy if
		// one is applied, else nothing.
		p, _, perr := a.nomad.ACLPolicies().Info("anonymous", q)
		if perr != nil {
			return nomadacl.New(), nil
		}
		parsed, perr := nomadacl.Parse(p.Rules)
		if perr != nil {
			return nomadacl.New(), nil
		}
		return nomadacl.New(parsed), nil
	case err != nil && isTokenNotFound(err):
		return nil, errBadToken
	case err != nil:
		return nil, err
	}
	if self.ExpirationTime != nil && !self.ExpirationTime.After(a.now()) {
		return nil, errBadToken
	}
	if self.Type == "management" {
		return nomadacl.Management(), nil
	}
	var policies []*nomadacl.Policy
	for _, name := range self.Policies {
		p, _, err := a.nomad.ACLPolicies().Info(name, q)
		if err != nil {
			if isNotFound(err) {
				continue // a policy deleted since grants nothing, as in Nomad
			}
			return nil, fmt.Errorf("read ACL policy %q: %w", name, err)
		}
		parsed, err := nomadacl.Parse(p.Rules)
		if err != nil {
			return nil, fmt.Errorf("ACL policy %q: %w", name, err)
		}
		policies = append(policies, parsed)
	}
	return nomadacl.New(policies...), nil
}

func isACLDisabled(err error) bool { return strings.Contains(err.Error(), "ACL support disabled") }

func isTokenNotFound(err error) bool {
	return strings.Contains(err.Error(), "ACL token not found") || strings.Contains(err.Error(), "Permission denied")
}

func isNotFound(err error) bool {
	var ue nomadapi.UnexpectedResponseError
	if errors.As(err, &ue) {
		return ue.StatusCode() == http.StatusNotFound
	}
	return strings.Contains(err.Error(), "404")
}

// aclKey carries a request's ACL to its handler.
type aclKey struct{}

// aclOf is the ACL the middleware resolved for r; none outside it.
func aclOf(r *http.Request) *nomadacl.ACL {
	acl, _ := r.Context().Value(aclKey{}).(*nomadacl.ACL)
	return acl
}

// mayRead reports whether r's token may read groups of namespace ns.
func mayRead(r *http.Request, group string) bool {
	ns, _, _ := strings.Cut(group, "/")
	return aclOf(r).AllowNamespace(ns, nomadacl.CapReadJob)
}

// readable keeps the items of groups whose namespace r's token may read
// (read-job), in order; never nil, so that an empty list is [].
func readable[T any](r *http.Request, items []T, group func(T) string) []T {
	out := make([]T, 0, len(items))
	for _, it := range items {
		if mayRead(r, group(it)) {
			out = append(out, it)
		}
	}
	return out
}

func decisionGroup(d leaderapi.Decision) string { return d.Group }

// routeRule is what a route of the leader's API asks of a token.
type routeRule struct {
	// open routes ask nothing: the dashboard's stylesheet, login, logout.
	open bool
	// operator asks operator write.
	operator bool
	// caps asks any of them in the namespace the path names ({ns}).
	caps []string
}

// routeRules are the leader API's routes and what each asks; a route not
// listed asks only a valid token (status; lists, which their handlers
// filter by read-job).
var routeRules = map[string]routeRule{
	"POST /v1/pause":                                     {operator: true},
	"POST /v1/resume":                                    {operator: true},
	"GET /v1/group/{ns}/{job}/{group}":                   {caps: []string{nomadacl.CapReadJob}},
	"GET /v1/group/{ns}/{job}/{group}/series":            {caps: []string{nomadacl.CapReadJob}},
	"GET /v1/group/{ns}/{job}/{group}/forecast":          {caps: []string{nomadacl.CapReadJob}},
	"GET /v1/group/{ns}/{job}/{group}/scale":             {caps: []string{nomadacl.CapReadJobScaling, nomadacl.CapReadJob}},
	"POST /v1/group/{ns}/{job}/{group}/scale":            {caps: []string{nomadacl.CapScaleJob, nomadacl.CapSubmitJob}},
	"GET " + dashboardBase + "/group/{ns}/{job}/{group}": {caps: []string{nomadacl.CapReadJob}},
	"GET " + dashboardBase + "/assets/":                  {open: true},
	"GET " + dashboardBase + "/login":                    {open: true},
	"POST " + dashboardBase + "/login":                   {open: true},
	"GET " + dashboardBase + "/logout":                   {open: true},
}

// protect runs mux's handlers only for requests whose token the route's
// rule allows (see the promise above).
func (a *authorizer) protect(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := mux.Handler(r)
		rule := routeRules[pattern]
		if pattern == "" || rule.open {
			mux.ServeHTTP(w, r)
			return
		}
		acl, err := a.resolve(r.Context(), requestToken(r))
		if err == nil && !a.allowed(acl, rule, pattern, r) {
			err = leaderapi.Errorf(http.StatusForbidden, "%s", msgPermissionDenied)
		}
		if err != nil {
			a.refuse(w, r, err)
			return
		}
		mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), aclKey{}, acl)))
	})
}

func (a *authorizer) allowed(acl *nomadacl.ACL, rule routeRule, pattern string, r *http.Request) bool {
	switch {
	case rule.operator:
		return acl.Allow(nomadacl.Operator, true)
	case len(rule.caps) > 0:
		return acl.AllowNamespace(pathValue(pattern, r.URL.Path, "{ns}"), rule.caps...)
	}
	// Any valid token; the anonymous caller only with ACLs off (or an
	// anonymous policy that grants something).
	return acl.IsManagement() || acl.Grants()
}

// refuse answers a refusal: JSON for the API; for dashboard pages, the
// login form when there is no valid token, a page that says why otherwise.
func (a *authorizer) refuse(w http.ResponseWriter, r *http.Request, err error) {
	if !strings.HasPrefix(r.URL.Path, dashboardBase+"/") {
		leaderapi.WriteJSON(w, nil, err)
		return
	}
	var coded *leaderapi.Error
	status := http.StatusInternalServerError
	if errors.As(err, &coded) {
		status = coded.Status
	}
	if status == http.StatusUnauthorized || status == http.StatusForbidden && requestToken(r) == "" {
		http.Redirect(w, r, dashboardBase+"/login", http.StatusSeeOther)
		return
	}
	renderRefusal(w, status, err.Error())
}

// pathValue is the segment of path where pattern has name, "" if none.
func pathValue(pattern, path, name string) string {
	_, p, _ := strings.Cut(pattern, " ")
	ps, vs := strings.Split(p, "/"), strings.Split(path, "/")
	for i, s := range ps {
		if s == name && i < len(vs) {
			return vs[i]
		}
	}
	return ""
}
