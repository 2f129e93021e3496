package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/prometheus/procfs"

	"github.com/foresight-nomad/foresight/agent/node/kfile"
)

// Membership is where one process sits in the cgroup hierarchies, as its
// /proc/<pid>/cgroup says: a path in the v2 hierarchy (the "0::" line) and
// one per v1 controller. Every driver's layout shows here as it is: Nomad's
// own paths, libcontainer's random IDs, Docker's /docker/<id> or
// docker-<id>.scope, podman's libpod-<id>.scope, containerd's, and the root
// for a process that has no cgroup of its own.
type Membership struct {
	// Unified is the v2 path; HasUnified says whether there was a "0::" line.
	Unified    string
	HasUnified bool
	// V1 maps a v1 controller (cpu, memory, blkio, …) to its path.
	V1 map[string]string
	// Hierarchy maps a v1 controller to the controllers mounted together
	// with it ("cpu,cpuacct"), the usual name of that hierarchy's directory.
	Hierarchy map[string]string
}

// MembershipOf reads the lines of a /proc/<pid>/cgroup file.
func MembershipOf(lines []procfs.Cgroup) Membership {
	m := Membership{V1: map[string]string{}, Hierarchy: map[string]string{}}
	for _, l := range lines {
		if l.HierarchyID == 0 && len(l.Controllers) == 0 {
			m.Unified, m.HasUnified = l.Path, true
			continue
		}
		joined := strings.Join(l.Controllers, ",")
		for _, c := range l.Controllers {
			m.V1[c] = l.Path
			m.Hierarchy[c] = joined
		}
	}
	return m
}

// Resolver finds the cgroups each task owns on one host.
type Resolver struct {
	loc *Locator
	// v1Root is the root of the v1 controller trees; "" on a v2 host.
	v1Root string
	// unified is where the v2 hierarchy is mounted: the root on a v2 host,
	// <root>/unified on a hybrid one, "" on a v1 host without it.
	unified string
}

// NewResolver detects the cgroup layout at root (DefaultRoot when empty);
// parent is Nomad's cgroup_parent, as for NewLocator.
func NewResolver(root, parent string) (*Resolver, error) {
	loc, err := NewLocator(root, parent)
	if err != nil {
		return nil, err
	}
	r := &Resolver{loc: loc}
	switch loc.Mode() {
	case V2:
		r.unified = loc.root
	case V1:
		r.v1Root = loc.root
		if u := filepath.Join(loc.root, "unified"); isDir(u) {
			r.unified = u
		}
	}
	return r, nil
}

// Mode is the host's cgroup version; a hybrid host is V1.
func (r *Resolver) Mode() Mode { return r.loc.Mode() }

// HasUnified says whether the host has a v2 hierarchy, and so pressure
// stall per cgroup.
func (r *Resolver) HasUnified() bool { return r.unified != "" }

// Resolve finds the cgroups a task owns. Nomad's own path for the task is
// tried first, as the fast path: it is the task's by construction. Else,
// and for what that path does not cover, each hierarchy counts only where
// the task's processes (members, one per process) all sit in one cgroup
// that is not the root and that holds no process known to be another's:
// mine says whether a PID in that cgroup may be the task's (a PID that
// belongs to another task or to no task is not). A cgroup shared with
// other processes is left out, never attributed to the task.
func (r *Resolver) Resolve(allocID, task string, members []Membership, mine func(pid int) bool) Dirs {
	var d Dirs
	if t, err := r.loc.Locate(allocID, task); err == nil {
		d = t.Dirs
	}
	if len(members) == 0 {
		return d
	}
	if d.Unified == "" && r.unified != "" {
		if p, ok := agree(members, func(m Membership) (string, bool) { return m.Unified, m.HasUnified }); ok {
			d.Unified = r.own(filepath.Join(r.unified, p), mine)
			d.UnifiedControllers = d.Unified != "" && r.Mode() == V2
		}
	}
	if r.v1Root == "" {
		return d
	}
	for _, c := range [...]struct {
		name string
		dst  *string
	}{{"cpu", &d.CPU}, {"memory", &d.Memory}, {"blkio", &d.Blkio}} {
		if *c.dst != "" {
			continue
		}
		p, ok := agree(members, func(m Membership) (string, bool) { p, ok := m.V1[c.name]; return p, ok })
		if !ok {
			continue
		}
		for _, tree := range [...]string{members[0].Hierarchy[c.name], c.name} {
			if dir := filepath.Join(r.v1Root, tree, p); tree != "" && isDir(dir) {
				*c.dst = r.own(dir, mine)
				break
			}
		}
	}
	return d
}

// agree returns the path every member has in one hierarchy, if they agree
// and it is not the root. A path that climbs ("/../x", as a reader in
// another cgroup namespace sees some) names no cgroup under the root.
func agree(members []Membership, path func(Membership) (string, bool)) (string, bool) {
	first, ok := path(members[0])
	if !ok || first == "/" || first == "" || !strings.HasPrefix(first, "/") || slices.Contains(strings.Split(first, "/"), "..") {
		return "", false
	}
	for _, m := range members[1:] {
		if p, ok := path(m); !ok || p != first {
			return "", false
		}
	}
	return first, true
}

// own returns dir if every process in it may be the task's, else "".
func (r *Resolver) own(dir string, mine func(pid int) bool) string {
	pids, err := readPIDs(filepath.Join(dir, "cgroup.procs"))
	if err != nil || len(pids) == 0 {
		return ""
	}
	for _, pid := range pids {
		if !mine(pid) {
			return ""
		}
	}
	return dir
}

// readPIDs reads a cgroup.procs file.
func readPIDs(path string) ([]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []int
	for len(b) > 0 {
		var line []byte
		line, b = kfile.NextLine(b)
		if len(line) == 0 {
			continue
		}
		pid, err := parseUint(line)
		if err != nil || pid == 0 || pid > 1<<22 {
			return nil, fmt.Errorf("read %s: bad pid %q", path, line)
		}
		out = append(out, int(pid))
	}
	if len(out) == 0 {
		return nil, errors.New("no process")
	}
	return out, nil
}
