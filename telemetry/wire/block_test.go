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
