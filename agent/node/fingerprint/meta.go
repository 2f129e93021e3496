package fingerprint

import (
	"cmp"
	"strings"
)

// The dynamic node metadata keys Foresight owns. Job affinities target them
// as ${meta.foresight.storage} and so on.
const (
	// MetaPrefix starts every key Foresight owns; no other key is touched.
	MetaPrefix = "foresight."
	// MetaPlatform holds the Platform.
	MetaPlatform = MetaPrefix + "platform"
	// MetaStorage holds the Storage of the allocation directory.
	MetaStorage = MetaPrefix + "storage"
	// MetaMemTier holds the MemTier.
	MetaMemTier = MetaPrefix + "mem_tier"
	// MetaNetTier holds the NetTier.
	MetaNetTier = MetaPrefix + "net_tier"
	// MetaClass holds the Class, all traits in one value.
	MetaClass = MetaPrefix + "class"
)

// Class composes the traits that matter for placement into one stable,
// readable value, platform-storage-mem-net, such as "external-ssd-high-10g".
// Unknown traits read "unknown", so every node has a class.
func (t Traits) Class() string {
	return strings.Join([]string{
		cmp.Or(string(t.Platform), "unknown"),
		cmp.Or(string(t.Storage), "unknown"),
		cmp.Or(string(t.MemTier), "unknown"),
		cmp.Or(string(t.NetTier), "unknown"),
	}, "-")
}

// Meta returns the node metadata that publishes the traits. A trait that
// could not be told is published as "unknown" rather than left out, so a
// passing failure does not make the key flap.
func (t Traits) Meta() map[string]string {
	return map[string]string{
		MetaPlatform: cmp.Or(string(t.Platform), "unknown"),
		MetaStorage:  cmp.Or(string(t.Storage), "unknown"),
		MetaMemTier:  cmp.Or(string(t.MemTier), "unknown"),
		MetaNetTier:  cmp.Or(string(t.NetTier), "unknown"),
		MetaClass:    t.Class(),
	}
}

// MetaChanges returns what must be written to a node's dynamic metadata,
// now current, for it to carry desired: the foresight.* keys whose value
// differs or is missing, and nil for the foresight.* keys current has and
// desired does not (a nil value unsets a key in Nomad's node meta API).
// Keys outside foresight.* are never in the result, on either side, so an
// operator's own metadata is never written or deleted. It returns nil when
// nothing needs writing, so the caller writes only on change.
func MetaChanges(current, desired map[string]string) map[string]*string {
	var out map[string]*string
	set := func(k string, v *string) {
		if out == nil {
			out = make(map[string]*string)
		}
		out[k] = v
	}
	for k, v := range desired {
		if !strings.HasPrefix(k, MetaPrefix) {
			continue
		}
		if cur, ok := current[k]; !ok || cur != v {
			set(k, &v)
		}
	}
	for k := range current {
		if _, ok := desired[k]; !ok && strings.HasPrefix(k, MetaPrefix) {
			set(k, nil)
		}
	}
	return out
}
