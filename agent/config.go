// Package agent is the Foresight agent: the node role that samples every
// task, fingerprints the node and ships telemetry, and the leader role that
// one elected agent runs on top of it.
package agent

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/orchestrator"
)

// Defaults of the agent's configuration.
const (
	DefaultBind           = "0.0.0.0:7460"
	DefaultSampleInterval = 10 * time.Second
	DefaultDataDir        = "/var/lib/foresight"
	DefaultBufferBytes    = 256 << 20
	DefaultBufferAge      = 14 * 24 * time.Hour
	DefaultCgroupRoot     = "/sys/fs/cgroup"
	DefaultProcRoot       = "/proc"
	DefaultSysRoot        = "/sys"
)

// Config is the agent's configuration: HCL in the style of Nomad's agent
// config, refined by flags. The zero value of every field means "default";
// the Nomad and Consul addresses and tokens default to the standard
// environment variables, as the official clients read them.
type Config struct {
	// NodeID is the Nomad node this agent speaks for; empty means the node
	// of the local Nomad agent.
	NodeID string `hcl:"node_id,optional"`
	// DataDir holds the telemetry buffer.
	DataDir string `hcl:"data_dir,optional"`
	// Bind is where the HTTP API, dashboard and /metrics listen.
	Bind string `hcl:"bind,optional"`
	// GRPCBind is where the leader's ingest listens; default the port after Bind's.
	GRPCBind string `hcl:"grpc_bind,optional"`
	// Advertise is the host others dial to reach this agent.
	Advertise string `hcl:"advertise,optional"`
	// SampleInterval is how often every task is sampled.
	SampleInterval string `hcl:"sample_interval,optional"`
	// Platform overrides the fingerprinted platform: external or provider.
	Platform string `hcl:"platform,optional"`
	// LogLevel is trace, debug, info, warn or error.
	LogLevel string `hcl:"log_level,optional"`

	Nomad  *NomadConfig  `hcl:"nomad,block"`
	Consul *ConsulConfig `hcl:"consul,block"`
	Host   *HostConfig   `hcl:"host,block"`
	Sim    *SimConfig    `hcl:"sim,block"`
	Buffer *BufferConfig `hcl:"buffer,block"`
	Leader *LeaderConfig `hcl:"leader,block"`
	TLS    *TLSConfig    `hcl:"tls,block"`

	Orchestrator *OrchestratorConfig `hcl:"orchestrator,block"`
}

// NomadConfig says how to reach Nomad.
type NomadConfig struct {
	Address string `hcl:"address,optional"`
	Token   string `hcl:"token,optional"`
	Region  string `hcl:"region,optional"`
}

// ConsulConfig says how to reach Consul.
type ConsulConfig struct {
	Address string `hcl:"address,optional"`
	Token   string `hcl:"token,optional"`
}

// HostConfig says where the host's kernel files are, for reading task
// cgroups, network namespaces and the node fingerprint.
type HostConfig struct {
	CgroupRoot string `hcl:"cgroup_root,optional"`
	// CgroupParent is Nomad's cgroup parent (client cgroup_parent); empty
	// means Nomad's default for the cgroup version found.
	CgroupParent string `hcl:"cgroup_parent,optional"`
	ProcRoot     string `hcl:"proc_root,optional"`
	SysRoot      string `hcl:"sys_root,optional"`
	// AllocDir is Nomad's allocation directory, whose disk is fingerprinted.
	AllocDir string `hcl:"alloc_dir,optional"`
	// NetworkInterface is the link whose speed is fingerprinted; empty
	// means the first physical interface.
	NetworkInterface string `hcl:"network_interface,optional"`
}

// SimConfig makes the agent read what Nomad does not serve (disk, network,
// pressure stall, host traits) from a simulated cluster instead of the host.
type SimConfig struct {
	Enabled bool `hcl:"enabled,optional"`
}

// BufferConfig bounds the durable telemetry buffer.
type BufferConfig struct {
	MaxBytes int64  `hcl:"max_bytes,optional"`
	MaxAge   string `hcl:"max_age,optional"`
}

// LeaderConfig tunes the election.
type LeaderConfig struct {
	Key        string `hcl:"key,optional"`
	SessionTTL string `hcl:"session_ttl,optional"`
	LockDelay  string `hcl:"lock_delay,optional"`
}

// TLSConfig turns on mutual TLS between agents and the leader.
type TLSConfig struct {
	CAFile   string `hcl:"ca_file,optional"`
	CertFile string `hcl:"cert_file,optional"`
	KeyFile  string `hcl:"key_file,optional"`
}

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
// Autoscaler target block: the plugin that resizes a node group and the
// classes whose nodes it adds.
type CapacityConfig struct {
	Name         string            `hcl:"name,label"`
	Driver       string            `hcl:"driver"`
	Config       map[string]string `hcl:"config,optional"`
	Target       map[string]string `hcl:"target,optional"`
	Classes      []string          `hcl:"classes"`
	Min          int64             `hcl:"min,optional"`
	Max          int64             `hcl:"max"`
	ScaleInDelay string            `hcl:"scale_in_delay,optional"`
}

// LoadConfig reads an agent config file; errors name the file and line.
func LoadConfig(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read agent config: %w", err)
	}
	f, diags := hclparse.NewParser().ParseHCL(src, path)
	if diags.HasErrors() {
		return nil, diags
	}
	var cfg Config
	if diags := gohcl.DecodeBody(f.Body, nil, &cfg); diags.HasErrors() {
		return nil, diags
	}
	return &cfg, nil
}

// Settings is a Config with defaults applied and values parsed and checked.
type Settings struct {
	NodeID         string
	DataDir        string
	Bind           string
	GRPCBind       string
	Advertise      string
	SampleInterval time.Duration
	Platform       string
	LogLevel       string
	Nomad          NomadConfig
	Consul         ConsulConfig
	Host           HostConfig
	Sim            bool
	BufferBytes    int64
	BufferAge      time.Duration
	LeaderKey      string
	SessionTTL     time.Duration
	LockDelay      time.Duration
	TLS            TLSConfig
	Orchestrator   OrchestratorSettings
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
}

// Resolve applies defaults and the environment, and checks every value; an
// impossible config is refused with the setting named.
func (c *Config) Resolve() (*Settings, error) {
	s := &Settings{
		NodeID:    c.NodeID,
		DataDir:   or(c.DataDir, DefaultDataDir),
		Bind:      or(c.Bind, DefaultBind),
		GRPCBind:  c.GRPCBind,
		Advertise: c.Advertise,
		Platform:  c.Platform,
		LogLevel:  or(c.LogLevel, "info"),
	}
	var err error
	if s.SampleInterval, err = duration("sample_interval", c.SampleInterval, DefaultSampleInterval); err != nil {
		return nil, err
	}
	switch s.Platform {
	case "", "external", "provider":
	default:
		return nil, fmt.Errorf("platform must be \"external\" or \"provider\", not %q", s.Platform)
	}
	bindHost, bindPort, err := splitHostPort("bind", s.Bind)
	if err != nil {
		return nil, err
	}
	if s.GRPCBind == "" {
		s.GRPCBind = net.JoinHostPort(bindHost, strconv.Itoa(bindPort+1))
	} else if _, _, err := splitHostPort("grpc_bind", s.GRPCBind); err != nil {
		return nil, err
	}
	if c.Nomad != nil {
		s.Nomad = *c.Nomad
	}
	if c.Consul != nil {
		s.Consul = *c.Consul
	}
	if c.Host != nil {
		s.Host = *c.Host
	}
	s.Host.CgroupRoot = or(s.Host.CgroupRoot, DefaultCgroupRoot)
	s.Host.ProcRoot = or(s.Host.ProcRoot, DefaultProcRoot)
	s.Host.SysRoot = or(s.Host.SysRoot, DefaultSysRoot)
	s.Sim = c.Sim != nil && c.Sim.Enabled
	s.BufferBytes = DefaultBufferBytes
	s.BufferAge = DefaultBufferAge
	if c.Buffer != nil {
		if c.Buffer.MaxBytes < 0 {
			return nil, fmt.Errorf("buffer.max_bytes cannot be negative")
		}
		if c.Buffer.MaxBytes > 0 {
			s.BufferBytes = c.Buffer.MaxBytes
		}
		if s.BufferAge, err = duration("buffer.max_age", c.Buffer.MaxAge, DefaultBufferAge); err != nil {
			return nil, err
		}
	}
	lc := LeaderConfig{}
	if c.Leader != nil {
		lc = *c.Leader
	}
	s.LeaderKey = lc.Key
	if s.SessionTTL, err = duration("leader.session_ttl", lc.SessionTTL, 0); err != nil {
		return nil, err
	}
	if s.LockDelay, err = duration("leader.lock_delay", lc.LockDelay, 0); err != nil {
		return nil, err
	}
	if c.TLS != nil {
		s.TLS = *c.TLS
		set := 0
		for _, f := range []string{s.TLS.CAFile, s.TLS.CertFile, s.TLS.KeyFile} {
			if f != "" {
				set++
			}
		}
		if set != 0 && set != 3 {
			return nil, fmt.Errorf("tls needs all of ca_file, cert_file and key_file, or none")
		}
	}
	if s.Orchestrator, err = resolveOrchestrator(c.Orchestrator); err != nil {
		return nil, err
	}
	return s, nil
}

func resolveOrchestrator(c *OrchestratorConfig) (OrchestratorSettings, error) {
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
	if o.DecisionInterval, err = duration("orchestrator.decision_interval", c.DecisionInterval, DefaultDecisionInterval); err != nil {
		return o, err
	}
	if o.LeadTime, err = duration("orchestrator.lead_time", c.LeadTime, DefaultLeadTime); err != nil {
		return o, err
	}
	if c.Migrate != nil {
		o.Migrate = *c.Migrate
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

// TLSEnabled reports whether agent↔leader traffic uses mutual TLS.
func (s *Settings) TLSEnabled() bool { return s.TLS.CAFile != "" }

func duration(name, s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s: %q is not a positive duration such as \"10s\"", name, s)
	}
	return d, nil
}

func splitHostPort(name, addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", name, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65534 {
		return "", 0, fmt.Errorf("%s: %q is not a usable port", name, port)
	}
	return host, p, nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// capacityTarget turns one capacity block into the orchestrator's target,
// checked.
func capacityTarget(c CapacityConfig) (orchestrator.CapacityTarget, error) {
	t := orchestrator.CapacityTarget{
		Name: c.Name, Driver: c.Driver, Config: c.Config, Target: c.Target,
		Classes: c.Classes, Min: c.Min, Max: c.Max,
	}
	var err error
	if t.ScaleInDelay, err = duration("scale_in_delay", c.ScaleInDelay, orchestrator.DefaultScaleInDelay); err != nil {
		return t, err
	}
	return t, t.Validate()
}

// NomadConfig is the Nomad client configuration the settings give: the
// environment's defaults (NOMAD_ADDR, NOMAD_TOKEN, …) overridden by the
// nomad block.
func (s *Settings) NomadConfig() *nomadapi.Config {
	cfg := nomadapi.DefaultConfig()
	if s.Nomad.Address != "" {
		cfg.Address = s.Nomad.Address
	}
	if s.Nomad.Token != "" {
		cfg.SecretID = s.Nomad.Token
	}
	if s.Nomad.Region != "" {
		cfg.Region = s.Nomad.Region
	}
	return cfg
}
