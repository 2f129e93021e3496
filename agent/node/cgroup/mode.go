// Package cgroup reads the per-task counters Linux keeps in the cgroup tree
// that Nomad creates for each task: disk bytes, pressure stall, CPU
// throttling and memory. It finds a task's cgroup the way Nomad lays it out,
// on cgroup v2 and on v1, and turns successive readings into rates.
//
// Every value carries its presence: a file that does not exist, or that
// cannot be parsed, leaves its metric absent, never zero.
package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// DefaultRoot is where the cgroup hierarchy is mounted on mainstream Linux.
const DefaultRoot = "/sys/fs/cgroup"

// Mode is the cgroup version a host runs.
type Mode uint8

// The cgroup versions.
const (
	// ModeUnknown means no cgroup hierarchy was found.
	ModeUnknown Mode = iota
	// V1 is the legacy hierarchy: one tree per controller (also hybrid hosts,
	// which Nomad treats as v1).
	V1
	// V2 is the unified hierarchy mounted at the root.
	V2
)

// String names the mode as Nomad's docs do.
func (m Mode) String() string {
	switch m {
	case V1:
		return "v1"
	case V2:
		return "v2"
	default:
		return "unknown"
	}
}

// v1Probes are controller directories whose presence marks a v1 (or hybrid)
// root; Nomad itself needs cpu and memory there.
var v1Probes = []string{"memory", "cpu", "cpuacct", "blkio"}

// DetectMode tells which cgroup version is mounted at root. A unified (v2)
// hierarchy has cgroup.controllers at its root; a v1 or hybrid host mounts a
// tmpfs there holding one directory per controller. Nomad uses v1 on hybrid
// hosts, and so does this.
func DetectMode(root string) (Mode, error) {
	if root == "" {
		root = DefaultRoot
	}
	_, err := os.Stat(filepath.Join(root, "cgroup.controllers"))
	if err == nil {
		return V2, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return ModeUnknown, fmt.Errorf("detect cgroup mode at %s: %w", root, err)
	}
	for _, c := range v1Probes {
		fi, err := os.Stat(filepath.Join(root, c))
		if err == nil && fi.IsDir() {
			return V1, nil
		}
	}
	return ModeUnknown, fmt.Errorf("detect cgroup mode at %s: no cgroup.controllers and no v1 controller directory", root)
}
