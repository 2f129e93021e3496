package forecast

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// EvalOptions configure Evaluate, the rolling-origin protocol of
// shared/data/BASELINES.md.
type EvalOptions struct {
	// Step is the grid step (default 15m).
	Step time.Duration
	// Horizons are the forecast windows scored (default 1h and 6h).
	Horizons []time.Duration
	// Origins is the number of forecast origins per series (default 8).
	Origins int
	// TestFrac is the share of each series the origins are spread over
	// (default 0.3).
	TestFrac float64
	// History is the longest training window (default 14 days).
	History time.Duration
	// Methods are the forecasters compared: "auto" or a model family for
	// Foresight's engine, "ref-naive" and "ref-snaive" for the protocol's
	// reference rules (the baselines' naive and 1-day seasonal naive with
	// empirical p95). Default: auto, ref-naive, ref-snaive.
	Methods []string
	// Tuning is passed to Fit for the engine's methods (nil: DefaultTuning).
	Tuning *Tuning
	// Clock reads a monotonic clock used only to time each fit+forecast
	// (for example the thread's CPU time); nil means the wall clock. The
	// forecasts themselves never read a clock.
	Clock func() time.Duration
}

// SeriesResult is the score of one method on one series at one horizon.
type SeriesResult struct {
	Series, Method string
	Horizon        time.Duration
	Origins        int
	// MASE is the mean over origins of the window's mean absolute error
	// divided by the in-sample MAE of the 1-day seasonal naive forecast.
	MASE float64
	// Cov95 is the share of actual values at or below the p95 forecast.
	Cov95 float64
	// Over is the total slack Σmax(p95−y, 0) as % of the total Σ|y|.
	Over float64
	// Millis are the fit+forecast times of the origins, in milliseconds.
	Millis []float64
	// Model is the model chosen at the last origin (engine methods only).
	Model string
}

// EvalSeries is a series loaded for evaluation.
type EvalSeries struct {
	Name   string
	Values []float64
}

// timeColumns are the header names recognised as the time column, as in
// the baselines' reference implementation.
var timeColumns = []string{"timestamp", "Timestamp [ms]", "time_stamp", "time", "date", "ts"}

// LoadEvalDir reads every CSV file under dir (recursively), takes its time
// column by name (timestamp, time, ts, …) and its value column ("value", or
// the first other column), and regularises it as the protocol does: mean
// per step, gaps of up to 12 steps interpolated, longer gaps dropped.
func LoadEvalDir(dir string, step time.Duration) ([]EvalSeries, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.EqualFold(filepath.Ext(p), ".csv") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("eval: no CSV files under %s", dir)
	}
	sort.Strings(files)
	var out []EvalSeries
	for _, p := range files {
		y, err := loadEvalFile(p, step)
		if err != nil {
			return nil, err
		}
		name, _ := filepath.Rel(dir, p)
		out = append(out, EvalSeries{Name: filepath.ToSlash(name), Values: y})
	}
	return out, nil
}

func loadEvalFile(path string, step time.Duration) ([]float64, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	defer fh.Close()
	header, err := readHeader(fh)
	if err != nil {
		return nil, fmt.Errorf("eval: %s: %w", path, err)
	}
	if _, err := fh.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("eval: %s: %w", path, err)
	}
	opt := CSVOptions{}
	for _, c := range timeColumns {
		if slices.Contains(header, c) {
			opt.TimeColumn = c
			break
		}
	}
	if opt.TimeColumn == "" {
		return nil, fmt.Errorf("eval: %s: no time column (want one of %s)", path, strings.Join(timeColumns, ", "))
	}
	if slices.Contains(header, "value") && opt.TimeColumn != "value" {
		opt.ValueColumn = "value"
	} else {
		for _, h := range header {
			if h != opt.TimeColumn {
				opt.ValueColumn = h
				break
			}
		}
	}
	obs, err := ReadCSV(fh, opt)
	if err != nil {
		return nil, fmt.Errorf("eval: %s: %w", path, err)
	}
	g, err := Resample(dedupe(obs), step)
	if err != nil {
		return nil, fmt.Errorf("eval: %s: %w", path, err)
	}
	FillGaps(g.Values, 12)
	return DropMissing(g.Values), nil
}

// dedupe keeps the first reading of each timestamp, as the protocol does.
func dedupe(obs []Observation) []Observation {
	out := obs[:0:0]
	for i, o := range obs {
		if i > 0 && o.Time.Equal(obs[i-1].Time) {
			continue
		}
		out = append(out, o)
	}
	return out
}

func readHeader(r io.Reader) ([]string, error) {
	buf := make([]byte, 4096)
	k, err := io.ReadFull(r, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	line := string(buf[:k])
	if i := strings.IndexAny(line, "\r\n"); i >= 0 {
		line = line[:i]
	}
	var out []string
	for _, f := range strings.Split(line, ",") {
		out = append(out, strings.TrimSpace(strings.Trim(strings.TrimSpace(f), `"`)))
	}
	return out, nil
}

func (o *EvalOptions) defaults() {
	if o.Step == 0 {
		o.Step = 15 * time.Minute
	}
	if len(o.Horizons) == 0 {
		o.Horizons = []time.Duration{time.Hour, 6 * time.Hour}
	}
	if o.Origins == 0 {
		o.Origins = 8
	}
	if o.TestFrac == 0 {
		o.TestFrac = 0.3
	}
	if o.History == 0 {
		o.History = 14 * 24 * time.Hour
	}
	if len(o.Methods) == 0 {
		o.Methods = []string{ModelAuto, "ref-naive", "ref-snaive"}
	}
	if o.Clock == nil {
		t0 := time.Now()
		o.Clock = func() time.Duration { return time.Since(t0) }
	}
}

// EvaluateSeries runs the protocol on one regularised series: origins
// spread evenly over the last TestFrac of it (from max(⌊n(1−TestFrac)⌋,
// 3 days) to n−H), each method fitted on the trailing History before the
// origin and scored over each horizon window. It returns one result per
// method and horizon, or an error if the series is too short.
func EvaluateSeries(s EvalSeries, opt EvalOptions) ([]SeriesResult, error) {
	opt.defaults()
	m := int(24 * time.Hour / opt.Step)
	hs := make([]int, len(opt.Horizons))
	H := 0
	for i, d := range opt.Horizons {
		hs[i] = int(d / opt.Step)
		if hs[i] <= 0 {
			return nil, fmt.Errorf("eval: horizon %v is shorter than the step %v", d, opt.Step)
		}
		H = max(H, hs[i])
	}
	y := s.Values
	n := len(y)
	maxTrain := int(opt.History / opt.Step)
	first := max(int(float64(n)*(1-opt.TestFrac)), 3*m)
	last := n - H
	if last <= first {
		return nil, fmt.Errorf("eval: %s: too short (n=%d, need > %d steps)", s.Name, n, 3*m+H)
	}
	origins := linspaceInt(first, last, opt.Origins)
	var out []SeriesResult
	for _, meth := range opt.Methods {
		type acc struct{ mase, cov, slack, tot float64 }
		accs := make([]acc, len(hs))
		res := make([]SeriesResult, len(hs))
		var millis []float64
		model := ""
		for _, o := range origins {
			train := y[max(0, o-maxTrain):o]
			t0 := opt.Clock()
			pt, q95, name, err := evalForecast(meth, train, H, m, opt.Step, opt.Tuning)
			millis = append(millis, float64(opt.Clock()-t0)/1e6)
			if err != nil {
				return nil, fmt.Errorf("eval: %s: %s at origin %d: %w", s.Name, meth, o, err)
			}
			model = name
			sc := maseScale(train, m)
			for k, h := range hs {
				var ae, cov, slack, tot float64
				for i := 0; i < h; i++ {
					a := y[o+i]
					ae += math.Abs(a - pt[i])
					if a <= q95[i] {
						cov++
					}
					slack += math.Max(q95[i]-a, 0)
					tot += math.Abs(a)
				}
				accs[k].mase += ae / float64(h) / sc
				accs[k].cov += cov / float64(h)
				accs[k].slack += slack
				accs[k].tot += tot
			}
		}
		for k := range hs {
			no := float64(len(origins))
			res[k] = SeriesResult{Series: s.Name, Method: meth, Horizon: opt.Horizons[k], Origins: len(origins),
				MASE: accs[k].mase / no, Cov95: accs[k].cov / no,
				Over: 100 * accs[k].slack / math.Max(accs[k].tot, 1e-12), Millis: millis, Model: model}
		}
		out = append(out, res...)
	}
	return out, nil
}

// evalForecast returns the point and p95 forecasts of one method.
func evalForecast(meth string, train []float64, H, m int, step time.Duration, tun *Tuning) (pt, q95 []float64, name string, err error) {
	switch meth {
	case "ref-naive":
		pt = make([]float64, H)
		q95 = make([]float64, H)
		last := train[len(train)-1]
		// one scratch buffer for all steps: the reference rules should not
		// leave garbage for the collector to charge to the timed fits
		d := make([]float64, 0, len(train))
		for h := 1; h <= H; h++ {
			d = d[:0]
			for t := h; t < len(train); t++ {
				d = append(d, train[t]-train[t-h])
			}
			if len(d) == 0 {
				return nil, nil, "", fmt.Errorf("%d values give no %d-step difference to take a quantile of", len(train), h)
			}
			slices.Sort(d)
			pt[h-1] = last
			q95[h-1] = last + SortedQuantile(d, 0.95)
		}
		return pt, q95, meth, nil
	case "ref-snaive":
		pt = make([]float64, H)
		q95 = make([]float64, H)
		d := make([]float64, 0, len(train))
		for t := m; t < len(train); t++ {
			d = append(d, train[t]-train[t-m])
		}
		if len(d) == 0 {
			return nil, nil, "", fmt.Errorf("%d values hold no whole season of %d to take a quantile of", len(train), m)
		}
		e := SampleQuantile(d, 0.95)
		for h := 1; h <= H; h++ {
			pt[h-1] = train[len(train)-m+(h-1)%m]
			q95[h-1] = pt[h-1] + e
		}
		return pt, q95, meth, nil
	}
	f, err := Fit(train, Options{Step: step, Horizon: H, Model: meth, Tuning: tun})
	if err != nil {
		return nil, nil, "", err
	}
	fc, err := f.Forecast(H, []float64{0.95})
	if err != nil {
		return nil, nil, "", err
	}
	return fc.Mean, fc.Quantiles[0], f.Model, nil
}

// maseScale is the in-sample MAE of the lag-m seasonal naive forecast on
// the training window, falling back to lag 1 (M4 definition).
func maseScale(train []float64, m int) float64 {
	if len(train) > m {
		var s float64
		for t := m; t < len(train); t++ {
			s += math.Abs(train[t] - train[t-m])
		}
		if s > 0 {
			return s / float64(len(train)-m)
		}
	}
	var s float64
	for t := 1; t < len(train); t++ {
		s += math.Abs(train[t] - train[t-1])
	}
	if s > 0 {
		return s / float64(len(train)-1)
	}
	return math.NaN()
}

// linspaceInt is numpy's unique(linspace(a, b, k).astype(int)).
func linspaceInt(a, b, k int) []int {
	var out []int
	for i := 0; i < k; i++ {
		v := float64(a)
		if k > 1 {
			v = float64(a) + float64(i)*float64(b-a)/float64(k-1)
		}
		o := int(v)
		if len(out) == 0 || out[len(out)-1] != o {
			out = append(out, o)
		}
	}
	return out
}

// Summary is one row of the protocol's table: a method at a horizon,
// aggregated over series.
type Summary struct {
	Method       string
	Horizon      time.Duration
	Series       int
	MASEMean     float64
	MASEMedian   float64
	Cov95Mean    float64
	OverMedian   float64
	MillisMedian float64
	MillisMean   float64
}

// Summarise aggregates per-series results by method and horizon: MASE mean
// and median over series, mean cov95, median over %, and the median and
// mean fit time over all origins.
func Summarise(rs []SeriesResult, methods []string, horizons []time.Duration) []Summary {
	var out []Summary
	for _, meth := range methods {
		for _, h := range horizons {
			var mase, cov, over, ms []float64
			for _, r := range rs {
				if r.Method != meth || r.Horizon != h {
					continue
				}
				if !math.IsNaN(r.MASE) {
					mase = append(mase, r.MASE)
				}
				cov = append(cov, r.Cov95)
				over = append(over, r.Over)
				ms = append(ms, r.Millis...)
			}
			if len(cov) == 0 {
				continue
			}
			out = append(out, Summary{Method: meth, Horizon: h, Series: len(cov),
				MASEMean: mean(mase), MASEMedian: SampleQuantile(mase, 0.5), Cov95Mean: mean(cov),
				OverMedian: SampleQuantile(over, 0.5), MillisMedian: SampleQuantile(ms, 0.5), MillisMean: mean(ms)})
		}
	}
	return out
}

// WriteTable prints summaries as the Markdown table of BASELINES.md.
func WriteTable(w io.Writer, ss []Summary) error {
	if _, err := fmt.Fprintln(w, "| method | horizon | series | MASE mean | MASE median | cov95 mean | over % median | ms per fit median (mean) |"); err != nil {
		return err
	}
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, s := range ss {
		if _, err := fmt.Fprintf(w, "| %s | %s | %d | %.3f | %.3f | %.3f | %.1f | %.3f (%.3f) |\n", s.Method, spanString(s.Horizon), s.Series,
			s.MASEMean, s.MASEMedian, s.Cov95Mean, s.OverMedian, s.MillisMedian, s.MillisMean); err != nil {
			return err
		}
	}
	return nil
}

// spanString prints a duration compactly ("1h", "6h", "1d").
func spanString(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	s = strings.TrimSuffix(s, "0m")
	return s
}
