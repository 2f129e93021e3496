package sim

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Trace is a demand series replayed on the virtual clock: its first point
// plays at the cluster's start, and it loops when it runs out.
type Trace struct {
	// Name says where it came from, for logs.
	Name string
	// Offsets from the first point, ascending, and the values at them.
	offsets []time.Duration
	values  []float64
	period  time.Duration
}

// LoadTrace reads a CSV trace with a header. timeColumn and column pick the
// columns by name; empty means the first and the second column. Times may be
// RFC 3339, "YYYY-MM-DD HH:MM:SS" or epoch seconds. Rows with an empty or
// non-numeric value are skipped as gaps; bad times are errors.
func LoadTrace(path, timeColumn, column string) (*Trace, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open trace: %w", err)
	}
	defer f.Close()
	tr, err := ReadTrace(f, timeColumn, column)
	if err != nil {
		return nil, fmt.Errorf("trace %s: %w", path, err)
	}
	tr.Name = path
	return tr, nil
}

// ReadTrace reads a CSV trace from r; see LoadTrace.
func ReadTrace(r io.Reader, timeColumn, column string) (*Trace, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	ti, vi, err := traceColumns(header, timeColumn, column)
	if err != nil {
		return nil, err
	}
	type point struct {
		t time.Time
		v float64
	}
	var pts []point
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if ti >= len(rec) || vi >= len(rec) {
			return nil, fmt.Errorf("line %d: %d fields, want at least %d", line, len(rec), max(ti, vi)+1)
		}
		t, err := ParseTime(rec[ti])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rec[vi]), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		pts = append(pts, point{t, v})
	}
	if len(pts) < 2 {
		return nil, errors.New("needs at least two points with values")
	}
	sort.SliceStable(pts, func(i, j int) bool { return pts[i].t.Before(pts[j].t) })
	tr := &Trace{}
	t0 := pts[0].t
	for _, p := range pts {
		off := p.t.Sub(t0)
		if n := len(tr.offsets); n > 0 && tr.offsets[n-1] == off {
			tr.values[n-1] = p.v // a repeated time keeps the last reading
			continue
		}
		tr.offsets = append(tr.offsets, off)
		tr.values = append(tr.values, p.v)
	}
	if len(tr.offsets) < 2 {
		return nil, errors.New("needs at least two distinct times")
	}
	n := len(tr.offsets)
	// The loop closes one typical step after the last point.
	tr.period = tr.offsets[n-1] + (tr.offsets[n-1]-tr.offsets[0])/time.Duration(n-1)
	return tr, nil
}

func traceColumns(header []string, timeColumn, column string) (int, int, error) {
	find := func(name string, def int) (int, error) {
		if name == "" {
			if def >= len(header) {
				return 0, fmt.Errorf("header has %d columns, want at least %d", len(header), def+1)
			}
			return def, nil
		}
		for i, h := range header {
			if strings.TrimSpace(h) == name {
				return i, nil
			}
		}
		return 0, fmt.Errorf("no column %q in header %q", name, strings.Join(header, ","))
	}
	ti, err := find(timeColumn, 0)
	if err != nil {
		return 0, 0, err
	}
	vi, err := find(column, 1)
	return ti, vi, err
}

// ParseTime reads a trace timestamp: RFC 3339, "YYYY-MM-DD HH:MM:SS" (UTC) or
// epoch seconds.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateTime, s); err == nil {
		return t, nil
	}
	if secs, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(secs) && !math.IsInf(secs, 0) {
		whole, frac := math.Modf(secs)
		return time.Unix(int64(whole), int64(frac*1e9)).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("time %q is not RFC 3339, YYYY-MM-DD HH:MM:SS or epoch seconds", s)
}

// At returns the trace's value at elapsed time since the start of replay,
// interpolated linearly between points and looping at the end.
func (tr *Trace) At(elapsed time.Duration) float64 {
	if elapsed < 0 {
		elapsed = 0
	}
	elapsed %= tr.period
	i := sort.Search(len(tr.offsets), func(i int) bool { return tr.offsets[i] > elapsed })
	if i == 0 {
		return tr.values[0]
	}
	prevT, prevV := tr.offsets[i-1], tr.values[i-1]
	var nextT time.Duration
	var nextV float64
	if i == len(tr.offsets) {
		nextT, nextV = tr.period, tr.values[0]
	} else {
		nextT, nextV = tr.offsets[i], tr.values[i]
	}
	frac := float64(elapsed-prevT) / float64(nextT-prevT)
	return prevV + frac*(nextV-prevV)
}

// Len is the number of points in the trace.
func (tr *Trace) Len() int { return len(tr.values) }

// Period is how long one loop of the trace lasts.
func (tr *Trace) Period() time.Duration { return tr.period }
