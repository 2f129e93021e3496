// Package node is the role every Foresight agent runs on its Nomad client:
// it samples every task on the node (package sampler, finding each task's
// processes (package proc) and reading their cgroups and network
// namespaces where Nomad's alloc stats fall short), fingerprints
// the node into foresight.* node metadata (package fingerprint), and
// buffers telemetry durably (package buffer) while the shipper streams it
// to the leader (package ship). It never reads the leader's store: what it
// knows of the leader is an address to ship to.
package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/foresight-nomad/foresight/agent/node/buffer"
	"github.com/foresight-nomad/foresight/agent/node/sampler"
	"github.com/foresight-nomad/foresight/agent/node/ship"
	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/telemetry"
)

// Host says where the host's kernel files are, for reading task cgroups,
// network namespaces and the node fingerprint: the agent's `host` block.
type Host struct {
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

// Config is what the node role needs.
type Config struct {
	// NodeID is the Nomad node this agent speaks for.
	NodeID string
	Nomad  *nomadapi.Client
	Clock  clock.Clock
	Logger hclog.Logger
	// Registerer receives the sampler's and shipper's metrics.
	Registerer prometheus.Registerer

	// BufferPath, BufferBytes and BufferAge place and bound the durable
	// telemetry buffer.
	BufferPath  string
	BufferBytes int64
	BufferAge   time.Duration
	// SampleInterval is how often every task is sampled.
	SampleInterval time.Duration
	// TLS secures the stream to the leader; nil for plaintext.
	TLS *tls.Config
	// ResolveLeader returns the leader's gRPC address, empty when there is
	// none yet.
	ResolveLeader func(ctx context.Context) (string, error)

	// Sim reads what Nomad does not serve (disk, network, pressure stall,
	// host traits) from a simulated cluster instead of the host.
	Sim bool
	// SimHost makes a sim agent read tasks from Host (a generated fake
	// /proc and cgroup tree) rather than sim's telemetry endpoint: what
	// the overhead benchmark measures.
	SimHost bool
	// Host is where the host's kernel files are; unused in sim.
	Host Host
	// Platform overrides the fingerprinted platform: external or provider.
	Platform string
}

// Role is the node role: the sampler writes into the durable buffer, the
// shipper streams the buffer to the leader, and the fingerprint keeps the
// node's metadata current.
type Role struct {
	cfg     Config
	log     hclog.Logger
	buf     *buffer.Buffer
	sampler *sampler.Sampler
	shipper *ship.Shipper
}

// Open opens the buffer and prepares the sampler and shipper; nothing runs
// until Run.
func Open(cfg Config) (*Role, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	buf, err := buffer.Open(cfg.BufferPath, buffer.Options{
		MaxBytes: cfg.BufferBytes, MaxAge: cfg.BufferAge, Clock: cfg.Clock, Logger: log.Named("buffer"),
	})
	if err != nil {
		return nil, fmt.Errorf("open telemetry buffer: %w", err)
	}
	shipper, err := ship.New(ship.Config{
		AgentID: cfg.NodeID, NodeID: cfg.NodeID, Buffer: buf, TLS: cfg.TLS,
		Resolve:    cfg.ResolveLeader,
		Clock:      cfg.Clock,
		Logger:     log.Named("ship"),
		Registerer: cfg.Registerer,
	})
	if err != nil {
		buf.Close()
		return nil, fmt.Errorf("shipper: %w", err)
	}
	smp, err := sampler.New(sampler.Config{
		Nomad: cfg.Nomad, NodeID: cfg.NodeID, Interval: cfg.SampleInterval, Clock: cfg.Clock, Extra: extra(cfg, log),
		Logger: log.Named("sample"),
		Sink: func(samples []telemetry.Sample, notes []telemetry.Note) error {
			_, err := shipper.Enqueue(samples, notes...)
			return err
		},
	})
	if err != nil {
		buf.Close()
		return nil, err
	}
	return &Role{cfg: cfg, log: log, buf: buf, sampler: smp, shipper: shipper}, nil
}

// extra is what measures beyond Nomad's alloc stats: sim's telemetry, or
// the host's processes, cgroups and network namespaces; nil when neither
// can be read.
func extra(cfg Config, log hclog.Logger) sampler.Extra {
	if cfg.Sim && !cfg.SimHost {
		return sampler.SimExtra{Nomad: cfg.Nomad, NodeID: cfg.NodeID}
	}
	h, err := sampler.NewHostExtra(sampler.HostPaths{
		CgroupRoot: cfg.Host.CgroupRoot, CgroupParent: cfg.Host.CgroupParent,
		ProcRoot: cfg.Host.ProcRoot, SysRoot: cfg.Host.SysRoot,
	}, func(ctx context.Context) (float64, error) { return coreMHz(ctx, cfg.Nomad, cfg.NodeID) }, cfg.Clock, log.Named("host"))
	if err != nil {
		// Without cgroups the agent still samples what Nomad serves.
		log.Warn("no host telemetry: disk, pressure and network will be missing", "error", err)
		return nil
	}
	return h
}

// coreMHz is the node's MHz per core as Nomad counts CPU:
// cpu.totalcompute over cpu.numcores.
func coreMHz(ctx context.Context, nomad *nomadapi.Client, nodeID string) (float64, error) {
	n, _, err := nomad.Nodes().Info(nodeID, (&nomadapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return 0, fmt.Errorf("read node %s: %w", nodeID, err)
	}
	total, err1 := strconv.ParseFloat(n.Attributes["cpu.totalcompute"], 64)
	cores, err2 := strconv.ParseFloat(n.Attributes["cpu.numcores"], 64)
	if err1 != nil || err2 != nil || total <= 0 || cores <= 0 {
		return 0, fmt.Errorf("node %s: no cpu.totalcompute and cpu.numcores attributes", nodeID)
	}
	return total / cores, nil
}

// Run samples, ships and fingerprints until ctx ends, then returns the
// first error of a part that stopped on its own.
func (r *Role) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, fn := range []func(context.Context) error{r.sampler.Run, r.shipper.Run, r.fingerprintLoop} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close closes the buffer; call it after Run returned.
func (r *Role) Close() error { return r.buf.Close() }
