package fingerprint

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
)

// Mount is one mount of a mount namespace, as /proc/<pid>/mountinfo lists it.
type Mount struct {
	// Major and Minor number the device the filesystem lives on; major 0
	// is an anonymous device (tmpfs, overlay, btrfs subvolumes, NFS).
	Major, Minor uint32
	// Root is the directory of the filesystem mounted here.
	Root string
	// MountPoint is where it is mounted.
	MountPoint string
	// FSType is the filesystem type, such as ext4.
	FSType string
	// Source is the filesystem-specific source, such as /dev/nvme0n1p1.
	Source string
}

// Mounts reads the mounts of process pid ("self" or a number) from procfs
// fs. procfs splits the lines of mountinfo,
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//
// and Mounts reads their device numbers and undoes the kernel's octal
// escapes (\040 for a space) in paths, which procfs leaves in.
func Mounts(fs procfs.FS, pid string) ([]Mount, error) {
	var infos []*procfs.MountInfo
	var err error
	if pid == "self" {
		infos, err = fs.GetMounts()
	} else if n, perr := strconv.Atoi(pid); perr != nil {
		return nil, fmt.Errorf("mountinfo: pid %q: %w", pid, perr)
	} else {
		infos, err = fs.GetProcMounts(n)
	}
	if err != nil {
		return nil, fmt.Errorf("mountinfo of %s: %w", pid, err)
	}
	mounts := make([]Mount, 0, len(infos))
	for n, mi := range infos {
		m, err := mountOf(mi)
		if err != nil {
			return nil, fmt.Errorf("mountinfo of %s, line %d: %w", pid, n+1, err)
		}
		mounts = append(mounts, m)
	}
	return mounts, nil
}

func mountOf(mi *procfs.MountInfo) (Mount, error) {
	majS, minS, ok := strings.Cut(mi.MajorMinorVer, ":")
	if !ok {
		return Mount{}, fmt.Errorf("device %q is not MAJ:MIN", mi.MajorMinorVer)
	}
	major, err := strconv.ParseUint(majS, 10, 32)
	if err != nil {
		return Mount{}, fmt.Errorf("device %q: %w", mi.MajorMinorVer, err)
	}
	minor, err := strconv.ParseUint(minS, 10, 32)
	if err != nil {
		return Mount{}, fmt.Errorf("device %q: %w", mi.MajorMinorVer, err)
	}
	m := Mount{Major: uint32(major), Minor: uint32(minor), FSType: mi.FSType}
	if m.Root, err = unescapeOctal(mi.Root); err != nil {
		return Mount{}, fmt.Errorf("root: %w", err)
	}
	if m.MountPoint, err = unescapeOctal(mi.MountPoint); err != nil {
		return Mount{}, fmt.Errorf("mount point: %w", err)
	}
	if m.Source, err = unescapeOctal(mi.Source); err != nil {
		return Mount{}, fmt.Errorf("source: %w", err)
	}
	if !strings.HasPrefix(m.MountPoint, "/") {
		return Mount{}, fmt.Errorf("mount point %q is not absolute", m.MountPoint)
	}
	return m, nil
}

// unescapeOctal undoes the kernel's \ooo escaping of blanks and backslashes.
func unescapeOctal(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+3 >= len(s) {
			return "", fmt.Errorf("%q has a short escape", s)
		}
		v, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
		if err != nil {
			return "", fmt.Errorf("%q has a bad escape: %w", s, err)
		}
		b.WriteByte(byte(v))
		i += 3
	}
	return b.String(), nil
}

// MountOf returns the mount that holds path, an absolute path with symlinks
// resolved: the one whose mount point is the longest prefix of path and,
// among mounts stacked on the same point, the last listed (the visible one).
func MountOf(mounts []Mount, path string) (Mount, bool) {
	path = filepath.Clean(path)
	best, found := -1, false
	for i, m := range mounts {
		mp := m.MountPoint
		if !(path == mp || mp == "/" || strings.HasPrefix(path, mp+"/")) {
			continue
		}
		if !found || len(mp) >= len(mounts[best].MountPoint) {
			best, found = i, true
		}
	}
	if !found {
		return Mount{}, false
	}
	return mounts[best], true
}
