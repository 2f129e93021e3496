package buffer

import (
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// samplesPerBatch is one agent's 10 s: 100 tasks × 11 metrics.
const samplesPerBatch = 1100

// batchBytes is the encoded size of such a batch (about 14.4 bytes a sample,
// see agent/ingest's BenchmarkDecodeBatch).
const batchBytes = 16 << 10

// BenchmarkAppend measures committing one realistic batch per op, fsync
// included, against the baseline of a bare bbolt transaction that puts the
// same bytes under a sequence key; the ratio is the buffer's own overhead
// (sequence and size bookkeeping, eviction checks).
func BenchmarkAppend(b *testing.B) {
	payload := payloadOf(1, batchBytes)
	b.Run("buffer", func(b *testing.B) {
		buf, err := Open(filepath.Join(b.TempDir(), "buf.db"), Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer buf.Close()
		m := Meta{Samples: samplesPerBatch, MinTime: t0, MaxTime: t0}
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			if _, err := buf.Append(payload, m); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*samplesPerBatch)/b.Elapsed().Seconds(), "samples/s")
	})
	b.Run("bbolt-put-baseline", func(b *testing.B) {
		db, err := bolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		seq := uint64(0)
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			seq++
			err := db.Update(func(tx *bolt.Tx) error {
				bk, err := tx.CreateBucketIfNotExists(bucketBatches)
				if err != nil {
					return err
				}
				return bk.Put(seqKey(seq), payload)
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*samplesPerBatch)/b.Elapsed().Seconds(), "samples/s")
	})
}
