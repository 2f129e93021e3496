package profiles_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/foresight-nomad/foresight/profiles"
)

// node describes a node the way the leader fills it in from Nomad.
func node(id, nodeClass, platform, storage, memTier string, cpu, mem float64) profiles.Node {
	published := platform + "-" + storage + "-" + memTier + "-10g"
	return profiles.Node{
		ID: id, Name: id, Datacenter: "dc1", Pool: "default", NodeClass: nodeClass,
		Meta: map[string]string{
			profiles.MetaPlatform: platform, profiles.MetaStorage: storage,
			profiles.MetaMemTier: memTier, profiles.MetaNetTier: "10g", profiles.MetaClass: published,
		},
		CPUMHz: cpu, MemoryMB: mem, NetworkMbits: 10000, Ready: true,
	}
}

func TestClassesOfGroupsNodesThatShareTraits(t *testing.T) {
	a1 := node("a1", "general", "external", "ssd", "standard", 8000, 16384)
	a1.UsedCPUMHz, a1.UsedMemoryMB = 6000, 4096
	a2 := node("a2", "general", "external", "ssd", "standard", 8000, 16384)
	a2.UsedCPUMHz = 1000
	a3 := node("a3", "general", "external", "ssd", "standard", 8000, 16384)
	a3.Ready = false // draining: capacity, but nothing free
	b1 := node("b1", "himem", "external", "hdd", "xhigh", 8000, 65536)

	classes, err := profiles.ClassesOf([]profiles.Node{b1, a3, a1, a2})
	if err != nil {
		t.Fatal(err)
	}
	if len(classes) != 2 {
		t.Fatalf("got %d classes, want 2: %+v", len(classes), classes)
	}
	a, b := classes[1], classes[0] // sorted by ID: hdd before ssd
	if a.ID != "external-ssd-standard-10g" || !reflect.DeepEqual(a.Nodes, []string{"a1", "a2", "a3"}) {
		t.Fatalf("first class %q with %v, want external-ssd-standard-10g with a1…a3", a.ID, a.Nodes)
	}
	if a.CPUMHz != 24000 || a.MemoryMB != 3*16384 {
		t.Errorf("capacity %.0f MHz %.0f MB, want 24000 MHz %d MB", a.CPUMHz, a.MemoryMB, 3*16384)
	}
	if a.FreeCPUMHz != 2000+7000 || a.FreeMemoryMB != 12288+16384 || a.MaxFreeCPUMHz != 7000 || a.MaxFreeMemoryMB != 16384 {
		t.Errorf("free %.0f/%.0f, most on one node %.0f/%.0f; want 9000/28672 and 7000/16384 (a3 is not ready)",
			a.FreeCPUMHz, a.FreeMemoryMB, a.MaxFreeCPUMHz, a.MaxFreeMemoryMB)
	}
	want := []profiles.Target{{Attribute: "${meta.foresight.class}", Value: "external-ssd-standard-10g"}}
	if !reflect.DeepEqual(a.Targets, want) {
		t.Errorf("targets %v, want %v", a.Targets, want)
	}
	if b.Traits.Storage != "hdd" || b.MemoryPerCPU() <= a.MemoryPerCPU() {
		t.Errorf("second class %+v: want the hdd, memory-rich one", b.Traits)
	}
}

func TestClassesOfNamesClassesAffinitiesCanTellApart(t *testing.T) {
	tests := []struct {
		name    string
		nodes   []profiles.Node
		ids     []string
		targets [][]profiles.Target
	}{{
		name: "traits not published: the node class names it",
		nodes: []profiles.Node{
			{ID: "n1", NodeClass: "gpu", CPUMHz: 1},
			{ID: "n2", CPUMHz: 1},
		},
		ids: []string{"default", "gpu"},
		targets: [][]profiles.Target{
			{{Attribute: "${node.class}", Value: ""}},
			{{Attribute: "${node.class}", Value: "gpu"}},
		},
	}, {
		name: "same published class, two node classes",
		nodes: []profiles.Node{
			node("n1", "web", "external", "ssd", "standard", 1, 1),
			node("n2", "batch", "external", "ssd", "standard", 1, 1),
		},
		ids: []string{"external-ssd-standard-10g/batch", "external-ssd-standard-10g/web"},
		targets: [][]profiles.Target{
			{{Attribute: "${meta.foresight.class}", Value: "external-ssd-standard-10g"}, {Attribute: "${node.class}", Value: "batch"}},
			{{Attribute: "${meta.foresight.class}", Value: "external-ssd-standard-10g"}, {Attribute: "${node.class}", Value: "web"}},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			classes, err := profiles.ClassesOf(tt.nodes)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			var targets [][]profiles.Target
			for _, c := range classes {
				ids = append(ids, c.ID)
				targets = append(targets, c.Targets)
			}
			if !reflect.DeepEqual(ids, tt.ids) || !reflect.DeepEqual(targets, tt.targets) {
				t.Errorf("got %v %v, want %v %v", ids, targets, tt.ids, tt.targets)
			}
		})
	}
}

func TestClassesOfRejectsBadNodes(t *testing.T) {
	tests := []struct {
		name  string
		nodes []profiles.Node
		want  string
	}{
		{"no ID", []profiles.Node{{Name: "x"}}, "no ID"},
		{"twice", []profiles.Node{{ID: "a"}, {ID: "a"}}, "listed twice"},
		{"negative", []profiles.Node{{ID: "a", CPUMHz: -1}}, "not negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := profiles.ClassesOf(tt.nodes); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error about %q", err, tt.want)
			}
		})
	}
}

func TestWithDeclaredAddsClassesWithNoNodeYet(t *testing.T) {
	cloud := profiles.Class{
		ID: "provider-ssd-standard-25g", Traits: profiles.Traits{Platform: profiles.PlatformProvider, Storage: profiles.StorageSSD, Published: "provider-ssd-standard-25g"},
		Targets:  []profiles.Target{{Attribute: "${meta.foresight.class}", Value: "provider-ssd-standard-25g"}},
		Declared: profiles.NodeSize{CPUMHz: 10000, MemoryMB: 16384},
	}
	p, err := profiles.New(profiles.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ext := profiles.Node{ID: "n1", Meta: map[string]string{profiles.MetaClass: "external-ssd-standard-10g", profiles.MetaPlatform: profiles.PlatformExternal}, CPUMHz: 8000, MemoryMB: 16384, Ready: true}
	if err := p.SetNodes([]profiles.Node{ext}, cloud); err != nil {
		t.Fatal(err)
	}
	classes := p.Classes()
	if len(classes) != 2 || classes[1].ID != cloud.ID || len(classes[1].Nodes) != 0 || classes[1].CPUMHz != 0 {
		t.Fatalf("classes %+v: want the external class and the empty declared one", classes)
	}
	if size, ok := classes[1].NodeSize(); !ok || size != cloud.Declared || classes[1].MemoryPerCPU() != 16384.0/10000 {
		t.Fatalf("declared class's node size %+v, %v; memory per CPU %g", size, ok, classes[1].MemoryPerCPU())
	}
	if s := p.Scores("default/web/web"); len(s) != 2 {
		t.Fatalf("scores %+v: the declared class is scored too", s)
	}

	// Once a node joins it, the class is the node's, and keeps the
	// declared size only for comparison.
	joined := profiles.Node{ID: "c1", Meta: map[string]string{profiles.MetaClass: cloud.ID, profiles.MetaPlatform: profiles.PlatformProvider}, CPUMHz: 9000, MemoryMB: 15000, Ready: true}
	if err := p.SetNodes([]profiles.Node{ext, joined}, cloud); err != nil {
		t.Fatal(err)
	}
	classes = p.Classes()
	if size, _ := classes[1].NodeSize(); len(classes) != 2 || len(classes[1].Nodes) != 1 || size.CPUMHz != 9000 || classes[1].Declared != cloud.Declared {
		t.Fatalf("after a node joined: %+v", classes)
	}

	for _, bad := range []func(*profiles.Class){
		func(c *profiles.Class) { c.ID = "" },
		func(c *profiles.Class) { c.Targets = nil },
		func(c *profiles.Class) { c.Nodes = []string{"x"} },
		func(c *profiles.Class) { c.Declared.CPUMHz = 0 },
	} {
		c := cloud
		bad(&c)
		if _, err := profiles.WithDeclared(nil, []profiles.Class{c}); err == nil {
			t.Errorf("declared class %+v was accepted", c)
		}
	}
}
