package fingerprint

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/procfs"
)

const fixtureProc = "testdata/proc"

// fakeProc is a procfs holding files (path under the root → content).
func fakeProc(t testing.TB, files map[string]string) procfs.FS {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fs, err := procfs.NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func fixtureMounts(t testing.TB) []Mount {
	t.Helper()
	fs, err := procfs.NewFS(fixtureProc)
	if err != nil {
		t.Fatal(err)
	}
	mounts, err := Mounts(fs, "1")
	if err != nil {
		t.Fatal(err)
	}
	return mounts
}

func TestStorageOf(t *testing.T) {
	sys := fixtureSysfs(t)
	cases := []struct {
		name, path string
		want       Storage
		wantErr    bool
	}{
		{"nvme partition at the root", "/opt/nomad/data/alloc", StorageSSD, false},
		{"sata hdd partition", "/var/lib/nomad/data", StorageHDD, false},
		{"the visible one of mounts stacked on one point", "/var/lib/nomad/alloc/x", StorageSSD, false},
		{"device-mapper over an ssd partition", "/srv/nomad/alloc", StorageSSD, false},
		{"lvm over raid over hdd and ssd", "/data/alloc", StorageHDD, false},
		{"btrfs names its disk in the source", "/opt/btrfs/alloc", StorageSSD, false},
		{"btrfs on a /dev/mapper source, escaped mount point", "/mnt/lvm name/alloc", StorageSSD, false},
		{"tmpfs cannot be told", "/tmp/alloc", StorageUnknown, false},
		{"nfs cannot be told", "/mnt/nfs/alloc", StorageUnknown, false},
		{"mount point prefix is not a parent", "/srvx/alloc", StorageSSD, false},
	}
	mounts := fixtureMounts(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := StorageOf(sys, mounts, c.path)
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if got != c.want {
				t.Errorf("StorageOf(%s) = %s, want %s", c.path, got, c.want)
			}
		})
	}
}

func TestStorageOfFailures(t *testing.T) {
	sys := fixtureSysfs(t)
	cases := []struct {
		name   string
		mounts []Mount
		path   string
	}{
		{"no mount holds the path", []Mount{{Major: 8, Minor: 1, MountPoint: "/data"}}, "/opt"},
		{"device unknown to sysfs", []Mount{{Major: 8, Minor: 99, MountPoint: "/"}}, "/opt"},
		{"unknown device-mapper name", []Mount{{MountPoint: "/", Source: "/dev/mapper/nope"}}, "/opt"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := StorageOf(sys, c.mounts, c.path)
			if err == nil || got != StorageUnknown {
				t.Errorf("StorageOf = %s, %v; want unknown and an error", got, err)
			}
		})
	}
}

func TestMounts(t *testing.T) {
	mounts := fixtureMounts(t)
	if len(mounts) != 12 {
		t.Fatalf("parsed %d mounts, want 12", len(mounts))
	}
	want := Mount{Major: 0, Minor: 52, Root: "/@nomad", MountPoint: "/opt/btrfs", FSType: "btrfs", Source: "/dev/sdc"}
	if mounts[7] != want {
		t.Errorf("mount 8 = %+v, want %+v", mounts[7], want)
	}
	if mounts[9].MountPoint != "/mnt/lvm name" {
		t.Errorf("escaped mount point = %q", mounts[9].MountPoint)
	}
	bad := []string{
		"22 1 259:1 / / rw - ext4\n",                  // too few after the separator
		"22 1 259:1 / / rw shared:1 ext4 /dev/x rw\n", // no separator
		"22 1 259 / / rw - ext4 /dev/x rw\n",          // device not MAJ:MIN
		"22 1 a:1 / / rw - ext4 /dev/x rw\n",          // bad major
		"22 1 8:1 / rel rw - ext4 /dev/x rw\n",        // relative mount point
		"22 1 8:1 / /a\\04 rw - ext4 /dev/x rw\n",     // short escape
		"22 1 8:1 / /a\\999 rw - ext4 /dev/x rw\n",    // bad escape
	}
	for _, in := range bad {
		if m, err := Mounts(fakeProc(t, map[string]string{"self/mountinfo": in}), "self"); err == nil {
			t.Errorf("Mounts of %q = %+v, want an error", in, m)
		}
	}
}

func TestMountOf(t *testing.T) {
	mounts := fixtureMounts(t)
	cases := map[string]string{
		"/":                    "/",
		"/srv":                 "/srv",
		"/srv/":                "/srv",
		"/srv/a/../b":          "/srv",
		"/var/lib/nomad/alloc": "/var/lib/nomad/alloc",
		"/var/lib/nomadx":      "/",
	}
	for path, want := range cases {
		m, ok := MountOf(mounts, path)
		if !ok || m.MountPoint != want {
			t.Errorf("MountOf(%s) = %s, %v; want %s", path, m.MountPoint, ok, want)
		}
	}
	if m, _ := MountOf(mounts, "/var/lib/nomad/alloc"); m.Source != "/dev/nvme0n1p1" {
		t.Errorf("stacked mounts: got %s, want the last listed", m.Source)
	}
}
