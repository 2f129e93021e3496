package cgroup

import (
	"bytes"
	"fmt"
)

// MemoryStat is what a cgroup's memory.stat says about its memory.
type MemoryStat struct {
	// HasRSS says whether RSS was present.
	HasRSS bool
	// RSS is anonymous memory: v2 anon, v1 rss.
	RSS uint64
	// HasCache says whether Cache was present.
	HasCache bool
	// Cache is page cache: v2 file, v1 cache.
	Cache uint64
	// HasSwap says whether Swap was present (v1 with swap accounting only;
	// v2 keeps swap in memory.swap.current).
	HasSwap bool
	// Swap is the cgroup's memory swapped out.
	Swap uint64
}

// ParseMemoryStat parses a memory.stat file of either version, lines of
// "key bytes". Unknown keys, including v1's hierarchical total_* keys, are
// skipped.
func ParseMemoryStat(b []byte) (MemoryStat, error) {
	var s MemoryStat
	for len(b) > 0 {
		var key, val []byte
		var err error
		if key, val, b, err = nextKeyValue(b); err != nil {
			return MemoryStat{}, fmt.Errorf("memory.stat: %w", err)
		}
		if len(key) == 0 {
			continue
		}
		var target *uint64
		switch string(key) {
		case "anon", "rss":
			target, s.HasRSS = &s.RSS, true
		case "file", "cache":
			target, s.HasCache = &s.Cache, true
		case "swap":
			target, s.HasSwap = &s.Swap, true
		default:
			continue
		}
		v, err := parseUint(val)
		if err != nil {
			return MemoryStat{}, fmt.Errorf("memory.stat: %s: %w", key, err)
		}
		*target = v
	}
	return s, nil
}

// ParseValue parses a single-number interface file such as memory.current,
// memory.usage_in_bytes or memory.swap.current.
func ParseValue(b []byte) (uint64, error) {
	v, err := parseUint(bytes.TrimSpace(b))
	if err != nil {
		return 0, fmt.Errorf("value: %w", err)
	}
	return v, nil
}
