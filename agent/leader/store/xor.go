package store

// This file holds every bit-level trick of the chunk codecs. The timestamp and
// float codings follow T. Pelkonen et al., "Gorilla: A Fast, Scalable,
// In-Memory Time Series Database", PVLDB 8(12), 2015, section 4.1, with the
// wider delta-of-delta buckets that Prometheus' tsdb/chunkenc uses for
// millisecond timestamps. Decimal chunks code integer deltas with Golomb-Rice
// codes instead of XOR (see writeRice), and corrections in units in the last
// place with writeFix.

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// errShortChunk reports a chunk whose bit stream ends before its header says.
var errShortChunk = errors.New("chunk data ends early")

// bitWriter appends bits, most significant first, to a byte slice.
type bitWriter struct {
	b    []byte
	free uint8 // unused low bits in the last byte of b
}

// writeBit appends one bit.
func (w *bitWriter) writeBit(bit bool) {
	if w.free == 0 {
		w.b = append(w.b, 0)
		w.free = 8
	}
	w.free--
	if bit {
		w.b[len(w.b)-1] |= 1 << w.free
	}
}

// writeBits appends the low n bits of u, most significant first.
func (w *bitWriter) writeBits(u uint64, n int) {
	for n > 0 {
		if w.free == 0 {
			w.b = append(w.b, 0)
			w.free = 8
		}
		take := min(n, int(w.free))
		chunk := (u >> uint(n-take)) & (1<<uint(take) - 1)
		w.free -= uint8(take)
		w.b[len(w.b)-1] |= byte(chunk << w.free)
		n -= take
	}
}

// writeVarint appends a zig-zag signed integer in 7-bit groups, each led by a
// continuation bit, so small magnitudes cost a byte.
func (w *bitWriter) writeVarint(x int64) {
	u := zigzag(x)
	for u >= 0x80 {
		w.writeBits(0x80|(u&0x7f), 8)
		u >>= 7
	}
	w.writeBits(u, 8)
}

// bitReader reads bits, most significant first, from a byte slice.
type bitReader struct {
	b   []byte
	pos uint64 // next bit to read
}

// readBit returns the next bit.
func (r *bitReader) readBit() (bool, error) {
	if r.pos >= uint64(len(r.b))*8 {
		return false, errShortChunk
	}
	bit := r.b[r.pos/8]&(0x80>>(r.pos%8)) != 0
	r.pos++
	return bit, nil
}

// readBits returns the next n (at most 64) bits as the low bits of a uint64.
func (r *bitReader) readBits(n int) (uint64, error) {
	if r.pos+uint64(n) > uint64(len(r.b))*8 {
		return 0, errShortChunk
	}
	var u uint64
	for n > 0 {
		avail := 8 - int(r.pos%8)
		take := min(n, avail)
		cur := uint64(r.b[r.pos/8]) >> uint(avail-take) & (1<<uint(take) - 1)
		u = u<<uint(take) | cur
		r.pos += uint64(take)
		n -= take
	}
	return u, nil
}

// readVarint reads an integer written by writeVarint.
func (r *bitReader) readVarint() (int64, error) {
	var u uint64
	for shift := 0; shift < 70; shift += 7 {
		g, err := r.readBits(8)
		if err != nil {
			return 0, err
		}
		if shift == 63 && g > 1 {
			return 0, errors.New("varint overflows 64 bits")
		}
		u |= (g & 0x7f) << uint(shift)
		if g < 0x80 {
			return unzigzag(u), nil
		}
	}
	return 0, errors.New("varint overflows 64 bits")
}

func zigzag(x int64) uint64   { return uint64(x<<1) ^ uint64(x>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// Delta-of-delta buckets for timestamps (Gorilla 4.1.1): a control prefix of
// one to four bits, then a signed value of the bucket's width. The widths are
// Prometheus' choice for milliseconds; a regular grid costs one bit a sample.
var dodBuckets = [...]struct {
	prefix, prefixLen uint64
	width             int
}{
	{0b10, 2, 14},
	{0b110, 3, 17},
	{0b1110, 4, 20},
}

// writeDoD appends a timestamp delta-of-delta.
func writeDoD(w *bitWriter, dod int64) {
	if dod == 0 {
		w.writeBit(false)
		return
	}
	for _, b := range dodBuckets {
		lo, hi := -int64(1)<<(b.width-1), int64(1)<<(b.width-1)-1
		if dod >= lo && dod <= hi {
			w.writeBits(b.prefix, int(b.prefixLen))
			w.writeBits(uint64(dod)&(1<<b.width-1), b.width)
			return
		}
	}
	w.writeBits(0b1111, 4)
	w.writeBits(uint64(dod), 64)
}

// readDoD reads a delta-of-delta written by writeDoD.
func readDoD(r *bitReader) (int64, error) {
	n := 0
	for ; n < 4; n++ {
		bit, err := r.readBit()
		if err != nil {
			return 0, err
		}
		if !bit {
			break
		}
	}
	if n == 0 {
		return 0, nil
	}
	if n == 4 {
		u, err := r.readBits(64)
		return int64(u), err
	}
	width := dodBuckets[n-1].width
	u, err := r.readBits(width)
	if err != nil {
		return 0, err
	}
	// Sign-extend the width-bit two's complement value.
	shift := uint(64 - width)
	return int64(u<<shift) >> shift, nil
}

// xorState is the per-column memory of the float coding: the previous value
// and the bit window of the previous non-zero XOR.
type xorState struct {
	v        float64
	leading  uint8
	trailing uint8
	hasWin   bool
}

// writeXOR appends v XORed with the previous value (Gorilla 4.1.2):
// '0' if equal; '10' and the meaningful bits if they fit the previous window;
// otherwise '11', 5 bits of leading zeros, 6 bits of length-1 and the bits.
func writeXOR(w *bitWriter, s *xorState, v float64) {
	x := math.Float64bits(v) ^ math.Float64bits(s.v)
	s.v = v
	if x == 0 {
		w.writeBit(false)
		return
	}
	w.writeBit(true)
	lead := uint8(bits.LeadingZeros64(x))
	trail := uint8(bits.TrailingZeros64(x))
	if lead > 31 {
		lead = 31 // 5 bits hold the count; extra zeros go into the window
	}
	if s.hasWin && lead >= s.leading && trail >= s.trailing {
		w.writeBit(false)
		sig := 64 - int(s.leading) - int(s.trailing)
		w.writeBits(x>>s.trailing, sig)
		return
	}
	s.leading, s.trailing, s.hasWin = lead, trail, true
	sig := 64 - int(lead) - int(trail)
	w.writeBit(true)
	w.writeBits(uint64(lead), 5)
	w.writeBits(uint64(sig-1), 6)
	w.writeBits(x>>trail, sig)
}

// readXOR reads a value written by writeXOR.
func readXOR(r *bitReader, s *xorState) error {
	bit, err := r.readBit()
	if err != nil || !bit {
		return err
	}
	if bit, err = r.readBit(); err != nil {
		return err
	}
	if bit {
		lead, err := r.readBits(5)
		if err != nil {
			return err
		}
		sigm1, err := r.readBits(6)
		if err != nil {
			return err
		}
		sig := sigm1 + 1
		if lead+sig > 64 {
			return fmt.Errorf("xor window of %d leading and %d meaningful bits exceeds 64", lead, sig)
		}
		s.leading, s.trailing, s.hasWin = uint8(lead), uint8(64-lead-sig), true
	} else if !s.hasWin {
		return errors.New("xor window reused before any was set")
	}
	sig := 64 - int(s.leading) - int(s.trailing)
	u, err := r.readBits(sig)
	if err != nil {
		return err
	}
	s.v = math.Float64frombits(math.Float64bits(s.v) ^ u<<s.trailing)
	return nil
}

// Integer deltas of decimal chunks are Golomb-Rice coded (R. F. Rice,
// "Some practical universal noiseless coding techniques", JPL 79-22, 1979):
// a zig-zag delta u is written as u>>k in unary (ones ended by a zero) and
// the low k bits of u as they are. For the roughly Laplacian deltas of a
// noisy gauge this is within a fraction of a bit of the entropy when k is
// near log2 of the mean delta, which is why the encoder picks k per column
// and chunk (riceParam). A quotient of riceEscape or more is written as
// riceEscape ones, 6 bits of the length of u less one, and u itself, so an
// outlier costs at most 86 bits.
const (
	riceEscape  = 16
	maxRiceParm = 58 // riceEscape<<58 still fits in 63 bits
)

// riceCost returns the bits writeRice spends on u with parameter k.
func riceCost(u uint64, k uint) int {
	if q := u >> k; q < riceEscape {
		return int(q) + 1 + int(k)
	}
	return riceEscape + 6 + bits.Len64(u)
}

// riceParam returns the parameter that codes us in the fewest bits.
func riceParam(us []uint64) uint {
	var sum uint64
	for _, u := range us {
		sum += min(u, 1<<40) // keep the sum from overflowing; outliers escape anyway
	}
	// The optimum is near log2 of the mean; try around it.
	guess := uint(0)
	if n := uint64(len(us)); n > 0 && sum/n > 0 {
		guess = uint(bits.Len64(sum/n)) - 1
	}
	best, bestCost := guess, -1
	for k := max(int(guess)-2, 0); k <= min(int(guess)+2, maxRiceParm); k++ {
		cost := 0
		for _, u := range us {
			cost += riceCost(u, uint(k))
		}
		if bestCost < 0 || cost < bestCost {
			best, bestCost = uint(k), cost
		}
	}
	return best
}

// writeRice appends u with parameter k.
func writeRice(w *bitWriter, u uint64, k uint) {
	if q := u >> k; q < riceEscape {
		w.writeBits(1<<q-1, int(q)) // q ones
		w.writeBit(false)
		w.writeBits(u, int(k))
		return
	}
	w.writeBits(1<<riceEscape-1, riceEscape)
	n := bits.Len64(u)
	w.writeBits(uint64(n-1), 6)
	w.writeBits(u, n)
}

// readRice reads a value written by writeRice with parameter k.
func readRice(r *bitReader, k uint) (uint64, error) {
	var q uint64
	for ; q < riceEscape; q++ {
		bit, err := r.readBit()
		if err != nil {
			return 0, err
		}
		if !bit {
			low, err := r.readBits(int(k))
			return q<<k | low, err
		}
	}
	nm1, err := r.readBits(6)
	if err != nil {
		return 0, err
	}
	return r.readBits(int(nm1) + 1)
}

// fixCost returns the bits writeFix spends on a zig-zag correction.
func fixCost(u uint64) int {
	if u == 0 {
		return 1
	}
	return 1 + riceCost(u-1, 0)
}

// writeFix appends a zig-zag correction: '0' for none, else '1' and u-1
// Rice-coded with k=0, so ±1 ulp costs two or three bits.
func writeFix(w *bitWriter, u uint64) {
	if u == 0 {
		w.writeBit(false)
		return
	}
	w.writeBit(true)
	writeRice(w, u-1, 0)
}

// readFix reads a correction written by writeFix.
func readFix(r *bitReader) (uint64, error) {
	bit, err := r.readBit()
	if err != nil || !bit {
		return 0, err
	}
	u, err := readRice(r, 0)
	return u + 1, err
}
