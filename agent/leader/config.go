package leader

import (
	"fmt"
	"strings"
	"time"

	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/internal/settings"
	"github.com/foresight-nomad/foresight/orchestrator"
)

// OrchestratorConfig tunes the leader's decisions and says what it may act
// on beyond the jobs themselves: provider capacity, Consul routing and the
// migration of misplaced allocations.
type OrchestratorConfig struct {
	// Mode is the mode of a group whose job does not set foresight.mode:
	// off, recommend (the default) or enforce.
	Mode string `hcl:"mode,optional"`
	// DecisionInterval is how often every group is decided.
	DecisionInterval string `hcl:"decision_interval,optional"`
	// LeadTime is how long new capacity takes to be ready (a provider node
	// and an allocation's start); with one interval it is the horizon.
	LeadTime string `hcl:"lead_time,optional"`
	// Migrate lets the leader move the running allocations of an enforced
	// group to the class it was steered to, one at a time (default true).
	Migrate *bool `hcl:"migrate,optional"`
	// PluginDir holds the Nomad Autoscaler target plugins that capacity
	// blocks name as their driver.
	PluginDir string `hcl:"plugin_dir,optional"`
	// OwnJobs are Foresight's own jobs ("namespace/job", or "job" in the
	// default namespace), never acted on; the job of the agent's own
	// allocation (NOMAD_NAMESPACE, NOMAD_JOB_ID) is one without saying.
	OwnJobs []string `hcl:"own_jobs,optional"`

	Routing  *RoutingConfig   `hcl:"routing,block"`
	Capacity []CapacityConfig `hcl:"capacity,block"`
}

// RoutingConfig says how traffic follows allocations that move between
// platforms.
type RoutingConfig struct {
	// Enabled writes Consul service-resolver and service-splitter entries
	// for enforced groups (default true).
	Enabled *bool `hcl:"enabled,optional"`
	// FabioKey, when set, is the Consul KV key of Fabio's manual route
	// overrides, where route weight lines are kept too.
	FabioKey string `hcl:"fabio_key,optional"`
}

// CapacityConfig is one provider capacity target, in the style of a Nomad
// Autoscaler target block: the plugin that resizes a node group, the
// classes whose nodes it adds and, for a pool that may be at zero nodes,
// what one such node is (orchestrator.CapacityTarget shows a whole block).
type CapacityConfig struct {
	Name         string            `hcl:"name,label"`
	Driver       string            `hcl:"driver"`
	Config       map[string]string `hcl:"config,optional"`
	Target       map[string]string `hcl:"target,optional"`
	Classes      []string          `hcl:"classes"`
	Min          int64             `hcl:"min,optional"`
	Max          int64             `hcl:"max"`
	ScaleInDelay string            `hcl:"scale_in_delay,optional"`
	Node         *NodeConfig       `hcl:"node,block"`
}

// NodeConfig declares the node a capacity target adds, so that its class
// can be chosen and bought while it has no node.
type NodeConfig struct {
	// CPUMHz and MemoryMB are one node's capacity as Nomad will report it
	// (cpu.totalcompute, memory).
	CPUMHz   float64 `hcl:"cpu_mhz"`
	MemoryMB float64 `hcl:"memory_mb"`
	// Class is the resource class it joins (its foresight.class); the
	// first of the block's classes when unset.
	Class string `hcl:"class,optional"`
	// NodeClass, Datacenter and NodePool are Nomad's, when known.
	NodeClass  string `hcl:"node_class,optional"`
	Datacenter string `hcl:"datacenter,optional"`
	NodePool   string `hcl:"node_pool,optional"`
	// Meta is the node metadata it will carry; the foresight.* traits say
	// what it offers before its agent measures it.
	Meta map[string]string `hcl:"meta,optional"`
}

// OrchestratorSettings is the orchestrator block resolved.
type OrchestratorSettings struct {
	Mode             orchestrator.Mode
	DecisionInterval time.Duration
	LeadTime         time.Duration
	Migrate          bool
	Routing          bool
	FabioKey         string
	PluginDir        string
	Capacity         []orchestrator.CapacityTarget
	// OwnJobs are the own_jobs, each as "namespace/job".
	OwnJobs []string
}

// Resolve applies the block's defaults and checks it; a nil block is all
// defaults. Errors name the setting.
func (c *OrchestratorConfig) Resolve() (OrchestratorSettings, error) {
	if c == nil {
		c = &OrchestratorConfig{}
	}
	o := OrchestratorSettings{Mode: orchestrator.Mode(c.Mode), Migrate: true, Routing: true, PluginDir: c.PluginDir}
	switch o.Mode {
	case "":
		o.Mode = orchestrator.DefaultMode
	case orchestrator.ModeOff, orchestrator.ModeRecommend, orchestrator.ModeEnforce:
	default:
		return o, fmt.Errorf("orchestrator.mode must be off, recommend or enforce, not %q", c.Mode)
	}
	var err error
	if o.DecisionInterval, err = settings.Duration("orchestrator.decision_interval", c.DecisionInterval, DefaultDecisionInterval); err != nil {
		return o, err
	}
	if o.LeadTime, err = settings.Duration("orchestrator.lead_time", c.LeadTime, DefaultLeadTime); err != nil {
		return o, err
	}
	if c.Migrate != nil {
		o.Migrate = *c.Migrate
	}
	for _, j := range c.OwnJobs {
		ns, id, ok := strings.Cut(j, "/")
		if !ok {
			ns, id = "default", j
		}
		if ns == "" || id == "" || strings.Contains(id, "/") {
			return o, fmt.Errorf("orchestrator.own_jobs: %q is not \"namespace/job\" or \"job\"", j)
		}
		o.OwnJobs = append(o.OwnJobs, ns+"/"+id)
	}
	if r := c.Routing; r != nil {
		if r.Enabled != nil {
			o.Routing = *r.Enabled
		}
		o.FabioKey = r.FabioKey
	}
	names := map[string]bool{}
	for _, cc := range c.Capacity {
		if names[cc.Name] {
			return o, fmt.Errorf("orchestrator.capacity %q is declared twice", cc.Name)
		}
		names[cc.Name] = true
		t, err := capacityTarget(cc)
		if err != nil {
			return o, fmt.Errorf("orchestrator.capacity %q: %w", cc.Name, err)
		}
		o.Capacity = append(o.Capacity, t)
	}
	// The same checks the leader makes when it opens the plugins: a class
	// belongs to one target only.
	none := func(orchestrator.CapacityTarget) (orchestrator.Target, error) { return nil, nil }
	if _, err := orchestrator.NewCapacity(o.Capacity, none, clock.Real{}, nil); err != nil {
		return o, fmt.Errorf("orchestrator: %w", err)
	}
	if len(o.Capacity) > 0 && o.PluginDir == "" {
		return o, fmt.Errorf("orchestrator.plugin_dir is needed to load the capacity targets' plugins")
	}
	return o, nil
}

// capacityTarget turns one capacity block into the orchestrator's target,
// checked.
func capacityTarget(c CapacityConfig) (orchestrator.CapacityTarget, error) {
	t := orchestrator.CapacityTarget{
		Name: c.Name, Driver: c.Driver, Config: c.Config, Target: c.Target,
		Classes: c.Classes, Min: c.Min, Max: c.Max,
	}
	if n := c.Node; n != nil {
		t.Node = &orchestrator.NodeSpec{CPUMHz: n.CPUMHz, MemoryMB: n.MemoryMB, Class: n.Class,
			NodeClass: n.NodeClass, Datacenter: n.Datacenter, Pool: n.NodePool, Meta: n.Meta}
	}
	var err error
	if t.ScaleInDelay, err = settings.Duration("scale_in_delay", c.ScaleInDelay, orchestrator.DefaultScaleInDelay); err != nil {
		return t, err
	}
	return t, t.Validate()
}
