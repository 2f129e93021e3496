package buffer

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/foresight-nomad/foresight/clock"
)

var t0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func open(t *testing.T, path string, opts Options) *Buffer {
	t.Helper()
	b, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func payloadOf(seq uint64, size int) []byte {
	p := bytes.Repeat([]byte{byte(seq)}, size)
	copy(p, fmt.Sprintf("batch-%d;", seq))
	return p
}

func appendN(t *testing.T, b *Buffer, n, size int, at time.Time) []uint64 {
	t.Helper()
	var seqs []uint64
	for range n {
		next := b.Stats().NextSeq
		seq, err := b.Append(payloadOf(next, size), Meta{Samples: 10, MinTime: at, MaxTime: at.Add(time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

func seqsOf(bs []Batch) []uint64 {
	var out []uint64
	for _, b := range bs {
		out = append(out, b.Seq)
	}
	return out
}

func TestAppendAckUnackedSince(t *testing.T) {
	b := open(t, filepath.Join(t.TempDir(), "buf.db"), Options{})
	seqs := appendN(t, b, 5, 100, t0)
	if fmt.Sprint(seqs) != "[1 2 3 4 5]" {
		t.Fatalf("seqs = %v, want 1..5", seqs)
	}
	if err := b.Ack(3); err != nil {
		t.Fatal(err)
	}
	if err := b.Ack(2); err != nil { // going back is a no-op
		t.Fatal(err)
	}
	if err := b.Ack(6); err == nil {
		t.Fatal("ack of an unassigned seq succeeded")
	}
	un, err := b.Unacked(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(seqsOf(un)); got != "[4 5]" {
		t.Fatalf("unacked = %s, want [4 5]", got)
	}
	if !bytes.Equal(un[0].Payload, payloadOf(4, 100)) || un[0].Samples != 10 || !un[0].MinTime.Equal(t0) || un[0].Acked {
		t.Fatalf("batch 4 read back wrong: %+v", un[0].Meta)
	}
	if un, _ = b.Unacked(4, 10); fmt.Sprint(seqsOf(un)) != "[5]" {
		t.Fatalf("unacked after 4 = %v, want [5]", seqsOf(un))
	}
	hist, err := b.Since(t0, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(seqsOf(hist)); got != "[1 2]" || !hist[0].Acked {
		t.Fatalf("history page = %s (acked %v), want [1 2] acked", got, hist[0].Acked)
	}
	if hist, _ = b.Since(t0, 2, 10); fmt.Sprint(seqsOf(hist)) != "[3 4 5]" {
		t.Fatalf("history after 2 = %v, want [3 4 5]", seqsOf(hist))
	}
	if hist, _ = b.Since(t0.Add(time.Hour), 0, 10); len(hist) != 0 {
		t.Fatalf("history from after every sample = %v, want none", seqsOf(hist))
	}
	st := b.Stats()
	if st.Batches != 5 || st.FirstSeq != 1 || st.LastSeq != 5 || st.Acked != 3 || st.Bytes != 5*(keyLen+headerLen+100) {
		t.Fatalf("stats = %+v", st)
	}
}

func TestSinceSkipsOldBatches(t *testing.T) {
	b := open(t, filepath.Join(t.TempDir(), "buf.db"), Options{})
	appendN(t, b, 2, 10, t0)
	appendN(t, b, 2, 10, t0.Add(time.Hour))
	hist, err := b.Since(t0.Add(30*time.Minute), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(seqsOf(hist)); got != "[3 4]" {
		t.Fatalf("history = %s, want [3 4]", got)
	}
}

func TestReopenKeepsStateAndNeverReusesSeq(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buf.db")
	b, err := Open(path, Options{MaxBytes: 3 * (keyLen + headerLen + 50)})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, b, 5, 50, t0) // evicts 1 and 2
	if err := b.Ack(4); err != nil {
		t.Fatal(err)
	}
	before := b.Stats()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = open(t, path, Options{MaxBytes: 3 * (keyLen + headerLen + 50)})
	after := b.Stats()
	if after.BufferID != before.BufferID || after.FirstSeq != 3 || after.LastSeq != 5 || after.Acked != 4 || after.Bytes != before.Bytes || after.Batches != 3 {
		t.Fatalf("after reopen stats = %+v, before %+v", after, before)
	}
	if seq := appendN(t, b, 1, 50, t0)[0]; seq != 6 {
		t.Fatalf("next seq after reopen = %d, want 6", seq)
	}
}

func TestSizeBoundEvictsOldestAndCountsUnacked(t *testing.T) {
	const size = 1000
	per := int64(keyLen + headerLen + size)
	b := open(t, filepath.Join(t.TempDir(), "buf.db"), Options{MaxBytes: 4 * per})
	appendN(t, b, 4, size, t0)
	if err := b.Ack(2); err != nil {
		t.Fatal(err)
	}
	appendN(t, b, 3, size, t0) // evicts 1, 2 (acked) and 3 (unacked)
	st := b.Stats()
	if st.FirstSeq != 4 || st.LastSeq != 7 || st.Batches != 4 || st.Bytes != 4*per {
		t.Fatalf("stats = %+v, want batches 4..7 of %d bytes", st, 4*per)
	}
	if st.EvictedBatches != 3 || st.EvictedSamples != 30 || st.EvictedUnackedBatches != 1 || st.EvictedUnackedSamples != 10 {
		t.Fatalf("eviction counters = %+v", st)
	}
	if _, err := b.Append(make([]byte, 4*per), Meta{}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized append: err = %v, want ErrTooLarge", err)
	}
	if b.Stats().Batches != 4 {
		t.Fatal("oversized append changed the buffer")
	}
}

func TestAgeBoundEvictsOnlyAcked(t *testing.T) {
	clk := clock.NewVirtual(t0)
	b := open(t, filepath.Join(t.TempDir(), "buf.db"), Options{MaxAge: 24 * time.Hour, Clock: clk})
	appendN(t, b, 3, 10, t0)
	appendN(t, b, 1, 10, t0.Add(12*time.Hour))
	if err := b.Ack(2); err != nil {
		t.Fatal(err)
	}
	clk.Advance(25 * time.Hour)
	if err := b.Evict(); err != nil {
		t.Fatal(err)
	}
	st := b.Stats()
	if st.FirstSeq != 3 || st.EvictedBatches != 2 || st.EvictedUnackedBatches != 0 {
		t.Fatalf("after age eviction stats = %+v, want 1 and 2 evicted, 3 (unacked) kept", st)
	}
	if err := b.Ack(4); err != nil {
		t.Fatal(err)
	}
	appendN(t, b, 1, 10, clk.Now()) // Append applies the age bound too
	if st := b.Stats(); st.FirstSeq != 4 || st.EvictedBatches != 3 {
		t.Fatalf("after append stats = %+v, want 3 evicted, 4 (12 h younger) kept", st)
	}
}

func TestNotifyAfterAppend(t *testing.T) {
	b := open(t, filepath.Join(t.TempDir(), "buf.db"), Options{})
	select {
	case <-b.Notify():
		t.Fatal("notified before any append")
	default:
	}
	appendN(t, b, 2, 10, t0)
	select {
	case <-b.Notify():
	default:
		t.Fatal("no notification after append")
	}
}

// TestAckOfAnUnassignedSequenceIsRefused checks that only sequence numbers
// the buffer has committed can be acknowledged, and that a refused ack
// changes nothing.
func TestAckOfAnUnassignedSequenceIsRefused(t *testing.T) {
	b := open(t, filepath.Join(t.TempDir(), "buf.db"), Options{})
	seqs := appendN(t, b, 2, 100, t0)
	if err := b.Ack(seqs[1] + 1); err == nil || !strings.Contains(err.Error(), "assigned") {
		t.Fatalf("ack beyond the last batch: %v, want a refusal", err)
	}
	if got := b.Stats().Acked; got != 0 {
		t.Fatalf("a refused ack moved Acked to %d", got)
	}
	if err := b.Ack(seqs[1]); err != nil || b.Stats().Acked != seqs[1] {
		t.Fatalf("ack of the last batch: %v, acked %d", err, b.Stats().Acked)
	}
}
