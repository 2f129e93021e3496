package forecast

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Observation is one raw reading: a time and a value.
type Observation struct {
	Time  time.Time
	Value float64
}

// CSVOptions says which columns of a CSV file hold the time and the value.
// Empty names mean the first column (time) and the second column (value).
type CSVOptions struct {
	TimeColumn  string
	ValueColumn string
}

// maxCSVLine bounds one CSV line, so that a malformed file without newlines
// cannot make the reader buffer it all.
const maxCSVLine = 1 << 20

// ReadCSV reads observations from a CSV file with a header line. Times may be
// RFC 3339, "YYYY-MM-DD HH:MM:SS" (UTC), or epoch seconds (values above 1e11
// are taken as epoch milliseconds). Empty, "NaN" and "null" values are
// missing readings and skipped; any other unparsable cell is an error naming
// the line. The result is sorted by time.
func ReadCSV(r io.Reader, opt CSVOptions) ([]Observation, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, errors.New("csv: empty input, want a header line")
	}
	if err != nil {
		return nil, fmt.Errorf("csv: header: %w", err)
	}
	names := make([]string, len(header))
	for i, h := range header {
		names[i] = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
	}
	ti, err := columnIndex(names, opt.TimeColumn, 0, "time")
	if err != nil {
		return nil, err
	}
	vi, err := columnIndex(names, opt.ValueColumn, 1, "value")
	if err != nil {
		return nil, err
	}
	if ti == vi {
		return nil, fmt.Errorf("csv: time and value are the same column %q", names[ti])
	}
	var obs []Observation
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("csv: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec[0]) > maxCSVLine {
			return nil, fmt.Errorf("csv: line %d: longer than %d bytes", line, maxCSVLine)
		}
		if ti >= len(rec) || vi >= len(rec) {
			return nil, fmt.Errorf("csv: line %d: %d fields, want at least %d", line, len(rec), max(ti, vi)+1)
		}
		ts, err := ParseTime(rec[ti])
		if err != nil {
			return nil, fmt.Errorf("csv: line %d: column %q: %w", line, names[ti], err)
		}
		v, ok, err := parseValue(rec[vi])
		if err != nil {
			return nil, fmt.Errorf("csv: line %d: column %q: %w", line, names[vi], err)
		}
		if !ok {
			continue
		}
		obs = append(obs, Observation{Time: ts, Value: v})
	}
	if len(obs) == 0 {
		return nil, errors.New("csv: no readings after the header")
	}
	sort.SliceStable(obs, func(i, j int) bool { return obs[i].Time.Before(obs[j].Time) })
	return obs, nil
}

func columnIndex(names []string, want string, def int, role string) (int, error) {
	if want == "" {
		if def >= len(names) {
			return 0, fmt.Errorf("csv: header has %d column(s), want a %s column at position %d", len(names), role, def+1)
		}
		return def, nil
	}
	for i, n := range names {
		if n == want {
			return i, nil
		}
	}
	return 0, fmt.Errorf("csv: no %s column %q in header %q", role, want, strings.Join(names, ","))
}

func parseValue(s string) (float64, bool, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "", "nan", "null", "na":
		return 0, false, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false, fmt.Errorf("bad value %q", s)
	}
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, false, fmt.Errorf("value %q is not finite", s)
	}
	return v, true, nil
}

// ParseTime parses a timestamp as RFC 3339, "YYYY-MM-DD HH:MM:SS" (UTC),
// "YYYY-MM-DD" or epoch seconds (epoch milliseconds above 1e11).
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, errors.New("empty time")
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e15 {
			return time.Time{}, fmt.Errorf("bad epoch time %q", s)
		}
		if math.Abs(f) > 1e11 {
			f /= 1000
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("bad time %q: want RFC 3339, YYYY-MM-DD HH:MM:SS or epoch seconds", s)
}

// Grid is a series on a regular time grid: Values[i] is the mean of the raw
// readings in [Start+i·Step, Start+(i+1)·Step). Missing cells are NaN until
// filled.
type Grid struct {
	Start  time.Time
	Step   time.Duration
	Values []float64
}

// Time returns the start of cell i.
func (g Grid) Time(i int) time.Time { return g.Start.Add(time.Duration(i) * g.Step) }

// End returns the start of the first cell after the grid.
func (g Grid) End() time.Time { return g.Time(len(g.Values)) }

// Resample averages observations onto a grid of the given step, aligned to
// multiples of step since the Unix epoch (as pandas' resample does). Cells
// with no reading are NaN. Observations must be sorted by time.
func Resample(obs []Observation, step time.Duration) (Grid, error) {
	if step <= 0 {
		return Grid{}, fmt.Errorf("resample: step %v must be positive", step)
	}
	if len(obs) == 0 {
		return Grid{}, errors.New("resample: no observations")
	}
	cell := func(t time.Time) int64 {
		ns := t.UnixNano()
		c := ns / int64(step)
		if ns%int64(step) < 0 {
			c--
		}
		return c
	}
	first, last := cell(obs[0].Time), cell(obs[len(obs)-1].Time)
	n := last - first + 1
	const maxCells = 50_000_000
	if n > maxCells {
		return Grid{}, fmt.Errorf("resample: %d cells of %v between %v and %v is too many", n, step, obs[0].Time, obs[len(obs)-1].Time)
	}
	sum := make([]float64, n)
	cnt := make([]int, n)
	for _, o := range obs {
		i := cell(o.Time) - first
		sum[i] += o.Value
		cnt[i]++
	}
	for i := range sum {
		if cnt[i] == 0 {
			sum[i] = math.NaN()
		} else {
			sum[i] /= float64(cnt[i])
		}
	}
	return Grid{Start: time.Unix(0, first*int64(step)).UTC(), Step: step, Values: sum}, nil
}

// FillGaps fills missing (NaN) cells by linear interpolation between the
// nearest readings on either side. A cell is filled only if it lies within
// limit cells of a reading on its left or on its right (pandas'
// interpolate(limit=limit, limit_direction="both")); limit < 0 fills every
// gap. Leading and trailing gaps take the nearest reading. It returns the
// number of cells left missing.
func FillGaps(y []float64, limit int) int {
	n := len(y)
	left := -1
	missing := 0
	for i := 0; i <= n; i++ {
		if i < n && math.IsNaN(y[i]) {
			continue
		}
		// y[left] and y[i] are readings (or the ends); fill the run between.
		for j := left + 1; j < i; j++ {
			dl, dr := j-left, i-j
			if limit >= 0 && (left < 0 || dl > limit) && (i >= n || dr > limit) {
				missing++
				continue
			}
			switch {
			case left < 0:
				y[j] = y[i]
			case i >= n:
				y[j] = y[left]
			default:
				w := float64(dl) / float64(i-left)
				y[j] = y[left]*(1-w) + y[i]*w
			}
		}
		left = i
	}
	return missing
}

// DropMissing returns y without its NaN cells, as pandas' dropna does.
func DropMissing(y []float64) []float64 {
	out := y[:0:0]
	for _, v := range y {
		if !math.IsNaN(v) {
			out = append(out, v)
		}
	}
	return out
}

// ParseSpan parses a length of time as a Go duration ("90m", "6h") or with
// day and week units, which Go durations lack ("14d", "2w", "1d12h").
func ParseSpan(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty duration")
	}
	var total time.Duration
	rest := s
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"w", 7 * 24 * time.Hour}, {"d", 24 * time.Hour}} {
		i := strings.Index(rest, u.suffix)
		if i < 0 {
			continue
		}
		f, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil || f < 0 || math.IsInf(f, 0) || f > 1e5 {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		total += time.Duration(f * float64(u.unit))
		rest = rest[i+1:]
	}
	if rest != "" {
		d, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("bad duration %q: want e.g. 15m, 6h or 14d", s)
		}
		total += d
	}
	return total, nil
}
