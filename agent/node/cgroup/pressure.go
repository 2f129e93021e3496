package cgroup

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/foresight-nomad/foresight/agent/node/kfile"
)

// Pressure is one resource's pressure stall information (PSI) for a cgroup:
// how much of the time some (or all) of its tasks waited for the resource.
type Pressure struct {
	// SomeAvg10 is the share of the last 10 s in which at least one task
	// stalled, in percent, as the kernel averages it.
	SomeAvg10 float64
	// SomeTotal is the cumulative time in which at least one task stalled.
	SomeTotal time.Duration
	// HasFull says whether the kernel reported a full line (all tasks
	// stalled at once); kernels before 5.13 have none for cpu.
	HasFull bool
	// FullAvg10 is the share of the last 10 s in which all tasks stalled, in percent.
	FullAvg10 float64
	// FullTotal is the cumulative time in which all tasks stalled.
	FullTotal time.Duration
}

// ParsePressure parses a PSI file (cpu.pressure, memory.pressure,
// io.pressure), whose lines look like
//
//	some avg10=0.12 avg60=0.05 avg300=0.01 total=123456
//	full avg10=0.00 avg60=0.00 avg300=0.00 total=4567
//
// total counts microseconds. The some line is required; full is optional.
func ParsePressure(b []byte) (Pressure, error) {
	var p Pressure
	var haveSome bool
	for len(b) > 0 {
		var line []byte
		line, b = kfile.NextLine(b)
		kind, rest := nextField(line)
		if len(kind) == 0 {
			continue
		}
		avg10, total, err := parsePressureLine(rest)
		if err != nil {
			return Pressure{}, fmt.Errorf("pressure: %s line: %w", kind, err)
		}
		switch string(kind) {
		case "some":
			p.SomeAvg10, p.SomeTotal, haveSome = avg10, total, true
		case "full":
			p.FullAvg10, p.FullTotal, p.HasFull = avg10, total, true
		default:
			return Pressure{}, fmt.Errorf("pressure: unknown line kind %q", kind)
		}
	}
	if !haveSome {
		return Pressure{}, fmt.Errorf("pressure: no some line")
	}
	return p, nil
}

// parsePressureLine reads avg10 and total from the key=value fields of one
// PSI line; avg60 and avg300 are checked for shape only.
func parsePressureLine(b []byte) (avg10 float64, total time.Duration, err error) {
	var haveAvg, haveTotal bool
	for {
		var key, val []byte
		if key, val, b, err = nextAssignment(b); err != nil {
			return 0, 0, err
		}
		if len(key) == 0 {
			break
		}
		switch string(key) {
		case "avg10", "avg60", "avg300":
			v, err := parsePercent(val)
			if err != nil {
				return 0, 0, fmt.Errorf("%s: %w", key, err)
			}
			if string(key) == "avg10" {
				avg10, haveAvg = v, true
			}
		case "total":
			us, err := parseUint(val)
			if err != nil {
				return 0, 0, fmt.Errorf("total: %w", err)
			}
			if total, err = micros(us); err != nil {
				return 0, 0, fmt.Errorf("total: %w", err)
			}
			haveTotal = true
		default:
			return 0, 0, fmt.Errorf("unknown key %q", key)
		}
	}
	if !haveAvg || !haveTotal {
		return 0, 0, fmt.Errorf("missing avg10 or total")
	}
	return avg10, total, nil
}

// parsePercent parses a PSI average, which the kernel prints as a plain
// decimal between 0 and 100.
func parsePercent(b []byte) (float64, error) {
	for _, c := range b {
		if (c < '0' || c > '9') && c != '.' {
			return 0, fmt.Errorf("%q is not a decimal", b)
		}
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return 0, err
	}
	if v < 0 || v > 100 || math.IsNaN(v) {
		return 0, fmt.Errorf("%v is not a percentage", v)
	}
	return v, nil
}
