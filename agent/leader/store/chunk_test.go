package store

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

type row struct {
	t int64
	v []float64
}

func rows1(ts []int64, vs []float64) []row {
	out := make([]row, len(ts))
	for i := range ts {
		out[i] = row{ts[i], []float64{vs[i]}}
	}
	return out
}

func regular(n int, start, step int64, f func(i int) float64) []row {
	out := make([]row, n)
	for i := range out {
		out[i] = row{start + int64(i)*step, []float64{f(i)}}
	}
	return out
}

func codecCases() map[string][]row {
	rng := rand.New(rand.NewPCG(1, 2))
	return map[string][]row{
		"one sample":      rows1([]int64{1_700_000_000_000}, []float64{42}),
		"two samples":     rows1([]int64{-5, 7}, []float64{1.5, -1.5}),
		"equal values":    regular(120, 0, 10_000, func(int) float64 { return 3.25 }),
		"zeros":           regular(50, 0, 10_000, func(int) float64 { return 0 }),
		"negative zero":   rows1([]int64{0, 1, 2}, []float64{0, math.Copysign(0, -1), 0}),
		"nan and inf":     rows1([]int64{0, 10, 20, 30, 40}, []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1, math.NaN()}),
		"huge and tiny":   rows1([]int64{0, 1, 2, 3, 4}, []float64{math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, -1e-300, 1e300}),
		"negative":        regular(100, 0, 1000, func(i int) float64 { return -float64(i) * 1.5 }),
		"short decimals":  regular(200, 1_600_000_000_000, 60_000, func(i int) float64 { return float64(int(500+300*math.Sin(float64(i)/20))) / 1000 }),
		"float artefacts": regular(200, 0, 300_000, func(i int) float64 { return 13.2 + float64(i%50)*0.1 }),
		"big integers":    regular(200, 0, 10_000, func(i int) float64 { return float64(1<<40 + i*4096) }),
		"random floats":   regular(300, 0, 10_000, func(int) float64 { return rng.NormFloat64() * 1e6 }),
		"random bits":     regular(100, 0, 10_000, func(int) float64 { return math.Float64frombits(rng.Uint64()) }),
		"extreme times":   rows1([]int64{math.MinInt64 / 2, 0, math.MaxInt64 / 2, math.MaxInt64}, []float64{1, 2, 3, 4}),
		"irregular times": func() []row {
			ts := []int64{0, 9_990, 20_010, 30_000, 30_001, 100_000, 100_000 + 1<<20, 100_001 + 1<<20, 1 << 45, 1<<45 + 10_000}
			vs := make([]float64, len(ts))
			for i := range vs {
				vs[i] = float64(i) * 0.1
			}
			return rows1(ts, vs)
		}(),
		"three columns": func() []row {
			out := make([]row, 100)
			for i := range out {
				out[i] = row{int64(i) * 300_000, []float64{float64(i) / 4, 30, float64(i%7) + 0.5}}
			}
			return out
		}(),
		"mixed columns": func() []row {
			out := make([]row, 50)
			for i := range out {
				out[i] = row{int64(i) * 300_000, []float64{rng.Float64(), float64(i), math.NaN()}}
			}
			return out
		}(),
	}
}

func buildXOR(t testing.TB, rs []row) *XORChunk {
	t.Helper()
	c, err := NewXORChunk(len(rs[0].v))
	if err != nil {
		t.Fatal(err)
	}
	app, err := c.Appender()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if err := app.Append(r.t, r.v); err != nil {
			t.Fatalf("append %v: %v", r, err)
		}
	}
	return c
}

func readAll(c Chunk) ([]row, error) {
	var out []row
	it := c.Iterator()
	for it.Next() {
		t, v := it.At()
		out = append(out, row{t, append([]float64(nil), v...)})
	}
	return out, it.Err()
}

func sameRows(t *testing.T, what string, got, want []row) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d samples, want %d", what, len(got), len(want))
	}
	for i := range want {
		if got[i].t != want[i].t {
			t.Fatalf("%s: sample %d at %d, want %d", what, i, got[i].t, want[i].t)
		}
		for j := range want[i].v {
			if math.Float64bits(got[i].v[j]) != math.Float64bits(want[i].v[j]) {
				t.Fatalf("%s: sample %d column %d = %v, want %v (bit for bit)", what, i, j, got[i].v[j], want[i].v[j])
			}
		}
	}
}

func TestChunkRoundTrip(t *testing.T) {
	for name, rs := range codecCases() {
		t.Run(name, func(t *testing.T) {
			c := buildXOR(t, rs)
			if c.NumSamples() != len(rs) || c.NumColumns() != len(rs[0].v) {
				t.Fatalf("chunk says %d samples of %d columns, want %d of %d", c.NumSamples(), c.NumColumns(), len(rs), len(rs[0].v))
			}
			got, err := readAll(c)
			if err != nil {
				t.Fatal(err)
			}
			sameRows(t, "xor", got, rs)

			back, err := FromBytes(append([]byte(nil), c.Bytes()...))
			if err != nil {
				t.Fatal(err)
			}
			got, err = readAll(back)
			if err != nil {
				t.Fatal(err)
			}
			sameRows(t, "from bytes", got, rs)

			compact, err := Compact(c)
			if err != nil {
				t.Fatal(err)
			}
			if len(compact.Bytes()) > len(c.Bytes()) {
				t.Fatalf("compact chunk of %d bytes is larger than the %d-byte xor chunk", len(compact.Bytes()), len(c.Bytes()))
			}
			got, err = readAll(compact)
			if err != nil {
				t.Fatal(err)
			}
			sameRows(t, "compact "+compact.Encoding().String(), got, rs)
		})
	}
}

// An appender resumed on a chunk writes exactly what one uninterrupted
// appender would have written.
func TestXORAppenderResumes(t *testing.T) {
	for name, rs := range codecCases() {
		t.Run(name, func(t *testing.T) {
			whole := buildXOR(t, rs)
			for _, cut := range []int{1, 2, 3, len(rs) / 2, len(rs) - 1} {
				if cut < 1 || cut >= len(rs) {
					continue
				}
				part := buildXOR(t, rs[:cut])
				resumed, err := FromBytes(append([]byte(nil), part.Bytes()...))
				if err != nil {
					t.Fatal(err)
				}
				app, err := resumed.(*XORChunk).Appender()
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range rs[cut:] {
					if err := app.Append(r.t, r.v); err != nil {
						t.Fatal(err)
					}
				}
				if string(resumed.Bytes()) != string(whole.Bytes()) {
					t.Fatalf("resumed after %d samples: bytes differ from an uninterrupted chunk", cut)
				}
			}
		})
	}
}

func TestCompactPicksDecimalForDecimals(t *testing.T) {
	rs := codecCases()["short decimals"]
	x := buildXOR(t, rs)
	c, err := Compact(x)
	if err != nil {
		t.Fatal(err)
	}
	if c.Encoding() != EncDecimal {
		t.Fatalf("compact chose %v for values with three decimals", c.Encoding())
	}
	if 2*len(c.Bytes()) > len(x.Bytes()) {
		t.Errorf("decimal chunk is %d bytes, xor %d: want at least halved", len(c.Bytes()), len(x.Bytes()))
	}
	// Sums of decimals are often a unit in the last place off a short
	// decimal (13.2+0.1 is 13.299999999999999): corrections keep them cheap.
	rs = codecCases()["float artefacts"]
	artefacts := 0
	for _, r := range rs {
		if _, ok := decimalExp(r.v[0]); !ok {
			artefacts++
		}
	}
	if artefacts == 0 {
		t.Fatal("the float artefacts case has none")
	}
	x = buildXOR(t, rs)
	if c, _ = Compact(x); c.Encoding() != EncDecimal || 2*len(c.Bytes()) > len(x.Bytes()) {
		t.Errorf("float artefacts: compact chose %v of %d bytes, xor is %d: want decimal at most half", c.Encoding(), len(c.Bytes()), len(x.Bytes()))
	}
	// Random bits are not decimals: nothing beats XOR there.
	if c, _ = Compact(buildXOR(t, codecCases()["random bits"])); c.Encoding() != EncXOR {
		t.Errorf("random bits: compact chose %v", c.Encoding())
	}
}

func TestAppendRejects(t *testing.T) {
	c, _ := NewXORChunk(2)
	app, _ := c.Appender()
	if err := app.Append(10, []float64{1, 2}); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]row{
		"same time":     {10, []float64{1, 2}},
		"earlier time":  {9, []float64{1, 2}},
		"too few cols":  {20, []float64{1}},
		"too many cols": {20, []float64{1, 2, 3}},
	} {
		if err := app.Append(r.t, r.v); err == nil {
			t.Errorf("%s: append accepted %v", name, r)
		}
	}
	if c.NumSamples() != 1 {
		t.Errorf("rejected appends changed the chunk: %d samples", c.NumSamples())
	}
	wide, _ := NewXORChunk(1)
	app, _ = wide.Appender()
	_ = app.Append(-10, []float64{1})
	if err := app.Append(math.MaxInt64, []float64{1}); err == nil {
		t.Error("append accepted a gap that overflows int64")
	}
	for _, cols := range []int{0, MaxColumns + 1} {
		if _, err := NewXORChunk(cols); err == nil {
			t.Errorf("NewXORChunk(%d) accepted", cols)
		}
	}
}

func TestChunkFull(t *testing.T) {
	c, _ := NewXORChunk(1)
	app, _ := c.Appender()
	for i := range MaxSamples {
		if err := app.Append(int64(i), []float64{1}); err != nil {
			t.Fatalf("sample %d: %v", i, err)
		}
	}
	if err := app.Append(MaxSamples, []float64{1}); err == nil {
		t.Fatal("append to a full chunk accepted")
	}
	if c.NumSamples() != MaxSamples {
		t.Fatalf("%d samples, want %d", c.NumSamples(), MaxSamples)
	}
}

func TestFromBytesRejectsBadHeaders(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":        nil,
		"short":        {1, 1, 0},
		"no columns":   {1, 0, 0, 0},
		"many columns": {1, MaxColumns + 1, 0, 0},
		"encoding 0":   {0, 1, 0, 0},
		"encoding 9":   {9, 1, 0, 0},
	} {
		if _, err := FromBytes(b); err == nil {
			t.Errorf("%s: FromBytes(%v) accepted", name, b)
		}
	}
}

// Every truncation of a valid chunk whose header still claims all samples
// must end iteration with an error, never a panic or a silent short read.
func TestTruncatedChunksFail(t *testing.T) {
	for name, rs := range codecCases() {
		for _, compact := range []bool{false, true} {
			var c Chunk = buildXOR(t, rs)
			if compact {
				c, _ = Compact(c)
			}
			full := c.Bytes()
			for n := headerSize; n < len(full); n++ {
				cut, err := FromBytes(append([]byte(nil), full[:n]...))
				if err != nil {
					t.Fatal(err)
				}
				got, err := readAll(cut)
				if err == nil {
					t.Fatalf("%s (%v) cut to %d of %d bytes: read %d samples without error", name, c.Encoding(), n, len(full), len(got))
				}
				if !errors.Is(err, errShortChunk) {
					t.Fatalf("%s (%v) cut to %d bytes: error %v, want a short-chunk error", name, c.Encoding(), n, err)
				}
			}
		}
	}
}

func TestCorruptWindowsFail(t *testing.T) {
	// A second sample whose value claims '10' (reuse the window) before any
	// window exists.
	w := bitWriter{b: newHeader(EncXOR, 1)}
	w.writeVarint(0)
	w.writeBits(0, 64)
	w.writeVarint(10)
	w.writeBits(0b10, 2)
	w.b[3] = 2
	c, _ := FromBytes(w.b)
	if _, err := readAll(c); err == nil {
		t.Error("reuse of an unset xor window decoded without error")
	}
	// A window of 31 leading and 64 meaningful bits.
	w = bitWriter{b: newHeader(EncXOR, 1)}
	w.writeVarint(0)
	w.writeBits(0, 64)
	w.writeVarint(10)
	w.writeBits(0b11, 2)
	w.writeBits(31, 5)
	w.writeBits(63, 6)
	w.writeBits(0, 64)
	w.b[3] = 2
	c, _ = FromBytes(w.b)
	if _, err := readAll(c); err == nil {
		t.Error("xor window wider than 64 bits decoded without error")
	}
	// Time going backwards.
	w = bitWriter{b: newHeader(EncXOR, 1)}
	w.writeVarint(100)
	w.writeBits(0, 64)
	w.writeVarint(-10)
	w.writeBit(false)
	w.b[3] = 2
	c, _ = FromBytes(w.b)
	if _, err := readAll(c); err == nil {
		t.Error("a negative time delta decoded without error")
	}
	// A decimal integer that overflows float64's exact range.
	w = bitWriter{b: newHeader(EncDecimal, 1)}
	w.writeBit(false)
	w.writeBits(0, 5)
	w.writeBits(18, 5)
	w.writeBits(0, 6)
	w.writeBits(0, 2)
	w.writeVarint(0)
	w.writeVarint(1 << 40)
	w.b[3] = 1
	c, _ = FromBytes(w.b)
	if _, err := readAll(c); err == nil {
		t.Error("decimal integer beyond 2^53 decoded without error")
	}
}

func TestRiceRoundTrip(t *testing.T) {
	values := []uint64{0, 1, 2, 3, 7, 8, 100, 1 << 20, 1<<40 + 3, math.MaxUint64}
	for k := uint(0); k <= maxRiceParm; k++ {
		var w bitWriter
		for _, u := range values {
			writeRice(&w, u, k)
		}
		r := bitReader{b: w.b}
		for _, want := range values {
			got, err := readRice(&r, k)
			if err != nil || got != want {
				t.Fatalf("k=%d: read %d, %v; want %d", k, got, err, want)
			}
		}
		if bitsUsed := r.pos; (bitsUsed+7)/8 != uint64(len(w.b)) {
			t.Fatalf("k=%d: read %d bits of %d bytes", k, bitsUsed, len(w.b))
		}
	}
}

func TestRiceParamMinimisesBits(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, scale := range []float64{0.5, 3, 40, 1e4, 1e9} {
		us := make([]uint64, 500)
		for i := range us {
			us[i] = zigzag(int64(rng.NormFloat64() * scale))
		}
		cost := func(k uint) (c int) {
			for _, u := range us {
				c += riceCost(u, k)
			}
			return c
		}
		k := riceParam(us)
		for other := uint(0); other <= maxRiceParm; other++ {
			if cost(other) < cost(k) {
				t.Errorf("scale %v: riceParam chose k=%d (%d bits) but k=%d costs %d", scale, k, cost(k), other, cost(other))
			}
		}
	}
}

func TestDecimalExp(t *testing.T) {
	tenth := 0.1
	for _, tc := range []struct {
		v    float64
		e    int
		isOK bool
	}{
		{0, 0, true},
		{42, 0, true},
		{-7, 0, true},
		{0.1, 1, true},
		{0.123, 3, true},
		{242.567180, 5, true},
		{1e-20, 20, true},
		{1.5e15, 0, true},
		{tenth + 0.2, 0, false}, // 0.30000000000000004 needs 17 digits
		{math.Pi, 15, true},
		{math.Sqrt2, 0, false},
		{math.NaN(), 0, false},
		{math.Inf(1), 0, false},
		{math.Copysign(0, -1), 0, false},
		{1e300, 0, false},
	} {
		e, ok := decimalExp(tc.v)
		if ok != tc.isOK || (ok && e != tc.e) {
			t.Errorf("decimalExp(%v) = %d, %v; want %d, %v", tc.v, e, ok, tc.e, tc.isOK)
		}
	}
}

// FuzzChunkDecode feeds arbitrary bytes to the decoders: they must return an
// error or samples in strictly increasing time, never panic; and what they
// decode must survive re-encoding bit for bit.
func FuzzChunkDecode(f *testing.F) {
	for _, rs := range codecCases() {
		c := buildXOR(f, rs)
		f.Add(append([]byte(nil), c.Bytes()...))
		d, _ := Compact(c)
		f.Add(append([]byte(nil), d.Bytes()...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := FromBytes(b)
		if err != nil {
			return
		}
		rs, err := readAll(c)
		if err != nil || len(rs) == 0 {
			return
		}
		if len(rs) != c.NumSamples() {
			t.Fatalf("decoded %d samples, header says %d", len(rs), c.NumSamples())
		}
		for i := 1; i < len(rs); i++ {
			if rs[i].t <= rs[i-1].t {
				t.Fatalf("sample %d at %d does not follow %d", i, rs[i].t, rs[i-1].t)
			}
		}
		again, err := readAll(buildXOR(t, rs))
		if err != nil {
			t.Fatal(err)
		}
		sameRows(t, "re-encoded", again, rs)
	})
}

// BenchmarkXORAppend measures appending a realistic series (a slow cycle
// quantised to three significant digits, on a 10 s grid) and reports the
// compressed size before and after Compact.
func BenchmarkXORAppend(b *testing.B) {
	rs := regular(120, 1_700_000_000_000, 10_000, func(i int) float64 {
		return math.Round(800 + 200*math.Sin(float64(i)/30))
	})
	var c *XORChunk
	for b.Loop() {
		c, _ = NewXORChunk(1)
		app, _ := c.Appender()
		for _, r := range rs {
			_ = app.Append(r.t, r.v)
		}
	}
	d, _ := Compact(c)
	b.ReportMetric(float64(len(c.Bytes()))/float64(len(rs)), "xor-bytes/sample")
	b.ReportMetric(float64(len(d.Bytes()))/float64(len(rs)), "compact-bytes/sample")
	b.ReportMetric(float64(b.N*len(rs))/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkChunkIterate measures decoding speed of both encodings.
func BenchmarkChunkIterate(b *testing.B) {
	rs := codecCases()["short decimals"]
	x := buildXOR(b, rs)
	d, _ := Compact(x)
	for _, c := range []Chunk{x, d} {
		b.Run(c.Encoding().String(), func(b *testing.B) {
			for b.Loop() {
				it := c.Iterator()
				for it.Next() {
				}
			}
			b.ReportMetric(float64(b.N*len(rs))/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
