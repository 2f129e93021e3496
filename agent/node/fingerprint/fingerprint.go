// Package fingerprint measures the traits of a node that matter for
// placement (what kind of disk holds the allocations, memory per CPU, CPU
// model, network link speed, who owns the capacity) from sysfs and procfs,
// and turns them into the foresight.* dynamic node metadata that job
// affinities can target. It reads only files under configurable roots and
// takes Nomad's node attributes as a plain map, so it runs on fixture trees.
package fingerprint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/prometheus/procfs"
)

// Default roots and the default Nomad allocation directory.
const (
	// DefaultSysRoot is where sysfs is mounted.
	DefaultSysRoot = "/sys"
	// DefaultProcRoot is where procfs is mounted.
	DefaultProcRoot = "/proc"
	// DefaultAllocDir is the allocation directory of a Nomad client with
	// data_dir /opt/nomad/data.
	DefaultAllocDir = "/opt/nomad/data/alloc"
)

// Config says where to look.
type Config struct {
	// SysRoot is the sysfs to read; DefaultSysRoot when empty.
	SysRoot string
	// ProcRoot is the procfs to read; DefaultProcRoot when empty. An agent
	// in a container needs the host's procfs mounted here.
	ProcRoot string
	// AllocDir is the Nomad client's alloc_dir, whose disk is the one tasks
	// write to; DefaultAllocDir when empty.
	AllocDir string
	// Interface is the network interface whose speed counts; when empty,
	// the interface of the default route, else the first physical one.
	Interface string
	// Platform overrides the platform; when empty it comes from Nomad's
	// cloud attributes.
	Platform Platform
}

// Traits are the measured traits of a node.
type Traits struct {
	// Platform is who owns the node's capacity.
	Platform Platform
	// Storage is the kind of disk under the allocation directory.
	Storage Storage
	// MemTier is the memory per logical CPU band.
	MemTier MemTier
	// NetTier is the link speed band of Interface.
	NetTier NetTier
	// CPU is the processor model and counts.
	CPU CPUInfo
	// MemTotalBytes is the memory the kernel manages.
	MemTotalBytes uint64
	// Interface is the network interface measured.
	Interface string
	// LinkSpeedMbps is its speed, 0 when unknown.
	LinkSpeedMbps int64
}

// Detect measures the node's traits. attrs are the node's Nomad attributes,
// consulted for the platform. Every trait it cannot tell is set to unknown
// and its reason joined into the error; the traits are complete and usable
// either way, so a caller logs the error and publishes the traits.
func Detect(cfg Config, attrs map[string]string) (Traits, error) {
	cfg = withDefaults(cfg)
	// A procfs that cannot be opened fails every reading of it, with the
	// reason, and the traits that sysfs alone tells are still measured.
	fs, fsErr := procfs.NewFS(cfg.ProcRoot)
	t := Traits{
		Platform: PlatformOf(cfg.Platform, attrs),
		Storage:  StorageUnknown,
		MemTier:  MemTierUnknown,
		NetTier:  NetTierUnknown,
	}
	var errs []error

	if s, err := detectStorage(cfg, fs, fsErr); err != nil {
		errs = append(errs, err)
	} else {
		t.Storage = s
	}

	// cpuinfo is read by hand: procfs picks its parser by the architecture
	// it was built for and keeps no Arm implementer or part, which name an
	// arm64 core.
	cpuErr := readParsed(filepath.Join(cfg.ProcRoot, "cpuinfo"), func(b []byte) (err error) {
		t.CPU, err = ParseCPUInfo(b)
		return err
	})
	memErr := fsErr
	if memErr == nil {
		t.MemTotalBytes, memErr = MemTotal(fs)
	}
	if memErr != nil {
		memErr = fmt.Errorf("%s: meminfo: %w", cfg.ProcRoot, memErr)
	}
	errs = append(errs, cpuErr, memErr)
	if cpuErr == nil && memErr == nil {
		t.MemTier = MemTierOf(t.MemTotalBytes, t.CPU.CPUs)
	}

	iface, err := detectInterface(cfg, fs, fsErr)
	if err != nil {
		errs = append(errs, err)
	} else {
		t.Interface = iface
		if t.LinkSpeedMbps, err = LinkSpeed(cfg.SysRoot, iface); err != nil {
			errs = append(errs, err)
		}
		t.NetTier = NetTierOf(t.LinkSpeedMbps)
	}
	return t, errors.Join(errs...)
}

func withDefaults(cfg Config) Config {
	if cfg.SysRoot == "" {
		cfg.SysRoot = DefaultSysRoot
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = DefaultProcRoot
	}
	if cfg.AllocDir == "" {
		cfg.AllocDir = DefaultAllocDir
	}
	return cfg
}

// detectStorage judges the disk under the allocation directory. The mounts
// are init's, which are the host's even when the agent runs in a mount
// namespace of its own (a container, or Nomad's exec driver); reading them
// needs root, and an agent without it falls back to its own mounts.
func detectStorage(cfg Config, fs procfs.FS, fsErr error) (Storage, error) {
	if fsErr != nil {
		return StorageUnknown, fmt.Errorf("%s: mountinfo: %w", cfg.ProcRoot, fsErr)
	}
	mounts, err := Mounts(fs, "1")
	if errors.Is(err, os.ErrPermission) || errors.Is(err, os.ErrNotExist) {
		mounts, err = Mounts(fs, "self")
	}
	if err != nil {
		return StorageUnknown, fmt.Errorf("%s: %w", cfg.ProcRoot, err)
	}
	// Resolve symlinks on the live host so that the mount is found for the
	// real path; in a fixture tree the path does not exist and is used as is.
	dir := cfg.AllocDir
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	return StorageOf(cfg.SysRoot, mounts, dir)
}

func detectInterface(cfg Config, fs procfs.FS, fsErr error) (string, error) {
	if cfg.Interface != "" {
		return cfg.Interface, nil
	}
	iface, err := "", fsErr
	if err == nil {
		iface, err = DefaultRoute(fs)
	}
	if err != nil {
		err = fmt.Errorf("%s: net/route: %w", cfg.ProcRoot, err)
	}
	if err == nil && iface != "" {
		return iface, nil
	}
	first, ferr := FirstPhysicalInterface(cfg.SysRoot)
	if ferr != nil {
		return "", errors.Join(err, ferr)
	}
	return first, nil
}

// readParsed reads the file at path and hands it to parse, naming the file
// in any error.
func readParsed(path string, parse func([]byte) error) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := parse(b); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	return nil
}
