package fingerprint

import (
	"maps"
	"testing"
)

func TestMeta(t *testing.T) {
	tr := Traits{Platform: PlatformProvider, Storage: StorageHDD, MemTier: MemTierXHigh, NetTier: NetTierUnknown}
	want := map[string]string{
		"foresight.platform": "provider",
		"foresight.storage":  "hdd",
		"foresight.mem_tier": "xhigh",
		"foresight.net_tier": "unknown",
		"foresight.class":    "provider-hdd-xhigh-unknown",
	}
	if got := tr.Meta(); !maps.Equal(got, want) {
		t.Errorf("Meta = %v, want %v", got, want)
	}
	if c := (Traits{}).Class(); c != "unknown-unknown-unknown-unknown" {
		t.Errorf("Class of nothing = %s", c)
	}
}

func TestMetaChanges(t *testing.T) {
	desired := Traits{Platform: PlatformExternal, Storage: StorageSSD, MemTier: MemTierHigh, NetTier: NetTier10G}.Meta()
	cases := []struct {
		name    string
		current map[string]string
		want    map[string]*string // nil value: unset
	}{
		{
			name:    "first write sets every key",
			current: map[string]string{"rack": "r1"},
			want:    map[string]*string{MetaPlatform: ptr("external"), MetaStorage: ptr("ssd"), MetaMemTier: ptr("high"), MetaNetTier: ptr("10g"), MetaClass: ptr("external-ssd-high-10g")},
		},
		{
			name:    "unchanged writes nothing",
			current: merge(desired, map[string]string{"rack": "r1"}),
			want:    nil,
		},
		{
			name:    "one trait changed",
			current: merge(desired, map[string]string{MetaNetTier: "1g", MetaClass: "external-ssd-high-1g"}),
			want:    map[string]*string{MetaNetTier: ptr("10g"), MetaClass: ptr("external-ssd-high-10g")},
		},
		{
			name:    "stale foresight key is unset, the operator's keys are not",
			current: merge(desired, map[string]string{"foresight.old": "x", "rack": "r1", "foresightish": "y"}),
			want:    map[string]*string{"foresight.old": nil},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := MetaChanges(c.current, desired)
			if len(got) != len(c.want) {
				t.Fatalf("MetaChanges = %v, want %v", show(got), show(c.want))
			}
			for k, w := range c.want {
				g, ok := got[k]
				if !ok || (g == nil) != (w == nil) || (g != nil && *g != *w) {
					t.Errorf("key %s: got %v, want %v", k, show(got), show(c.want))
				}
			}
		})
	}
	if got := MetaChanges(nil, map[string]string{"rack": "r2"}); got != nil {
		t.Errorf("a desired key outside foresight.* was written: %v", show(got))
	}
}

func ptr(s string) *string { return &s }

func merge(a, b map[string]string) map[string]string {
	out := maps.Clone(a)
	maps.Copy(out, b)
	return out
}

func show(m map[string]*string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if v == nil {
			out[k] = "<unset>"
		} else {
			out[k] = *v
		}
	}
	return out
}
