package cgroup

import (
	"bytes"
	"fmt"
	"time"
)

// CPUStat is what a cgroup's cpu.stat says about CPU time and bandwidth
// throttling.
type CPUStat struct {
	// HasThrottle says whether the throttling counters were present (v2
	// reports them only where the cpu controller is enabled).
	HasThrottle bool
	// Periods counts the enforcement periods in which the cgroup was runnable.
	Periods uint64
	// ThrottledPeriods counts the periods in which it hit its quota.
	ThrottledPeriods uint64
	// ThrottledTime is the cumulative time its tasks were throttled.
	ThrottledTime time.Duration

	// HasUsage says whether Usage was present (v2 only; v1 keeps it in cpuacct).
	HasUsage bool
	// Usage is the cumulative CPU time used.
	Usage time.Duration
}

// ParseCPUStat parses a cpu.stat file of either version: v2 counts
// usage_usec, nr_periods, nr_throttled and throttled_usec; v1 counts
// nr_periods, nr_throttled and throttled_time in nanoseconds. Unknown keys
// are skipped, as kernels add them.
func ParseCPUStat(b []byte) (CPUStat, error) {
	var s CPUStat
	var havePeriods, haveThrottled, haveTime bool
	for len(b) > 0 {
		var key, val []byte
		var err error
		if key, val, b, err = nextKeyValue(b); err != nil {
			return CPUStat{}, fmt.Errorf("cpu.stat: %w", err)
		}
		if len(key) == 0 {
			continue
		}
		var target *uint64
		var unit uint64
		switch string(key) {
		case "nr_periods":
			target, havePeriods = &s.Periods, true
		case "nr_throttled":
			target, haveThrottled = &s.ThrottledPeriods, true
		case "throttled_usec":
			unit, haveTime = uint64(time.Microsecond), true
		case "throttled_time":
			unit, haveTime = uint64(time.Nanosecond), true
		case "usage_usec":
			unit, s.HasUsage = uint64(time.Microsecond), true
		default:
			continue
		}
		v, err := parseUint(val)
		if err != nil {
			return CPUStat{}, fmt.Errorf("cpu.stat: %s: %w", key, err)
		}
		if target != nil {
			*target = v
			continue
		}
		d, err := scaled(v, unit)
		if err != nil {
			return CPUStat{}, fmt.Errorf("cpu.stat: %s: %w", key, err)
		}
		if string(key) == "usage_usec" {
			s.Usage = d
		} else {
			s.ThrottledTime = d
		}
	}
	s.HasThrottle = havePeriods && haveThrottled && haveTime
	if !s.HasThrottle {
		s.Periods, s.ThrottledPeriods, s.ThrottledTime = 0, 0, 0
	}
	return s, nil
}

// ParseCPUQuota reads a cgroup's CPU bandwidth limit: v1 cpu.cfs_quota_us
// ("-1" for none, else microseconds per period) or v2 cpu.max ("max 100000"
// for none, else "<quota> <period>"). unlimited says the cgroup has no
// quota, so the kernel never throttles it.
func ParseCPUQuota(b []byte) (unlimited bool, err error) {
	quota, rest := nextField(b)
	period, rest := nextField(rest)
	if extra, _ := nextField(rest); len(extra) > 0 || len(quota) == 0 {
		return false, fmt.Errorf("cpu quota: %q is not \"quota [period]\"", b)
	}
	if len(period) > 0 {
		if _, err := parseUint(bytes.TrimSpace(period)); err != nil {
			return false, fmt.Errorf("cpu quota: period: %w", err)
		}
	}
	quota = bytes.TrimSpace(quota)
	switch string(quota) {
	case "-1", "max":
		return true, nil
	}
	if _, err := parseUint(quota); err != nil {
		return false, fmt.Errorf("cpu quota: %w", err)
	}
	return false, nil
}
