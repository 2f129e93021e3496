package sim

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/nomad/api"
	"github.com/zclconf/go-cty/cty"
)

// Platforms a node group can belong to.
const (
	PlatformExternal = "external"
	PlatformProvider = "provider"
)

// Defaults of a cluster file.
const (
	defaultRegion         = "global"
	defaultStep           = 10 * time.Second
	defaultAllocStart     = 10 * time.Second
	defaultProvisionDelay = 4 * time.Minute
	defaultIOMBps         = 500
	defaultNetMbits       = 10000
)

// defaultStart is where the virtual clock starts when the file does not say:
// a Monday at midnight, so daily and weekly cycles line up with the calendar.
var defaultStart = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// Config is a cluster file: the nodes a simulated cluster has, the jobs it
// runs and the demand that drives them.
type Config struct {
	// Region is the Nomad region every node and job belongs to.
	Region string
	// Start is the virtual time at which the cluster starts.
	Start time.Time
	// Step is how often workload usage is recomputed.
	Step time.Duration
	// AllocStart is how long an allocation takes from placement to running.
	AllocStart time.Duration
	// NodeGroups are the sets of identical nodes, in file order.
	NodeGroups []*NodeGroupConfig
	// Jobs are the jobs registered at start, in file order.
	Jobs []*JobConfig
	// ACL is Nomad's ACL system: off unless the file turns it on.
	ACL ACLConfig
}

// NodeGroupConfig describes a set of identical nodes.
type NodeGroupConfig struct {
	Name       string
	Platform   string
	Count      int
	Min, Max   int
	Datacenter string
	NodePool   string
	NodeClass  string
	// CPUMHz is the speed of one core; CPU capacity is CPUMHz × Cores.
	CPUMHz   int
	Cores    int
	MemoryMB int
	DiskMB   int
	// IOMBps is the disk bandwidth, which shapes I/O pressure stall.
	IOMBps int
	// NetMbits is the link speed.
	NetMbits int
	// Storage is the kind of disk under the allocation directory: ssd or hdd.
	Storage string
	// NoTaskCgroups makes the nodes' tasks run as raw_exec does on cgroup
	// v1: no cgroup of their own, so the agent reads them from their
	// processes (disk bytes, CPU, RSS), has no pressure stall or
	// throttling, and they share the host's network; Nomad measures them
	// per process too (CPU and RSS only).
	NoTaskCgroups  bool
	ProvisionDelay time.Duration
	Attributes     map[string]string
	Meta           map[string]string
}

// JobConfig is a job registered at start, with the demand of its groups.
type JobConfig struct {
	Job       *api.Job
	Workloads []*WorkloadConfig
}

// WorkloadConfig says how much work one task group has to do over time, and
// what that work costs on each node class.
type WorkloadConfig struct {
	Group string
	Trace *Trace
	// Scale converts a trace value into CPU demand in MHz at efficiency 1.
	Scale float64
	// MemoryBaseMB is what each allocation holds when idle.
	MemoryBaseMB float64
	// MemoryPerGHz is the extra memory in MB per 1000 MHz of work an
	// allocation handles.
	MemoryPerGHz float64
	// I/O and network bytes per second for each MHz of work.
	IOReadPerMHz, IOWritePerMHz float64
	NetRxPerMHz, NetTxPerMHz    float64
	// Efficiency is the hidden speed-up per node class: the same work costs
	// 1/e of the CPU on a class with efficiency e. Missing classes are 1.
	Efficiency map[string]float64
}

type fileConfig struct {
	Region     string          `hcl:"region,optional"`
	Start      hcl.Expression  `hcl:"start,optional"`
	Step       hcl.Expression  `hcl:"step,optional"`
	AllocStart hcl.Expression  `hcl:"alloc_start,optional"`
	NodeGroups []fileNodeGroup `hcl:"node_group,block"`
	Jobs       []fileJob       `hcl:"job,block"`
	ACL        *fileACL        `hcl:"acl,block"`
}

// fileACL is the acl block: `enabled`, an optional fixed bootstrap token,
// and policies applied at start, each from a rules file or inline rules.
type fileACL struct {
	Enabled        bool            `hcl:"enabled"`
	BootstrapToken string          `hcl:"bootstrap_token,optional"`
	Policies       []fileACLPolicy `hcl:"policy,block"`
	Tokens         []fileACLToken  `hcl:"token,block"`
}

type fileACLToken struct {
	Name     string   `hcl:"name,label"`
	Secret   string   `hcl:"secret"`
	Policies []string `hcl:"policies"`
}

type fileACLPolicy struct {
	Name        string    `hcl:"name,label"`
	Description string    `hcl:"description,optional"`
	File        string    `hcl:"file,optional"`
	Rules       string    `hcl:"rules,optional"`
	DefRange    hcl.Range `hcl:",def_range"`
}

type fileNodeGroup struct {
	Name           string            `hcl:"name,label"`
	Platform       string            `hcl:"platform"`
	Count          *int              `hcl:"count,optional"`
	Min            *int              `hcl:"min,optional"`
	Max            *int              `hcl:"max,optional"`
	Datacenter     string            `hcl:"datacenter,optional"`
	NodePool       string            `hcl:"node_pool,optional"`
	NodeClass      string            `hcl:"node_class,optional"`
	CPUMHz         int               `hcl:"cpu_mhz"`
	Cores          int               `hcl:"cores"`
	MemoryMB       int               `hcl:"memory_mb"`
	DiskMB         int               `hcl:"disk_mb"`
	IOMBps         *int              `hcl:"io_mbps,optional"`
	NetMbits       *int              `hcl:"net_mbits,optional"`
	Storage        string            `hcl:"storage,optional"`
	TaskCgroups    *bool             `hcl:"task_cgroups,optional"`
	ProvisionDelay hcl.Expression    `hcl:"provision_delay,optional"`
	Attributes     map[string]string `hcl:"attributes,optional"`
	Meta           map[string]string `hcl:"meta,optional"`
	DefRange       hcl.Range         `hcl:",def_range"`
}

type fileJob struct {
	Name      string         `hcl:"name,label"`
	File      string         `hcl:"file"`
	Workloads []fileWorkload `hcl:"workload,block"`
	DefRange  hcl.Range      `hcl:",def_range"`
}

type fileWorkload struct {
	Group         string             `hcl:"group,label"`
	Trace         string             `hcl:"trace"`
	TimeColumn    string             `hcl:"time_column,optional"`
	Column        string             `hcl:"column,optional"`
	TimeScale     *float64           `hcl:"time_scale,optional"`
	Scale         *float64           `hcl:"scale,optional"`
	MemoryBaseMB  *float64           `hcl:"memory_base_mb,optional"`
	MemoryPerGHz  float64            `hcl:"memory_per_ghz,optional"`
	IOReadPerMHz  float64            `hcl:"io_read_per_mhz,optional"`
	IOWritePerMHz float64            `hcl:"io_write_per_mhz,optional"`
	NetRxPerMHz   float64            `hcl:"net_rx_per_mhz,optional"`
	NetTxPerMHz   float64            `hcl:"net_tx_per_mhz,optional"`
	Efficiency    map[string]float64 `hcl:"efficiency,optional"`
	DefRange      hcl.Range          `hcl:",def_range"`
}

// LoadConfig reads and checks a cluster file. Paths inside it (job files,
// traces) are relative to the file. Every error names the file and line.
func LoadConfig(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read cluster file: %w", err)
	}
	return ParseConfig(path, src)
}

// ParseConfig checks a cluster file's contents; filename names it in errors
// and anchors its relative paths.
func ParseConfig(filename string, src []byte) (*Config, error) {
	parser := hclparse.NewParser()
	f, diags := parser.ParseHCL(src, filename)
	if diags.HasErrors() {
		return nil, diags
	}
	var fc fileConfig
	if diags := gohcl.DecodeBody(f.Body, nil, &fc); diags.HasErrors() {
		return nil, diags
	}
	dir := filepath.Dir(filename)
	cfg := &Config{Region: fc.Region}
	if cfg.Region == "" {
		cfg.Region = defaultRegion
	}
	var all hcl.Diagnostics
	cfg.Start, diags = timeAttr(fc.Start, defaultStart)
	all = append(all, diags...)
	cfg.Step, diags = durationAttr(fc.Step, defaultStep)
	all = append(all, diags...)
	cfg.AllocStart, diags = durationAttr(fc.AllocStart, defaultAllocStart)
	all = append(all, diags...)
	if all.HasErrors() {
		return nil, all
	}

	groups := map[string]bool{}
	classes := map[string]bool{}
	for _, g := range fc.NodeGroups {
		ng, diags := g.check()
		if diags.HasErrors() {
			return nil, diags
		}
		if groups[ng.Name] {
			return nil, errorAt(g.DefRange, "duplicate node group", fmt.Sprintf("node_group %q is defined twice", ng.Name))
		}
		groups[ng.Name] = true
		classes[ng.NodeClass] = true
		cfg.NodeGroups = append(cfg.NodeGroups, ng)
	}
	if len(cfg.NodeGroups) == 0 {
		return nil, fmt.Errorf("%s: a cluster needs at least one node_group", filename)
	}

	if fc.ACL != nil {
		cfg.ACL = ACLConfig{Enabled: fc.ACL.Enabled, BootstrapToken: fc.ACL.BootstrapToken}
		for _, p := range fc.ACL.Policies {
			rules := p.Rules
			if (p.File == "") == (p.Rules == "") {
				return nil, errorAt(p.DefRange, fmt.Sprintf("acl policy %q", p.Name), "give exactly one of file or rules")
			}
			if p.File != "" {
				path := p.File
				if !filepath.IsAbs(path) {
					path = filepath.Join(dir, path)
				}
				b, err := os.ReadFile(path)
				if err != nil {
					return nil, errorAt(p.DefRange, fmt.Sprintf("acl policy %q", p.Name), err.Error())
				}
				rules = string(b)
			}
			cfg.ACL.Policies = append(cfg.ACL.Policies, ACLPolicyConfig{Name: p.Name, Description: p.Description, Rules: rules})
		}
		for _, tok := range fc.ACL.Tokens {
			cfg.ACL.Tokens = append(cfg.ACL.Tokens, ACLTokenConfig{Name: tok.Name, Secret: tok.Secret, Policies: tok.Policies})
		}
	}

	jobIDs := map[string]bool{}
	for _, fj := range fc.Jobs {
		jc, err := fj.load(dir, classes)
		if err != nil {
			return nil, err
		}
		if jobIDs[*jc.Job.ID] {
			return nil, errorAt(fj.DefRange, "duplicate job", fmt.Sprintf("job %q is defined twice", *jc.Job.ID))
		}
		jobIDs[*jc.Job.ID] = true
		cfg.Jobs = append(cfg.Jobs, jc)
	}
	return cfg, nil
}

func (g fileNodeGroup) check() (*NodeGroupConfig, hcl.Diagnostics) {
	ng := &NodeGroupConfig{
		Name:       g.Name,
		Platform:   g.Platform,
		Datacenter: cmp.Or(g.Datacenter, "dc1"),
		NodePool:   cmp.Or(g.NodePool, "default"),
		NodeClass:  g.NodeClass,
		CPUMHz:     g.CPUMHz,
		Cores:      g.Cores,
		MemoryMB:   g.MemoryMB,
		DiskMB:     g.DiskMB,
		IOMBps:     intOr(g.IOMBps, defaultIOMBps),
		NetMbits:   intOr(g.NetMbits, defaultNetMbits),
		Storage:    cmp.Or(g.Storage, "ssd"),
		Attributes: g.Attributes,
		Meta:       g.Meta,
		// Tasks have cgroups of their own unless the file says otherwise.
		NoTaskCgroups: g.TaskCgroups != nil && !*g.TaskCgroups,
	}
	bad := func(detail string) (*NodeGroupConfig, hcl.Diagnostics) {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: fmt.Sprintf("invalid node_group %q", g.Name), Detail: detail, Subject: g.DefRange.Ptr()}}
	}
	switch g.Platform {
	case PlatformExternal:
		if g.Min != nil || g.Max != nil {
			return bad("min and max apply to provider node groups only; an external group has a fixed count")
		}
		ng.Count = intOr(g.Count, 1)
		ng.Min, ng.Max = ng.Count, ng.Count
	case PlatformProvider:
		ng.Min = intOr(g.Min, 0)
		ng.Max = intOr(g.Max, ng.Min)
		ng.Count = intOr(g.Count, ng.Min)
		if ng.Min > ng.Max {
			return bad(fmt.Sprintf("min (%d) is greater than max (%d)", ng.Min, ng.Max))
		}
		if ng.Count < ng.Min || ng.Count > ng.Max {
			return bad(fmt.Sprintf("count %d is outside min..max (%d..%d)", ng.Count, ng.Min, ng.Max))
		}
	default:
		return bad(fmt.Sprintf("platform must be %q or %q, not %q", PlatformExternal, PlatformProvider, g.Platform))
	}
	if ng.Count < 0 {
		return bad("count cannot be negative")
	}
	if g.CPUMHz <= 0 || g.Cores <= 0 || g.MemoryMB <= 0 || g.DiskMB <= 0 {
		return bad("cpu_mhz, cores, memory_mb and disk_mb must all be positive")
	}
	if ng.IOMBps <= 0 || ng.NetMbits <= 0 {
		return bad("io_mbps and net_mbits must be positive")
	}
	if ng.Storage != "ssd" && ng.Storage != "hdd" {
		return bad(fmt.Sprintf("storage must be \"ssd\" or \"hdd\", not %q", ng.Storage))
	}
	var diags hcl.Diagnostics
	ng.ProvisionDelay, diags = durationAttr(g.ProvisionDelay, defaultProvisionDelay)
	return ng, diags
}

func (fj fileJob) load(dir string, classes map[string]bool) (*JobConfig, error) {
	path := fj.File
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	job, err := LoadJobFile(path)
	if err != nil {
		return nil, errorAt(fj.DefRange, fmt.Sprintf("job %q", fj.Name), err.Error())
	}
	if *job.ID != fj.Name {
		return nil, errorAt(fj.DefRange, "job name mismatch", fmt.Sprintf("block says %q but %s holds job %q", fj.Name, fj.File, *job.ID))
	}
	jc := &JobConfig{Job: job}
	seen := map[string]bool{}
	for _, w := range fj.Workloads {
		if seen[w.Group] {
			return nil, errorAt(w.DefRange, "duplicate workload", fmt.Sprintf("group %q has two workloads", w.Group))
		}
		seen[w.Group] = true
		if groupOf(job, w.Group) == nil {
			return nil, errorAt(w.DefRange, "unknown group", fmt.Sprintf("job %q has no task group %q", fj.Name, w.Group))
		}
		wc, err := w.load(dir, classes)
		if err != nil {
			return nil, err
		}
		jc.Workloads = append(jc.Workloads, wc)
	}
	return jc, nil
}

func (w fileWorkload) load(dir string, classes map[string]bool) (*WorkloadConfig, error) {
	path := w.Trace
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	tr, err := LoadTrace(path, w.TimeColumn, w.Column)
	if err != nil {
		return nil, errorAt(w.DefRange, fmt.Sprintf("workload %q", w.Group), err.Error())
	}
	if w.TimeScale != nil {
		// The trace plays N times faster than it was recorded.
		if tr, err = tr.Faster(*w.TimeScale); err != nil {
			return nil, errorAt(w.DefRange, fmt.Sprintf("workload %q", w.Group), err.Error())
		}
	}
	wc := &WorkloadConfig{
		Group:         w.Group,
		Trace:         tr,
		Scale:         floatOr(w.Scale, 1),
		MemoryBaseMB:  floatOr(w.MemoryBaseMB, 64),
		MemoryPerGHz:  w.MemoryPerGHz,
		IOReadPerMHz:  w.IOReadPerMHz,
		IOWritePerMHz: w.IOWritePerMHz,
		NetRxPerMHz:   w.NetRxPerMHz,
		NetTxPerMHz:   w.NetTxPerMHz,
		Efficiency:    w.Efficiency,
	}
	for _, v := range []float64{wc.Scale, wc.MemoryBaseMB, wc.MemoryPerGHz, wc.IOReadPerMHz, wc.IOWritePerMHz, wc.NetRxPerMHz, wc.NetTxPerMHz} {
		if v < 0 {
			return nil, errorAt(w.DefRange, fmt.Sprintf("workload %q", w.Group), "scale, memory and I/O coefficients cannot be negative")
		}
	}
	for class, e := range wc.Efficiency {
		if !classes[class] {
			return nil, errorAt(w.DefRange, fmt.Sprintf("workload %q", w.Group), fmt.Sprintf("efficiency names node class %q, which no node_group has", class))
		}
		if e <= 0 {
			return nil, errorAt(w.DefRange, fmt.Sprintf("workload %q", w.Group), fmt.Sprintf("efficiency of %q must be positive, not %g", class, e))
		}
	}
	return wc, nil
}

// LoadJobFile reads a job in Nomad's JSON format, either the bare job or
// wrapped as {"Job": …} the way `nomad job run -output` writes it, then
// canonicalizes and validates it as Nomad would on register.
func LoadJobFile(path string) (*api.Job, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read job file: %w", err)
	}
	job, err := decodeJob(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := validateJob(job); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return job, nil
}

// decodeJob reads a job in Nomad's JSON format, bare or wrapped in {"Job": …}.
// Unknown fields are refused: in a hand-written file they are typos.
func decodeJob(src []byte) (*api.Job, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(src, &top); err != nil {
		return nil, jsonError(src, err)
	}
	body := src
	if inner, ok := top["Job"]; ok && len(top) == 1 {
		body = inner
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var job api.Job
	if err := dec.Decode(&job); err != nil {
		return nil, jsonError(body, err)
	}
	canonicalizeJob(&job)
	return &job, nil
}

// jsonError turns a decoding error into one that names the line.
func jsonError(src []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("line %d: %w", lineOf(src, syn.Offset), err)
	case errors.As(err, &typ):
		return fmt.Errorf("line %d: %w", lineOf(src, typ.Offset), err)
	}
	return err
}

func lineOf(src []byte, offset int64) int {
	if offset > int64(len(src)) {
		offset = int64(len(src))
	}
	return 1 + strings.Count(string(src[:offset]), "\n")
}

// validateJob applies the checks Nomad makes before it accepts a job.
func validateJob(job *api.Job) error {
	if job.ID == nil || *job.ID == "" {
		return errors.New("job has no ID")
	}
	if len(job.TaskGroups) == 0 {
		return fmt.Errorf("job %q has no task groups", *job.ID)
	}
	seen := map[string]bool{}
	for _, tg := range job.TaskGroups {
		if tg.Name == nil || *tg.Name == "" {
			return fmt.Errorf("job %q has a task group without a name", *job.ID)
		}
		if seen[*tg.Name] {
			return fmt.Errorf("job %q has two task groups named %q", *job.ID, *tg.Name)
		}
		seen[*tg.Name] = true
		if tg.Count != nil && *tg.Count < 0 {
			return fmt.Errorf("task group %q: count cannot be negative", *tg.Name)
		}
		if len(tg.Tasks) == 0 {
			return fmt.Errorf("task group %q has no tasks", *tg.Name)
		}
		for _, t := range tg.Tasks {
			if t.Name == "" || t.Driver == "" {
				return fmt.Errorf("task group %q: every task needs a name and a driver", *tg.Name)
			}
			if t.Resources == nil || t.Resources.CPU == nil || *t.Resources.CPU <= 0 || t.Resources.MemoryMB == nil || *t.Resources.MemoryMB <= 0 {
				return fmt.Errorf("task %q: resources need a positive cpu and memory", t.Name)
			}
		}
	}
	return nil
}

func groupOf(job *api.Job, name string) *api.TaskGroup {
	for _, tg := range job.TaskGroups {
		if tg.Name != nil && *tg.Name == name {
			return tg
		}
	}
	return nil
}

func errorAt(r hcl.Range, summary, detail string) error {
	return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: r.Ptr()}}
}

// exprString evaluates an optional attribute; ok is false when it was absent.
func exprString(expr hcl.Expression) (string, bool, hcl.Diagnostics) {
	if expr == nil {
		return "", false, nil
	}
	v, diags := expr.Value(nil)
	if diags.HasErrors() {
		return "", false, diags
	}
	if v.IsNull() {
		return "", false, nil
	}
	if v.Type() != cty.String {
		return "", false, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "expected a string", Subject: expr.Range().Ptr()}}
	}
	return v.AsString(), true, nil
}

func durationAttr(expr hcl.Expression, def time.Duration) (time.Duration, hcl.Diagnostics) {
	s, ok, diags := exprString(expr)
	if diags.HasErrors() || !ok {
		return def, diags
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "invalid duration", Detail: fmt.Sprintf("%q is not a positive duration such as \"10s\" or \"4m\"", s), Subject: expr.Range().Ptr()}}
	}
	return d, nil
}

func timeAttr(expr hcl.Expression, def time.Time) (time.Time, hcl.Diagnostics) {
	s, ok, diags := exprString(expr)
	if diags.HasErrors() || !ok {
		return def, diags
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "invalid time", Detail: fmt.Sprintf("%q is not an RFC 3339 time such as \"2026-01-05T00:00:00Z\"", s), Subject: expr.Range().Ptr()}}
	}
	return t.UTC(), nil
}

func intOr(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}

func floatOr(p *float64, def float64) float64 {
	if p == nil {
		return def
	}
	return *p
}
