package fingerprint

import (
	"bufio"
	"bytes"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
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

// ParseMountinfo parses a mountinfo file, lines of
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//
// with a variable number of optional fields before the "-" separator, and
// octal escapes (\040 for a space) in paths.
func ParseMountinfo(b []byte) ([]Mount, error) {
	var mounts []Mount
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		m, err := parseMountLine(line)
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", n, err)
		}
		mounts = append(mounts, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("mountinfo: %w", err)
	}
	return mounts, nil
}

func parseMountLine(line string) (Mount, error) {
	fields := strings.Fields(line)
	sep := -1
	for i := 6; i < len(fields); i++ {
		if fields[i] == "-" {
			sep = i
			break
		}
	}
	if len(fields) < 6 || sep < 0 || len(fields) < sep+3 {
		return Mount{}, fmt.Errorf("%q has too few fields", line)
	}
	majS, minS, ok := strings.Cut(fields[2], ":")
	if !ok {
		return Mount{}, fmt.Errorf("device %q is not MAJ:MIN", fields[2])
	}
	major, err := strconv.ParseUint(majS, 10, 32)
	if err != nil {
		return Mount{}, fmt.Errorf("device %q: %w", fields[2], err)
	}
	minor, err := strconv.ParseUint(minS, 10, 32)
	if err != nil {
		return Mount{}, fmt.Errorf("device %q: %w", fields[2], err)
	}
	m := Mount{
		Major:  uint32(major),
		Minor:  uint32(minor),
		FSType: fields[sep+1],
	}
	if m.Root, err = unescapeOctal(fields[3]); err != nil {
		return Mount{}, fmt.Errorf("root: %w", err)
	}
	if m.MountPoint, err = unescapeOctal(fields[4]); err != nil {
		return Mount{}, fmt.Errorf("mount point: %w", err)
	}
	if m.Source, err = unescapeOctal(fields[sep+2]); err != nil {
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
