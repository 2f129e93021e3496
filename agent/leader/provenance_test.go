package leader

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/foresight-nomad/foresight/telemetry"
)

// The group view lists how each metric was read and why some are missing,
// as of the last minutes of the group's telemetry: a source or note older
// than provenanceWindow before the group's newest drops out.
func TestProvenanceOfAGroup(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	p := newProvenance()
	sample := func(at time.Time, metric, source string) telemetry.Sample {
		return telemetry.Sample{Time: at, Group: "default/web/web", Alloc: "a", Task: "t", Metric: metric, Value: 1, Source: source}
	}
	p.take([]telemetry.Sample{
		sample(t0, telemetry.IOWriteBPS, telemetry.SourceCgroup), // superseded below, then too old
		{Time: t0, Group: "default/db/db", Alloc: "b", Task: "t", Metric: telemetry.CPUMHz, Value: 1, Source: telemetry.SourceNomad},
		sample(t0, telemetry.CPUMHz, ""), // an older agent: no source
	})
	later := t0.Add(provenanceWindow + time.Minute)
	p.take([]telemetry.Sample{
		sample(later, telemetry.IOWriteBPS, telemetry.SourceProcessOverCgroup),
		sample(later, telemetry.CPUMHz, telemetry.SourceProcess),
		sample(later.Add(-time.Second), telemetry.CPUMHz, telemetry.SourceNomad),
	})
	p.note(later, []telemetry.Note{
		{Group: "default/web/web", Metric: telemetry.NetRxBPS, Reason: telemetry.AbsentHostNetwork},
		{Group: "default/web/web", Metric: telemetry.PSICPUSome, Reason: telemetry.AbsentPressureV1},
	})
	sources, absent := p.of("default/web/web")
	wantSources := map[string][]string{
		telemetry.IOWriteBPS: {telemetry.SourceProcessOverCgroup},
		telemetry.CPUMHz:     {telemetry.SourceNomad, telemetry.SourceProcess},
	}
	wantAbsent := map[string][]string{
		telemetry.NetRxBPS:   {telemetry.AbsentHostNetwork},
		telemetry.PSICPUSome: {telemetry.AbsentPressureV1},
	}
	if !maps.EqualFunc(sources, wantSources, slices.Equal) || !maps.EqualFunc(absent, wantAbsent, slices.Equal) {
		t.Fatalf("sources %v, absent %v\nwant %v, %v", sources, absent, wantSources, wantAbsent)
	}
	if s, a := p.of("default/db/db"); !slices.Equal(s[telemetry.CPUMHz], []string{telemetry.SourceNomad}) || a != nil {
		t.Fatalf("another group: %v %v", s, a)
	}
	if s, a := p.of("default/none/none"); s != nil || a != nil {
		t.Fatalf("an unknown group: %v %v", s, a)
	}
}

func TestTelemetryRows(t *testing.T) {
	rows := telemetryRows(
		map[string][]string{telemetry.CPUMHz: {telemetry.SourceNomad, telemetry.SourceProcess}, telemetry.IOWriteBPS: {telemetry.SourceProcess}},
		map[string][]string{telemetry.NetRxBPS: {telemetry.AbsentHostNetwork}},
	)
	want := []string{
		"cpu_mhz: read from nomad, process",
		"io_write_bps: read from process",
		"net_rx_bps: missing: host network: not attributable",
	}
	var got []string
	for _, r := range rows {
		got = append(got, r.Key+": "+r.Value)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("rows:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
