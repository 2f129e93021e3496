package store

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"unsafe"
)

// A tier holds one resolution of a demand series: closed chunks, immutable
// and compacted, then a small XOR head chunk that grows, and for downsampled
// tiers the bucket still being filled. The raw tier has one column, the slot
// demand. A downsampled tier has two or three: the summed demand over the
// bucket's slots that have data, how many slots that is, and unless the tier
// drops it the highest slot demand. Sum over count is the mean that
// forecasts of demand are fitted on; a sum rather than a mean so that a late
// sample is folded into a closed bucket by one addition, without the raw
// data. The count costs nothing while buckets are full (a constant column
// is not written). The max is kept because scaling must cover peaks that a
// 1-minute mean hides; it shares the timestamp stream but is noisier than
// the mean, so it costs about as much again (BenchmarkHeap35Days): the
// default 35-day 5-minute tier drops it to stay in its memory goal, and
// peaks are read from the 1-minute tier's three days.
//
// Closed chunks lie back to back in one byte slice per tier, indexed by
// refs: one allocation instead of one per chunk keeps the heap close to the
// compressed size. The bytes are never changed in place once written, so a
// reader that copied the slice headers under the series lock can decode
// without it; rewrites and trims build new slices.
type tier struct {
	step      int64 // ms
	retention int64 // ms
	cols      int
	digits    int // significant digits kept in downsampled values; 0 keeps all
	perChunk  int // points per closed chunk

	data []byte     // closed chunks back to back, oldest first from offset 0
	refs []chunkRef // one per closed chunk, by time

	head   *XORChunk
	app    Appender
	headLo int64 // time of the head's first point
	headHi int64 // time of the head's last point

	acc bucket // downsampled tiers: the open bucket

	// lost is the end of the time range this tier no longer holds because
	// chunks were evicted or expired; nothing at or before it is kept.
	lost int64

	// filled are the buckets written by a backfill, not by the agents;
	// agent data that reaches one replaces it (see backfill.go).
	filled coverage

	scratch [3]float64
}

// chunkRef locates a closed chunk in a tier's data.
type chunkRef struct {
	lo, hi int64  // times of the first and last points
	off    uint32 // offset in data
	n      uint16 // length in bytes
	points uint16
}

const refSize = int64(unsafe.Sizeof(chunkRef{}))

// maxChunkSamples bounds the points of a closed chunk so that its bytes fit
// chunkRef.n: at worst 3 columns take under 40 bytes a point.
const maxChunkSamples = 1024

// bucket accumulates the slots of one downsampled bucket.
type bucket struct {
	open  bool
	start int64
	sum   float64
	count int
	max   float64 // NaN where the tier keeps no max
}

func newTier(step, retention int64, cols, digits, perChunk int) *tier {
	return &tier{step: step, retention: retention, cols: cols, digits: digits, perChunk: perChunk, lost: math.MinInt64}
}

// point is one point of a tier in query form.
type point struct {
	t     int64
	sum   float64 // the value itself in the raw tier
	count float64
	max   float64
}

func (tr *tier) toPoint(t int64, v []float64) point {
	switch tr.cols {
	case 1:
		return point{t, v[0], 1, v[0]}
	case 2:
		return point{t, v[0], v[1], math.NaN()}
	}
	return point{t, v[0], v[1], v[2]}
}

// fromPoint returns p's columns in the tier's scratch buffer, which the
// next call reuses.
func (tr *tier) fromPoint(p point) []float64 {
	if tr.cols == 1 {
		tr.scratch[0] = p.sum
		return tr.scratch[:1]
	}
	tr.scratch = [3]float64{roundSig(p.sum, tr.digits), p.count, roundSig(p.max, tr.digits)}
	return tr.scratch[:tr.cols]
}

// roundSig rounds v to digits significant decimal digits (0 keeps v). It
// makes downsampled values short decimals, which decimal chunks store in a
// few bits, at a relative error below 5·10^-digits.
func roundSig(v float64, digits int) float64 {
	if digits <= 0 || v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	// e is the power of ten that brings the last kept digit to the units.
	e := digits - 1 - decimalMagnitude(math.Abs(v))
	switch {
	case e >= 0 && e <= maxDecimalExp:
		return math.Round(v*pow10f[e]) / pow10f[e]
	case e < 0 && -e <= maxDecimalExp:
		return math.Round(v/pow10f[-e]) * pow10f[-e]
	}
	return v
}

// decimalMagnitude returns floor(log10(a)) for a > 0, by table where it can.
func decimalMagnitude(a float64) int {
	if a >= 1 && a < pow10f[maxDecimalExp] {
		return sort.Search(maxDecimalExp, func(i int) bool { return pow10f[i+1] > a })
	}
	return int(math.Floor(math.Log10(a)))
}

// size is what the tier holds on the heap, as counted against the budget.
func (tr *tier) size() int64 {
	n := int64(cap(tr.data)) + int64(cap(tr.refs))*refSize
	if tr.head != nil {
		n += int64(cap(tr.head.w.b))
	}
	return n
}

// chunk returns closed chunk i; it shares the tier's bytes.
func (tr *tier) chunk(i int) Chunk {
	r := tr.refs[i]
	end := r.off + uint32(r.n)
	b := tr.data[r.off:end:end]
	if Encoding(b[0]) == EncDecimal {
		return &DecimalChunk{b: b}
	}
	return &XORChunk{w: bitWriter{b: b}}
}

// appendPoint adds a point after every point the tier holds.
func (tr *tier) appendPoint(p point) error {
	if tr.head == nil {
		tr.head, _ = NewXORChunk(tr.cols)
		tr.app, _ = tr.head.Appender()
		tr.headLo = p.t
	}
	if err := tr.app.Append(p.t, tr.fromPoint(p)); err != nil {
		return err
	}
	tr.headHi = p.t
	if tr.head.NumSamples() < tr.perChunk {
		return nil
	}
	return tr.closeHead()
}

// closeHead compacts the head into a closed chunk.
func (tr *tier) closeHead() error {
	if tr.head == nil {
		return nil
	}
	c, err := Compact(tr.head)
	if err != nil {
		return err
	}
	tr.pushChunk(c.Bytes(), chunkRef{lo: tr.headLo, hi: tr.headHi, points: uint16(c.NumSamples())})
	tr.head, tr.app = nil, nil
	return nil
}

// pushChunk appends a closed chunk after the others. When data must grow,
// it grows by an eighth: close to the compressed size, at the cost of
// copying a tier every eighth of its size.
func (tr *tier) pushChunk(b []byte, r chunkRef) {
	if len(tr.data)+len(b) > cap(tr.data) {
		grown := make([]byte, len(tr.data), len(tr.data)+len(b)+len(tr.data)/8+64)
		copy(grown, tr.data)
		tr.data = grown
	}
	r.off, r.n = uint32(len(tr.data)), uint16(len(b))
	tr.data = append(tr.data, b...)
	if len(tr.refs) == cap(tr.refs) {
		tr.refs = slices.Grow(tr.refs, len(tr.refs)/8+1)
	}
	tr.refs = append(tr.refs, r)
}

// last returns the time of the tier's last point, or false if it has none.
func (tr *tier) last() (int64, bool) {
	switch {
	case tr.head != nil:
		return tr.headHi, true
	case len(tr.refs) > 0:
		return tr.refs[len(tr.refs)-1].hi, true
	}
	return 0, false
}

// snapshot copies what a reader needs of a tier so it can decode without
// the series lock: closed bytes are never changed in place, the head is
// copied.
func (tr *tier) snapshot() *tier {
	cp := &tier{step: tr.step, cols: tr.cols, data: tr.data, refs: slices.Clone(tr.refs), acc: tr.acc, headLo: tr.headLo, headHi: tr.headHi}
	if tr.head != nil {
		cp.head = &XORChunk{w: bitWriter{b: slices.Clone(tr.head.w.b)}}
	}
	return cp
}

// points returns the tier's points in [from, to), the open bucket included.
func (tr *tier) points(from, to int64) ([]point, error) {
	var out []point
	read := func(c Chunk) error {
		it := c.Iterator()
		for it.Next() {
			t, v := it.At()
			if t >= from && t < to {
				out = append(out, tr.toPoint(t, v))
			}
		}
		return it.Err()
	}
	i := sort.Search(len(tr.refs), func(i int) bool { return tr.refs[i].hi >= from })
	for ; i < len(tr.refs) && tr.refs[i].lo < to; i++ {
		if err := read(tr.chunk(i)); err != nil {
			return nil, err
		}
	}
	if tr.head != nil && tr.headHi >= from && tr.headLo < to {
		if err := read(tr.head); err != nil {
			return nil, err
		}
	}
	if tr.acc.open && tr.acc.start >= from && tr.acc.start < to {
		p := point{tr.acc.start, tr.acc.sum, float64(tr.acc.count), tr.acc.max}
		if tr.cols == 2 {
			p.max = math.NaN()
		}
		out = append(out, p)
	}
	return out, nil
}

// addSlot folds a newly sealed slot, later than all before it, into a
// downsampled tier, closing the previous bucket when the slot starts a new one.
func (tr *tier) addSlot(t int64, v float64) error {
	start := floorTo(t, tr.step)
	if tr.acc.open && start != tr.acc.start {
		if err := tr.flushBucket(); err != nil {
			return err
		}
	}
	if !tr.acc.open {
		tr.acc = bucket{open: true, start: start, max: v}
	}
	tr.acc.sum += v
	tr.acc.count++
	tr.acc.max = max(tr.acc.max, v)
	return nil
}

// flushBucket appends the open bucket as a point.
func (tr *tier) flushBucket() error {
	a := tr.acc
	tr.acc = bucket{}
	if !a.open {
		return nil
	}
	return tr.appendPoint(point{a.start, a.sum, float64(a.count), a.max})
}

// update changes or inserts the points at times ts (sorted, distinct, all
// before the open bucket) through f, which gets the old point (ok false if
// there is none) and returns the new one. Each closed chunk touched is
// rewritten once, whole, into new bytes; so is the head.
func (tr *tier) update(ts []int64, f func(t int64, old point, ok bool) point) error {
	if len(ts) == 0 {
		return nil
	}
	if tr.acc.open && floorTo(ts[len(ts)-1], tr.step) >= tr.acc.start {
		return fmt.Errorf("update at %d: the open bucket is the caller's", ts[len(ts)-1])
	}
	last, ok := tr.last()
	appends := 0 // ts[appends:] come after every point: plain appends
	if ok {
		appends = sort.Search(len(ts), func(i int) bool { return ts[i] > last })
	}
	inHead := appends // ts[inHead:appends] fall in the head
	if tr.head != nil {
		if len(tr.refs) == 0 {
			inHead = 0
		} else {
			inHead = sort.Search(appends, func(i int) bool { return ts[i] >= tr.headLo })
		}
	}
	// Closed chunks, last first so that earlier indices stay valid. A time
	// goes to the chunk that holds it, or the one before its gap, or the
	// first if it is before them all.
	for hi := inHead; hi > 0; {
		t := ts[hi-1]
		i := sort.Search(len(tr.refs), func(i int) bool { return tr.refs[i].hi >= t })
		if i == len(tr.refs) || (i > 0 && t < tr.refs[i].lo) {
			i--
		}
		lo := 0 // the first chunk also takes every time before it
		if i > 0 {
			bound := tr.refs[i].lo // chunk i takes [its first point, the next chunk's)
			lo = sort.Search(hi, func(j int) bool { return ts[j] >= bound })
		}
		if err := tr.rewriteChunk(i, ts[lo:hi], f); err != nil {
			return err
		}
		hi = lo
	}
	if inHead < appends {
		rows, err := rewriteRows(tr.head, ts[inHead:appends], tr, f)
		if err != nil {
			return err
		}
		tr.head, tr.app = nil, nil
		for _, r := range rows {
			if err := tr.appendPoint(r); err != nil {
				return err
			}
		}
	}
	for _, t := range ts[appends:] {
		p := f(t, point{}, false)
		p.t = t
		if err := tr.appendPoint(p); err != nil {
			return err
		}
	}
	return nil
}

// rewriteChunk rewrites closed chunk i with the points at ts changed or
// inserted, splitting it if it grows past perChunk.
func (tr *tier) rewriteChunk(i int, ts []int64, f func(int64, point, bool) point) error {
	rows, err := rewriteRows(tr.chunk(i), ts, tr, f)
	if err != nil {
		return err
	}
	old := tr.refs[i]
	var repl []byte
	var replRefs []chunkRef
	for lo := 0; lo < len(rows); lo += tr.perChunk {
		part := rows[lo:min(lo+tr.perChunk, len(rows))]
		x, _ := NewXORChunk(tr.cols)
		app, _ := x.Appender()
		for _, r := range part {
			if err := app.Append(r.t, tr.fromPoint(r)); err != nil {
				return err
			}
		}
		c, err := Compact(x)
		if err != nil {
			return err
		}
		replRefs = append(replRefs, chunkRef{lo: part[0].t, hi: part[len(part)-1].t, off: old.off + uint32(len(repl)), n: uint16(len(c.Bytes())), points: uint16(len(part))})
		repl = append(repl, c.Bytes()...)
	}
	// New slices, so that readers holding the old ones see the old chunks.
	data := slices.Concat(tr.data[:old.off], repl, tr.data[old.off+uint32(old.n):])
	refs := slices.Concat(tr.refs[:i], replRefs, tr.refs[i+1:])
	shift := int64(len(repl)) - int64(old.n)
	for j := i + len(replRefs); j < len(refs); j++ {
		refs[j].off = uint32(int64(refs[j].off) + shift)
	}
	tr.data, tr.refs = data, refs
	return nil
}

// rewriteRows decodes c and changes or inserts the points at ts (sorted)
// through f.
func rewriteRows(c Chunk, ts []int64, tr *tier, f func(int64, point, bool) point) ([]point, error) {
	rows := make([]point, 0, c.NumSamples()+len(ts))
	insert := func(t int64, old point, ok bool) {
		p := f(t, old, ok)
		p.t = t
		rows = append(rows, p)
	}
	it := c.Iterator()
	for it.Next() {
		ti, v := it.At()
		for len(ts) > 0 && ts[0] < ti {
			insert(ts[0], point{}, false)
			ts = ts[1:]
		}
		if len(ts) > 0 && ts[0] == ti {
			insert(ti, tr.toPoint(ti, v), true)
			ts = ts[1:]
			continue
		}
		rows = append(rows, tr.toPoint(ti, v))
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("rewrite chunk: %w", err)
	}
	for _, t := range ts {
		insert(t, point{}, false)
	}
	return rows, nil
}

// dropBefore removes closed chunks whose last point is before cutoff and
// returns how many. The remaining chunks are copied to a new slice at once,
// so that the budget sees the bytes go.
func (tr *tier) dropBefore(cutoff int64) int {
	n := 0
	for n < len(tr.refs) && tr.refs[n].hi < cutoff {
		tr.lost = max(tr.lost, tr.refs[n].hi)
		n++
	}
	if n > 0 {
		tr.filled.dropBefore(tr.lost + 1)
	}
	switch {
	case n == len(tr.refs):
		tr.data, tr.refs = nil, nil
	case n > 0:
		start := tr.refs[n].off
		data := make([]byte, len(tr.data)-int(start), len(tr.data)-int(start)+(len(tr.data)-int(start))/8)
		copy(data, tr.data[start:])
		refs := slices.Clone(tr.refs[n:])
		for i := range refs {
			refs[i].off -= start
		}
		tr.data, tr.refs = data, refs
	}
	return n
}

// oldest returns the last time of the oldest closed chunk.
func (tr *tier) oldest() (int64, bool) {
	if len(tr.refs) == 0 {
		return 0, false
	}
	return tr.refs[0].hi, true
}

// holds reports whether the tier keeps data at t: within retention and
// after anything evicted.
func (tr *tier) holds(t, now int64) bool {
	return t >= now-tr.retention && t > tr.lost
}

func floorTo(t, step int64) int64 {
	r := t % step
	if r < 0 {
		r += step
	}
	return t - r
}
