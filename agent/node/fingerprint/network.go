package fingerprint

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/prometheus/procfs"
)

// NetTier is a node's network link speed, in the bands NICs are sold in.
type NetTier string

// The network tiers.
const (
	// NetTierSub1G is below 1 Gb/s.
	NetTierSub1G NetTier = "lt1g"
	// NetTier1G is 1 Gb/s up to 10 (2.5G and 5G included).
	NetTier1G NetTier = "1g"
	// NetTier10G is 10 Gb/s up to 25.
	NetTier10G NetTier = "10g"
	// NetTier25G is 25 Gb/s up to 100 (40G and 50G included).
	NetTier25G NetTier = "25g"
	// NetTier100G is 100 Gb/s and faster.
	NetTier100G NetTier = "100g"
	// NetTierUnknown is a link whose speed the driver does not report, as
	// most paravirtual NICs (virtio, ENA, gVNIC) do not.
	NetTierUnknown NetTier = "unknown"
)

// NetTierOf places a link of speed megabits per second; zero or less is unknown.
func NetTierOf(mbps int64) NetTier {
	switch {
	case mbps <= 0:
		return NetTierUnknown
	case mbps >= 100_000:
		return NetTier100G
	case mbps >= 25_000:
		return NetTier25G
	case mbps >= 10_000:
		return NetTier10G
	case mbps >= 1_000:
		return NetTier1G
	default:
		return NetTierSub1G
	}
}

// DefaultRoute returns the interface of the IPv4 default route (destination
// and mask 0) with the lowest metric in the net/route of procfs fs, or ""
// when there is no default route.
func DefaultRoute(fs procfs.FS) (string, error) {
	routes, err := fs.NetRoute()
	if err != nil {
		return "", err
	}
	best, bestMetric := "", uint32(0)
	for _, r := range routes {
		if r.Destination != 0 || r.Mask != 0 {
			continue
		}
		if best == "" || r.Metric < bestMetric {
			best, bestMetric = r.Iface, r.Metric
		}
	}
	return best, nil
}

// physical reports whether a sysfs network interface is backed by a device,
// which loopback, veth, bridges and tunnels are not.
func physical(sysRoot, iface string) bool {
	_, err := os.Stat(filepath.Join(sysRoot, "class", "net", iface, "device"))
	return err == nil
}

// FirstPhysicalInterface returns the alphabetically first interface backed
// by a device, for nodes without a default route.
func FirstPhysicalInterface(sysRoot string) (string, error) {
	entries, err := os.ReadDir(filepath.Join(sysRoot, "class", "net"))
	if err != nil {
		return "", fmt.Errorf("list network interfaces: %w", err)
	}
	var names []string
	for _, e := range entries {
		if physical(sysRoot, e.Name()) {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return "", fmt.Errorf("no physical network interface under %s", filepath.Join(sysRoot, "class", "net"))
	}
	sort.Strings(names)
	return names[0], nil
}

// LinkSpeed returns the speed of iface in megabits per second, 0 when the
// driver does not report one (the file is absent, unreadable while the link
// is down, or -1). A bridge, which has no speed of its own, takes the
// fastest of its physical ports; a bond reports the sum of its links itself.
func LinkSpeed(sysRoot, iface string) (int64, error) {
	dir := filepath.Join(sysRoot, "class", "net", iface)
	if _, err := os.Stat(dir); err != nil {
		return 0, fmt.Errorf("link speed of %s: %w", iface, err)
	}
	if !physical(sysRoot, iface) {
		ports, err := os.ReadDir(filepath.Join(dir, "brif"))
		if err == nil {
			var best int64
			for _, p := range ports {
				if physical(sysRoot, p.Name()) {
					if s, err := LinkSpeed(sysRoot, p.Name()); err == nil {
						best = max(best, s)
					}
				}
			}
			return best, nil
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "speed"))
	if err != nil {
		// Reading speed fails with EINVAL while the link is down, and the
		// file is absent for virtual interfaces: no speed to report.
		return 0, nil
	}
	v, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("link speed of %s: %w", iface, err)
	}
	return max(v, 0), nil
}
