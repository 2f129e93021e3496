// Package agent is the Foresight agent: the node role that samples every
// task, fingerprints the node and ships telemetry, and the leader role that
// one elected agent runs on top of it.
package agent

import (
	"cmp"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/foresight-nomad/foresight/agent/leader"
	"github.com/foresight-nomad/foresight/agent/leader/backfill"
	"github.com/foresight-nomad/foresight/agent/node"
	"github.com/foresight-nomad/foresight/internal/settings"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	nomadapi "github.com/hashicorp/nomad/api"
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
	Host   *node.Host    `hcl:"host,block"`
	Sim    *SimConfig    `hcl:"sim,block"`
	Buffer *BufferConfig `hcl:"buffer,block"`
	Leader *LeaderConfig `hcl:"leader,block"`
	TLS    *TLSConfig    `hcl:"tls,block"`

	Orchestrator *leader.OrchestratorConfig `hcl:"orchestrator,block"`
	Prometheus   *backfill.Config           `hcl:"prometheus,block"`
	Telemetry    *leader.TelemetryConfig    `hcl:"telemetry,block"`
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

// SimConfig makes the agent read what Nomad does not serve (disk, network,
// pressure stall, host traits) from a simulated cluster instead of the host.
type SimConfig struct {
	Enabled bool `hcl:"enabled,optional"`
	// Host makes the agent read its tasks from the host block's proc_root
	// and cgroup_root (a generated fake host whose processes carry sim's
	// allocation IDs) instead of sim's telemetry endpoint; the overhead
	// benchmark measures the /proc scan this way.
	Host bool `hcl:"host,optional"`
}

// BufferConfig bounds the durable telemetry buffer.
type BufferConfig struct {
	MaxBytes int64  `hcl:"max_bytes,optional"`
	MaxAge   string `hcl:"max_age,optional"`
}

// LeaderConfig tunes the election (agent/election says what each value
// implies for failover and safety).
type LeaderConfig struct {
	// Key is the Consul KV key of the lock (leaderapi.DefaultKey).
	Key string `hcl:"key,optional"`
	// SessionTTL is the leader's session TTL, at least Consul's 10 s (the
	// default): the leader renews every TTL/4, steps down after TTL/2
	// without a successful renewal, and a crashed leader is replaced within
	// 2 × TTL.
	SessionTTL string `hcl:"session_ttl,optional"`
	// LockDelay is Consul's lock-delay on the key after the leader's session
	// is invalidated, 0 s by default; any value lengthens every crash
	// failover.
	LockDelay string `hcl:"lock_delay,optional"`
}

// TLSConfig turns on mutual TLS between agents and the leader.
type TLSConfig struct {
	CAFile   string `hcl:"ca_file,optional"`
	CertFile string `hcl:"cert_file,optional"`
	KeyFile  string `hcl:"key_file,optional"`
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
	Host           node.Host
	Sim            bool
	// SimHost: see SimConfig.Host.
	SimHost      bool
	BufferBytes  int64
	BufferAge    time.Duration
	LeaderKey    string
	SessionTTL   time.Duration
	LockDelay    time.Duration
	TLS          TLSConfig
	Orchestrator leader.OrchestratorSettings
	Prometheus   backfill.Settings
	Telemetry    leader.TelemetrySettings
}

// Resolve applies defaults and the environment, and checks every value; an
// impossible config is refused with the setting named.
func (c *Config) Resolve() (*Settings, error) {
	s := &Settings{
		NodeID:    c.NodeID,
		DataDir:   cmp.Or(c.DataDir, DefaultDataDir),
		Bind:      cmp.Or(c.Bind, DefaultBind),
		GRPCBind:  c.GRPCBind,
		Advertise: c.Advertise,
		Platform:  c.Platform,
		LogLevel:  cmp.Or(c.LogLevel, "info"),
	}
	var err error
	if s.SampleInterval, err = settings.Duration("sample_interval", c.SampleInterval, DefaultSampleInterval); err != nil {
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
	s.Host.CgroupRoot = cmp.Or(s.Host.CgroupRoot, DefaultCgroupRoot)
	s.Host.ProcRoot = cmp.Or(s.Host.ProcRoot, DefaultProcRoot)
	s.Host.SysRoot = cmp.Or(s.Host.SysRoot, DefaultSysRoot)
	s.Sim = c.Sim != nil && c.Sim.Enabled
	s.SimHost = s.Sim && c.Sim.Host
	s.BufferBytes = DefaultBufferBytes
	s.BufferAge = DefaultBufferAge
	if c.Buffer != nil {
		if c.Buffer.MaxBytes < 0 {
			return nil, fmt.Errorf("buffer.max_bytes cannot be negative")
		}
		if c.Buffer.MaxBytes > 0 {
			s.BufferBytes = c.Buffer.MaxBytes
		}
		if s.BufferAge, err = settings.Duration("buffer.max_age", c.Buffer.MaxAge, DefaultBufferAge); err != nil {
			return nil, err
		}
	}
	lc := LeaderConfig{}
	if c.Leader != nil {
		lc = *c.Leader
	}
	s.LeaderKey = lc.Key
	if s.SessionTTL, err = settings.Duration("leader.session_ttl", lc.SessionTTL, 0); err != nil {
		return nil, err
	}
	if s.LockDelay, err = settings.Duration("leader.lock_delay", lc.LockDelay, 0); err != nil {
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
	if s.Orchestrator, err = c.Orchestrator.Resolve(); err != nil {
		return nil, err
	}
	if s.Prometheus, err = c.Prometheus.Resolve(); err != nil {
		return nil, err
	}
	if s.Telemetry, err = c.Telemetry.Resolve(); err != nil {
		return nil, err
	}
	return s, nil
}

// TLSEnabled reports whether agent↔leader traffic uses mutual TLS.
func (s *Settings) TLSEnabled() bool { return s.TLS.CAFile != "" }

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
