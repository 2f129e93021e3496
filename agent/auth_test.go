package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/foresight-nomad/foresight/agent/leader"
	"github.com/foresight-nomad/foresight/internal/wait"
	"github.com/foresight-nomad/foresight/leaderapi"
	"github.com/foresight-nomad/foresight/orchestrator"
	"github.com/foresight-nomad/foresight/sim"
)

// Secrets of the tokens the ACL matrix uses, one per kind of caller.
const (
	agentSecret     = "00000000-0000-4000-8000-00000000000a"
	readOnlySecret  = "00000000-0000-4000-8000-000000000001"
	scaleSecret     = "00000000-0000-4000-8000-000000000002"
	operatorSecret  = "00000000-0000-4000-8000-000000000003"
	otherNSSecret   = "00000000-0000-4000-8000-000000000004"
	unknownSecret   = "00000000-0000-4000-8000-0000000000ff"
	malformedSecret = "not-a-token"
)

// aclCluster is the small test cluster with Nomad's ACLs on (or off), its
// agent holding a token of the shipped enforce policy, in enforce mode so
// that an allowed scale request writes the job.
func aclCluster(t *testing.T, enabled bool) (*Agent, *sim.Cluster, map[string]string, func()) {
	t.Helper()
	cfg, err := sim.LoadConfig("../sim/testdata/small.hcl")
	if err != nil {
		t.Fatal(err)
	}
	enforce, err := os.ReadFile("../jobs/acl/nomad-enforce.policy.hcl")
	if err != nil {
		t.Fatal(err)
	}
	cfg.ACL = sim.ACLConfig{Enabled: enabled,
		Policies: []sim.ACLPolicyConfig{
			{Name: "foresight", Rules: string(enforce)},
			{Name: "read-only", Rules: `namespace "*" { capabilities = ["list-jobs", "read-job"] }`},
			{Name: "scale", Rules: `namespace "*" { policy = "scale" }`},
			{Name: "operator", Rules: `operator { policy = "write" }`},
			{Name: "other", Rules: `namespace "other" { policy = "write" }`},
		},
		Tokens: []sim.ACLTokenConfig{
			{Name: "foresight", Secret: agentSecret, Policies: []string{"foresight"}},
			{Name: "read-only", Secret: readOnlySecret, Policies: []string{"read-only"}},
			{Name: "scale", Secret: scaleSecret, Policies: []string{"scale"}},
			{Name: "operator", Secret: operatorSecret, Policies: []string{"operator"}},
			{Name: "other", Secret: otherNSSecret, Policies: []string{"other"}},
		},
	}
	if !enabled {
		cfg.ACL = sim.ACLConfig{}
	}
	agents, cluster, stop := startTestClusterOn(t, cfg, 1, 0, func(c *Config) {
		c.Orchestrator = &leader.OrchestratorConfig{Mode: "enforce", DecisionInterval: "1h"}
		if enabled {
			c.Nomad.Token = agentSecret
		}
	})
	tokens := map[string]string{"anonymous": "", "read-only": readOnlySecret, "scale": scaleSecret,
		"operator": operatorSecret, "management": cluster.BootstrapToken(), "other namespace": otherNSSecret}
	wait.Until(t, time.Minute, "a leader", func() bool { return agents[0].term.Load() != nil })
	wait.Until(t, time.Minute, "telemetry of default/app/app", func() bool {
		_, body := call(t, "GET", "http://"+agents[0].HTTPAddr()+"/v1/groups", cluster.BootstrapToken(), "")
		return strings.Contains(body, "default/app/app")
	})
	return agents[0], cluster, tokens, stop
}

// call sends one request with a token and returns the status and body.
func call(t *testing.T, method, u, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Nomad-Token", token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// clusterState is what a write endpoint can change: the pause switch and
// the scaled job.
type clusterState struct {
	paused bool
	writes int64
}

func stateOf(t *testing.T, a *Agent, cluster *sim.Cluster) clusterState {
	t.Helper()
	return clusterState{paused: a.pause.Paused(), writes: cluster.Writes()}
}

// settle lets the job app's deployment end, since Nomad refuses a scale
// while one runs, and returns the group's count.
func settle(t *testing.T, a *Agent, cluster *sim.Cluster) int {
	t.Helper()
	count := 0
	wait.Until(t, time.Minute, "app's deployment to end", func() bool {
		d, _, err := a.nomad.Jobs().LatestDeployment("app", nil)
		if err != nil || d != nil && orchestrator.DeploymentActive(d.Status) {
			cluster.Advance(10 * time.Second)
			return false
		}
		job, _, err := a.nomad.Jobs().Info("app", nil)
		if err != nil {
			return false
		}
		count = *job.TaskGroups[0].Count
		return true
	})
	return count
}

// The matrix: each kind of caller against each write endpoint, with ACLs
// on (and off, where every caller may do everything, as in Nomad). A
// refusal is 403 "Permission denied" and changes nothing; an allowed call
// does what it says.
func TestLeaderAPIAllowsWhatTheNomadTokenAllows(t *testing.T) {
	writes := []struct {
		name, method, path, body string
		// allowed lists the callers that may, with ACLs on.
		allowed []string
		// changed tells whether the call took effect.
		changed func(before, after clusterState) bool
	}{
		{"pause", "POST", "/v1/pause", "", []string{"operator", "management"},
			func(b, a clusterState) bool { return !b.paused && a.paused }},
		{"resume", "POST", "/v1/resume", "", []string{"operator", "management"},
			func(b, a clusterState) bool { return b.paused && !a.paused }},
		{"scale", "POST", "/v1/group/default/app/app/scale", "", []string{"scale", "management"},
			func(b, a clusterState) bool { return a.writes > b.writes }},
	}
	callers := []string{"anonymous", "read-only", "scale", "operator", "management"}
	for _, enabled := range []bool{true, false} {
		t.Run(fmt.Sprintf("acls=%v", enabled), func(t *testing.T) {
			a, cluster, tokens, stop := aclCluster(t, enabled)
			defer stop()
			base := "http://" + a.HTTPAddr()
			for _, w := range writes {
				for _, caller := range callers {
					// Each call starts from the state its endpoint changes.
					switch w.name {
					case "pause":
						if err := a.pause.Set(t.Context(), false); err != nil {
							t.Fatal(err)
						}
					case "resume":
						if err := a.pause.Set(t.Context(), true); err != nil {
							t.Fatal(err)
						}
					}
					body := w.body
					if w.name == "scale" {
						// Every allowed call changes the count, once the
						// last change has rolled out.
						count := 3
						if settle(t, a, cluster) == 3 {
							count = 2
						}
						body = fmt.Sprintf(`{"count": %d, "reason": "matrix"}`, count)
					}
					before := stateOf(t, a, cluster)
					status, resp := call(t, w.method, base+w.path, tokens[caller], body)
					after := stateOf(t, a, cluster)
					allowed := !enabled || contains(w.allowed, caller)
					switch {
					case allowed && status != http.StatusOK:
						t.Errorf("%s by %s: HTTP %d %s, want 200", w.name, caller, status, resp)
					case allowed && !w.changed(before, after):
						t.Errorf("%s by %s: allowed but changed nothing (%+v → %+v): %s", w.name, caller, before, after, resp)
					case !allowed && (status != http.StatusForbidden || !strings.Contains(resp, "Permission denied")):
						t.Errorf("%s by %s: HTTP %d %s, want 403 Permission denied", w.name, caller, status, resp)
					case !allowed && after != before:
						t.Errorf("%s by %s: refused but changed %+v → %+v", w.name, caller, before, after)
					}
				}
			}
			if !enabled {
				return
			}
			// Reads: any valid token sees the status; a group's data and
			// the lists only in namespaces where the token has read-job.
			for _, c := range []struct {
				token, path string
				status      int
				has, lacks  string
			}{
				{"", "/v1/status", 403, "Permission denied", ""},
				{operatorSecret, "/v1/status", 200, `"Leader"`, ""},
				{unknownSecret, "/v1/status", 401, "ACL token not found", ""},
				{malformedSecret, "/v1/status", 401, "ACL token not found", ""},
				{"", "/v1/groups", 403, "", ""},
				{readOnlySecret, "/v1/groups", 200, "default/app/app", ""},
				{otherNSSecret, "/v1/groups", 200, "[]", "default/app/app"},
				{operatorSecret, "/v1/decisions", 200, "[]", "default/app/app"},
				{readOnlySecret, "/v1/decisions", 200, "default/app/app", ""},
				{readOnlySecret, "/v1/group/default/app/app/scale", 200, `"mode":"enforce"`, ""},
				{otherNSSecret, "/v1/group/default/app/app/series?metric=cpu_mhz", 403, "Permission denied", ""},
				{scaleSecret, "/v1/group/default/app/app/forecast?metric=cpu_mhz", 403, "Permission denied", ""},
				{"", "/v1/health", 200, `"ok":true`, ""},
			} {
				status, body := call(t, "GET", base+c.path, c.token, "")
				if status != c.status || !strings.Contains(body, c.has) || c.lacks != "" && strings.Contains(body, c.lacks) {
					t.Errorf("GET %s with token %q: HTTP %d %.200s, want %d with %q", c.path, c.token, status, body, c.status, c.has)
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// The dashboard asks for a token once, keeps it in a cookie scripts cannot
// read, shows only what it may read, and forgets it on logout.
func TestDashboardLogin(t *testing.T) {
	a, _, _, stop := aclCluster(t, true)
	defer stop()
	base := "http://" + a.HTTPAddr()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	resp, err := noRedirect.Get(base + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
		t.Fatalf("anonymous overview: HTTP %d to %q, want 303 to the login form", resp.StatusCode, resp.Header.Get("Location"))
	}
	login := func(token string) *http.Response {
		resp, err := noRedirect.PostForm(base+"/ui/login", url.Values{"token": {token}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := login(unknownSecret); resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Fatalf("unknown token: HTTP %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	page := func(cookie *http.Cookie, path string) (int, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.AddCookie(cookie)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	for _, c := range []struct {
		secret     string
		sees       bool
		groupPage  int
		pageStatus string
	}{{readOnlySecret, true, 200, ""}, {otherNSSecret, false, 403, "Permission denied"}} {
		resp := login(c.secret)
		cookies := resp.Cookies()
		if resp.StatusCode != http.StatusSeeOther || len(cookies) != 1 {
			t.Fatalf("login: HTTP %d, cookies %v", resp.StatusCode, cookies)
		}
		ck := cookies[0]
		if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/ui/" {
			t.Fatalf("cookie %+v: want HttpOnly, SameSite=Strict, Path /ui/", ck)
		}
		status, body := page(ck, "/ui/")
		if status != 200 || strings.Contains(body, "default/app/app") != c.sees || !strings.Contains(body, "Log out") {
			t.Errorf("overview for %s: HTTP %d, shows default/app/app %v (want %v)", ck.Value[:8], status, strings.Contains(body, "default/app/app"), c.sees)
		}
		if status, body := page(ck, "/ui/group/default/app/app"); status != c.groupPage || !strings.Contains(body, c.pageStatus) {
			t.Errorf("group page: HTTP %d, want %d", status, c.groupPage)
		}
		// The cookie is for the dashboard only: the API ignores it.
		if status, _ := page(ck, "/v1/groups"); status != http.StatusForbidden {
			t.Errorf("the API took the dashboard's cookie: HTTP %d", status)
		}
	}
	resp, err = noRedirect.Get(base + "/ui/logout")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cs := resp.Cookies(); len(cs) != 1 || cs[0].MaxAge >= 0 || resp.Header.Get("Location") != "/ui/login" {
		t.Fatalf("logout: cookies %v, to %q", cs, resp.Header.Get("Location"))
	}
}

// The leader's client sends NOMAD_TOKEN; the CLI, the plugins and tests
// reach the leader through it.
func TestClientSendsTheToken(t *testing.T) {
	a, _, _, stop := aclCluster(t, true)
	defer stop()
	client, err := leaderapi.New(leaderapi.Config{Address: "http://" + a.HTTPAddr(), Token: readOnlySecret})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Status(t.Context()); err != nil {
		t.Fatal(err)
	}
	var se *leaderapi.StatusError
	if _, err := client.SetPaused(t.Context(), true); !errors.As(err, &se) || se.Code != http.StatusForbidden {
		t.Fatalf("pause with a read-only token: %v, want 403", err)
	}
}
