package fingerprint

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Storage is the kind of disk a path lives on.
type Storage string

// The kinds of storage.
const (
	// StorageSSD is non-rotational storage: SSD, NVMe.
	StorageSSD Storage = "ssd"
	// StorageHDD is rotational storage.
	StorageHDD Storage = "hdd"
	// StorageUnknown is storage whose kind cannot be told: network and
	// memory filesystems, devices sysfs does not describe.
	StorageUnknown Storage = "unknown"
)

// maxStackDepth bounds how deep StorageOf follows device-mapper and md
// slaves; real stacks (LUKS on LVM on RAID) are three or four deep.
const maxStackDepth = 8

// StorageOf tells the kind of disk under path by finding the device of the
// mount that holds it, then asking sysfs (under sysRoot) whether that disk
// rotates. A partition is judged by its whole disk; a device-mapper (LVM,
// LUKS) or md (RAID) device by the disks beneath it, since the kernel marks
// virtual devices non-rotational whatever they sit on. A stack over any
// rotating disk counts as hdd, the slowest part setting the pace.
func StorageOf(sysRoot string, mounts []Mount, path string) (Storage, error) {
	m, ok := MountOf(mounts, path)
	if !ok {
		return StorageUnknown, fmt.Errorf("storage of %s: no mount holds it", path)
	}
	var dev string
	if m.Major != 0 {
		dev = filepath.Join(sysRoot, "dev", "block", fmt.Sprintf("%d:%d", m.Major, m.Minor))
	} else {
		// Anonymous device numbers: btrfs names its disk in the source;
		// tmpfs, overlay and network filesystems have none to judge.
		name, err := blockNameOfSource(sysRoot, m.Source)
		if err != nil {
			return StorageUnknown, fmt.Errorf("storage of %s: %w", path, err)
		}
		if name == "" {
			return StorageUnknown, nil
		}
		dev = filepath.Join(sysRoot, "class", "block", name)
	}
	dir, err := filepath.EvalSymlinks(dev)
	if err != nil {
		return StorageUnknown, fmt.Errorf("storage of %s (mounted from %s): %w", path, m.Source, err)
	}
	return blockStorage(dir, 0)
}

// blockNameOfSource maps a mount source such as /dev/sda2 or
// /dev/mapper/vg-data to its kernel block device name, or "" when the
// source is not a block device.
func blockNameOfSource(sysRoot, source string) (string, error) {
	if !strings.HasPrefix(source, "/dev/") || source == "/dev/root" {
		return "", nil
	}
	if dm, ok := strings.CutPrefix(source, "/dev/mapper/"); ok {
		names, err := filepath.Glob(filepath.Join(sysRoot, "block", "dm-*", "dm", "name"))
		if err != nil {
			return "", err
		}
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err == nil && string(bytes.TrimSpace(b)) == dm {
				return filepath.Base(filepath.Dir(filepath.Dir(n))), nil
			}
		}
		return "", fmt.Errorf("no device-mapper device named %q", dm)
	}
	return filepath.Base(source), nil
}

// blockStorage judges the block device whose sysfs directory is dir.
func blockStorage(dir string, depth int) (Storage, error) {
	if depth > maxStackDepth {
		return StorageUnknown, fmt.Errorf("%s: device stack deeper than %d", dir, maxStackDepth)
	}
	if _, err := os.Stat(filepath.Join(dir, "partition")); err == nil {
		dir = filepath.Dir(dir)
	}
	slaves, err := os.ReadDir(filepath.Join(dir, "slaves"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return StorageUnknown, fmt.Errorf("read %s: %w", filepath.Join(dir, "slaves"), err)
	}
	if len(slaves) > 0 {
		kind := StorageSSD
		for _, s := range slaves {
			sub, err := filepath.EvalSymlinks(filepath.Join(dir, "slaves", s.Name()))
			if err != nil {
				return StorageUnknown, fmt.Errorf("resolve slave %s of %s: %w", s.Name(), dir, err)
			}
			k, err := blockStorage(sub, depth+1)
			if err != nil {
				return StorageUnknown, err
			}
			kind = slower(kind, k)
		}
		return kind, nil
	}
	path := filepath.Join(dir, "queue", "rotational")
	b, err := os.ReadFile(path)
	if err != nil {
		return StorageUnknown, fmt.Errorf("read %s: %w", path, err)
	}
	switch string(bytes.TrimSpace(b)) {
	case "0":
		return StorageSSD, nil
	case "1":
		return StorageHDD, nil
	default:
		return StorageUnknown, fmt.Errorf("%s: unexpected %q", path, bytes.TrimSpace(b))
	}
}

// slower combines the kinds of two disks of one stack: any hdd makes the
// stack hdd; otherwise any unknown makes it unknown.
func slower(a, b Storage) Storage {
	switch {
	case a == StorageHDD || b == StorageHDD:
		return StorageHDD
	case a == StorageUnknown || b == StorageUnknown:
		return StorageUnknown
	default:
		return StorageSSD
	}
}
