package sim

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// aclCluster is the fixtures' cluster with ACLs on, served over HTTP, and
// a client token per policy.
func aclCluster(t *testing.T) (*Cluster, string, map[string]string) {
	t.Helper()
	src := `
acl {
  enabled = true
  policy "read" { rules = "namespace \"default\" { policy = \"read\" }" }
  policy "scale" { rules = "namespace \"*\" { policy = \"scale\" }" }
  policy "lifecycle" {
    rules = <<EOT
namespace "default" {
  capabilities = ["read-job", "alloc-lifecycle"]
}
node {
  policy = "read"
}
EOT
  }
  policy "other" { rules = "namespace \"other\" { policy = \"write\" }" }
}
`
	base, err := LoadConfig(fixtureCluster)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig("acl.hcl", []byte(src+`node_group "vm" {
  platform = "external"
  cpu_mhz = 2000
  cores = 2
  memory_mb = 4096
  disk_mb = 10000
}`))
	if err != nil {
		t.Fatal(err)
	}
	base.ACL = cfg.ACL
	c, err := New(base, Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	tokens := map[string]string{"anonymous": "", "management": c.BootstrapToken(), "unknown": "0b7a5a4e-1111-4222-8333-444455556666"}
	for _, p := range []string{"read", "scale", "lifecycle", "other"} {
		tok, err := c.CreateACLToken(p, p)
		if err != nil {
			t.Fatal(err)
		}
		tokens[p] = tok.SecretID
	}
	return c, srv.URL, tokens
}

func TestACLsAnswerAsNomad(t *testing.T) {
	c, url, tokens := aclCluster(t)
	var alloc string
	c.mu.Lock()
	for _, a := range c.allocList {
		if a.api.JobID == "web" && a.running() {
			alloc = a.api.ID
		}
	}
	c.mu.Unlock()
	cases := []struct {
		token, method, path, body string
		status                    int
		text                      string
	}{
		{"anonymous", "GET", "/v1/jobs", "", 403, "Permission denied"},
		{"unknown", "GET", "/v1/jobs", "", 403, "ACL token not found"},
		{"anonymous", "GET", "/v1/status/leader", "", 200, ""},
		{"read", "GET", "/v1/jobs", "", 200, ""},
		{"read", "GET", "/v1/jobs?namespace=other", "", 403, "Permission denied"},
		{"read", "GET", "/v1/job/web", "", 200, ""},
		{"read", "GET", "/v1/nodes", "", 403, "Permission denied"},
		{"read", "POST", "/v1/job/web/scale", `{"Count": 3, "Target": {"Group": "web"}}`, 403, "Permission denied"},
		{"scale", "GET", "/v1/job/web", "", 403, "Permission denied"},
		{"scale", "GET", "/v1/job/web/scale", "", 200, ""},
		{"scale", "GET", "/v1/scaling/policies", "", 200, ""},
		{"read", "POST", "/v1/allocation/" + alloc + "/stop", "", 403, "Permission denied"},
		{"lifecycle", "GET", "/v1/nodes", "", 200, ""},
		{"lifecycle", "POST", "/v1/client/metadata", `{"NodeID": "x", "Meta": {"a": "b"}}`, 403, "Permission denied"},
		{"anonymous", "GET", "/v1/acl/token/self", "", 404, "ACL token not found"},
		{"unknown", "GET", "/v1/acl/token/self", "", 404, "ACL token not found"},
		{"read", "GET", "/v1/acl/policy/scale", "", 403, "Permission denied"},
		{"read", "GET", "/v1/acl/policy/read", "", 200, ""},
		{"read", "GET", "/v1/acl/tokens", "", 403, "Permission denied"},
		{"management", "GET", "/v1/acl/tokens", "", 200, ""},
		{"read", "PUT", "/v1/acl/policy/x", `{"Name": "x", "Rules": "node { policy = \"write\" }"}`, 403, "Permission denied"},
		{"management", "PUT", "/v1/acl/policy/x", `{"Name": "x", "Rules": "node { policy = \"admin\" }"}`, 400, ""},
		{"management", "POST", "/v1/acl/bootstrap", "", 400, ""},
		{"scale", "POST", "/v1/job/web/scale", `{"Count": 3, "Target": {"Group": "web"}}`, 200, ""},
		{"lifecycle", "POST", "/v1/allocation/" + alloc + "/stop", "", 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.token+" "+tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, url+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if s := tokens[tc.token]; s != "" {
				req.Header.Set("X-Nomad-Token", s)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || tc.text != "" && string(b) != tc.text {
				t.Fatalf("%d %q, want %d %q", resp.StatusCode, b, tc.status, tc.text)
			}
		})
	}
}

// A wildcard list holds only what the token may read, as Nomad filters it.
func TestACLsFilterWildcardLists(t *testing.T) {
	c, url, tokens := aclCluster(t)
	c.mu.Lock()
	other := copyJob(c.jobs[jobKey{"default", "web"}].current())
	c.mu.Unlock()
	ns := "other"
	other.Namespace = &ns
	if _, err := c.Register(other, false, 0); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	for _, tc := range []struct {
		token string
		want  map[string]bool
	}{
		{"read", map[string]bool{"default": true}},
		{"other", map[string]bool{"other": true}},
		{"management", map[string]bool{"default": true, "other": true}},
		{"scale", map[string]bool{}},
	} {
		client, err := api.NewClient(&api.Config{Address: url, SecretID: tokens[tc.token]})
		if err != nil {
			t.Fatal(err)
		}
		allocs, _, err := client.Allocations().List(&api.QueryOptions{Namespace: "*"})
		if err != nil {
			t.Fatalf("%s: %v", tc.token, err)
		}
		seen := map[string]bool{}
		for _, a := range allocs {
			seen[a.Namespace] = true
		}
		if len(seen) != len(tc.want) {
			t.Errorf("%s sees allocations in %v, want %v", tc.token, seen, tc.want)
		}
		for ns := range tc.want {
			if !seen[ns] {
				t.Errorf("%s sees allocations in %v, want %v", tc.token, seen, tc.want)
			}
		}
	}
}

func TestACLEndpointsWithACLsOff(t *testing.T) {
	e := newFixtureEnv(t)
	resp, body := e.do("GET", "/v1/acl/token/self", nil, map[string]string{"X-Nomad-Token": "0b7a5a4e-1111-4222-8333-444455556666"})
	if resp.StatusCode != 400 || string(body) != "ACL support disabled" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if resp, _ := e.do("GET", "/v1/jobs", nil); resp.StatusCode != 200 {
		t.Fatalf("anonymous read with ACLs off: %d", resp.StatusCode)
	}
}
