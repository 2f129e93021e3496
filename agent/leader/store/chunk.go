package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Chunks hold up to 65535 samples in time order. A sample is a timestamp in
// milliseconds since the Unix epoch (as Prometheus does: a regular grid costs
// one bit a sample whatever the unit, and milliseconds keep the agents' own
// unaligned sampling times exact) and one float64 per column: the raw tier
// stores one column, downsampled tiers store sum, count and max together so
// they share one timestamp stream.
//
// Every chunk starts with a 4-byte header: encoding, column count, and the
// sample count as a big-endian uint16. The bit stream follows.

// Encoding says how a chunk's bit stream is coded.
type Encoding uint8

const (
	// EncXOR is Gorilla's coding: delta-of-delta timestamps, XORed floats.
	EncXOR Encoding = 1
	// EncDecimal codes values as scaled decimal integers with Rice-coded
	// deltas, plus corrections where a value is not a short decimal; it is
	// lossless and chosen when it is smaller.
	EncDecimal Encoding = 2
)

// String names the encoding.
func (e Encoding) String() string {
	switch e {
	case EncXOR:
		return "xor"
	case EncDecimal:
		return "decimal"
	}
	return fmt.Sprintf("encoding(%d)", uint8(e))
}

const (
	headerSize = 4
	// MaxColumns is the most float columns a chunk can hold.
	MaxColumns = 4
	// MaxSamples is the most samples a chunk can hold.
	MaxSamples = math.MaxUint16
)

// Chunk is a compressed run of samples in strictly increasing time order.
type Chunk interface {
	// Encoding says how the chunk is coded.
	Encoding() Encoding
	// Bytes returns the chunk's encoded form, header included.
	Bytes() []byte
	// NumSamples returns the number of samples in the chunk.
	NumSamples() int
	// NumColumns returns the number of values in each sample.
	NumColumns() int
	// Iterator returns an iterator over the chunk's samples.
	Iterator() Iterator
}

// Appender adds samples to the end of a chunk.
type Appender interface {
	// Append adds a sample at t (ms) with one value per column; t must be
	// after the last sample's.
	Append(t int64, v []float64) error
}

// Iterator walks a chunk's samples in time order.
type Iterator interface {
	// Next advances to the next sample and reports whether there is one.
	Next() bool
	// At returns the current sample. The slice is reused by Next.
	At() (int64, []float64)
	// Err returns the error that stopped iteration early, if any.
	Err() error
}

// FromBytes returns the chunk encoded in b, which it takes ownership of. It
// checks the header; corruption in the body is reported by the iterator.
func FromBytes(b []byte) (Chunk, error) {
	if len(b) < headerSize {
		return nil, fmt.Errorf("chunk of %d bytes is shorter than its %d-byte header", len(b), headerSize)
	}
	cols := int(b[1])
	if cols < 1 || cols > MaxColumns {
		return nil, fmt.Errorf("chunk has %d columns, want 1 to %d", cols, MaxColumns)
	}
	switch enc := Encoding(b[0]); enc {
	case EncXOR:
		return &XORChunk{w: bitWriter{b: b}}, nil
	case EncDecimal:
		return &DecimalChunk{b: b}, nil
	default:
		return nil, fmt.Errorf("unknown chunk %v", enc)
	}
}

// Compact returns the smallest immutable form of c: a decimal chunk if that
// is smaller, else a copy of c's bytes with no spare capacity.
func Compact(c Chunk) (Chunk, error) {
	d, err := encodeDecimal(c)
	if err != nil {
		return nil, err
	}
	if len(d.b) < len(c.Bytes()) {
		return d, nil
	}
	b := make([]byte, len(c.Bytes()))
	copy(b, c.Bytes())
	return FromBytes(b)
}

func sampleCount(b []byte) int { return int(binary.BigEndian.Uint16(b[2:4])) }

func newHeader(enc Encoding, cols int) []byte {
	return []byte{byte(enc), byte(cols), 0, 0}
}

// XORChunk is a Gorilla-coded chunk; it is the only chunk that grows.
type XORChunk struct {
	w bitWriter
}

var _ Chunk = (*XORChunk)(nil)

// NewXORChunk returns an empty XOR chunk whose samples have cols values.
func NewXORChunk(cols int) (*XORChunk, error) {
	if cols < 1 || cols > MaxColumns {
		return nil, fmt.Errorf("new chunk: %d columns, want 1 to %d", cols, MaxColumns)
	}
	return &XORChunk{w: bitWriter{b: newHeader(EncXOR, cols)}}, nil
}

// Encoding returns EncXOR.
func (c *XORChunk) Encoding() Encoding { return EncXOR }

// Bytes returns the encoded chunk.
func (c *XORChunk) Bytes() []byte { return c.w.b }

// NumSamples returns the number of samples.
func (c *XORChunk) NumSamples() int { return sampleCount(c.w.b) }

// NumColumns returns the number of values in each sample.
func (c *XORChunk) NumColumns() int { return int(c.w.b[1]) }

// Iterator returns an iterator over the samples.
func (c *XORChunk) Iterator() Iterator { return c.iterator() }

func (c *XORChunk) iterator() *xorIterator {
	cols := c.NumColumns()
	return &xorIterator{
		cursor: cursor{r: bitReader{b: c.w.b[headerSize:]}, n: c.NumSamples(), vals: make([]float64, cols)},
		st:     make([]xorState, cols),
	}
}

// Appender returns an appender that continues after the last sample. It
// decodes the chunk once to recover the coder's state.
func (c *XORChunk) Appender() (Appender, error) {
	it := c.iterator()
	for it.Next() {
	}
	if it.err != nil {
		return nil, fmt.Errorf("resume chunk: %w", it.err)
	}
	// Bits after the last sample are padding: resume writing right there.
	used := headerSize*8 + it.r.pos
	c.w.b = c.w.b[:(used+7)/8]
	c.w.free = uint8(uint64(len(c.w.b))*8 - used)
	if c.w.free > 0 {
		c.w.b[len(c.w.b)-1] &^= byte(1<<c.w.free - 1)
	}
	return &xorAppender{c: c, tw: timeWriter{n: it.i, t: it.t, delta: it.delta}, st: it.st}, nil
}

type xorAppender struct {
	c  *XORChunk
	tw timeWriter
	st []xorState
}

// Append adds a sample at t with one value per column.
func (a *xorAppender) Append(t int64, v []float64) error {
	n := a.c.NumSamples()
	switch {
	case len(v) != len(a.st):
		return fmt.Errorf("append %d values to a chunk of %d columns", len(v), len(a.st))
	case n == MaxSamples:
		return errors.New("append to a full chunk")
	case n > 0 && t <= a.tw.t:
		return fmt.Errorf("append at %d, not after the last sample at %d", t, a.tw.t)
	case n > 0 && t-a.tw.t <= 0:
		return fmt.Errorf("append at %d: the gap from %d overflows int64", t, a.tw.t)
	}
	w := &a.c.w
	a.tw.write(w, t, false)
	for i, x := range v {
		if n == 0 {
			w.writeBits(math.Float64bits(x), 64)
			a.st[i].v = x
		} else {
			writeXOR(w, &a.st[i], x)
		}
	}
	binary.BigEndian.PutUint16(w.b[2:4], uint16(n+1))
	return nil
}

// cursor is what iterating both encodings shares: the bit reader, the
// position, the timestamp coding and the current sample.
type cursor struct {
	r     bitReader
	n, i  int
	t     int64
	delta int64
	vals  []float64
	err   error
}

// At returns the current sample; see Iterator.
func (c *cursor) At() (int64, []float64) { return c.t, c.vals }

// Err returns the error that stopped iteration; see Iterator.
func (c *cursor) Err() error { return c.err }

// advance decodes the next sample with next, if there is one, and keeps
// the first error.
func (c *cursor) advance(enc Encoding, next func() error) bool {
	if c.err != nil || c.i >= c.n {
		return false
	}
	if err := next(); err != nil {
		c.err = fmt.Errorf("%v chunk sample %d of %d: %w", enc, c.i, c.n, err)
		return false
	}
	c.i++
	return true
}

// readTime reads the current sample's timestamp: a varint for the first,
// a varint delta for the second, then deltas-of-delta unless the chunk
// says its timestamps are regular.
func (c *cursor) readTime(regular bool) error {
	switch {
	case c.i == 0:
		t, err := c.r.readVarint()
		c.t = t
		return err
	case c.i == 1:
		d, err := c.r.readVarint()
		if err != nil {
			return err
		}
		c.delta = d
	case !regular:
		dod, err := readDoD(&c.r)
		if err != nil {
			return err
		}
		c.delta += dod
	}
	next := c.t + c.delta
	if c.delta <= 0 || next <= c.t {
		return fmt.Errorf("timestamp %d does not follow %d", next, c.t)
	}
	c.t = next
	return nil
}

// timeWriter writes timestamps as cursor.readTime reads them.
type timeWriter struct {
	n     int
	t     int64
	delta int64
}

// write appends t, which must follow the previous timestamp.
func (tw *timeWriter) write(w *bitWriter, t int64, regular bool) {
	switch {
	case tw.n == 0:
		w.writeVarint(t)
	case tw.n == 1:
		tw.delta = t - tw.t
		w.writeVarint(tw.delta)
	case !regular:
		writeDoD(w, (t-tw.t)-tw.delta)
		tw.delta = t - tw.t
	}
	tw.n++
	tw.t = t
}

type xorIterator struct {
	cursor
	st []xorState
}

// Next advances to the next sample; see Iterator.
func (it *xorIterator) Next() bool { return it.advance(EncXOR, it.next) }

func (it *xorIterator) next() error {
	if err := it.readTime(false); err != nil {
		return err
	}
	for j := range it.st {
		if it.i == 0 {
			u, err := it.r.readBits(64)
			if err != nil {
				return err
			}
			it.st[j].v = math.Float64frombits(u)
		} else if err := readXOR(&it.r, &it.st[j]); err != nil {
			return err
		}
		it.vals[j] = it.st[j].v
	}
	return nil
}
