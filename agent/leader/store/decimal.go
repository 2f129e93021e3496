package store

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Decimal chunks exist because Gorilla's XOR coding is poor at values that
// are short decimals: 0.123 and 0.124 share few mantissa bits, so their XOR
// costs ~50 bits, while as integers in thousandths they differ by one. The
// idea is that of ALP (Afroozeh, Kuffo and Boncz, "ALP: Adaptive Lossless
// floating-point Compression", SIGMOD 2023): find, per column, the smallest
// decimal exponent e that makes every value v an integer m = v·10^e that
// decodes back bit for bit as float64(m)/10^e, factor out trailing decimal
// zeros common to all m (10^f), and code the integers with delta coding.
// A chunk is coded this way only when every value of every column qualifies
// and the result is smaller than the XOR form; NaN, ±Inf, -0 and values
// needing more than 53 bits of integer stay in XOR chunks.
//
// Layout after the header: a bit set if the timestamps are regular; per
// column 5 bits of e, 5 bits of f, 6 bits of the Rice parameter k, a bit
// set if the column is constant and a bit set if values carry corrections.
// Then the first sample as a varint timestamp and per column a varint
// integer; the second as a varint time delta; later ones as a
// delta-of-delta unless regular; from the second on, per column a
// Rice-coded zig-zag integer delta unless constant; after each value its
// correction if the column has them.

const (
	maxDecimalExp    = 22      // 10^22 is the largest power of ten exact in float64
	maxDecimalFactor = 18      // 10^18 fits in int64
	maxExactInt      = 1 << 53 // integers beyond this are not all exact in float64
)

var pow10f = func() (p [maxDecimalExp + 1]float64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

var pow10i = func() (p [maxDecimalFactor + 1]int64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// DecimalChunk is an immutable chunk of short decimal values.
type DecimalChunk struct {
	b []byte
}

var _ Chunk = (*DecimalChunk)(nil)

// Encoding returns EncDecimal.
func (c *DecimalChunk) Encoding() Encoding { return EncDecimal }

// Bytes returns the encoded chunk.
func (c *DecimalChunk) Bytes() []byte { return c.b }

// NumSamples returns the number of samples.
func (c *DecimalChunk) NumSamples() int { return sampleCount(c.b) }

// NumColumns returns the number of values in each sample.
func (c *DecimalChunk) NumColumns() int { return int(c.b[1]) }

// Iterator returns an iterator over the samples.
func (c *DecimalChunk) Iterator() Iterator {
	cols := c.NumColumns()
	return &decimalIterator{
		cursor: cursor{r: bitReader{b: c.b[headerSize:]}, n: c.NumSamples(), vals: make([]float64, cols)},
		exp:    make([]uint8, cols),
		fac:    make([]uint8, cols),
		rice:   make([]uint, cols),
		flat:   make([]bool, cols),
		corr:   make([]bool, cols),
		m:      make([]int64, cols),
	}
}

// decimalExp returns the smallest e with v == float64(round(v·10^e))/10^e.
func decimalExp(v float64) (int, bool) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	for e := 0; e <= maxDecimalExp; e++ {
		if _, ok := scaleExact(v, e); ok {
			return e, true
		}
	}
	return 0, false
}

// scaleExact returns v·10^e as an integer if it decodes back to v exactly.
func scaleExact(v float64, e int) (int64, bool) {
	s := math.Round(v * pow10f[e])
	if !(math.Abs(s) < maxExactInt) {
		return 0, false
	}
	m := int64(s)
	return m, math.Float64bits(float64(m)/pow10f[e]) == math.Float64bits(v)
}

// decimalColumn is how one column of a chunk is coded as decimals.
type decimalColumn struct {
	exp, fac int
	rice     uint     // Rice parameter of the integer deltas
	flat     bool     // whether every delta is zero, so none is written
	corr     bool     // whether values carry ulp corrections
	ms       []int64  // the integers, 10^fac factored out
	deltas   []uint64 // zig-zag deltas of ms; deltas[0] is unused
	fixes    []uint64 // zig-zag ulp corrections
	cost     int      // bits of the column's body
}

// planColumn picks the exponent that codes vs in the fewest bits. The
// candidates are the exponents at which some value is exact: a value that
// is not exact at the chosen exponent (too many digits, a float artefact
// such as 13.334000000000001, NaN) is coded as the nearest decimal plus a
// correction in units in the last place, which is small for artefacts.
func planColumn(vs []float64) decimalColumn {
	seen := map[int]bool{0: true}
	cands := []int{0}
	for _, v := range vs {
		if e, ok := decimalExp(v); ok && !seen[e] {
			seen[e] = true
			cands = append(cands, e)
		}
	}
	var best decimalColumn
	for i, e := range cands {
		if c := codeColumn(vs, e); i == 0 || c.cost < best.cost {
			best = c
		}
	}
	return best
}

// codeColumn codes vs at exponent e.
func codeColumn(vs []float64, e int) decimalColumn {
	c := decimalColumn{exp: e, ms: make([]int64, len(vs)), deltas: make([]uint64, len(vs)), fixes: make([]uint64, len(vs))}
	var prev int64
	for i, v := range vs {
		m := prev // NaN, ±Inf and huge values ride on the previous integer
		if s := math.Round(v * pow10f[e]); math.Abs(s) < maxExactInt {
			m = int64(s)
		}
		c.ms[i], prev = m, m
		fix := int64(math.Float64bits(v) - math.Float64bits(float64(m)/pow10f[e]))
		c.fixes[i] = zigzag(fix)
		c.corr = c.corr || fix != 0
	}
	c.fac = commonFactor(c.ms)
	for i := range c.ms {
		c.ms[i] /= pow10i[c.fac]
		if i > 0 {
			c.deltas[i] = zigzag(c.ms[i] - c.ms[i-1])
		}
	}
	c.flat = true
	for _, u := range c.deltas[1:] {
		c.flat = c.flat && u == 0
	}
	if !c.flat {
		c.rice = riceParam(c.deltas[1:])
		for _, u := range c.deltas[1:] {
			c.cost += riceCost(u, c.rice)
		}
	}
	if c.corr {
		for _, u := range c.fixes {
			c.cost += fixCost(u)
		}
	}
	return c
}

// encodeDecimal codes c as a decimal chunk.
func encodeDecimal(c Chunk) (*DecimalChunk, error) {
	n, ncols := c.NumSamples(), c.NumColumns()
	ts := make([]int64, 0, n)
	vs := make([][]float64, ncols)
	it := c.Iterator()
	for it.Next() {
		t, v := it.At()
		ts = append(ts, t)
		for j, x := range v {
			vs[j] = append(vs[j], x)
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("decimal encode: %w", err)
	}
	cols := make([]decimalColumn, ncols)
	for j := range cols {
		cols[j] = planColumn(vs[j])
	}
	regular := true // every delta-of-delta is zero, so none is written
	for i := 2; i < len(ts); i++ {
		regular = regular && ts[i]-ts[i-1] == ts[1]-ts[0]
	}
	w := bitWriter{b: newHeader(EncDecimal, ncols)}
	w.writeBit(regular)
	for _, col := range cols {
		w.writeBits(uint64(col.exp), 5)
		w.writeBits(uint64(col.fac), 5)
		w.writeBits(uint64(col.rice), 6)
		w.writeBit(col.flat)
		w.writeBit(col.corr)
	}
	var tw timeWriter
	for i, t := range ts {
		tw.write(&w, t, regular)
		for _, col := range cols {
			if i == 0 {
				w.writeVarint(col.ms[0])
			} else if !col.flat {
				writeRice(&w, col.deltas[i], col.rice)
			}
			if col.corr {
				writeFix(&w, col.fixes[i])
			}
		}
	}
	binary.BigEndian.PutUint16(w.b[2:4], uint16(n))
	return &DecimalChunk{b: w.b}, nil
}

// commonFactor returns the largest f such that 10^f divides every m (0 if
// they are all zero).
func commonFactor(ms []int64) int {
	f := maxDecimalFactor
	nonzero := false
	for _, m := range ms {
		if m == 0 {
			continue
		}
		nonzero = true
		for f > 0 && m%pow10i[f] != 0 {
			f--
		}
		if f == 0 {
			break
		}
	}
	if !nonzero {
		return 0
	}
	return f
}

type decimalIterator struct {
	cursor
	reg  bool // timestamps are regular: no delta-of-delta is written
	exp  []uint8
	fac  []uint8
	rice []uint
	flat []bool
	corr []bool
	m    []int64 // current integer per column
}

// Next advances to the next sample; see Iterator.
func (it *decimalIterator) Next() bool { return it.advance(EncDecimal, it.next) }

func (it *decimalIterator) next() error {
	if it.i == 0 {
		if err := it.readHeader(); err != nil {
			return err
		}
	}
	if err := it.readTime(it.reg); err != nil {
		return err
	}
	for j := range it.m {
		switch {
		case it.i == 0:
			m, err := it.r.readVarint()
			if err != nil {
				return err
			}
			it.m[j] = m
		case !it.flat[j]:
			u, err := readRice(&it.r, it.rice[j])
			if err != nil {
				return err
			}
			it.m[j] += unzigzag(u)
		}
		if err := it.value(j); err != nil {
			return err
		}
	}
	return nil
}

// readHeader reads the regular-time flag and the column headers.
func (it *decimalIterator) readHeader() error {
	reg, err := it.r.readBit()
	if err != nil {
		return err
	}
	it.reg = reg
	for j := range it.exp {
		var fields [5]uint64
		for k, width := range []int{5, 5, 6, 1, 1} {
			if fields[k], err = it.r.readBits(width); err != nil {
				return err
			}
		}
		e, f, k := fields[0], fields[1], fields[2]
		if e > maxDecimalExp || f > maxDecimalFactor || k > maxRiceParm {
			return fmt.Errorf("column %d has exponent %d, factor %d and Rice parameter %d, limits %d, %d and %d", j, e, f, k, maxDecimalExp, maxDecimalFactor, maxRiceParm)
		}
		it.exp[j], it.fac[j], it.rice[j] = uint8(e), uint8(f), uint(k)
		it.flat[j], it.corr[j] = fields[3] == 1, fields[4] == 1
	}
	return nil
}

// value turns column j's current integer back into its float and applies
// the value's correction, which it reads.
func (it *decimalIterator) value(j int) error {
	m, f := it.m[j], pow10i[it.fac[j]]
	if lim := (maxExactInt - 1) / f; m > lim || m < -lim {
		return fmt.Errorf("column %d integer %d·10^%d is out of range", j, m, it.fac[j])
	}
	v := float64(m*f) / pow10f[it.exp[j]]
	if it.corr[j] {
		u, err := readFix(&it.r)
		if err != nil {
			return err
		}
		v = math.Float64frombits(math.Float64bits(v) + uint64(unzigzag(u)))
	}
	it.vals[j] = v
	return nil
}
