package cgroup

import (
	"os"
	"path/filepath"
	"testing"
)

// A task owns a cgroup only where all its processes sit in it, it is not
// the root, and no process in it is another's; a path that climbs out of
// the root is nobody's.
func TestResolveOwnership(t *testing.T) {
	root := t.TempDir()
	for dir, procs := range map[string]string{
		"memory":                 "1\n",
		"memory/docker/abc":      "10\n11\n",
		"memory/shared":          "10\n99\n",
		"cpu,cpuacct/docker/abc": "10\n11\n",
		"blkio/docker/abc":       "10\n11\n12\n", // 12: a child not listed yet
		"unified/docker/abc":     "10\n11\n",
		"unified/docker/other":   "10\n",
	} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, dir, "cgroup.procs"), []byte(procs), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, err := NewResolver(root, "")
	if err != nil {
		t.Fatal(err)
	}
	member := func(unified string, v1 map[string]string) Membership {
		m := Membership{Unified: unified, HasUnified: true, V1: v1, Hierarchy: map[string]string{"cpu": "cpu,cpuacct", "cpuacct": "cpu,cpuacct", "memory": "memory", "blkio": "blkio"}}
		return m
	}
	docker := map[string]string{"cpu": "/docker/abc", "cpuacct": "/docker/abc", "memory": "/docker/abc", "blkio": "/docker/abc"}
	mine := func(pid int) bool { return pid != 99 } // 99 is another task's
	cases := []struct {
		name    string
		members []Membership
		want    Dirs
	}{
		{"docker on a hybrid host", []Membership{member("/docker/abc", docker), member("/docker/abc", docker)},
			Dirs{Unified: filepath.Join(root, "unified/docker/abc"), CPU: filepath.Join(root, "cpu,cpuacct/docker/abc"), Memory: filepath.Join(root, "memory/docker/abc"), Blkio: filepath.Join(root, "blkio/docker/abc")}},
		{"processes that disagree own nothing there", []Membership{member("/docker/abc", docker), member("/docker/other", docker)},
			Dirs{CPU: filepath.Join(root, "cpu,cpuacct/docker/abc"), Memory: filepath.Join(root, "memory/docker/abc"), Blkio: filepath.Join(root, "blkio/docker/abc")}},
		{"a shared memory cgroup and the root", []Membership{member("/", map[string]string{"cpu": "/", "memory": "/shared"})}, Dirs{}},
		{"a path that climbs", []Membership{member("/../docker/abc", map[string]string{"memory": "/docker/../../abc"})}, Dirs{}},
		{"no process yet", nil, Dirs{}},
	}
	for _, c := range cases {
		if got := r.Resolve("a", "t", c.members, mine); got != c.want {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, c.want)
		}
	}
}
