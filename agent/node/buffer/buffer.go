// Package buffer is the node agent's durable telemetry queue and its local
// history: every batch the agent samples is written here before it is
// shipped, and stays here after the leader acknowledged it, until the size or
// age bound evicts it.
//
// The promise:
//
//   - Append returns only after the batch is committed to disk (bbolt's
//     commit fsyncs). A committed batch survives a crash of the process at
//     any point, including SIGKILL in the middle of a later write.
//   - Every batch gets the next sequence number. Sequence numbers are
//     strictly increasing for the life of the file, across restarts and
//     evictions; one is never given twice.
//   - Retained batches always form one contiguous range of sequence numbers,
//     because eviction takes the oldest first.
//   - Ack(seq) records that the leader holds every batch up to seq. Acked
//     batches stay retained as history (for replay to a new leader).
//   - The age bound (MaxAge) evicts only acknowledged batches whose newest
//     sample is older than the bound. Only the size bound (MaxBytes) may evict
//     a batch the leader has not acknowledged; that loss is counted
//     separately and logged.
//
// Limits: MaxBytes bounds the bytes of retained batches (keys, headers and
// payloads), not the file: bbolt reuses freed pages but never shrinks its
// file, so the file stays near the largest size it ever reached, a little
// above MaxBytes. An acknowledgement written just before a crash may be lost;
// the batches it covered are then sent again with their original sequence
// numbers and the leader drops them as duplicates.
package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	bolt "go.etcd.io/bbolt"

	"github.com/foresight-nomad/foresight/clock"
)

const (
	// DefaultMaxBytes bounds the retained batches when Options.MaxBytes is 0.
	DefaultMaxBytes int64 = 256 << 20
	// DefaultMaxAge bounds the history kept when Options.MaxAge is 0.
	DefaultMaxAge = 14 * 24 * time.Hour
)

var (
	bucketBatches = []byte("batches")
	bucketMeta    = []byte("meta")

	keyNextSeq  = []byte("next_seq")
	keyAcked    = []byte("acked")
	keyBytes    = []byte("bytes")
	keyBufferID = []byte("buffer_id")
)

// headerVersion is the first byte of every stored batch value.
const headerVersion = 1

// headerLen is the size of a stored batch's header: version, min time,
// max time (Unix ms, 8 bytes each) and sample count (4 bytes).
const headerLen = 1 + 8 + 8 + 4

// keyLen is the size of a batch key: its sequence number, big-endian so that
// bbolt's byte order is sequence order.
const keyLen = 8

// Options configures a Buffer. The zero value is usable.
type Options struct {
	// MaxBytes bounds the bytes of retained batches; 0 means DefaultMaxBytes.
	MaxBytes int64
	// MaxAge bounds how long acknowledged batches are kept; 0 means
	// DefaultMaxAge.
	MaxAge time.Duration
	// Clock is the time the age bound is measured against; nil means the
	// wall clock.
	Clock clock.Clock
	// Logger receives a warning whenever unacknowledged data is evicted; nil
	// means no logging.
	Logger hclog.Logger
	// OpenTimeout bounds the wait for the file lock held by another process;
	// 0 means 5 seconds.
	OpenTimeout time.Duration
}

// Meta describes the samples a batch holds, so that eviction and replay need
// not decode payloads.
type Meta struct {
	// Samples is the number of samples in the payload.
	Samples int
	// MinTime and MaxTime are the times of the oldest and newest sample.
	MinTime, MaxTime time.Time
}

// Batch is one retained batch.
type Batch struct {
	// Seq is the batch's sequence number.
	Seq uint64
	// Meta describes the payload.
	Meta
	// Payload is the encoded samples, as given to Append.
	Payload []byte
	// Acked reports whether the leader had acknowledged the batch when it
	// was read.
	Acked bool
}

// Stats is a snapshot of a Buffer's state and of its eviction counters since
// it was opened.
type Stats struct {
	// BufferID identifies the file; it is chosen at random when the file is
	// created, so a wiped buffer can be told from the old one.
	BufferID uint64
	// Bytes is the size of the retained batches.
	Bytes int64
	// Batches is the number of retained batches.
	Batches int
	// FirstSeq and LastSeq bound the retained batches; both are 0 when none
	// is retained.
	FirstSeq, LastSeq uint64
	// NextSeq is the sequence number the next Append will assign.
	NextSeq uint64
	// Acked is the highest acknowledged sequence number.
	Acked uint64
	// EvictedBatches and EvictedSamples count every eviction.
	EvictedBatches, EvictedSamples uint64
	// EvictedUnackedBatches and EvictedUnackedSamples count the evictions
	// of data the leader had not acknowledged (under the size bound only).
	EvictedUnackedBatches, EvictedUnackedSamples uint64
}

// Buffer is a durable queue of batches in a bbolt file. It is safe for
// concurrent use.
type Buffer struct {
	db     *bolt.DB
	opts   Options
	notify chan struct{}

	mu    sync.Mutex // guards stats
	stats Stats
}

// ErrTooLarge is returned by Append for a batch bigger than the size bound.
var ErrTooLarge = errors.New("batch exceeds the buffer's size bound")

// Open opens or creates the buffer file at path.
func Open(path string, opts Options) (*Buffer, error) {
	if opts.MaxBytes == 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxAge == 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.MaxBytes < 0 || opts.MaxAge < 0 {
		return nil, fmt.Errorf("open buffer %s: negative bound (max bytes %d, max age %v)", path, opts.MaxBytes, opts.MaxAge)
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.OpenTimeout == 0 {
		opts.OpenTimeout = 5 * time.Second
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.OpenTimeout})
	if err != nil {
		return nil, fmt.Errorf("open buffer %s: %w", path, err)
	}
	b := &Buffer{db: db, opts: opts, notify: make(chan struct{}, 1)}
	if err := db.Update(b.load); err != nil {
		db.Close()
		return nil, fmt.Errorf("open buffer %s: %w", path, err)
	}
	return b, nil
}

// load creates the buckets of a new file and reads the state of an old one.
func (b *Buffer) load(tx *bolt.Tx) error {
	batches, err := tx.CreateBucketIfNotExists(bucketBatches)
	if err != nil {
		return err
	}
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	if meta.Get(keyBufferID) == nil {
		id := rand.Uint64() | 1 // never 0, which means "unknown" on the wire
		if err := putUint(meta, keyBufferID, id); err != nil {
			return err
		}
		if err := putUint(meta, keyNextSeq, 1); err != nil {
			return err
		}
	}
	st := Stats{
		BufferID: getUint(meta, keyBufferID),
		NextSeq:  getUint(meta, keyNextSeq),
		Acked:    getUint(meta, keyAcked),
		Bytes:    int64(getUint(meta, keyBytes)),
		Batches:  batches.Stats().KeyN,
	}
	if st.NextSeq == 0 {
		return errors.New("corrupt meta: no next sequence number")
	}
	if k, _ := batches.Cursor().First(); k != nil {
		st.FirstSeq = binary.BigEndian.Uint64(k)
	}
	if k, _ := batches.Cursor().Last(); k != nil {
		st.LastSeq = binary.BigEndian.Uint64(k)
		if st.LastSeq >= st.NextSeq {
			return fmt.Errorf("corrupt meta: batch %d at or above next sequence number %d", st.LastSeq, st.NextSeq)
		}
	}
	b.stats = st
	return nil
}

// Close closes the file.
func (b *Buffer) Close() error {
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("close buffer %s: %w", b.db.Path(), err)
	}
	return nil
}

// Notify returns a channel that receives a value after an Append, so that
// one consumer (the shipper) can wait for new data. Appends that happen
// while a value is pending are coalesced into it.
func (b *Buffer) Notify() <-chan struct{} { return b.notify }

// Append commits a batch and returns its sequence number. To make room under
// the size bound it first evicts the oldest batches, acknowledged or not, and
// it applies the age bound. A batch larger than MaxBytes is refused with
// ErrTooLarge and changes nothing.
func (b *Buffer) Append(payload []byte, m Meta) (uint64, error) {
	size := int64(keyLen + headerLen + len(payload))
	if size > b.opts.MaxBytes {
		return 0, fmt.Errorf("append %d-byte batch: %w (%d bytes)", size, ErrTooLarge, b.opts.MaxBytes)
	}
	if m.Samples < 0 || uint64(m.Samples) > uint64(^uint32(0)) {
		return 0, fmt.Errorf("append batch: sample count %d out of range", m.Samples)
	}
	cutoff := b.opts.Clock.Now().Add(-b.opts.MaxAge)
	var seq uint64
	var ev evictions
	err := b.db.Update(func(tx *bolt.Tx) error {
		batches, meta := tx.Bucket(bucketBatches), tx.Bucket(bucketMeta)
		acked, bytes := getUint(meta, keyAcked), int64(getUint(meta, keyBytes))
		var err error
		if bytes, err = ev.evict(batches, acked, bytes, func(k, v []byte, bytes int64) bool {
			return bytes+size > b.opts.MaxBytes || (binary.BigEndian.Uint64(k) <= acked && maxTimeOf(v).Before(cutoff))
		}); err != nil {
			return err
		}
		seq = getUint(meta, keyNextSeq)
		if err := batches.Put(seqKey(seq), encodeValue(payload, m)); err != nil {
			return err
		}
		if err := putUint(meta, keyNextSeq, seq+1); err != nil {
			return err
		}
		return putUint(meta, keyBytes, uint64(bytes+size))
	})
	if err != nil {
		return 0, fmt.Errorf("append batch to buffer %s: %w", b.db.Path(), err)
	}
	b.mu.Lock()
	b.apply(ev)
	b.stats.Bytes += size
	b.stats.Batches++
	if b.stats.FirstSeq == 0 {
		b.stats.FirstSeq = seq
	}
	b.stats.LastSeq = seq
	b.stats.NextSeq = seq + 1
	b.mu.Unlock()
	b.logUnacked(ev)
	select {
	case b.notify <- struct{}{}:
	default:
	}
	return seq, nil
}

// Evict applies the age bound now: it removes acknowledged batches whose
// newest sample is older than MaxAge. Append does the same, so an agent that
// keeps sampling need not call it.
func (b *Buffer) Evict() error {
	cutoff := b.opts.Clock.Now().Add(-b.opts.MaxAge)
	var ev evictions
	err := b.db.Update(func(tx *bolt.Tx) error {
		batches, meta := tx.Bucket(bucketBatches), tx.Bucket(bucketMeta)
		acked := getUint(meta, keyAcked)
		bytes, err := ev.evict(batches, acked, int64(getUint(meta, keyBytes)), func(k, v []byte, _ int64) bool {
			return binary.BigEndian.Uint64(k) <= acked && maxTimeOf(v).Before(cutoff)
		})
		if err != nil || ev.batches == 0 {
			return err
		}
		return putUint(meta, keyBytes, uint64(bytes))
	})
	if err != nil {
		return fmt.Errorf("evict from buffer %s: %w", b.db.Path(), err)
	}
	b.mu.Lock()
	b.apply(ev)
	b.mu.Unlock()
	return nil
}

// evictions tallies what one transaction evicted.
type evictions struct {
	batches, samples               uint64
	unackedBatches, unackedSamples uint64
	bytes                          int64
	first, last                    uint64 // unacked seqs evicted
	nextFirst                      uint64 // first retained seq afterwards, 0 if none
}

// evict deletes batches from the oldest while should says so, and returns the
// retained bytes afterwards.
func (ev *evictions) evict(batches *bolt.Bucket, acked uint64, bytes int64, should func(k, v []byte, bytes int64) bool) (int64, error) {
	c := batches.Cursor()
	k, v := c.First()
	for ; k != nil && should(k, v, bytes); k, v = c.First() {
		seq, n := binary.BigEndian.Uint64(k), uint64(samplesOf(v))
		size := int64(len(k) + len(v))
		if err := c.Delete(); err != nil {
			return 0, fmt.Errorf("evict batch %d: %w", seq, err)
		}
		bytes -= size
		ev.bytes += size
		ev.batches++
		ev.samples += n
		if seq > acked {
			if ev.unackedBatches == 0 {
				ev.first = seq
			}
			ev.last = seq
			ev.unackedBatches++
			ev.unackedSamples += n
		}
	}
	if k != nil {
		ev.nextFirst = binary.BigEndian.Uint64(k)
	}
	return bytes, nil
}

// apply records an eviction in the stats; b.mu must be held.
func (b *Buffer) apply(ev evictions) {
	if ev.batches == 0 {
		return
	}
	b.stats.Bytes -= ev.bytes
	b.stats.Batches -= int(ev.batches)
	b.stats.FirstSeq = ev.nextFirst
	if ev.nextFirst == 0 {
		b.stats.LastSeq = 0
	}
	b.stats.EvictedBatches += ev.batches
	b.stats.EvictedSamples += ev.samples
	b.stats.EvictedUnackedBatches += ev.unackedBatches
	b.stats.EvictedUnackedSamples += ev.unackedSamples
}

func (b *Buffer) logUnacked(ev evictions) {
	if ev.unackedBatches == 0 {
		return
	}
	b.opts.Logger.Warn("buffer full: evicted batches the leader has not acknowledged",
		"first_seq", ev.first, "last_seq", ev.last, "batches", ev.unackedBatches,
		"samples", ev.unackedSamples, "max_bytes", b.opts.MaxBytes)
}

// Ack records that the leader holds every batch up to and including seq.
// Acknowledging less than before changes nothing; acknowledging a sequence
// number never assigned is an error.
func (b *Buffer) Ack(seq uint64) error {
	b.mu.Lock()
	acked := b.stats.Acked
	b.mu.Unlock()
	if seq <= acked {
		return nil
	}
	// The sequence numbers assigned are read in the transaction: a batch
	// Append has committed may be shipped and acknowledged before Append
	// updates its in-memory count.
	err := b.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if next := getUint(meta, keyNextSeq); seq >= next {
			return fmt.Errorf("only %d assigned", next-1)
		}
		if getUint(meta, keyAcked) >= seq {
			return nil
		}
		return putUint(meta, keyAcked, seq)
	})
	if err != nil {
		return fmt.Errorf("ack %d in buffer %s: %w", seq, b.db.Path(), err)
	}
	b.mu.Lock()
	b.stats.Acked = max(b.stats.Acked, seq)
	b.mu.Unlock()
	return nil
}

// Unacked returns up to limit unacknowledged batches with a sequence number
// above after, in sequence order.
func (b *Buffer) Unacked(after uint64, limit int) ([]Batch, error) {
	out, err := b.scan(after, true, time.Time{}, limit)
	if err != nil {
		return nil, fmt.Errorf("read unacked batches of buffer %s: %w", b.db.Path(), err)
	}
	return out, nil
}

// Since returns up to limit retained batches, acknowledged or not, with a
// sequence number above after and a sample at or after from, in sequence
// order. Page through history by passing the last Seq returned as after.
func (b *Buffer) Since(from time.Time, after uint64, limit int) ([]Batch, error) {
	out, err := b.scan(after, false, from, limit)
	if err != nil {
		return nil, fmt.Errorf("read history of buffer %s since %v: %w", b.db.Path(), from, err)
	}
	return out, nil
}

// scan copies out up to limit batches above after, skipping acknowledged
// ones when unackedOnly is set and those with no sample at or after from.
func (b *Buffer) scan(after uint64, unackedOnly bool, from time.Time, limit int) ([]Batch, error) {
	var out []Batch
	err := b.db.View(func(tx *bolt.Tx) error {
		acked := getUint(tx.Bucket(bucketMeta), keyAcked)
		if unackedOnly {
			after = max(after, acked)
		}
		c := tx.Bucket(bucketBatches).Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			if len(v) >= headerLen && maxTimeOf(v).Before(from) {
				continue
			}
			bt, err := decodeValue(k, v, acked)
			if err != nil {
				return err
			}
			out = append(out, bt)
		}
		return nil
	})
	return out, err
}

// Stats returns the buffer's state and eviction counters.
func (b *Buffer) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stats
}

func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, keyLen), seq)
}

func encodeValue(payload []byte, m Meta) []byte {
	v := make([]byte, headerLen, headerLen+len(payload))
	v[0] = headerVersion
	binary.BigEndian.PutUint64(v[1:], uint64(m.MinTime.UnixMilli()))
	binary.BigEndian.PutUint64(v[9:], uint64(m.MaxTime.UnixMilli()))
	binary.BigEndian.PutUint32(v[17:], uint32(m.Samples))
	return append(v, payload...)
}

// decodeValue copies a stored batch out of bbolt's memory map, which is
// valid only inside the transaction.
func decodeValue(k, v []byte, acked uint64) (Batch, error) {
	seq := binary.BigEndian.Uint64(k)
	if len(v) < headerLen || v[0] != headerVersion {
		return Batch{}, fmt.Errorf("batch %d: corrupt header (%d bytes, version %d)", seq, len(v), firstByte(v))
	}
	return Batch{
		Seq: seq,
		Meta: Meta{
			Samples: samplesOf(v),
			MinTime: time.UnixMilli(int64(binary.BigEndian.Uint64(v[1:]))),
			MaxTime: maxTimeOf(v),
		},
		Payload: append([]byte(nil), v[headerLen:]...),
		Acked:   seq <= acked,
	}, nil
}

func firstByte(v []byte) byte {
	if len(v) == 0 {
		return 0
	}
	return v[0]
}

func maxTimeOf(v []byte) time.Time {
	if len(v) < headerLen {
		return time.Time{}
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(v[9:])))
}

func samplesOf(v []byte) int {
	if len(v) < headerLen {
		return 0
	}
	return int(binary.BigEndian.Uint32(v[17:]))
}

func getUint(b *bolt.Bucket, k []byte) uint64 {
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func putUint(b *bolt.Bucket, k []byte, n uint64) error {
	return b.Put(k, binary.BigEndian.AppendUint64(nil, n))
}
