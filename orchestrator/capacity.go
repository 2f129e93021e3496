package orchestrator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad-autoscaler/sdk"

	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/profiles"
)

// DefaultScaleInDelay is the scale-in delay for a capacity block that sets
// none.
const DefaultScaleInDelay = 30 * time.Minute

// CapacityTarget is one provider node group Foresight may resize through a
// Nomad Autoscaler target plugin. It is the Go form of the agent config
// block
//
//	capacity "aws" {
//	  driver         = "aws-asg"                   # plugin binary in plugin_dir
//	  config         = { aws_region = "eu-west-1" } # the plugin's SetConfig
//	  target         = { aws_asg_name = "cloud", node_class = "cloud" }
//	  classes        = ["provider-ssd-standard-25g"] # resource classes its nodes join
//	  min            = 0
//	  max            = 10
//	  scale_in_delay = "30m"
//	  node {                                       # what one node it adds is
//	    cpu_mhz   = 8000                           # cpu.totalcompute
//	    memory_mb = 16384
//	    meta      = { "foresight.storage" = "ssd" } # traits it will publish
//	  }
//	}
//
// A class is known from its nodes (profiles.Class). The node block is what
// lets a pool at zero nodes, the normal state of a scale-from-zero pool, be
// bought: its class is scored and chosen by its declared traits, and
// nodes to add are counted in its declared size. Without it, a class with
// no node has no known size and requests for it fail (with a clear error
// in the action). Once nodes have joined, their own size counts, and a
// declared size that differs is reported.
type CapacityTarget struct {
	// Name names the block; actions and logs use it.
	Name string `json:"name"`
	// Driver is the plugin: the binary <plugin_dir>/<driver>.
	Driver string `json:"driver"`
	// Config is the plugin's config (SetConfig), as in the autoscaler's
	// target blocks.
	Config map[string]string `json:"-"`
	// Target is the per-call target config (Status, Scale), as in an
	// autoscaler policy's target block, e.g. aws_asg_name or node_group.
	Target map[string]string `json:"target"`
	// Classes are the class IDs (profiles.Class.ID) the target's nodes
	// join; nodes it adds count towards the first of them that has nodes.
	// A class belongs to one target at most.
	Classes []string `json:"classes"`
	// Min and Max bound the target's count.
	Min int64 `json:"min"`
	Max int64 `json:"max"`
	// ScaleInDelay is how long the classes must have had a node's worth of
	// spare capacity, without a break, before one node is removed.
	ScaleInDelay time.Duration `json:"scale_in_delay"`
	// Node, when set, is the node the target adds, as declared.
	Node *NodeSpec `json:"node,omitempty"`
}

// NodeSpec is one node a capacity target adds, as its block declares it
// before any exists: its size and the class it joins.
type NodeSpec struct {
	// CPUMHz and MemoryMB are its capacity, as Nomad will report it
	// (cpu.totalcompute and memory).
	CPUMHz   float64 `json:"cpu_mhz"`
	MemoryMB float64 `json:"memory_mb"`
	// Class is the resource class it joins, one of the target's Classes:
	// the first when empty. It is the foresight.class its agent will
	// publish.
	Class string `json:"class"`
	// NodeClass, Datacenter and Pool are Nomad's, when known.
	NodeClass  string `json:"node_class,omitempty"`
	Datacenter string `json:"datacenter,omitempty"`
	Pool       string `json:"node_pool,omitempty"`
	// Meta is the node metadata it will carry; the foresight.* traits
	// (storage, mem_tier, net_tier) say what it offers before it is
	// measured.
	Meta map[string]string `json:"meta,omitempty"`
}

// declaredTolerance is how far the size of the nodes that joined may be from
// the declared one before it is reported: Nomad reports a little less
// memory than a machine type's nominal size.
const declaredTolerance = 0.05

// class is the resource class of the declared node, with no node yet.
func (n *NodeSpec) class(t CapacityTarget) profiles.Class {
	trait := func(key string) string {
		if v := strings.TrimSpace(n.Meta[key]); v != "" {
			return v
		}
		return profiles.Unknown
	}
	id := cmp.Or(n.Class, t.Classes[0])
	return profiles.Class{
		ID: id,
		Traits: profiles.Traits{
			Datacenter: n.Datacenter, Pool: n.Pool, NodeClass: n.NodeClass,
			Platform: profiles.PlatformProvider,
			Storage:  trait(profiles.MetaStorage), MemTier: trait(profiles.MetaMemTier), NetTier: trait(profiles.MetaNetTier),
			Published: id,
		},
		Targets:  []profiles.Target{{Attribute: "${meta." + profiles.MetaClass + "}", Value: id}},
		Declared: profiles.NodeSize{CPUMHz: n.CPUMHz, MemoryMB: n.MemoryMB},
	}
}

// validate says what is wrong with the declaration of t's node.
func (n *NodeSpec) validate(t CapacityTarget) error {
	id := cmp.Or(n.Class, t.Classes[0])
	switch {
	case !(n.CPUMHz > 0) || math.IsInf(n.CPUMHz, 0):
		return fmt.Errorf("node.cpu_mhz %g must be positive (the cpu.totalcompute of one node)", n.CPUMHz)
	case !(n.MemoryMB > 0) || math.IsInf(n.MemoryMB, 0):
		return fmt.Errorf("node.memory_mb %g must be positive", n.MemoryMB)
	case !slices.Contains(t.Classes, id):
		return fmt.Errorf("node.class %q is not one of classes %v", id, t.Classes)
	case strings.ContainsAny(id, "/#"):
		return fmt.Errorf("node.class %q is not a foresight.class value a node publishes (it names a class by its Nomad fields too)", id)
	}
	for key, want := range map[string]string{profiles.MetaClass: id, profiles.MetaPlatform: profiles.PlatformProvider} {
		if v, ok := n.Meta[key]; ok && v != want {
			return fmt.Errorf("node.meta %q = %q, but the node joins %s %q", key, v, key, want)
		}
	}
	return nil
}

// DeclaredClasses are the classes of the targets' declared nodes, for
// profiles.WithDeclared: classes that can be chosen and bought before any
// of their nodes exists.
func DeclaredClasses(targets []CapacityTarget) []profiles.Class {
	var out []profiles.Class
	for _, t := range targets {
		if t.Node != nil {
			out = append(out, t.Node.class(t))
		}
	}
	return out
}

// Validate says what is wrong with t, naming the field.
func (t CapacityTarget) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("capacity %q: %s", t.Name, fmt.Sprintf(format, args...))
	}
	switch {
	case strings.TrimSpace(t.Name) == "":
		return errors.New("capacity block has no name")
	case t.Driver == "":
		return bad("driver is required (the target plugin's binary name, e.g. aws-asg)")
	case t.Driver != filepath.Base(t.Driver) || t.Driver == "." || t.Driver == "..":
		return bad("driver %q must be a plugin binary name, not a path", t.Driver)
	case len(t.Classes) == 0:
		return bad("classes is empty: name the resource classes its nodes join")
	case t.Min < 0:
		return bad("min %d is negative", t.Min)
	case t.Max < 1:
		return bad("max %d must be at least 1", t.Max)
	case t.Min > t.Max:
		return bad("min %d is greater than max %d", t.Min, t.Max)
	case t.ScaleInDelay <= 0:
		return bad("scale_in_delay %s must be positive", t.ScaleInDelay)
	}
	seen := map[string]bool{}
	for _, c := range t.Classes {
		if strings.TrimSpace(c) == "" {
			return bad("classes has an empty class ID")
		}
		if seen[c] {
			return bad("class %q listed twice", c)
		}
		seen[c] = true
	}
	if t.Node != nil {
		if err := t.Node.validate(t); err != nil {
			return bad("%v", err)
		}
	}
	return nil
}

// Target is what the capacity actuator uses of an autoscaler target plugin
// (the autoscaler's target.Target satisfies it).
type Target interface {
	Status(config map[string]string) (*sdk.TargetStatus, error)
	Scale(action sdk.ScalingAction, config map[string]string) error
}

// CapacityAction is one thing the capacity actuator did, or held back from
// doing while capacity was requested, for the decision log. To equals From
// when nothing was scaled.
type CapacityAction struct {
	Time   time.Time `json:"time"`
	Target string    `json:"target,omitempty"`
	Driver string    `json:"driver,omitempty"`
	Class  string    `json:"class"`
	From   int64     `json:"from"`
	To     int64     `json:"to"`
	Reason string    `json:"reason"`
	// Err is why the action failed; empty when it did not.
	Err string `json:"error,omitempty"`
}

// Scaled reports whether the target was resized.
func (a CapacityAction) Scaled() bool { return a.Err == "" && a.To != a.From }

// CapacityState is what the actuator knows of one target, for the API.
type CapacityState struct {
	CapacityTarget
	// Count and Ready are from the target's last Status; Count is -1 before
	// the first.
	Count int64 `json:"count"`
	Ready bool  `json:"ready"`
	// SpareSince is when the current run of spare capacity began; zero
	// when the classes have no node's worth to spare.
	SpareSince time.Time `json:"spare_since"`
	// Warning says how the nodes that joined differ from the declared
	// node; empty when they do not, or none has joined.
	Warning string `json:"warning,omitempty"`
}

// Capacity is the capacity actuator: once per decision pass the leader asks
// it what capacity is still arriving (Arriving, for NewRoom) and then hands
// it the pass's capacity requests (Reconcile). It scales a target up ahead
// of the forecast, by the nodes the requests lack, when the target has
// nothing in flight, and scales it in one node at a time only after its
// classes have had spare capacity for longer than the target's delay.
// It is safe for concurrent use.
type Capacity struct {
	clk clock.Clock
	log hclog.Logger

	mu      sync.Mutex
	targets []*capTarget
	byClass map[string]*capTarget
}

type capTarget struct {
	cfg CapacityTarget
	t   Target
	// count and ready are from the last Status; count is -1 before it.
	count int64
	ready bool
	// basis is the count the spare run was measured at, -1 before any.
	basis int64
	// spareSince starts the current run of spare capacity (zero: none);
	// minSpare is the least spare seen since, in nodes, less the nodes
	// removed since.
	spareSince time.Time
	minSpare   float64
	// warning is how the joined nodes differ from the declared node.
	warning string
}

// NewCapacity validates targets and opens each one's plugin with open (for
// example a plugin/host.Host's Open). Classes must not be shared between
// targets.
func NewCapacity(targets []CapacityTarget, open func(CapacityTarget) (Target, error), clk clock.Clock, log hclog.Logger) (*Capacity, error) {
	if clk == nil {
		return nil, errors.New("capacity: a clock is required")
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	c := &Capacity{clk: clk, log: log, byClass: map[string]*capTarget{}}
	names := map[string]bool{}
	for _, tc := range targets {
		if err := tc.Validate(); err != nil {
			return nil, err
		}
		if names[tc.Name] {
			return nil, fmt.Errorf("capacity %q is defined twice", tc.Name)
		}
		names[tc.Name] = true
		ct := &capTarget{cfg: tc, count: -1, basis: -1}
		for _, cl := range tc.Classes {
			if o := c.byClass[cl]; o != nil {
				return nil, fmt.Errorf("capacity %q: class %q already belongs to capacity %q", tc.Name, cl, o.cfg.Name)
			}
			c.byClass[cl] = ct
		}
		c.targets = append(c.targets, ct)
	}
	for _, ct := range c.targets {
		t, err := open(ct.cfg)
		if err != nil {
			return nil, fmt.Errorf("capacity %q: open driver %q: %w", ct.cfg.Name, ct.cfg.Driver, err)
		}
		ct.t = t
	}
	return c, nil
}

// Grows reports whether a target adds nodes to class.
func (c *Capacity) Grows(class string) bool {
	_, ok := c.byClass[class]
	return ok
}

// States reports every target as last seen, in config order.
func (c *Capacity) States() []CapacityState {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]CapacityState, 0, len(c.targets))
	for _, ct := range c.targets {
		out = append(out, CapacityState{CapacityTarget: ct.cfg, Count: ct.count, Ready: ct.ready, SpareSince: ct.spareSince, Warning: ct.warning})
	}
	return out
}

// Arriving is, per class ID, the capacity asked of the targets and not yet
// ready: each target's count less the ready nodes of its classes, times the
// size of one of their nodes, counted on the target's home class (the
// first that has nodes, else its declared node's). Feed it to NewRoom. A
// target that fails its Status is left out and named in the error; the map
// still holds the others. It also compares the nodes that joined a
// declared node's class with the declaration, and logs a difference once.
func (c *Capacity) Arriving(ctx context.Context, classes []profiles.Class) (map[string]Resources, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	byID := classIndex(classes)
	out := map[string]Resources{}
	var errs []error
	for _, ct := range c.targets {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		ct.checkDeclared(byID, c.log)
		st, err := ct.status()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ready := 0
		for _, id := range ct.cfg.Classes {
			if cl, ok := byID[id]; ok {
				ready += cl.ReadyNodes
			}
		}
		n := st.Count - int64(ready)
		if n <= 0 {
			continue
		}
		home, ok := ct.home(byID)
		if !ok {
			errs = append(errs, fmt.Errorf("capacity %q: %d nodes arriving, but none of its classes %v has nodes, so their size is unknown (declare it in a node block)",
				ct.cfg.Name, n, ct.cfg.Classes))
			continue
		}
		shape := nodeShape(home)
		a := out[home.ID]
		a.CPUMHz += float64(n) * shape.CPUMHz
		a.MemoryMB += float64(n) * shape.MemoryMB
		out[home.ID] = a
	}
	return out, errors.Join(errs...)
}

// Reconcile acts on one decision pass, at now (the clock's time when zero):
//
//   - requests are the pass's CapacityRequests. The target serving a class
//     grows by ⌈shortfall / node size⌉ summed over its requested classes,
//     up to its Max, in one Scale, only when its Status is ready (nothing
//     in flight). A request for a class no target serves, or for a class
//     with no nodes (whose node size is unknown), is an action with Err.
//   - demand is, per class ID, the forecast peak demand of the groups
//     steered there. A target with no request pending is shrunk by one node
//     per pass, never below Min, once its classes have had spare capacity
//     (their capacity less the larger of the demand and what allocations
//     reserve there) of at least one node, without a break, for longer than
//     ScaleInDelay. A request for its classes, a change of count it did not
//     make, or a scale-in that leaves less than a node spare starts the wait
//     again; while the target is not ready (a change in flight) it waits.
//
// Every scale, hold while capacity is requested, and failure is returned as
// an action; the error is only the context's.
func (c *Capacity) Reconcile(ctx context.Context, now time.Time, requests []CapacityRequest, classes []profiles.Class, demand map[string]Resources) ([]CapacityAction, error) {
	if now.IsZero() {
		now = c.clk.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	byID := classIndex(classes)
	wants := map[*capTarget][]CapacityRequest{}
	var out []CapacityAction
	for _, r := range requests {
		ct := c.byClass[r.Class]
		if ct == nil {
			out = append(out, CapacityAction{Time: now, Class: r.Class,
				Reason: fmt.Sprintf("capacity requested: %.0f MHz / %.0f MB", r.CPUMHz, r.MemoryMB),
				Err:    fmt.Sprintf("no capacity block lists class %q", r.Class)})
			continue
		}
		wants[ct] = append(wants[ct], r)
	}
	for _, ct := range c.targets {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		if reqs := wants[ct]; len(reqs) > 0 {
			ct.resetSpare()
			out = append(out, ct.scaleUp(now, reqs, byID)...)
			continue
		}
		if a, ok := ct.scaleIn(now, byID, demand, c.log); ok {
			out = append(out, a)
		}
	}
	for _, a := range out {
		switch {
		case a.Err != "":
			c.log.Error("capacity action failed", "target", a.Target, "class", a.Class, "reason", a.Reason, "error", a.Err)
		case a.Scaled():
			c.log.Info("capacity scaled", "target", a.Target, "class", a.Class, "from", a.From, "to", a.To, "reason", a.Reason)
		default:
			c.log.Debug("capacity held", "target", a.Target, "class", a.Class, "count", a.From, "reason", a.Reason)
		}
	}
	return out, nil
}

// scaleUp handles a target's requests of one pass.
func (ct *capTarget) scaleUp(now time.Time, reqs []CapacityRequest, byID map[string]*profiles.Class) []CapacityAction {
	var out []CapacityAction
	act := func(class string) CapacityAction {
		return CapacityAction{Time: now, Target: ct.cfg.Name, Driver: ct.cfg.Driver, Class: class, From: ct.count, To: ct.count}
	}
	// Sum the shortfall per class, in request order.
	var order []string
	short := map[string]Resources{}
	for _, r := range reqs {
		if _, ok := short[r.Class]; !ok {
			order = append(order, r.Class)
		}
		s := short[r.Class]
		s.CPUMHz += math.Max(0, r.CPUMHz)
		s.MemoryMB += math.Max(0, r.MemoryMB)
		short[r.Class] = s
	}
	var nodes int64
	var total Resources
	var classes []string
	for _, id := range order {
		s := short[id]
		cl, ok := byID[id]
		if ok {
			_, ok = cl.NodeSize()
		}
		if !ok {
			a := act(id)
			a.Reason = fmt.Sprintf("capacity requested: %.0f MHz / %.0f MB", s.CPUMHz, s.MemoryMB)
			a.Err = fmt.Sprintf("class %q has no nodes, so the size of a node to add is unknown (declare it in capacity %q's node block)", id, ct.cfg.Name)
			out = append(out, a)
			continue
		}
		n := nodesFor(s, nodeShape(cl))
		if n == 0 {
			continue
		}
		nodes += n
		total.CPUMHz += s.CPUMHz
		total.MemoryMB += s.MemoryMB
		classes = append(classes, id)
	}
	if nodes == 0 {
		return out
	}
	class := strings.Join(classes, ",")
	st, err := ct.status()
	if err != nil {
		a := act(class)
		a.Reason = fmt.Sprintf("capacity requested: %.0f MHz / %.0f MB (%d nodes)", total.CPUMHz, total.MemoryMB, nodes)
		a.Err = err.Error()
		return append(out, a)
	}
	a := act(class)
	if !st.Ready {
		a.Reason = fmt.Sprintf("not scaled: %d more nodes wanted for %.0f MHz / %.0f MB, but the target is not ready (a change is in flight)",
			nodes, total.CPUMHz, total.MemoryMB)
		return append(out, a)
	}
	to := min(ct.cfg.Max, max(ct.cfg.Min, st.Count+nodes))
	if to <= st.Count {
		a.Reason = fmt.Sprintf("not scaled: %d more nodes wanted for %.0f MHz / %.0f MB, but the target is at its max %d",
			nodes, total.CPUMHz, total.MemoryMB, ct.cfg.Max)
		return append(out, a)
	}
	reason := fmt.Sprintf("class %s lacks %.0f MHz / %.0f MB ahead of the forecast: %d → %d nodes", class, total.CPUMHz, total.MemoryMB, st.Count, to)
	if to < st.Count+nodes {
		reason += fmt.Sprintf(" (%d wanted, capped at max %d)", st.Count+nodes, ct.cfg.Max)
	}
	a.Reason = reason
	meta := map[string]any{
		"foresight.classes":           class,
		"foresight.shortfall_cpu_mhz": total.CPUMHz,
		"foresight.shortfall_mem_mb":  total.MemoryMB,
		"foresight.nodes_wanted":      nodes,
	}
	return append(out, ct.scale(a, to, sdk.ScaleDirectionUp, meta))
}

// scaleIn shrinks the target by one node when its spare capacity has lasted
// longer than its delay; ok is false when there is nothing to report.
func (ct *capTarget) scaleIn(now time.Time, byID map[string]*profiles.Class, demand map[string]Resources, log hclog.Logger) (CapacityAction, bool) {
	before := ct.count
	st, err := ct.status()
	if err != nil {
		ct.resetSpare()
		return CapacityAction{Time: now, Target: ct.cfg.Name, Driver: ct.cfg.Driver, Class: strings.Join(ct.cfg.Classes, ","),
			From: before, To: before, Reason: "reading the target to check for spare capacity", Err: err.Error()}, true
	}
	if st.Count != ct.basis {
		// Resized by someone else (or first seen): what was spare before
		// says nothing now.
		ct.resetSpare()
		ct.basis = st.Count
	}
	if !st.Ready {
		// A change is in flight: wait for it, neither counting nor
		// breaking the spare run.
		return CapacityAction{}, false
	}
	a := CapacityAction{Time: now, Target: ct.cfg.Name, Driver: ct.cfg.Driver, Class: strings.Join(ct.cfg.Classes, ","), From: st.Count, To: st.Count}
	if st.Count < ct.cfg.Min {
		ct.resetSpare()
		a.Reason = fmt.Sprintf("count %d is below min %d", st.Count, ct.cfg.Min)
		return ct.scale(a, ct.cfg.Min, sdk.ScaleDirectionUp, nil), true
	}
	home, ok := ct.home(byID)
	if !ok || st.Count <= ct.cfg.Min {
		ct.resetSpare()
		return CapacityAction{}, false
	}
	a.Class = home.ID
	spare := ct.spareNodes(byID, demand, nodeShape(home))
	if spare < 1 {
		ct.resetSpare()
		return CapacityAction{}, false
	}
	if ct.spareSince.IsZero() {
		ct.spareSince, ct.minSpare = now, spare
		log.Debug("capacity spare", "target", ct.cfg.Name, "nodes", spare)
	}
	ct.minSpare = math.Min(ct.minSpare, spare)
	if now.Sub(ct.spareSince) <= ct.cfg.ScaleInDelay {
		return CapacityAction{}, false
	}
	a.Reason = fmt.Sprintf("classes %s have had at least %.1f nodes of spare capacity for %s (scale_in_delay %s): %d → %d nodes",
		strings.Join(ct.cfg.Classes, ","), ct.minSpare, now.Sub(ct.spareSince).Round(time.Second), ct.cfg.ScaleInDelay, st.Count, st.Count-1)
	meta := map[string]any{
		"foresight.spare_nodes": ct.minSpare,
		"foresight.spare_since": ct.spareSince.UTC().Format(time.RFC3339),
	}
	a = ct.scale(a, st.Count-1, sdk.ScaleDirectionDown, meta)
	if a.Scaled() {
		ct.minSpare--
		if ct.minSpare < 1 {
			ct.resetSpare()
		}
	}
	return a, true
}

// spareNodes is how many nodes of the given size the target's classes could
// lose and still hold the larger of the demand steered there and what is
// reserved there, the least over CPU and memory.
func (ct *capTarget) spareNodes(byID map[string]*profiles.Class, demand map[string]Resources, shape Resources) float64 {
	var capa, need Resources
	for _, id := range ct.cfg.Classes {
		cl, ok := byID[id]
		if !ok {
			continue
		}
		d := demand[id]
		capa.CPUMHz += cl.CPUMHz
		capa.MemoryMB += cl.MemoryMB
		need.CPUMHz += math.Max(d.CPUMHz, cl.CPUMHz-cl.FreeCPUMHz)
		need.MemoryMB += math.Max(d.MemoryMB, cl.MemoryMB-cl.FreeMemoryMB)
	}
	spare := math.Inf(1)
	if shape.CPUMHz > 0 {
		spare = math.Min(spare, (capa.CPUMHz-need.CPUMHz)/shape.CPUMHz)
	}
	if shape.MemoryMB > 0 {
		spare = math.Min(spare, (capa.MemoryMB-need.MemoryMB)/shape.MemoryMB)
	}
	if math.IsInf(spare, 1) {
		return 0
	}
	return spare
}

// scale sends one Scale to count and completes a.
func (ct *capTarget) scale(a CapacityAction, count int64, dir sdk.ScaleDirection, meta map[string]any) CapacityAction {
	action := sdk.ScalingAction{Count: count, Direction: dir, Reason: "foresight: " + a.Reason, Meta: meta}
	err := ct.t.Scale(action, ct.cfg.Target)
	var noop *sdk.TargetScalingNoOpError
	switch {
	case errors.As(err, &noop):
		a.Reason = fmt.Sprintf("target declined to scale to %d: %v (wanted because %s)", count, noop, a.Reason)
	case err != nil:
		a.Err = fmt.Sprintf("scale %s to %d: %v", ct.cfg.Name, count, err)
	default:
		a.To = count
		ct.count, ct.basis = count, count
		ct.ready = false
	}
	return a
}

// status calls Status and remembers the answer.
func (ct *capTarget) status() (*sdk.TargetStatus, error) {
	st, err := ct.t.Status(ct.cfg.Target)
	if err == nil && st == nil {
		err = errors.New("plugin returned no status")
	}
	if err != nil {
		ct.ready = false
		return nil, fmt.Errorf("capacity %q: status: %w", ct.cfg.Name, err)
	}
	ct.count, ct.ready = st.Count, st.Ready
	return st, nil
}

func (ct *capTarget) resetSpare() { ct.spareSince, ct.minSpare = time.Time{}, 0 }

// home is where the target's new nodes are counted, and whose node size
// they have: the first of its classes that has nodes, else its declared
// node's class.
func (ct *capTarget) home(byID map[string]*profiles.Class) (*profiles.Class, bool) {
	for _, id := range ct.cfg.Classes {
		if cl, ok := byID[id]; ok && len(cl.Nodes) > 0 {
			return cl, true
		}
	}
	if n := ct.cfg.Node; n != nil {
		if cl, ok := byID[cmp.Or(n.Class, ct.cfg.Classes[0])]; ok {
			if _, known := cl.NodeSize(); known {
				return cl, true
			}
		}
	}
	return nil, false
}

// checkDeclared compares the nodes that joined the declared node's class
// with the declaration, and logs a difference when it first appears or
// changes.
func (ct *capTarget) checkDeclared(byID map[string]*profiles.Class, log hclog.Logger) {
	n := ct.cfg.Node
	if n == nil {
		return
	}
	warning := ""
	if cl, ok := byID[cmp.Or(n.Class, ct.cfg.Classes[0])]; ok && len(cl.Nodes) > 0 {
		got := nodeShape(cl)
		off := func(got, want float64) bool { return math.Abs(got-want) > declaredTolerance*want }
		if off(got.CPUMHz, n.CPUMHz) || off(got.MemoryMB, n.MemoryMB) {
			warning = fmt.Sprintf("the nodes of class %s have %.0f MHz / %.0f MB each, the node block declares %.0f MHz / %.0f MB: capacity is bought in their size, correct the block",
				cl.ID, got.CPUMHz, got.MemoryMB, n.CPUMHz, n.MemoryMB)
		}
	}
	if warning != "" && warning != ct.warning {
		log.Warn("capacity node differs from its declaration", "target", ct.cfg.Name, "detail", warning)
	}
	ct.warning = warning
}

func classIndex(classes []profiles.Class) map[string]*profiles.Class {
	m := make(map[string]*profiles.Class, len(classes))
	for i := range classes {
		m[classes[i].ID] = &classes[i]
	}
	return m
}

// nodeShape is the size of one node of cl (profiles.Class.NodeSize).
func nodeShape(cl *profiles.Class) Resources {
	size, _ := cl.NodeSize()
	return Resources{CPUMHz: size.CPUMHz, MemoryMB: size.MemoryMB}
}

// nodesFor is how many nodes of shape cover s, the most over CPU and memory.
func nodesFor(s, shape Resources) int64 {
	var n float64
	if shape.CPUMHz > 0 {
		n = math.Max(n, math.Ceil(s.CPUMHz/shape.CPUMHz-1e-9))
	}
	if shape.MemoryMB > 0 {
		n = math.Max(n, math.Ceil(s.MemoryMB/shape.MemoryMB-1e-9))
	}
	return int64(n)
}
