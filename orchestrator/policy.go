package orchestrator

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/foresight-nomad/foresight/profiles"
	"github.com/foresight-nomad/foresight/telemetry"
)

// The job and group meta keys a user sets to steer Foresight. A group's
// meta overrides its job's, which overrides the operator's Config.
const (
	MetaMode              = "foresight.mode"
	MetaMin               = "foresight.min"
	MetaMax               = "foresight.max"
	MetaQuantile          = "foresight.quantile"
	MetaHeadroom          = "foresight.headroom"
	MetaTargetUtilization = "foresight.target_utilization"
	MetaMaxStep           = "foresight.max_step"
	MetaCooldownUp        = "foresight.cooldown_up"
	MetaCooldownDown      = "foresight.cooldown_down"
	MetaRightsize         = "foresight.rightsize"
	// MetaMetric names the metric the count divides (a telemetry metric
	// name, default cpu_mhz): demand that spreads over instances.
	MetaMetric = "foresight.metric"
	// MetaMetricTarget is what one instance should carry of MetaMetric,
	// needed for a metric no reservation bounds (network, disk).
	MetaMetricTarget = "foresight.metric_target"
)

// divisible are the metrics a count may be sized from: amounts that add up
// over instances. Ratios and pressure do not divide.
var divisible = []string{
	telemetry.CPUMHz, telemetry.MemUsageBytes, telemetry.MemRSSBytes,
	telemetry.NetRxBPS, telemetry.NetTxBPS, telemetry.IOReadBPS, telemetry.IOWriteBPS,
}

// isMemory reports whether metric is a memory metric, whose demand
// Input.Demand carries in MB and each allocation's reservation bounds.
func isMemory(metric string) bool {
	return metric == telemetry.MemUsageBytes || metric == telemetry.MemRSSBytes
}

// reserved reports whether a reservation bounds metric: cpu and memory.
func reserved(metric string) bool { return metric == telemetry.CPUMHz || isMemory(metric) }

// NeedsMetricDemand reports whether the count's metric is one that
// Input.MetricDemand must carry: neither cpu nor memory, which Demand does.
func (p Policy) NeedsMetricDemand() bool { return !reserved(p.Metric) }

// Mode is how far Foresight may go with a group.
type Mode string

// The modes a group can be in.
const (
	// ModeOff: Foresight neither decides nor acts.
	ModeOff Mode = "off"
	// ModeRecommend: Foresight decides and reports, and writes nothing.
	ModeRecommend Mode = "recommend"
	// ModeEnforce: Foresight writes its decisions to the job.
	ModeEnforce Mode = "enforce"
)

// Defaults of Config, the values a group gets when neither the operator nor
// the job says otherwise.
const (
	DefaultMode              = ModeRecommend
	DefaultMinCount          = 1
	DefaultMaxCount          = 100
	DefaultQuantile          = 0.95
	DefaultHeadroom          = 0.1
	DefaultTargetUtilization = 0.7
	// DefaultMaxStep is the most allocations one action adds or removes.
	DefaultMaxStep = 10
	// DefaultCooldownUp is short: being late for a peak costs more than
	// an allocation bought a minute early.
	DefaultCooldownUp = 2 * time.Minute
	// DefaultCooldownDown is long, so that a dip between two peaks does
	// not release capacity that is needed again right after.
	DefaultCooldownDown = 10 * time.Minute
	// DefaultScaleDownBand is the hysteresis of the count: it falls only
	// to what the demand needs at a utilisation this much below the
	// target, so a demand wavering around a boundary does not flap it.
	DefaultScaleDownBand = 0.1
	// DefaultRewritesPerHour bounds destructive writes (affinities,
	// resources) per group: each one replaces every allocation.
	DefaultRewritesPerHour = 2
	// DefaultRightsizeMargin is added on top of the per-allocation usage
	// quantile when resources are rightsized.
	DefaultRightsizeMargin = 0.15
	// DefaultRightsizeTolerance is the relative change in a reservation
	// below which rightsizing leaves it as it is: a resource change
	// replaces every allocation, so small gains are not worth it.
	DefaultRightsizeTolerance = 0.1
	// Bounds of a rightsized allocation.
	DefaultMinCPUMHz   = 100
	DefaultMaxCPUMHz   = 16000
	DefaultMinMemoryMB = 64
	DefaultMaxMemoryMB = 65536
)

// Config is the operator's side of every group's policy: the defaults the
// job meta can override, and the damping and bounds only the operator sets.
// The zero value means every default.
type Config struct {
	Mode              Mode
	MinCount          int
	MaxCount          int
	Quantile          float64
	Headroom          float64
	TargetUtilization float64
	MaxStep           int
	CooldownUp        time.Duration
	CooldownDown      time.Duration
	// Rightsize lets every group have its resources rightsized unless its
	// meta says foresight.rightsize = "false".
	Rightsize bool

	// SwitchMargin is the score points another class must gain over the
	// group's class before it is moved (profiles.Choose); 0 means
	// profiles.DefaultSwitchMargin.
	SwitchMargin       float64
	ScaleDownBand      float64
	RewritesPerHour    int
	RightsizeMargin    float64
	RightsizeTolerance float64
	MinCPUMHz          float64
	MaxCPUMHz          float64
	MinMemoryMB        float64
	MaxMemoryMB        float64
}

// withDefaults fills every zero field.
func (c Config) withDefaults() Config {
	setStr := func(v *Mode, d Mode) {
		if *v == "" {
			*v = d
		}
	}
	setInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	setF := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	setD := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	setStr(&c.Mode, DefaultMode)
	setInt(&c.MinCount, DefaultMinCount)
	setInt(&c.MaxCount, DefaultMaxCount)
	setF(&c.Quantile, DefaultQuantile)
	setF(&c.Headroom, DefaultHeadroom)
	setF(&c.TargetUtilization, DefaultTargetUtilization)
	setInt(&c.MaxStep, DefaultMaxStep)
	setD(&c.CooldownUp, DefaultCooldownUp)
	setD(&c.CooldownDown, DefaultCooldownDown)
	setF(&c.SwitchMargin, profiles.DefaultSwitchMargin)
	setF(&c.ScaleDownBand, DefaultScaleDownBand)
	setInt(&c.RewritesPerHour, DefaultRewritesPerHour)
	setF(&c.RightsizeMargin, DefaultRightsizeMargin)
	setF(&c.RightsizeTolerance, DefaultRightsizeTolerance)
	setF(&c.MinCPUMHz, DefaultMinCPUMHz)
	setF(&c.MaxCPUMHz, DefaultMaxCPUMHz)
	setF(&c.MinMemoryMB, DefaultMinMemoryMB)
	setF(&c.MaxMemoryMB, DefaultMaxMemoryMB)
	return c
}

// Policy is what Foresight may do with one group, resolved from the
// operator's Config and the job's and group's meta.
type Policy struct {
	Mode              Mode          `json:"mode"`
	Min               int           `json:"min"`
	Max               int           `json:"max"`
	Quantile          float64       `json:"quantile"`
	Headroom          float64       `json:"headroom"`
	TargetUtilization float64       `json:"target_utilization"`
	MaxStep           int           `json:"max_step"`
	CooldownUp        time.Duration `json:"cooldown_up"`
	CooldownDown      time.Duration `json:"cooldown_down"`
	Rightsize         bool          `json:"rightsize"`
	// Metric is the divisible metric the count is sized from, and
	// MetricTarget what one instance should carry of it (0: its
	// reservation × TargetUtilization).
	Metric       string  `json:"metric"`
	MetricTarget float64 `json:"metric_target,omitempty"`
}

// PolicyOf resolves a group's policy: the group's meta wins over the job's,
// which wins over cfg. Every bad value is reported, each naming its key and
// value; with an error the policy must not be acted on.
func PolicyOf(cfg Config, jobMeta, groupMeta map[string]string) (Policy, error) {
	cfg = cfg.withDefaults()
	p := Policy{
		Mode: cfg.Mode, Min: cfg.MinCount, Max: cfg.MaxCount,
		Quantile: cfg.Quantile, Headroom: cfg.Headroom, TargetUtilization: cfg.TargetUtilization,
		MaxStep: cfg.MaxStep, CooldownUp: cfg.CooldownUp, CooldownDown: cfg.CooldownDown,
		Rightsize: cfg.Rightsize, Metric: telemetry.CPUMHz,
	}
	lookup := func(key string) (string, bool) {
		if v, ok := groupMeta[key]; ok {
			return v, true
		}
		v, ok := jobMeta[key]
		return v, ok
	}
	var errs []error
	bad := func(key, value, why string) {
		errs = append(errs, fmt.Errorf("%s = %q: %s", key, value, why))
	}
	if v, ok := lookup(MetaMode); ok {
		switch m := Mode(v); m {
		case ModeOff, ModeRecommend, ModeEnforce:
			p.Mode = m
		default:
			bad(MetaMode, v, "want off, recommend or enforce")
		}
	}
	ints := []struct {
		key string
		dst *int
		min int
	}{
		{MetaMin, &p.Min, 0},
		{MetaMax, &p.Max, 1},
		{MetaMaxStep, &p.MaxStep, 1},
	}
	for _, f := range ints {
		v, ok := lookup(f.key)
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			bad(f.key, v, "not an integer")
		case n < f.min:
			bad(f.key, v, fmt.Sprintf("must be at least %d", f.min))
		default:
			*f.dst = n
		}
	}
	floats := []struct {
		key    string
		dst    *float64
		lo, hi float64
		loOpen bool
		hiOpen bool
	}{
		{MetaQuantile, &p.Quantile, 0, 1, true, true},
		{MetaHeadroom, &p.Headroom, 0, 10, false, false},
		{MetaTargetUtilization, &p.TargetUtilization, 0, 1, true, false},
	}
	for _, f := range floats {
		v, ok := lookup(f.key)
		if !ok {
			continue
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			bad(f.key, v, "not a number")
			continue
		}
		if x < f.lo || x > f.hi || (f.loOpen && x == f.lo) || (f.hiOpen && x == f.hi) {
			bad(f.key, v, fmt.Sprintf("must be in %s%g, %g%s", bracket(f.loOpen, "(", "["), f.lo, f.hi, bracket(f.hiOpen, ")", "]")))
			continue
		}
		*f.dst = x
	}
	for _, f := range []struct {
		key string
		dst *time.Duration
	}{{MetaCooldownUp, &p.CooldownUp}, {MetaCooldownDown, &p.CooldownDown}} {
		v, ok := lookup(f.key)
		if !ok {
			continue
		}
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			bad(f.key, v, "not a duration (e.g. 5m)")
		case d < 0:
			bad(f.key, v, "must not be negative")
		default:
			*f.dst = d
		}
	}
	if v, ok := lookup(MetaRightsize); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad(MetaRightsize, v, "want true or false")
		} else {
			p.Rightsize = b
		}
	}
	if v, ok := lookup(MetaMetric); ok {
		if slices.Contains(divisible, v) {
			p.Metric = v
		} else {
			bad(MetaMetric, v, fmt.Sprintf("want a metric that divides over instances: %s", strings.Join(divisible, ", ")))
		}
	}
	if v, ok := lookup(MetaMetricTarget); ok {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) || x <= 0 {
			bad(MetaMetricTarget, v, "want a positive number, in the metric's unit per instance")
		} else {
			p.MetricTarget = x
		}
	}
	if p.MetricTarget == 0 && !reserved(p.Metric) {
		errs = append(errs, fmt.Errorf("%s = %q needs %s: no reservation says what one instance can carry of it", MetaMetric, p.Metric, MetaMetricTarget))
	}
	if p.Min > p.Max {
		errs = append(errs, fmt.Errorf("%s = %d exceeds %s = %d", MetaMin, p.Min, MetaMax, p.Max))
	}
	if err := errors.Join(errs...); err != nil {
		return Policy{}, fmt.Errorf("bad policy: %w", err)
	}
	return p, nil
}

func bracket(open bool, o, c string) string {
	if open {
		return o
	}
	return c
}
