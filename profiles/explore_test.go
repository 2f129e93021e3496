package profiles_test

import (
	"math/rand/v2"
	"testing"

	"github.com/foresight-nomad/foresight/profiles"
)

func TestChooseKeepsTheCurrentClassWithinTheMargin(t *testing.T) {
	scores := []profiles.Score{{Class: "a", Value: 40}, {Class: "b", Value: 35}, {Class: "c", Value: -20}}
	tests := []struct {
		current string
		margin  float64
		want    string
		moved   bool
	}{
		{"b", 10, "b", false}, // 5 points better is not enough
		{"b", 4, "a", true},
		{"c", 10, "a", true},
		{"a", 10, "a", false},
		{"", 10, "a", true},     // nothing placed yet
		{"gone", 10, "a", true}, // the current class no longer exists
	}
	for _, tt := range tests {
		got, moved := profiles.Choose(scores, tt.current, tt.margin)
		if got.Class != tt.want || moved != tt.moved {
			t.Errorf("Choose(current %q, margin %g) = %s, %v; want %s, %v", tt.current, tt.margin, got.Class, moved, tt.want, tt.moved)
		}
	}
	// Of equal scores the one listed first is the best: the caller orders
	// ties (the orchestrator lists external classes first).
	tied := []profiles.Score{{Class: "z", Value: 40}, {Class: "a", Value: 40}}
	if got, _ := profiles.Choose(tied, "", 10); got.Class != "z" {
		t.Errorf("Choose of a tie = %s, want z, listed first", got.Class)
	}
	if _, moved := profiles.Choose(nil, "a", 10); moved {
		t.Error("Choose without scores moved")
	}
}

// TestChoiceDoesNotFlipFlopBetweenNearEqualClasses runs a group on two
// classes that differ by 1 % under 15 % noise. Without a margin the
// leader's choice follows the noise; with the default it settles once.
func TestChoiceDoesNotFlipFlopBetweenNearEqualClasses(t *testing.T) {
	p, err := profiles.New(profiles.Config{})
	if err != nil {
		t.Fatal(err)
	}
	// Two node classes with the same published traits: equal priors.
	a := node("a1", "rack-a", "external", "ssd", "standard", 8000, 16384)
	b := node("b1", "rack-b", "external", "ssd", "standard", 8000, 16384)
	if err := p.SetNodes([]profiles.Node{a, b}); err != nil {
		t.Fatal(err)
	}
	w := workload{group: "default/app/web", nodes: []string{"a1", "a1", "b1", "b1"}, eff: map[string]float64{"b1": 1.01}, noise: 0.15}
	rng := rand.New(rand.NewPCG(9, 10))
	current := map[float64]string{0: "", profiles.DefaultSwitchMargin: ""}
	moves := map[float64]int{}
	for r := range 12 * 24 {
		if err := p.Observe(w.round(rng, r)); err != nil {
			t.Fatal(err)
		}
		scores := p.Scores(w.group)
		for margin, cur := range current {
			s, moved := profiles.Choose(scores, cur, margin)
			if moved && cur != "" {
				moves[margin]++
			}
			current[margin] = s.Class
		}
	}
	t.Logf("moves over 24 h: %d without a margin, %d with %g points", moves[0], moves[profiles.DefaultSwitchMargin], profiles.DefaultSwitchMargin)
	if moves[0] < 2 {
		t.Fatalf("without a margin the choice moved %d times: the scenario no longer tests hysteresis", moves[0])
	}
	if moves[profiles.DefaultSwitchMargin] > 0 {
		t.Errorf("with the default margin the choice moved %d times between near-equal classes, want 0", moves[profiles.DefaultSwitchMargin])
	}
}

func TestExploreStaysWithinItsBounds(t *testing.T) {
	ask := func(group string, count int, running map[string]int) profiles.Placement {
		return profiles.Placement{Group: group, Count: count, CPUMHz: 1000, MemoryMB: 1024, Running: running}
	}
	// web has run on general only: nothing compared.
	setup := func(t *testing.T, cfg profiles.Config) *profiles.Profiler {
		p := threeClasses(t, cfg)
		w := workload{group: "web", nodes: []string{"g1", "g1", "g2", "g2"}}
		w.rounds(t, p, rand.New(rand.NewPCG(11, 12)), 12)
		return p
	}
	tests := []struct {
		name       string
		cfg        profiles.Config
		placements []profiles.Placement
		want       []string // "group:from→to"
	}{{
		// web is the only group, so it is as heavy as the cluster on
		// everything: only the platform preference tells the two
		// unexplored classes apart.
		name:       "a healthy group explores the best unproven class",
		placements: []profiles.Placement{ask("web", 4, map[string]int{general: 4})},
		want:       []string{"web:" + general + "→" + himem},
	}, {
		name:       "too small to explore",
		placements: []profiles.Placement{ask("web", 2, map[string]int{general: 2})},
	}, {
		name:       "short of capacity",
		placements: []profiles.Placement{ask("web", 4, map[string]int{general: 3})},
	}, {
		name:       "already one allocation in doubt",
		placements: []profiles.Placement{ask("web", 4, map[string]int{general: 3, himem: 1})},
	}, {
		name: "the share of placements caps all groups together",
		cfg:  profiles.Config{ExploreShare: 0.1},
		placements: []profiles.Placement{
			ask("web", 4, map[string]int{general: 4}),
			ask("api", 4, map[string]int{general: 4}),
		},
		// Neither is proven anywhere and both gain the same: by name.
		want: []string{"api:" + general + "→" + himem},
	}, {
		name:       "the prior rules a class out",
		cfg:        profiles.Config{ExploreFloor: 99},
		placements: []profiles.Placement{ask("web", 4, map[string]int{general: 4})},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := setup(t, tt.cfg)
			got, err := p.Explore(tt.placements)
			if err != nil {
				t.Fatal(err)
			}
			var moves []string
			for _, e := range got {
				moves = append(moves, e.Group+":"+e.From+"→"+e.To)
				if e.Reason == "" {
					t.Errorf("%s: no reason", e.Group)
				}
			}
			if len(moves) != len(tt.want) || (len(moves) > 0 && moves[0] != tt.want[0]) {
				t.Errorf("got %v, want %v", moves, tt.want)
			}
		})
	}
}

func TestExploreOnlyWhereTheAllocationFits(t *testing.T) {
	p, err := profiles.New(profiles.Config{})
	if err != nil {
		t.Fatal(err)
	}
	full := node("c1", "cloud", "provider", "ssd", "standard", 8000, 16384)
	full.UsedCPUMHz = 7500
	if err := p.SetNodes([]profiles.Node{
		node("g1", "general", "external", "ssd", "standard", 8000, 16384), full,
	}); err != nil {
		t.Fatal(err)
	}
	got, err := p.Explore([]profiles.Placement{{Group: "web", Count: 4, CPUMHz: 1000, MemoryMB: 512, Running: map[string]int{general: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("explored %v onto a class with 500 MHz free for a 1000 MHz allocation", got)
	}
	if _, err := p.Explore([]profiles.Placement{{Group: "web", Count: -1}}); err == nil {
		t.Error("a negative count was accepted")
	}
}
