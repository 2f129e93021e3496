package wire

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/foresight-nomad/foresight/telemetry"
	"github.com/foresight-nomad/foresight/telemetry/telemetrytest"
	"github.com/foresight-nomad/foresight/telemetry/wire/ingestpb"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func TestBlockRoundTrip(t *testing.T) {
	in := telemetrytest.SamplesAt(t0, 100)
	in[5].Time = t0.Add(-3 * time.Second)
	in[9].Time = t0.Add(1234 * time.Millisecond)
	in[7].Value = -0.5
	blk := EncodeBlock(in)
	if len(blk.Strings) != 7+100+1+len(telemetry.Metrics()) {
		t.Fatalf("string table holds %d strings, want each distinct string once", len(blk.Strings))
	}
	wire, err := proto.Marshal(blk)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d samples in %d bytes (%.1f bytes/sample)", len(in), len(wire), float64(len(wire))/float64(len(in)))
	back := &ingestpb.SampleBlock{}
	if err := proto.Unmarshal(wire, back); err != nil {
		t.Fatal(err)
	}
	var d Decoder
	out, err := d.Decode(back, len(in), t0.Add(time.Minute), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(in, out, telemetrytest.Same) {
		t.Fatal("samples changed in the round trip")
	}
}

func TestBlockSourcesAndNotes(t *testing.T) {
	in := telemetrytest.SamplesAt(t0, 3)
	in[0].Source = telemetry.SourceProcessOverCgroup
	in[2].Source = telemetry.SourceNomad
	notes := []telemetry.Note{
		{Group: in[0].Group, Metric: telemetry.NetRxBPS, Reason: telemetry.AbsentHostNetwork},
		{Group: in[0].Group, Metric: telemetry.PSICPUSome, Reason: telemetry.AbsentPressureV1},
	}
	blk := EncodeBlock(in, notes...)
	var d Decoder
	out, err := d.Decode(blk, len(in), t0.Add(time.Minute), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(in, out, telemetrytest.Same) {
		t.Fatalf("samples changed in the round trip: %+v", out)
	}
	back, err := d.Notes(blk, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(notes, back) {
		t.Fatalf("notes changed in the round trip: %+v", back)
	}

	// A block from an agent that predates sources decodes with none.
	old := EncodeBlock(telemetrytest.SamplesAt(t0, 2))
	if old.Source != nil || old.NoteGroup != nil {
		t.Fatal("a block without sources or notes carries their columns")
	}
	if out, err := d.Decode(old, len(old.Value), t0.Add(time.Minute), nil); err != nil || out[0].Source != "" {
		t.Fatalf("old block: %v %+v", err, out)
	}
}

func TestBlockRejectsBadSourcesAndNotes(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*ingestpb.SampleBlock)
	}{
		{"source column too short", func(b *ingestpb.SampleBlock) { b.Source = b.Source[:1] }},
		{"source index outside the table", func(b *ingestpb.SampleBlock) { b.Source[0] = 999 }},
		{"note columns disagree", func(b *ingestpb.SampleBlock) { b.NoteReason = nil }},
		{"note with an unknown metric", func(b *ingestpb.SampleBlock) { b.NoteMetric[0] = b.Group[0] }},
		{"note with a bad group", func(b *ingestpb.SampleBlock) { b.NoteGroup[0] = b.Metric[0] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := telemetrytest.SamplesAt(t0, 2)
			in[0].Source = telemetry.SourceCgroup
			blk := EncodeBlock(in, telemetry.Note{Group: in[0].Group, Metric: telemetry.NetTxBPS, Reason: telemetry.AbsentHostNetwork})
			tc.edit(blk)
			var d Decoder
			_, err := d.Decode(blk, len(blk.Value), t0.Add(time.Minute), nil)
			if err == nil {
				_, err = d.Notes(blk, nil)
			}
			if err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
