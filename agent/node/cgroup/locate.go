package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Nomad's default cgroup parents, as set by the client's cgroup_parent option.
const (
	// DefaultParentV2 is the slice Nomad creates under a v2 root.
	DefaultParentV2 = "nomad.slice"
	// DefaultParentV1 is the directory Nomad creates in each v1 controller.
	DefaultParentV1 = "nomad"
)

// Nomad ≥1.7 splits its v2 slice (and its v1 cpuset tree) into partitions:
// tasks that share cores and tasks that reserve cores.
const (
	sharePartitionV2   = "share.slice"
	reservePartitionV2 = "reserve.slice"
)

// ErrNotFound reports that a task has no cgroup where Nomad would put it: the
// task has not started, has exited, or its driver places it elsewhere (for
// example Docker containers on hosts where Nomad does not set the parent).
var ErrNotFound = errors.New("task cgroup not found")

// file names one interface file a Reader reads.
type file uint8

const (
	fileIO file = iota // v2 io.stat, or the v1 blkio file this host has
	fileCPUStat
	fileCPUPressure
	fileMemPressure
	fileIOPressure
	fileMemCurrent
	fileMemStat
	fileMemSwap
	fileProcs
	fileCPUQuota // v1 cpu.cfs_quota_us or v2 cpu.max
	nFiles
)

// v1BlkioFiles are the v1 disk byte counters in order of preference: the
// throttle layer counts every bio on every kernel, the others only exist
// under the legacy CFQ/BFQ schedulers.
var v1BlkioFiles = []string{
	"blkio.throttle.io_service_bytes",
	"blkio.io_service_bytes_recursive",
	"blkio.io_service_bytes",
}

// Task is a located task cgroup: the absolute paths of the files that hold
// its counters, resolved once so that each sample costs only the reads.
type Task struct {
	// Mode is the cgroup version the paths belong to.
	Mode Mode
	// Dir is the task's cgroup directory (on v1, the one in the memory tree).
	Dir string
	// Dirs are the task's own cgroups the paths are in.
	Dirs Dirs

	files [nFiles]string // "" where this layout has no such file
}

// Locator finds task cgroups under a cgroup root in Nomad's layout.
type Locator struct {
	root   string
	parent string
	mode   Mode
}

// NewLocator detects the cgroup version at root (DefaultRoot when empty) and
// returns a Locator for tasks under parent, the Nomad client's cgroup_parent
// (DefaultParentV2 or DefaultParentV1 when empty).
func NewLocator(root, parent string) (*Locator, error) {
	if root == "" {
		root = DefaultRoot
	}
	mode, err := DetectMode(root)
	if err != nil {
		return nil, err
	}
	if parent == "" {
		parent = DefaultParentV2
		if mode == V1 {
			parent = DefaultParentV1
		}
	}
	return &Locator{root: root, parent: parent, mode: mode}, nil
}

// Mode returns the cgroup version the Locator found.
func (l *Locator) Mode() Mode { return l.mode }

// Locate finds the cgroup of one task of an allocation, trying every layout a
// Nomad release has used:
//
//	v2, Nomad ≥1.7: <root>/<parent>/share.slice/<allocID>.<task>.scope
//	                <root>/<parent>/reserve.slice/<allocID>.<task>.scope (reserved cores)
//	v2, Nomad 1.6:  <root>/<parent>/<allocID>.<task>.scope
//	v1, Nomad ≥1.7: <root>/<controller>/<parent>/<allocID>.<task>
//
// Nomad ≥1.7 creates v1 cgroups only in the cpu, cpuacct, memory, freezer
// and cpuset trees, so on v1 disk bytes are usually absent. Nomad 1.6 and
// older named v1 cgroups of the exec driver after a random ID, and Docker
// names its containers' cgroups after the container ID; neither can be
// found from the allocation, and Locate answers ErrNotFound for them, as it
// does for a task that has not started or has gone. A caller that knows the
// path can use At instead.
func (l *Locator) Locate(allocID, task string) (Task, error) {
	if allocID == "" || task == "" {
		return Task{}, fmt.Errorf("locate cgroup: empty allocation ID or task name")
	}
	if l.mode == V1 {
		return l.At(filepath.Join(l.parent, allocID+"."+task))
	}
	scope := allocID + "." + task + ".scope"
	candidates := [...]string{
		filepath.Join(l.parent, sharePartitionV2, scope),
		filepath.Join(l.parent, reservePartitionV2, scope),
		filepath.Join(l.parent, scope),
	}
	for _, rel := range candidates {
		t, err := l.At(rel)
		if err == nil || !errors.Is(err, ErrNotFound) {
			return t, err
		}
	}
	return Task{}, fmt.Errorf("locate cgroup of %s/%s under %s: %w", allocID, task, filepath.Join(l.root, l.parent), ErrNotFound)
}

// At returns the task cgroup at rel, a path relative to the v2 root or, on
// v1, to each controller's tree (for example "nomad/<allocID>.<task>").
func (l *Locator) At(rel string) (Task, error) {
	d, err := l.dirsAt(rel)
	if err != nil {
		return Task{}, err
	}
	return d.Task(), nil
}

// dirsAt is the cgroup at rel in every controller that has it.
func (l *Locator) dirsAt(rel string) (Dirs, error) {
	if l.mode == V2 {
		dir := filepath.Join(l.root, rel)
		if !isDir(dir) {
			return Dirs{}, fmt.Errorf("cgroup %s: %w", dir, ErrNotFound)
		}
		return Dirs{Unified: dir, UnifiedControllers: true}, nil
	}
	var d Dirs
	for _, c := range [...]struct {
		name string
		dst  *string
	}{{"memory", &d.Memory}, {"cpu", &d.CPU}, {"blkio", &d.Blkio}} {
		if p := filepath.Join(l.root, c.name, rel); isDir(p) {
			*c.dst = p
		}
	}
	if d.Memory == "" && d.CPU == "" {
		return Dirs{}, fmt.Errorf("cgroup %s in the memory and cpu trees of %s: %w", rel, l.root, ErrNotFound)
	}
	return d, nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
