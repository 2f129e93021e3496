package fingerprint

import (
	"errors"
	"fmt"
	"math"

	"github.com/prometheus/procfs"
)

// MemTier is a node's memory per logical CPU, in bands that separate the
// instance families clouds and hardware vendors sell.
type MemTier string

// The memory tiers.
const (
	// MemTierLow is compute-optimised: under MemPerCPUStandard (1–2 GiB per CPU nominal).
	MemTierLow MemTier = "low"
	// MemTierStandard is general-purpose: about 4 GiB per CPU.
	MemTierStandard MemTier = "standard"
	// MemTierHigh is memory-optimised: about 8 GiB per CPU.
	MemTierHigh MemTier = "high"
	// MemTierXHigh is memory-heavy: 16 GiB per CPU and more.
	MemTierXHigh MemTier = "xhigh"
	// MemTierUnknown is a node whose memory or CPU count could not be read.
	MemTierUnknown MemTier = "unknown"
)

// The lower bounds of the memory tiers, in bytes of MemTotal per logical
// CPU. Families are sold at 2, 4, 8 and 16 GiB per vCPU; the bounds sit
// between them (near their geometric means) so that the few percent the
// kernel and firmware hold back from MemTotal never move a node across.
const (
	MemPerCPUStandard = 3 << 30
	MemPerCPUHigh     = 6 << 30
	MemPerCPUXHigh    = 12 << 30
)

// MemTierOf places a node with totalBytes of memory and cpus logical CPUs.
func MemTierOf(totalBytes uint64, cpus int) MemTier {
	if totalBytes == 0 || cpus <= 0 {
		return MemTierUnknown
	}
	per := totalBytes / uint64(cpus)
	switch {
	case per >= MemPerCPUXHigh:
		return MemTierXHigh
	case per >= MemPerCPUHigh:
		return MemTierHigh
	case per >= MemPerCPUStandard:
		return MemTierStandard
	default:
		return MemTierLow
	}
}

// MemTotal returns MemTotal, in bytes, from the meminfo of procfs fs.
func MemTotal(fs procfs.FS) (uint64, error) {
	m, err := fs.Meminfo()
	if err != nil {
		return 0, err
	}
	switch kb := m.MemTotal; {
	case kb == nil:
		return 0, errors.New("no MemTotal line")
	case *kb == 0 || *kb > math.MaxUint64/1024:
		return 0, fmt.Errorf("MemTotal %d kB is impossible", *kb)
	}
	return *m.MemTotal * 1024, nil
}
