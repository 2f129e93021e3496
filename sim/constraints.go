package sim

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/hashicorp/nomad/api"
)

// resolveTarget interpolates a constraint target against a node, as Nomad
// does for ${attr.*}, ${meta.*} and ${node.*}. A literal resolves to itself;
// ok is false when the node has no such attribute or metadata.
func resolveTarget(n *simNode, target string) (string, bool) {
	if !strings.HasPrefix(target, "${") || !strings.HasSuffix(target, "}") {
		return target, true
	}
	key := target[2 : len(target)-1]
	switch {
	case key == "node.unique.id":
		return n.api.ID, true
	case key == "node.unique.name":
		return n.api.Name, true
	case key == "node.datacenter":
		return n.api.Datacenter, true
	case key == "node.class":
		return n.api.NodeClass, true
	case key == "node.pool":
		return n.api.NodePool, true
	case key == "node.region":
		return defaultRegion, true
	case strings.HasPrefix(key, "attr."):
		v, ok := n.api.Attributes[key[len("attr."):]]
		return v, ok
	case strings.HasPrefix(key, "meta."):
		v, ok := n.api.Meta[key[len("meta."):]]
		return v, ok
	}
	return "", false
}

// interpolate replaces every ${attr.*}, ${meta.*} and ${node.*} in s with
// the node's value, as Nomad does in service tags and metadata. Unknown
// references are left as they are.
func interpolate(n *simNode, s string) string {
	if !strings.Contains(s, "${") {
		return s
	}
	var b strings.Builder
	for {
		start := strings.Index(s, "${")
		if start < 0 {
			break
		}
		end := strings.Index(s[start:], "}")
		if end < 0 {
			break
		}
		ref := s[start : start+end+1]
		b.WriteString(s[:start])
		if v, ok := resolveTarget(n, ref); ok {
			b.WriteString(v)
		} else {
			b.WriteString(ref)
		}
		s = s[start+end+1:]
	}
	b.WriteString(s)
	return b.String()
}

// matches reports whether node n satisfies "lTarget operand rTarget" with
// Nomad's operators.
func (c *Cluster) matches(n *simNode, lTarget, operand, rTarget string) bool {
	lVal, lOK := resolveTarget(n, lTarget)
	rVal, rOK := resolveTarget(n, rTarget)
	switch operand {
	case api.ConstraintAttributeIsSet:
		return lOK
	case api.ConstraintAttributeIsNotSet:
		return !lOK
	}
	if !lOK || !rOK {
		return false
	}
	switch operand {
	case "", "=", "==", "is":
		return lVal == rVal
	case "!=", "not":
		return lVal != rVal
	case "<", "<=", ">", ">=":
		return compareOrdered(lVal, rVal, operand)
	case api.ConstraintRegex:
		re, err := c.regexp(rVal)
		return err == nil && re.MatchString(lVal)
	case api.ConstraintVersion, api.ConstraintSemver:
		return versionMatches(lVal, rVal)
	case api.ConstraintSetContains, api.ConstraintSetContainsAll:
		return setContains(lVal, rVal, true)
	case api.ConstraintSetContainsAny:
		return setContains(lVal, rVal, false)
	}
	return false
}

// compareOrdered compares as numbers when both sides are numbers and as
// strings otherwise, as Nomad's lexical/numeric comparison does.
func compareOrdered(l, r, op string) bool {
	lf, lerr := strconv.ParseFloat(l, 64)
	rf, rerr := strconv.ParseFloat(r, 64)
	var cmp int
	if lerr == nil && rerr == nil {
		switch {
		case lf < rf:
			cmp = -1
		case lf > rf:
			cmp = 1
		}
	} else {
		cmp = strings.Compare(l, r)
	}
	switch op {
	case "<":
		return cmp < 0
	case "<=":
		return cmp <= 0
	case ">":
		return cmp > 0
	default:
		return cmp >= 0
	}
}

func (c *Cluster) regexp(expr string) (*regexp.Regexp, error) {
	if c.regexps == nil {
		c.regexps = map[string]*regexp.Regexp{}
	}
	if re, ok := c.regexps[expr]; ok {
		return re, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	c.regexps[expr] = re
	return re, nil
}

// setContains checks comma-separated sets: all of r in l, or any of r in l.
func setContains(l, r string, all bool) bool {
	have := map[string]bool{}
	for _, v := range strings.Split(l, ",") {
		have[strings.TrimSpace(v)] = true
	}
	for _, v := range strings.Split(r, ",") {
		in := have[strings.TrimSpace(v)]
		if all && !in {
			return false
		}
		if !all && in {
			return true
		}
	}
	return all
}

// versionMatches checks a dotted version against constraints such as
// ">= 1.2, < 2.0".
func versionMatches(version, constraint string) bool {
	v, ok := parseVersion(version)
	if !ok {
		return false
	}
	for _, part := range strings.Split(constraint, ",") {
		part = strings.TrimSpace(part)
		op := "="
		for _, candidate := range []string{">=", "<=", "!=", ">", "<", "=", "~>"} {
			if strings.HasPrefix(part, candidate) {
				op = candidate
				part = strings.TrimSpace(part[len(candidate):])
				break
			}
		}
		want, ok := parseVersion(part)
		if !ok {
			return false
		}
		cmp := compareVersions(v, want)
		var hold bool
		switch op {
		case "=":
			hold = cmp == 0
		case "!=":
			hold = cmp != 0
		case ">":
			hold = cmp > 0
		case ">=":
			hold = cmp >= 0
		case "<":
			hold = cmp < 0
		case "<=":
			hold = cmp <= 0
		case "~>":
			hold = cmp >= 0 && len(want) > 1 && compareVersions(v[:len(want)-1], want[:len(want)-1]) == 0
		}
		if !hold {
			return false
		}
	}
	return true
}

func parseVersion(s string) ([]int, bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	if i := strings.IndexAny(s, "-+"); i >= 0 {
		s = s[:i]
	}
	var out []int
	for _, p := range strings.Split(s, ".") {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, false
		}
		out = append(out, n)
	}
	return out, len(out) > 0
}

func compareVersions(a, b []int) int {
	for i := 0; i < max(len(a), len(b)); i++ {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}
