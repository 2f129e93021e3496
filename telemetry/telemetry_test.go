package telemetry_test

import (
	"math"
	"testing"
	"time"

	"github.com/foresight-nomad/foresight/telemetry"
	"github.com/foresight-nomad/foresight/telemetry/telemetrytest"
)

func TestCheckSample(t *testing.T) {
	ok := telemetrytest.SamplesAt(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), 1)[0]
	for _, c := range []struct {
		name string
		edit func(*telemetry.Sample)
	}{
		{"group with two parts", func(s *telemetry.Sample) { s.Group = "default/web" }},
		{"group with four parts", func(s *telemetry.Sample) { s.Group = "a/b/c/d" }},
		{"group with an empty part", func(s *telemetry.Sample) { s.Group = "a//c" }},
		{"no alloc", func(s *telemetry.Sample) { s.Alloc = "" }},
		{"no task", func(s *telemetry.Sample) { s.Task = "" }},
		{"unknown metric", func(s *telemetry.Sample) { s.Metric = "cpu" }},
		{"NaN", func(s *telemetry.Sample) { s.Value = math.NaN() }},
		{"no time", func(s *telemetry.Sample) { s.Time = time.Time{} }},
		{"long alloc", func(s *telemetry.Sample) { s.Alloc = string(make([]byte, telemetry.MaxIDBytes+1)) }},
	} {
		sm := ok
		c.edit(&sm)
		if err := sm.Check(); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
	if err := ok.Check(); err != nil {
		t.Fatalf("valid sample refused: %v", err)
	}
}

func TestParseGroup(t *testing.T) {
	for _, c := range []struct {
		key string
		ok  bool
	}{
		{"default/web/api", true},
		{"default/web", false},
		{"a/b/c/d", false},
		{"a//c", false},
		{"/b/c", false},
		{"a/b/", false},
		{"", false},
	} {
		ref, err := telemetry.ParseGroup(c.key)
		if (err == nil) != c.ok {
			t.Errorf("telemetry.ParseGroup(%q): error %v, want ok=%v", c.key, err, c.ok)
			continue
		}
		if c.ok && ref.Key() != c.key {
			t.Errorf("telemetry.ParseGroup(%q).Key() = %q", c.key, ref.Key())
		}
	}
	if got := (telemetry.GroupRef{Namespace: "a b", Job: "j/x", Group: "g"}).Path(); got != "a%20b/j%2Fx/g" {
		t.Errorf("Path escapes to %q", got)
	}
}
