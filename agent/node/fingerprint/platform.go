package fingerprint

import (
	"fmt"
	"strings"
)

// Platform says who owns a node's capacity.
type Platform string

// The platforms.
const (
	// PlatformExternal is capacity the operator owns: fixed, cheap, preferred.
	PlatformExternal Platform = "external"
	// PlatformProvider is cloud capacity, elastic, bought through an
	// autoscaler target.
	PlatformProvider Platform = "provider"
)

// ParsePlatform validates a configured platform; "" means not configured.
func ParsePlatform(s string) (Platform, error) {
	switch p := Platform(s); p {
	case "", PlatformExternal, PlatformProvider:
		return p, nil
	default:
		return "", fmt.Errorf("platform %q: want %q or %q", s, PlatformExternal, PlatformProvider)
	}
}

// cloudAttrPrefixes are the attribute namespaces Nomad's environment
// fingerprinters fill on cloud instances (for example
// platform.aws.instance-type, unique.platform.gce.id,
// platform.azure.vm-size, platform.digitalocean.region). vSphere is left
// out: it is usually the operator's own hardware.
var cloudAttrPrefixes = []string{
	"platform.aws.", "unique.platform.aws.",
	"platform.gce.", "unique.platform.gce.",
	"platform.azure.", "unique.platform.azure.",
	"platform.digitalocean.", "unique.platform.digitalocean.",
}

// PlatformOf decides a node's platform: the configured one when set, else
// provider when Nomad fingerprinted a cloud instance in attrs (the node's
// Attributes), else external. Operators who own cloud capacity outright
// (reserved instances they treat as fixed) configure external.
func PlatformOf(configured Platform, attrs map[string]string) Platform {
	if configured != "" {
		return configured
	}
	for k := range attrs {
		for _, p := range cloudAttrPrefixes {
			if strings.HasPrefix(k, p) {
				return PlatformProvider
			}
		}
	}
	return PlatformExternal
}
