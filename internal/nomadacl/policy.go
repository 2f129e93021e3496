// Package nomadacl reads Nomad ACL policies and answers what a token of
// them may do, by Nomad's rules: namespace rules by exact name or the
// closest glob, coarse policies expanded to capabilities, deny over
// everything, and the union of a token's policies otherwise. The leader
// uses it to decide what a caller's Nomad token allows in Foresight's API,
// and sim uses it to answer Nomad's API as Nomad would; both read the same
// rule language, so one evaluator serves both.
package nomadacl

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// Coarse policy dispositions.
const (
	PolicyDeny  = "deny"
	PolicyRead  = "read"
	PolicyWrite = "write"
	PolicyScale = "scale"
	PolicyList  = "list"
)

// Namespace capabilities (Nomad 1.6).
const (
	CapDeny                 = "deny"
	CapListJobs             = "list-jobs"
	CapParseJob             = "parse-job"
	CapReadJob              = "read-job"
	CapSubmitJob            = "submit-job"
	CapDispatchJob          = "dispatch-job"
	CapReadLogs             = "read-logs"
	CapReadFS               = "read-fs"
	CapAllocExec            = "alloc-exec"
	CapAllocNodeExec        = "alloc-node-exec"
	CapAllocLifecycle       = "alloc-lifecycle"
	CapCSIRegisterPlugin    = "csi-register-plugin"
	CapCSIWriteVolume       = "csi-write-volume"
	CapCSIReadVolume        = "csi-read-volume"
	CapCSIListVolume        = "csi-list-volume"
	CapCSIMountVolume       = "csi-mount-volume"
	CapListScalingPolicies  = "list-scaling-policies"
	CapReadScalingPolicy    = "read-scaling-policy"
	CapReadJobScaling       = "read-job-scaling"
	CapScaleJob             = "scale-job"
	CapSubmitRecommendation = "submit-recommendation"
	CapSentinelOverride     = "sentinel-override"
)

// validCaps are the namespace capabilities a policy may name.
var validCaps = []string{
	CapDeny, CapListJobs, CapParseJob, CapReadJob, CapSubmitJob, CapDispatchJob, CapReadLogs, CapReadFS,
	CapAllocExec, CapAllocNodeExec, CapAllocLifecycle, CapCSIRegisterPlugin, CapCSIWriteVolume,
	CapCSIReadVolume, CapCSIListVolume, CapCSIMountVolume, CapListScalingPolicies, CapReadScalingPolicy,
	CapReadJobScaling, CapScaleJob, CapSubmitRecommendation, CapSentinelOverride,
}

// expand is the set of capabilities a coarse namespace policy stands for,
// as Nomad's documentation lists them: read lets a token list, parse and
// read jobs, their scaling and CSI volumes; write adds changing them; scale
// is the autoscaler's set.
func expand(policy string) []string {
	read := []string{CapListJobs, CapParseJob, CapReadJob, CapCSIListVolume, CapCSIReadVolume,
		CapReadJobScaling, CapListScalingPolicies, CapReadScalingPolicy}
	switch policy {
	case PolicyDeny:
		return []string{CapDeny}
	case PolicyRead:
		return read
	case PolicyWrite:
		return append(read, CapScaleJob, CapSubmitJob, CapDispatchJob, CapReadLogs, CapReadFS, CapAllocExec,
			CapAllocLifecycle, CapCSIMountVolume, CapCSIWriteVolume, CapSubmitRecommendation)
	case PolicyScale:
		return []string{CapListScalingPolicies, CapReadScalingPolicy, CapReadJobScaling, CapScaleJob}
	}
	return nil
}

// Policy is one parsed ACL policy: its rules, in the shape of Nomad's
// RulesJSON.
type Policy struct {
	Namespaces  []NamespaceRule
	HostVolumes []NamespaceRule
	// Node, Agent, Operator, Quota and Plugin are coarse dispositions
	// ("deny", "read", "write"; Plugin also "list"), "" when absent.
	Node, Agent, Operator, Quota, Plugin string
}

// NamespaceRule grants capabilities in the namespaces its name (or glob)
// matches.
type NamespaceRule struct {
	Name         string
	Policy       string
	Capabilities []string
}

// hclPolicy is the policy's HCL form.
type hclPolicy struct {
	Namespaces  []hclNamespace `hcl:"namespace,block"`
	HostVolumes []hclNamespace `hcl:"host_volume,block"`
	Node        *hclCoarse     `hcl:"node,block"`
	Agent       *hclCoarse     `hcl:"agent,block"`
	Operator    *hclCoarse     `hcl:"operator,block"`
	Quota       *hclCoarse     `hcl:"quota,block"`
	Plugin      *hclCoarse     `hcl:"plugin,block"`
	// Nomad's other rules (node_pool, variables) grant nothing Foresight
	// or sim checks; they are accepted and ignored.
	Rest hcl.Body `hcl:",remain"`
}

type hclNamespace struct {
	Name         string   `hcl:"name,label"`
	Policy       string   `hcl:"policy,optional"`
	Capabilities []string `hcl:"capabilities,optional"`
	Rest         hcl.Body `hcl:",remain"`
}

type hclCoarse struct {
	Policy string `hcl:"policy"`
}

func (c *hclCoarse) level() string {
	if c == nil {
		return ""
	}
	return c.Policy
}

// Parse reads a policy's rules in Nomad's rule language (HCL, or the same
// in JSON) and checks them as Nomad does when a policy is applied.
func Parse(rules string) (*Policy, error) {
	p := hclparse.NewParser()
	var f *hcl.File
	var diags hcl.Diagnostics
	if strings.HasPrefix(strings.TrimSpace(rules), "{") {
		f, diags = p.ParseJSON([]byte(rules), "policy.json")
	} else {
		f, diags = p.ParseHCL([]byte(rules), "policy.hcl")
	}
	if diags.HasErrors() {
		return nil, fmt.Errorf("parse ACL policy: %s", diags.Error())
	}
	var raw hclPolicy
	if diags := gohcl.DecodeBody(f.Body, nil, &raw); diags.HasErrors() {
		return nil, fmt.Errorf("parse ACL policy: %s", diags.Error())
	}
	out := &Policy{Node: raw.Node.level(), Agent: raw.Agent.level(), Operator: raw.Operator.level(),
		Quota: raw.Quota.level(), Plugin: raw.Plugin.level()}
	for _, ns := range raw.Namespaces {
		out.Namespaces = append(out.Namespaces, NamespaceRule{Name: ns.Name, Policy: ns.Policy, Capabilities: ns.Capabilities})
	}
	for _, hv := range raw.HostVolumes {
		out.HostVolumes = append(out.HostVolumes, NamespaceRule{Name: hv.Name, Policy: hv.Policy, Capabilities: hv.Capabilities})
	}
	if err := out.Validate(); err != nil {
		return nil, err
	}
	return out, nil
}

// ParseJSON reads a policy's RulesJSON, as Nomad's policy endpoint returns
// it next to the rules' text.
func ParseJSON(rulesJSON []byte) (*Policy, error) {
	var raw struct {
		Namespaces, HostVolumes              []NamespaceRule
		Node, Agent, Operator, Quota, Plugin *hclCoarse
	}
	if err := json.Unmarshal(rulesJSON, &raw); err != nil {
		return nil, fmt.Errorf("parse ACL policy RulesJSON: %w", err)
	}
	out := &Policy{Namespaces: raw.Namespaces, HostVolumes: raw.HostVolumes, Node: raw.Node.level(), Agent: raw.Agent.level(),
		Operator: raw.Operator.level(), Quota: raw.Quota.level(), Plugin: raw.Plugin.level()}
	if err := out.Validate(); err != nil {
		return nil, err
	}
	return out, nil
}

// Validate checks dispositions and capabilities as Nomad does when a
// policy is applied: an unknown one is an error, and so is a policy that
// grants nothing at all.
func (p *Policy) Validate() error {
	coarse := func(what, v string, extra ...string) error {
		if v == "" || v == PolicyDeny || v == PolicyRead || v == PolicyWrite || slices.Contains(extra, v) {
			return nil
		}
		return fmt.Errorf("invalid %s policy: %q", what, v)
	}
	var errs []error
	for _, ns := range p.Namespaces {
		if ns.Policy != "" && expand(ns.Policy) == nil {
			errs = append(errs, fmt.Errorf("invalid namespace policy: %q", ns.Policy))
		}
		for _, c := range ns.Capabilities {
			if !slices.Contains(validCaps, c) {
				errs = append(errs, fmt.Errorf("invalid namespace capability: %q", c))
			}
		}
	}
	errs = append(errs, coarse("node", p.Node), coarse("agent", p.Agent), coarse("operator", p.Operator),
		coarse("quota", p.Quota), coarse("plugin", p.Plugin, PolicyList))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid ACL policy: %w", err)
	}
	if len(p.Namespaces) == 0 && len(p.HostVolumes) == 0 && p.Node == "" && p.Agent == "" && p.Operator == "" && p.Quota == "" && p.Plugin == "" {
		return errors.New("invalid ACL policy: it grants nothing")
	}
	return nil
}
