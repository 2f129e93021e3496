package consul

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/foresight-nomad/foresight/clock"
	"github.com/hashicorp/go-hclog"
)

// Version is the Consul version sim reports and whose behaviour it follows.
const Version = "1.16.3"

const (
	defaultNodeName   = "dev-node"
	defaultDatacenter = "dc1"
	defaultAddress    = "127.0.0.1"
	serverRPCPort     = 8300
	serfLANPort       = 8301
)

// Options configures a Server. The zero value is usable: real clock, no
// logging, node "dev-node" in datacenter "dc1" at 127.0.0.1.
type Options struct {
	// Clock drives session TTLs and lock-delays. Tests pass a virtual clock
	// to expire sessions without waiting; defaults to the wall clock.
	Clock clock.Clock
	// Logger receives state changes worth knowing (session invalidations,
	// rejected locks). Defaults to a null logger.
	Logger hclog.Logger
	// NodeName is the name of the one node sim's agent runs on.
	NodeName string
	// Datacenter is the datacenter the agent belongs to.
	Datacenter string
	// Address is the node's advertised address, also used as the default
	// address of the server in status/leader.
	Address string
}

// Server is a simulated Consul agent and server. Its methods are safe for
// concurrent use. Create it with New and stop it with Close.
type Server struct {
	clock  clock.Clock
	logger hclog.Logger
	node   nodeInfo

	// mu guards everything below it. Writes bump index and, on unlock, wake
	// blocking queries by closing notify.
	mu      sync.Mutex
	index   uint64
	changed bool
	notify  chan struct{}

	kv       kvStore
	sessions sessionStore
	catalog  catalogStore
	config   configStore

	// blocked counts queries waiting for a change, so tests can tell when a
	// watcher is parked.
	blocked atomic.Int64

	reaperWake chan struct{}
	done       chan struct{}
	closeOnce  sync.Once
	wg         sync.WaitGroup
}

// nodeInfo is the identity of the single node sim's agent runs on.
type nodeInfo struct {
	Name       string
	ID         string
	Address    string
	Datacenter string
}

// New returns a running Server. Call Close to stop its background work.
func New(opts Options) *Server {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.NodeName == "" {
		opts.NodeName = defaultNodeName
	}
	if opts.Datacenter == "" {
		opts.Datacenter = defaultDatacenter
	}
	if opts.Address == "" {
		opts.Address = defaultAddress
	}
	s := &Server{
		clock:  opts.Clock,
		logger: opts.Logger.Named("consul"),
		node: nodeInfo{
			Name:       opts.NodeName,
			ID:         newUUID(),
			Address:    opts.Address,
			Datacenter: opts.Datacenter,
		},
		notify:     make(chan struct{}),
		kv:         newKVStore(),
		sessions:   newSessionStore(),
		catalog:    newCatalogStore(),
		config:     newConfigStore(),
		reaperWake: make(chan struct{}, 1),
		done:       make(chan struct{}),
	}
	s.mu.Lock()
	s.bootstrapCatalogLocked()
	s.unlock()
	s.wg.Add(1)
	go s.reap()
	return s
}

// Close stops session expiry and releases every blocked query. The Handler
// keeps answering afterwards, without blocking.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.done) })
	s.wg.Wait()
}

// Handler returns the HTTP handler serving the Consul API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.routeStatus(mux)
	s.routeKV(mux)
	s.routeSessions(mux)
	s.routeAgent(mux)
	s.routeCatalog(mux)
	s.routeConfig(mux)
	return commonHeaders(mux)
}

// LeaderAddr is what /v1/status/leader answers: the server's RPC address.
func (s *Server) LeaderAddr() string {
	return fmt.Sprintf("%s:%d", s.node.Address, serverRPCPort)
}

// NodeName is the name of sim's node, as sessions and catalog entries show it.
func (s *Server) NodeName() string { return s.node.Name }

// Datacenter is the datacenter sim's agent belongs to.
func (s *Server) Datacenter() string { return s.node.Datacenter }

// commit allocates the next raft index for a write. Callers hold mu.
func (s *Server) commit() uint64 {
	s.index++
	s.changed = true
	return s.index
}

// unlock releases mu and, if the critical section wrote anything, wakes every
// blocking query so it can re-check its index.
func (s *Server) unlock() {
	if s.changed {
		close(s.notify)
		s.notify = make(chan struct{})
		s.changed = false
	}
	s.mu.Unlock()
}

// now reads the injected clock.
func (s *Server) now() time.Time { return s.clock.Now() }

// newUUID returns a random RFC 4122 version 4 UUID, the form Consul uses for
// session and node IDs.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails: crypto/rand aborts the program instead
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
