package profiles

import (
	"fmt"
	"math"
	"time"
)

// Defaults of Config. Efficiencies are in natural-log units: 0.1 is about
// 10 % more work per CPU.
const (
	// DefaultPriorGain is the ln-efficiency a perfect match of needs to
	// traits is believed to be worth before anything is observed: a
	// modest 10 %, so that a few hours of evidence can overrule it.
	DefaultPriorGain = 0.1
	// DefaultPlatformPreference is the ln-efficiency by which external
	// capacity is preferred over provider capacity: 2 %, enough to order
	// classes that are otherwise equal, never enough to overrule evidence.
	DefaultPlatformPreference = 0.02
	// DefaultEvidenceHours is how many compared allocation-hours weigh as
	// much as the prior when the evidence is consistent.
	DefaultEvidenceHours = 1.0
	// DefaultNoiseScale is the round-to-round disagreement of the evidence
	// (RMS, ln units) at which the evidence needed doubles.
	DefaultNoiseScale = 0.05
	// DefaultScoreScale is the ln-efficiency that scores 76 (tanh 1):
	// a class 25 % better than the group's average class.
	DefaultScoreScale = 0.22314355131420976 // ln 1.25
	// DefaultEvidenceHalfLife is how fast old evidence fades: a week, so
	// that a new release or a hardware change is learned within days
	// while a daily cycle is still averaged over.
	DefaultEvidenceHalfLife = 7 * 24 * time.Hour
	// DefaultSwitchMargin is the score points by which another class must
	// beat the current one before Choose moves a group; the orchestrator's
	// default too.
	DefaultSwitchMargin = 10.0
	// DefaultExploreShare is the share of all running allocations that
	// may be on classes still being explored.
	DefaultExploreShare = 0.1
	// DefaultExploreMinCount is the smallest group that explores: with
	// three allocations, one in doubt is a third of its capacity at most.
	DefaultExploreMinCount = 3
	// DefaultExploreConfidence is the confidence below which a class
	// counts as unexplored for a group: 0.5 is where evidence starts to
	// outweigh the prior.
	DefaultExploreConfidence = 0.5
	// DefaultExploreFloor is the score below which a class is never
	// explored: the prior says it is clearly wrong for the group.
	DefaultExploreFloor = -50.0
)

// Config tunes the profiler. The zero value means every default.
type Config struct {
	// PriorGain is the ln-efficiency of a perfect trait match.
	PriorGain float64
	// PlatformPreference is the ln-efficiency credit of external classes
	// over provider ones.
	PlatformPreference float64
	// EvidenceHours is the compared allocation-hours that weigh as much
	// as the prior (H₀ in Score's formula).
	EvidenceHours float64
	// NoiseScale is ρ₀ in Score's formula.
	NoiseScale float64
	// EvidenceHalfLife is the age at which a round's evidence counts half.
	EvidenceHalfLife time.Duration
	// ScoreScale is S in Score's formula.
	ScoreScale float64
	// ExploreShare, ExploreMinCount, ExploreConfidence and ExploreFloor
	// bound exploration; see Explore.
	ExploreShare      float64
	ExploreMinCount   int
	ExploreConfidence float64
	ExploreFloor      float64
}

// withDefaults fills zero fields and validates the rest.
func (c Config) withDefaults() (Config, error) {
	def := func(v *float64, d float64, name string, positive bool) error {
		switch {
		case math.IsNaN(*v) || math.IsInf(*v, 0):
			return fmt.Errorf("profiles config: %s = %g is not a number", name, *v)
		case *v == 0:
			*v = d
		case positive && *v < 0:
			return fmt.Errorf("profiles config: %s = %g must be positive", name, *v)
		}
		return nil
	}
	for _, f := range []struct {
		v        *float64
		d        float64
		name     string
		positive bool
	}{
		{&c.PriorGain, DefaultPriorGain, "PriorGain", true},
		{&c.PlatformPreference, DefaultPlatformPreference, "PlatformPreference", false},
		{&c.EvidenceHours, DefaultEvidenceHours, "EvidenceHours", true},
		{&c.NoiseScale, DefaultNoiseScale, "NoiseScale", true},
		{&c.ScoreScale, DefaultScoreScale, "ScoreScale", true},
		{&c.ExploreShare, DefaultExploreShare, "ExploreShare", true},
		{&c.ExploreConfidence, DefaultExploreConfidence, "ExploreConfidence", true},
		{&c.ExploreFloor, DefaultExploreFloor, "ExploreFloor", false},
	} {
		if err := def(f.v, f.d, f.name, f.positive); err != nil {
			return c, err
		}
	}
	switch {
	case c.EvidenceHalfLife < 0:
		return c, fmt.Errorf("profiles config: EvidenceHalfLife = %s must be positive", c.EvidenceHalfLife)
	case c.EvidenceHalfLife == 0:
		c.EvidenceHalfLife = DefaultEvidenceHalfLife
	}
	if c.ExploreShare > 1 {
		return c, fmt.Errorf("profiles config: ExploreShare = %g must be at most 1", c.ExploreShare)
	}
	if c.ExploreConfidence > 1 {
		return c, fmt.Errorf("profiles config: ExploreConfidence = %g must be at most 1", c.ExploreConfidence)
	}
	switch {
	case c.ExploreMinCount < 0:
		return c, fmt.Errorf("profiles config: ExploreMinCount = %d must be positive", c.ExploreMinCount)
	case c.ExploreMinCount == 0:
		c.ExploreMinCount = DefaultExploreMinCount
	}
	return c, nil
}
