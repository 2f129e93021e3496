package store

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foresight-nomad/foresight/forecast"
	"github.com/foresight-nomad/foresight/internal/shared"
)

func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }

// trace is one series of a shared trace file.
type trace struct {
	corpus string // the folder under traces: nab, crane, vm/azure_v1, …
	name   string
	ts     []int64 // ms since the epoch
	vs     []float64
}

// loadTraces reads every CSV under shared/data/traces.
func loadTraces(tb testing.TB) []trace {
	tb.Helper()
	root := shared.Path(tb, "data", "traces")
	var out []trace
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".csv") {
			return err
		}
		tr, err := readTrace(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		tr.corpus, tr.name = filepath.Dir(rel), rel
		out = append(out, tr)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if len(out) == 0 {
		tb.Skipf("no CSV traces under %s", root)
	}
	return out
}

// readTrace reads a trace with the project's CSV reader; chunks need
// strictly increasing times, so a repeated time keeps its first reading.
func readTrace(path string) (trace, error) {
	f, err := os.Open(path)
	if err != nil {
		return trace{}, err
	}
	defer f.Close()
	obs, err := forecast.ReadCSV(f, forecast.CSVOptions{})
	if err != nil {
		return trace{}, fmt.Errorf("%s: %w", path, err)
	}
	var tr trace
	for _, o := range obs {
		ms := o.Time.UnixMilli()
		if n := len(tr.ts); n > 0 && ms <= tr.ts[n-1] {
			continue
		}
		tr.ts = append(tr.ts, ms)
		tr.vs = append(tr.vs, o.Value)
	}
	return tr, nil
}

// encodeTrace stores a trace in chunks of perChunk samples as the raw tier
// does, and returns the bytes of its XOR chunks and of its compacted chunks.
func encodeTrace(tb testing.TB, tr trace, perChunk int) (xorBytes, compactBytes int) {
	for lo := 0; lo < len(tr.ts); lo += perChunk {
		hi := min(lo+perChunk, len(tr.ts))
		c, _ := NewXORChunk(1)
		app, _ := c.Appender()
		for i := lo; i < hi; i++ {
			if err := app.Append(tr.ts[i], tr.vs[i:i+1]); err != nil {
				tb.Fatalf("%s: %v", tr.name, err)
			}
		}
		d, err := Compact(c)
		if err != nil {
			tb.Fatal(err)
		}
		xorBytes += len(c.Bytes())
		compactBytes += len(d.Bytes())
	}
	return xorBytes, compactBytes
}

// TestTracesRoundTrip checks that every shared trace survives the codec bit
// for bit (skipped when ../shared is absent).
func TestTracesRoundTrip(t *testing.T) {
	for _, tr := range loadTraces(t) {
		for lo := 0; lo < len(tr.ts); lo += DefaultChunkSamples {
			hi := min(lo+DefaultChunkSamples, len(tr.ts))
			want := rows1(tr.ts[lo:hi], tr.vs[lo:hi])
			c, err := Compact(buildXOR(t, want))
			if err != nil {
				t.Fatal(err)
			}
			got, err := readAll(c)
			if err != nil {
				t.Fatalf("%s: %v", tr.name, err)
			}
			sameRows(t, tr.name, got, want)
		}
	}
}

// BenchmarkTraceBytesPerSample stores every shared trace at its own
// timestamps in chunks of DefaultChunkSamples and reports compressed bytes
// per sample: with Compact (what the store keeps), with Gorilla XOR alone,
// per corpus, and the 16 bytes/sample of raw (int64, float64) pairs.
func BenchmarkTraceBytesPerSample(b *testing.B) {
	traces := loadTraces(b)
	var samples, xorBytes, compactBytes int
	corpusBytes, corpusSamples := map[string]int{}, map[string]int{}
	for b.Loop() {
		samples, xorBytes, compactBytes = 0, 0, 0
		clear(corpusBytes)
		clear(corpusSamples)
		for _, tr := range traces {
			x, c := encodeTrace(b, tr, DefaultChunkSamples)
			samples += len(tr.ts)
			xorBytes += x
			compactBytes += c
			corpusBytes[tr.corpus] += c
			corpusSamples[tr.corpus] += len(tr.ts)
		}
	}
	b.ReportMetric(float64(compactBytes)/float64(samples), "bytes/sample")
	b.ReportMetric(float64(xorBytes)/float64(samples), "xor-bytes/sample")
	b.ReportMetric(16, "raw-bytes/sample")
	for corpus, n := range corpusBytes {
		b.ReportMetric(float64(n)/float64(corpusSamples[corpus]), corpus+"-bytes/sample")
	}
	b.ReportMetric(float64(samples), "samples")
}
