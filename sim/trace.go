package sim

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"time"

	"github.com/foresight-nomad/foresight/forecast"
)

// Trace is a demand series replayed on the virtual clock: its first point
// plays at the cluster's start, and it loops when it runs out.
type Trace struct {
	// Name says where it came from, for logs.
	Name string
	// start is the time of the first point in the source.
	start time.Time
	// Offsets from the first point, ascending, and the values at them.
	offsets []time.Duration
	values  []float64
	period  time.Duration
}

// LoadTrace reads a CSV trace with a header, as `foresight forecast` reads
// one: timeColumn and column pick the columns by name (empty: the first and
// the second), times may be RFC 3339, "YYYY-MM-DD HH:MM:SS" or epoch
// seconds, empty values are gaps, and anything else malformed is an error
// naming the line.
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
	obs, err := forecast.ReadCSV(r, forecast.CSVOptions{TimeColumn: timeColumn, ValueColumn: column})
	if err != nil {
		return nil, err
	}
	if len(obs) < 2 {
		return nil, errors.New("needs at least two points with values")
	}
	tr := &Trace{start: obs[0].Time}
	t0 := obs[0].Time
	for _, o := range obs {
		off := o.Time.Sub(t0)
		if n := len(tr.offsets); n > 0 && tr.offsets[n-1] == off {
			tr.values[n-1] = o.Value // a repeated time keeps the last reading
			continue
		}
		tr.offsets = append(tr.offsets, off)
		tr.values = append(tr.values, o.Value)
	}
	if len(tr.offsets) < 2 {
		return nil, errors.New("needs at least two distinct times")
	}
	n := len(tr.offsets)
	// The loop closes one typical step after the last point.
	tr.period = tr.offsets[n-1] + (tr.offsets[n-1]-tr.offsets[0])/time.Duration(n-1)
	return tr, nil
}

// Start is the time of the trace's first point in its source: the moment
// that replay plays at the cluster's start.
func (tr *Trace) Start() time.Time { return tr.start }

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

// Faster returns the trace played n times faster: every offset, and the
// loop's period, divided by n, values unchanged. It is how a cluster file
// compresses a trace's time axis (workload time_scale), e.g. a real daily
// cycle into an hour so that a test sees several cycles in minutes. n must
// be positive; offsets are rounded to the nanosecond.
func (tr *Trace) Faster(n float64) (*Trace, error) {
	if !(n > 0) || math.IsInf(n, 0) {
		return nil, fmt.Errorf("time_scale must be a positive number, not %g", n)
	}
	out := &Trace{Name: tr.Name, start: tr.start, values: append([]float64(nil), tr.values...)}
	out.offsets = make([]time.Duration, len(tr.offsets))
	for i, off := range tr.offsets {
		out.offsets[i] = time.Duration(math.Round(float64(off) / n))
	}
	out.period = time.Duration(math.Round(float64(tr.period) / n))
	for i := 1; i < len(out.offsets); i++ {
		if out.offsets[i] <= out.offsets[i-1] {
			return nil, fmt.Errorf("time_scale %g leaves two points of the trace at the same time", n)
		}
	}
	if out.period <= out.offsets[len(out.offsets)-1] {
		return nil, fmt.Errorf("time_scale %g leaves the trace no time to loop", n)
	}
	return out, nil
}

// Len is the number of points in the trace.
func (tr *Trace) Len() int { return len(tr.values) }

// Period is how long one loop of the trace lasts.
func (tr *Trace) Period() time.Duration { return tr.period }
