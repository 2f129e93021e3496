package sim

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/hashicorp/nomad/api"
)

// Node statuses, as Nomad reports them.
const (
	nodeInit  = "initializing"
	nodeReady = "ready"
	nodeDown  = "down"
)

// defaultNodeMeta is the static metadata every Nomad 1.6 client has.
var defaultNodeMeta = map[string]string{
	"connect.log_level":         "info",
	"connect.proxy_concurrency": "1",
	"connect.sidecar_image":     "docker.io/envoyproxy/envoy:v${NOMAD_envoy_version}",
	"connect.gateway_image":     "docker.io/envoyproxy/envoy:v${NOMAD_envoy_version}",
}

// Dynamic ports are drawn from Nomad's default range.
const (
	minDynamicPort = 20000
	maxDynamicPort = 32000
)

// nodeGroup is a set of identical nodes; provider groups can be resized.
type nodeGroup struct {
	cfg     *NodeGroupConfig
	desired int
	serial  int
	// lastEvent is when the group last finished a change of size.
	lastEvent time.Time
}

// simNode is one node and what is placed on it.
type simNode struct {
	api   *api.Node
	group *nodeGroup
	// Resources held by the allocations placed here that are not terminal.
	usedCPU, usedMem, usedDisk int
	// Live allocations on the node, for stats and scale-in.
	allocs map[string]*simAlloc
	// Dynamic metadata applied through /v1/client/metadata; a nil value
	// hides a static key.
	dynamic map[string]*string
	static  map[string]string
}

// computedClass stands in for Nomad's hash of what makes nodes
// interchangeable for placement: in sim, the nodes of one group are.
func (g *nodeGroup) computedClass() string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(g.cfg.Name)) // a hash never fails to write
	return "v1:" + strconv.FormatUint(h.Sum64(), 10)
}

func (n *simNode) ready() bool {
	return n.api.Status == nodeReady && n.api.SchedulingEligibility == api.NodeSchedulingEligible && !n.api.Drain
}

func (n *simNode) cpuCapacity() int { return n.group.cfg.CPUMHz * n.group.cfg.Cores }

// addNode creates a node of g; it is ready at readyAt.
func (c *Cluster) addNode(g *nodeGroup, readyAt time.Time, idx uint64) *simNode {
	g.serial++
	gc := g.cfg
	id := c.newID()
	name := fmt.Sprintf("%s-%d", gc.Name, g.serial)
	ip := fmt.Sprintf("10.%d.%d.%d", 1+len(c.groups)%200, g.serial/250, 1+g.serial%250)
	attrs := map[string]string{
		"arch":                      "x86_64",
		"cpu.arch":                  "amd64",
		"cpu.frequency":             strconv.Itoa(gc.CPUMHz),
		"cpu.modelname":             "Simulated CPU",
		"cpu.numcores":              strconv.Itoa(gc.Cores),
		"cpu.totalcompute":          strconv.Itoa(gc.CPUMHz * gc.Cores),
		"cpu.reservablecores":       strconv.Itoa(gc.Cores),
		"driver.docker":             "1",
		"driver.exec":               "1",
		"driver.raw_exec":           "1",
		"kernel.name":               "linux",
		"kernel.version":            "6.1.0",
		"memory.totalbytes":         strconv.FormatInt(int64(gc.MemoryMB)<<20, 10),
		"nomad.advertise.address":   ip + ":4646",
		"nomad.version":             "1.6.5",
		"os.name":                   "debian",
		"os.version":                "12",
		"unique.hostname":           name,
		"unique.network.ip-address": ip,
		"unique.storage.bytesfree":  strconv.FormatInt(int64(gc.DiskMB)<<20, 10),
		"unique.storage.bytestotal": strconv.FormatInt(int64(gc.DiskMB)<<20, 10),
		"unique.storage.volume":     "/dev/sim0",
	}
	if gc.Platform == PlatformProvider {
		// What Nomad's AWS fingerprinter reports, so that platform
		// detection from cloud attributes can be exercised.
		attrs["platform.aws.placement.availability-zone"] = "sim-1a"
		attrs["platform.aws.instance-type"] = "sim." + gc.Name
		attrs["unique.platform.aws.instance-id"] = "i-" + id[:8]
	}
	for k, v := range gc.Attributes {
		attrs[k] = v
	}
	static := map[string]string{}
	for k, v := range defaultNodeMeta {
		static[k] = v
	}
	for k, v := range gc.Meta {
		static[k] = v
	}
	healthy := func(name string) *api.DriverInfo {
		return &api.DriverInfo{Attributes: map[string]string{"driver." + name: "true"}, Detected: true, Healthy: true, HealthDescription: "Healthy", UpdateTime: readyAt}
	}
	networks := []*api.NetworkResource{{
		Mode: "host", Device: "eth0", IP: ip, CIDR: ip + "/32", MBits: intPtr(gc.NetMbits),
	}}
	// A client that fingerprints Consul links its node there.
	links := map[string]string{}
	if c.consul != nil {
		links["consul"] = gc.Datacenter + "." + name
	}
	status := nodeReady
	if readyAt.After(c.clock.Now()) {
		status = nodeInit
	}
	n := &simNode{
		group:  g,
		allocs: map[string]*simAlloc{},
		static: static,
		api: &api.Node{
			ID:         id,
			Datacenter: gc.Datacenter,
			Name:       name,
			HTTPAddr:   ip + ":4646",
			Attributes: attrs,
			NodeResources: &api.NodeResources{
				Cpu:            api.NodeCpuResources{CpuShares: int64(gc.CPUMHz * gc.Cores), TotalCpuCores: uint16(gc.Cores), ReservableCpuCores: coreList(gc.Cores)},
				Memory:         api.NodeMemoryResources{MemoryMB: int64(gc.MemoryMB)},
				Disk:           api.NodeDiskResources{DiskMB: int64(gc.DiskMB)},
				Networks:       networks,
				MinDynamicPort: minDynamicPort,
				MaxDynamicPort: maxDynamicPort,
			},
			CgroupParent:      "/nomad",
			ReservedResources: &api.NodeReservedResources{},
			// The deprecated forms of NodeResources and ReservedResources,
			// which Nomad still sends.
			Resources: &api.Resources{
				CPU: intPtr(gc.CPUMHz * gc.Cores), Cores: intPtr(0), MemoryMB: intPtr(gc.MemoryMB), MemoryMaxMB: intPtr(0),
				DiskMB: intPtr(gc.DiskMB), IOPS: intPtr(0), Networks: networks,
			},
			Reserved:              &api.Resources{CPU: intPtr(0), Cores: intPtr(0), MemoryMB: intPtr(0), MemoryMaxMB: intPtr(0), DiskMB: intPtr(0), IOPS: intPtr(0)},
			Events:                []*api.NodeEvent{{Message: "Node registered", Subsystem: "Cluster", Timestamp: readyAt}},
			Links:                 links,
			Meta:                  map[string]string{},
			NodeClass:             gc.NodeClass,
			NodePool:              gc.NodePool,
			SchedulingEligibility: api.NodeSchedulingEligible,
			Status:                status,
			StatusUpdatedAt:       readyAt.Unix(),
			Drivers:               map[string]*api.DriverInfo{"docker": healthy("docker"), "exec": healthy("exec"), "raw_exec": healthy("raw_exec")},
			CreateIndex:           idx,
			ModifyIndex:           idx,
		},
	}
	n.refreshMeta()
	c.nodes[id] = n
	c.nodeList = append(c.nodeList, n)
	if status == nodeInit {
		c.timers.push(readyAt, func(now time.Time) { c.nodeBecameReady(n, now) })
	}
	return n
}

func coreList(n int) []uint16 {
	cores := make([]uint16, n)
	for i := range cores {
		cores[i] = uint16(i)
	}
	return cores
}

// refreshMeta merges static and dynamic metadata into the node's Meta, as
// Nomad does: dynamic values win.
func (n *simNode) refreshMeta() {
	meta := make(map[string]string, len(n.static)+len(n.dynamic))
	for k, v := range n.static {
		meta[k] = v
	}
	for k, v := range n.dynamic {
		if v == nil {
			delete(meta, k)
			continue
		}
		meta[k] = *v
	}
	n.api.Meta = meta
}

func (c *Cluster) nodeBecameReady(n *simNode, now time.Time) {
	if n.api.Status != nodeInit {
		return
	}
	idx := c.bump(tableNodes)
	n.api.Status = nodeReady
	n.api.StatusUpdatedAt = now.Unix()
	n.api.ModifyIndex = idx
	n.group.lastEvent = now
	c.events.add(now, idx, event{Topic: "Node", Type: "NodeRegistration", Key: n.api.ID, Payload: map[string]any{"Node": n.wire()}})
	c.log.Debug("node ready", "node", n.api.Name, "group", n.group.cfg.Name)
	c.retryBlocked(now, "node-update")
}

// NodeGroupStatus is what `/v1/sim/nodegroups/<name>` reports.
type NodeGroupStatus struct {
	Name     string
	Platform string
	NodePool string
	Class    string
	// Desired is the count asked for; Ready and Provisioning split the
	// nodes that exist.
	Desired, Ready, Provisioning int
	Min, Max                     int
	ProvisionDelay               time.Duration
	// LastEvent is when the group last finished a change of size (a node
	// joined or left); zero when it never changed.
	LastEvent time.Time
}

// NodeGroups reports every node group.
func (c *Cluster) NodeGroups() []NodeGroupStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]NodeGroupStatus, 0, len(c.groups))
	for _, g := range c.groups {
		out = append(out, c.groupStatus(g))
	}
	return out
}

// NodeGroup reports one node group.
func (c *Cluster) NodeGroup(name string) (NodeGroupStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.groupNames[name]
	if !ok {
		return NodeGroupStatus{}, fmt.Errorf("%w: node group %q", ErrNotFound, name)
	}
	return c.groupStatus(g), nil
}

func (c *Cluster) groupStatus(g *nodeGroup) NodeGroupStatus {
	st := NodeGroupStatus{
		Name: g.cfg.Name, Platform: g.cfg.Platform, NodePool: g.cfg.NodePool, Class: g.cfg.NodeClass,
		Desired: g.desired, Min: g.cfg.Min, Max: g.cfg.Max, ProvisionDelay: g.cfg.ProvisionDelay,
		LastEvent: g.lastEvent,
	}
	for _, n := range c.nodeList {
		if n.group != g {
			continue
		}
		switch n.api.Status {
		case nodeReady:
			st.Ready++
		case nodeInit:
			st.Provisioning++
		}
	}
	return st
}

// ScaleNodeGroup sets the desired node count of a provider group. New nodes
// join after the group's provisioning delay; on scale-in the emptiest nodes
// leave at once and their allocations are rescheduled.
func (c *Cluster) ScaleNodeGroup(name string, count int) (NodeGroupStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.groupNames[name]
	if !ok {
		return NodeGroupStatus{}, fmt.Errorf("%w: node group %q", ErrNotFound, name)
	}
	if g.cfg.Platform != PlatformProvider {
		return NodeGroupStatus{}, fmt.Errorf("%w: node group %q is external; only provider groups can be resized", ErrInvalid, name)
	}
	if count < g.cfg.Min || count > g.cfg.Max {
		return NodeGroupStatus{}, fmt.Errorf("%w: count %d is outside %d..%d for node group %q", ErrInvalid, count, g.cfg.Min, g.cfg.Max, name)
	}
	now := c.clock.Now()
	live := c.liveNodes(g)
	switch {
	case count > len(live):
		idx := c.bump(tableNodes)
		for range count - len(live) {
			n := c.addNode(g, now.Add(g.cfg.ProvisionDelay), idx)
			c.events.add(now, idx, event{Topic: "Node", Type: "NodeRegistration", Key: n.api.ID, Payload: map[string]any{"Node": n.wire()}})
		}
		if g.cfg.ProvisionDelay <= 0 {
			g.lastEvent = now
		}
	case count < len(live):
		c.removeNodes(live, len(live)-count, now)
		g.lastEvent = now
	}
	g.desired = count
	c.log.Info("node group resized", "group", name, "count", count)
	return c.groupStatus(g), nil
}

// liveNodes are the group's nodes that are ready or on their way.
func (c *Cluster) liveNodes(g *nodeGroup) []*simNode {
	var out []*simNode
	for _, n := range c.nodeList {
		if n.group == g && n.api.Status != nodeDown {
			out = append(out, n)
		}
	}
	return out
}

// removeNodes takes k nodes out of service, those still provisioning first,
// then the ones holding the fewest allocations, newest first on ties.
func (c *Cluster) removeNodes(live []*simNode, k int, now time.Time) {
	cands := append([]*simNode(nil), live...)
	rank := func(n *simNode) int {
		if n.api.Status == nodeInit {
			return -1
		}
		return len(n.allocs)
	}
	for i := 1; i < len(cands); i++ { // insertion sort: stable and tiny
		for j := i; j > 0; j-- {
			a, b := cands[j-1], cands[j]
			if rank(a) < rank(b) || (rank(a) == rank(b) && a.api.CreateIndex >= b.api.CreateIndex) {
				break
			}
			cands[j-1], cands[j] = b, a
		}
	}
	idx := c.bump(tableNodes, tableAllocs, tableSummaries, tableEvals)
	var touched []*simJob
	for _, n := range cands[:k] {
		n.api.Status = nodeDown
		n.api.StatusUpdatedAt = now.Unix()
		n.api.ModifyIndex = idx
		c.events.add(now, idx, event{Topic: "Node", Type: "NodeDeregistration", Key: n.api.ID, Payload: map[string]any{"Node": n.wire()}})
		for _, a := range sortedAllocs(n.allocs) {
			c.stopAlloc(a, now, idx, "alloc is being migrated", clientComplete)
			a.api.DesiredTransition.Migrate = boolPtr(true)
			if j := c.jobs[jobKey{a.api.Namespace, a.api.JobID}]; j != nil {
				touched = append(touched, j)
			}
		}
	}
	for _, j := range uniqueJobs(touched) {
		c.evaluate(j, "node-drain", now)
	}
}
