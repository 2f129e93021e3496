package nomadacl

import (
	"slices"
	"strings"
)

// ACL is what one token may do: the merge of its policies, or everything
// for a management token. The zero value allows nothing (an anonymous
// caller with no anonymous policy).
type ACL struct {
	management bool
	// exact and globs hold the namespace rules by name; a name with "*"
	// is a glob.
	exact map[string]capSet
	globs map[string]capSet
	// coarse holds node, agent, operator, quota and plugin.
	coarse map[Scope]string
}

// capSet is the capabilities one namespace rule grants after merging.
type capSet map[string]bool

// Scope names a rule with a coarse disposition only.
type Scope string

// The coarse scopes.
const (
	Node     Scope = "node"
	Agent    Scope = "agent"
	Operator Scope = "operator"
	Quota    Scope = "quota"
	Plugin   Scope = "plugin"
)

// Management is the ACL of a management token: everything is allowed.
func Management() *ACL { return &ACL{management: true} }

// New merges policies into the ACL of a token that holds them all: a rule
// that denies wins over any grant; otherwise the capabilities of every
// policy add up, and a coarse write includes read.
func New(policies ...*Policy) *ACL {
	a := &ACL{exact: map[string]capSet{}, globs: map[string]capSet{}, coarse: map[Scope]string{}}
	for _, p := range policies {
		for _, ns := range p.Namespaces {
			m := a.exact
			if strings.Contains(ns.Name, "*") {
				m = a.globs
			}
			set := m[ns.Name]
			if set == nil {
				set = capSet{}
				m[ns.Name] = set
			}
			for _, c := range append(expand(ns.Policy), ns.Capabilities...) {
				set[c] = true
			}
		}
		for scope, level := range map[Scope]string{Node: p.Node, Agent: p.Agent, Operator: p.Operator, Quota: p.Quota, Plugin: p.Plugin} {
			a.coarse[scope] = mergeLevel(a.coarse[scope], level)
		}
	}
	return a
}

// mergeLevel combines two coarse dispositions: deny wins, then write,
// read, list.
func mergeLevel(a, b string) string {
	rank := func(l string) int {
		return slices.Index([]string{"", PolicyList, PolicyRead, PolicyWrite, PolicyDeny}, l)
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// IsManagement reports whether the ACL is a management token's.
func (a *ACL) IsManagement() bool { return a != nil && a.management }

// rule is the namespace rule that governs ns: the one named exactly, else
// the matching glob closest to the name (the fewest characters the glob's
// wildcards stand for), as Nomad picks it.
func (a *ACL) rule(ns string) capSet {
	if set, ok := a.exact[ns]; ok {
		return set
	}
	var best capSet
	bestDiff := -1
	for glob, set := range a.globs {
		if !globMatch(glob, ns) {
			continue
		}
		diff := len(ns) - len(strings.ReplaceAll(glob, "*", ""))
		if bestDiff < 0 || diff < bestDiff {
			best, bestDiff = set, diff
		}
	}
	return best
}

// AllowNamespace reports whether the ACL grants any of caps in namespace
// ns; a deny in the rule that governs ns refuses all.
func (a *ACL) AllowNamespace(ns string, caps ...string) bool {
	if a == nil {
		return false
	}
	if a.management {
		return true
	}
	set := a.rule(ns)
	if set == nil || set[CapDeny] {
		return false
	}
	for _, c := range caps {
		if set[c] {
			return true
		}
	}
	return false
}

// Allow reports whether the ACL's rule for scope allows writing (write)
// or reading (!write).
func (a *ACL) Allow(scope Scope, write bool) bool {
	if a == nil {
		return false
	}
	if a.management {
		return true
	}
	switch a.coarse[scope] {
	case PolicyWrite:
		return true
	case PolicyRead:
		return !write
	}
	return false
}

// globMatch reports whether name matches pattern, in which "*" stands for
// any run of characters.
func globMatch(pattern, name string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == name
	}
	if !strings.HasPrefix(name, parts[0]) {
		return false
	}
	name = name[len(parts[0]):]
	for i, part := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(name, part)
		}
		j := strings.Index(name, part)
		if j < 0 {
			return false
		}
		name = name[j+len(part):]
	}
	return true
}

// Grants reports whether the ACL allows anything at all: a management
// token, or a rule that is not a deny.
func (a *ACL) Grants() bool {
	if a == nil {
		return false
	}
	if a.management {
		return true
	}
	for _, m := range []map[string]capSet{a.exact, a.globs} {
		for _, set := range m {
			if !set[CapDeny] && len(set) > 0 {
				return true
			}
		}
	}
	for _, level := range a.coarse {
		if level != "" && level != PolicyDeny {
			return true
		}
	}
	return false
}
