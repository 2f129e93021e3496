package nomadacl

import (
	"os"
	"testing"
)

func mustParse(t *testing.T, rules string) *Policy {
	t.Helper()
	p, err := Parse(rules)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNamespaceRulesAsNomadAppliesThem(t *testing.T) {
	readAll := mustParse(t, `namespace "*" { policy = "read" }`)
	prodDeny := mustParse(t, `namespace "prod" { policy = "deny" }`)
	scaleWeb := mustParse(t, `
namespace "web-*" {
  policy       = "scale"
  capabilities = ["alloc-lifecycle",]
}`)
	operator := mustParse(t, `operator { policy = "write" }`)
	nodeRead := mustParse(t, `node { policy = "read" }
agent { policy = "write" }`)
	cases := []struct {
		name     string
		acl      *ACL
		ns, cap  string
		want     bool
		scope    Scope
		write    bool
		scopeAns bool
	}{
		{name: "anonymous", acl: New(), ns: "default", cap: CapReadJob},
		{name: "nil", acl: nil, ns: "default", cap: CapReadJob},
		{name: "read includes read-job", acl: New(readAll), ns: "default", cap: CapReadJob, want: true},
		{name: "read includes parse-job", acl: New(readAll), ns: "x", cap: CapParseJob, want: true},
		{name: "read excludes submit", acl: New(readAll), ns: "default", cap: CapSubmitJob},
		{name: "read excludes scale", acl: New(readAll), ns: "default", cap: CapScaleJob},
		{name: "exact deny beats glob read", acl: New(readAll, prodDeny), ns: "prod", cap: CapReadJob},
		{name: "deny leaves other namespaces", acl: New(readAll, prodDeny), ns: "dev", cap: CapReadJob, want: true},
		{name: "closest glob wins", acl: New(readAll, scaleWeb), ns: "web-eu", cap: CapReadJob},
		{name: "closest glob grants scale", acl: New(readAll, scaleWeb), ns: "web-eu", cap: CapScaleJob, want: true},
		{name: "capabilities add to policy", acl: New(scaleWeb), ns: "web-eu", cap: CapAllocLifecycle, want: true},
		{name: "glob does not match", acl: New(scaleWeb), ns: "api", cap: CapScaleJob},
		{name: "management", acl: Management(), ns: "any", cap: CapSubmitJob, want: true, scope: Operator, write: true, scopeAns: true},
		{name: "operator write", acl: New(operator), scope: Operator, write: true, scopeAns: true},
		{name: "operator write has no namespace", acl: New(operator), ns: "default", cap: CapReadJob},
		{name: "node read cannot write", acl: New(nodeRead), scope: Node, write: true},
		{name: "node read reads", acl: New(nodeRead), scope: Node, scopeAns: true},
		{name: "agent write reads", acl: New(nodeRead), scope: Agent, scopeAns: true},
		{name: "no operator rule", acl: New(readAll), scope: Operator, write: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.cap != "" {
				if got := c.acl.AllowNamespace(c.ns, c.cap); got != c.want {
					t.Errorf("AllowNamespace(%q, %q) = %v, want %v", c.ns, c.cap, got, c.want)
				}
			}
			if c.scope != "" {
				if got := c.acl.Allow(c.scope, c.write); got != c.scopeAns {
					t.Errorf("Allow(%s, write=%v) = %v, want %v", c.scope, c.write, got, c.scopeAns)
				}
			}
		})
	}
}

func TestParseRefusesWhatNomadRefuses(t *testing.T) {
	for _, rules := range []string{
		`namespace "default" { policy = "admin" }`,
		`namespace "default" { capabilities = ["read-jobs"] }`,
		`node { policy = "scale" }`,
		`operator { policy = "list" }`,
		``,
		`namespace "default" {`,
	} {
		if _, err := Parse(rules); err == nil {
			t.Errorf("Parse(%q): no error", rules)
		}
	}
}

// The shipped policies parse, in HCL and as the RulesJSON Nomad derives.
func TestShippedPoliciesParse(t *testing.T) {
	for _, file := range []string{"nomad-recommend.policy.hcl", "nomad-enforce.policy.hcl"} {
		b, err := os.ReadFile("../../jobs/acl/" + file)
		if err != nil {
			t.Fatal(err)
		}
		p := mustParse(t, string(b))
		acl := New(p)
		if !acl.AllowNamespace("default", CapReadJob) || !acl.Allow(Node, true) {
			t.Errorf("%s: does not grant read-job and node write", file)
		}
	}
	enforce := []byte(`{"Agent":{"Policy":"read"},"HostVolumes":null,"Namespaces":[{"Capabilities":["list-jobs","read-job","submit-job","alloc-lifecycle"],"Name":"*","Policy":"","Variables":null}],"Node":{"Policy":"write"},"NodePools":null,"Operator":null,"Plugin":null,"Quota":null}`)
	p, err := ParseJSON(enforce)
	if err != nil {
		t.Fatal(err)
	}
	if a := New(p); !a.AllowNamespace("ns1", CapSubmitJob) || a.AllowNamespace("ns1", CapScaleJob) || a.Allow(Operator, false) {
		t.Errorf("RulesJSON of the enforce policy read as %+v", p)
	}
}
