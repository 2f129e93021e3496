// Package cli is the `foresight forecast` command: it reads a series from a
// CSV file, forecasts it with package forecast and prints the forecast as
// CSV; `foresight forecast eval` runs the accuracy protocol over a folder
// of series. It lives apart from package main so that it can be tested on
// its own.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/foresight-nomad/foresight/forecast"
	"github.com/foresight-nomad/foresight/forecast/internal/cpuclock"
)

// Exit codes of the CLI conventions.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// Defaults of the forecast flags.
const (
	defaultStep      = "15m"
	defaultHorizon   = "6h"
	defaultHistory   = "14d"
	defaultQuantiles = "0.5,0.9,0.95"
)

// Run runs `foresight forecast` with args (the words after "forecast") and
// returns the exit code: 0 ok, 1 error (one line on stderr), 2 bad usage.
func Run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "eval" {
		return runEval(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("forecast", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "", "CSV file with a header (required; - for stdin)")
	timeCol := fs.String("time-column", "", "name of the time column (default: the first column)")
	valCol := fs.String("column", "", "name of the value column (default: the second column)")
	stepS := fs.String("step", defaultStep, "grid step the series is averaged onto")
	horizonS := fs.String("horizon", defaultHorizon, "how far ahead to forecast from the end of the series")
	historyS := fs.String("history", defaultHistory, "use at most this much of the most recent data (e.g. 14d)")
	quantS := fs.String("quantiles", defaultQuantiles, "comma-separated quantile levels in (0,1)")
	modelS := fs.String("model", forecast.ModelAuto, "model: "+strings.Join(forecast.ModelNames, "|"))
	eventsS := fs.String("events", "", "HCL calendar of scheduled events")
	explain := fs.Bool("explain", false, "print the chosen model, season, validation error and why to stderr")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: foresight forecast -in FILE.csv [-time-column NAME] [-column NAME] -step 15m -horizon 6h [-history 14d] [-quantiles 0.5,0.9,0.95] [-model auto] [-events FILE.hcl] [-explain]")
		fmt.Fprintln(stderr, "       foresight forecast eval -data DIR [-step 15m] [-horizons 1h,6h] [-origins 8] [-test-frac 0.3] [-history 14d]")
		fmt.Fprintln(stderr, "                               [-per-series] [-by-source] [-baseline FILE.csv] [-loso [-tune GRID]]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "forecast: unexpected argument %q\n", fs.Arg(0))
		return ExitUsage
	}
	req, err := parseRequest(*in, *stepS, *horizonS, *historyS, *quantS, *modelS)
	if err != nil {
		fmt.Fprintf(stderr, "forecast: %v\n", err)
		return ExitUsage
	}
	req.timeCol, req.valCol, req.events = *timeCol, *valCol, *eventsS
	if err := forecastFile(req, stdout, stderr, *explain); err != nil {
		fmt.Fprintf(stderr, "forecast: %v\n", oneLine(err))
		return ExitError
	}
	return ExitOK
}

type request struct {
	in, timeCol, valCol, events, model string
	step, horizon, history             time.Duration
	levels                             []float64
}

func parseRequest(in, stepS, horizonS, historyS, quantS, model string) (request, error) {
	var r request
	if in == "" {
		return r, errors.New("-in is required")
	}
	r.in, r.model = in, model
	var err error
	if r.step, err = forecast.ParseSpan(stepS); err != nil || r.step <= 0 {
		return r, fmt.Errorf("-step %q: want a positive duration such as 15m", stepS)
	}
	if r.horizon, err = forecast.ParseSpan(horizonS); err != nil || r.horizon < r.step {
		return r, fmt.Errorf("-horizon %q: want a duration of at least one step (%v)", horizonS, r.step)
	}
	if r.history, err = forecast.ParseSpan(historyS); err != nil || r.history < r.step {
		return r, fmt.Errorf("-history %q: want a duration of at least one step (%v)", historyS, r.step)
	}
	if r.levels, err = ParseLevels(quantS); err != nil {
		return r, fmt.Errorf("-quantiles: %w", err)
	}
	ok := false
	for _, m := range forecast.ModelNames {
		ok = ok || m == model
	}
	if !ok {
		return r, fmt.Errorf("-model %q: want one of %s", model, strings.Join(forecast.ModelNames, ", "))
	}
	return r, nil
}

// ParseLevels parses comma-separated quantile levels, each in (0, 1).
func ParseLevels(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		q, err := strconv.ParseFloat(f, 64)
		if err != nil || !(q > 0 && q < 1) {
			return nil, fmt.Errorf("level %q: want a number in (0, 1)", f)
		}
		out = append(out, q)
	}
	return out, nil
}

// ColumnName is the CSV header of a quantile level: 0.95 → "p95",
// 0.975 → "p97.5".
func ColumnName(q float64) string {
	return "p" + strconv.FormatFloat(math.Round(q*1e6)/1e4, 'f', -1, 64)
}

func forecastFile(r request, stdout, stderr io.Writer, explain bool) error {
	var src io.Reader
	if r.in == "-" {
		src = os.Stdin
	} else {
		fh, err := os.Open(r.in)
		if err != nil {
			return err
		}
		defer fh.Close()
		src = fh
	}
	obs, err := forecast.ReadCSV(src, forecast.CSVOptions{TimeColumn: r.timeCol, ValueColumn: r.valCol})
	if err != nil {
		return fmt.Errorf("%s: %w", r.in, err)
	}
	var cal *forecast.Calendar
	if r.events != "" {
		if cal, err = forecast.LoadCalendar(r.events); err != nil {
			return err
		}
	}
	g, err := forecast.Resample(obs, r.step)
	if err != nil {
		return fmt.Errorf("%s: %w", r.in, err)
	}
	if keep := int(r.history / r.step); len(g.Values) > keep {
		drop := len(g.Values) - keep
		g.Start = g.Time(drop)
		g.Values = g.Values[drop:]
	}
	H := int(r.horizon / r.step)
	res, err := forecast.Predict(g, forecast.Options{Step: r.step, Horizon: H, Model: r.model}, r.levels, cal)
	if err != nil {
		return err
	}
	if explain {
		writeExplain(stderr, res, g)
	}
	return writeForecast(stdout, res)
}

func writeForecast(w io.Writer, res *forecast.Result) error {
	var b strings.Builder
	b.WriteString("timestamp,mean")
	for _, q := range res.Forecast.Levels {
		b.WriteString(",")
		b.WriteString(ColumnName(q))
	}
	b.WriteString("\n")
	for i, t := range res.Times {
		b.WriteString(t.UTC().Format(time.RFC3339))
		b.WriteString(",")
		b.WriteString(formatNum(res.Forecast.Mean[i]))
		for j := range res.Forecast.Levels {
			b.WriteString(",")
			b.WriteString(formatNum(res.Forecast.Quantiles[j][i]))
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func formatNum(v float64) string { return strconv.FormatFloat(v, 'g', 10, 64) }

func writeExplain(w io.Writer, res *forecast.Result, g forecast.Grid) {
	f := res.Fitted
	fmt.Fprintf(w, "model: %s\n", f.Model)
	if f.Season.Period > 0 {
		fmt.Fprintf(w, "season: %d steps (%v), autocorrelation %.2f\n", f.Season.Period, time.Duration(f.Season.Period)*g.Step, f.Season.ACF)
	} else {
		fmt.Fprintln(w, "season: none detected")
	}
	fmt.Fprintf(w, "history: %d steps from %s to %s\n", len(g.Values), g.Start.Format(time.RFC3339), g.Time(len(g.Values)-1).Format(time.RFC3339))
	if f.Origins > 0 {
		fmt.Fprintf(w, "validation MAE: %.6g per step over %d origins\n", f.ValidationMAE, f.Origins)
	}
	fmt.Fprintf(w, "why: %s\n", f.Reason)
	for _, b := range f.Blocks {
		steps := fmt.Sprintf("steps %d–%d", b.From, b.To)
		if b.From == b.To {
			steps = fmt.Sprintf("step %d", b.From)
		}
		var members []string
		for i, m := range b.Members {
			members = append(members, fmt.Sprintf("%.2f %s", b.Weights[i], m))
		}
		guard := "kept the default: the gain is below the margin"
		if b.Share > 0 {
			guard = fmt.Sprintf("%.0f %% combination, %.0f %% default", 100*b.Share, 100*(1-b.Share))
		}
		fmt.Fprintf(w, "  guard %-11s default %s (loss %.4g); combination %s (loss %.4g, gain %+.1f %%): %s\n",
			steps, b.Default, b.DefaultLoss, strings.Join(members, " + "), b.CombinationLoss, 100*b.Gain, guard)
	}
	names := make([]string, 0, len(f.Candidates))
	for n := range f.Candidates {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return f.Candidates[names[i]] < f.Candidates[names[j]] })
	for _, n := range names {
		fmt.Fprintf(w, "  candidate %-40s MAE %.6g\n", n, f.Candidates[n])
	}
	for _, e := range res.Events {
		fmt.Fprintf(w, "event: %s\n", e)
	}
	for _, wn := range f.Warnings {
		fmt.Fprintf(w, "warning: %s\n", wn)
	}
}

func oneLine(err error) string {
	return strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
}

func runEval(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("forecast eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data", "", "folder of CSV series (searched recursively; required)")
	stepS := fs.String("step", "15m", "grid step")
	horizonsS := fs.String("horizons", "1h,6h", "comma-separated horizons scored")
	origins := fs.Int("origins", 8, "rolling origins per series")
	testFrac := fs.Float64("test-frac", 0.3, "share of each series the origins are spread over")
	historyS := fs.String("history", "14d", "longest training window")
	methodsS := fs.String("methods", "auto,ref-naive,ref-snaive", "forecasters: auto or a model family, ref-naive, ref-snaive")
	perSeries := fs.Bool("per-series", false, "also print one row per series, method and horizon")
	bySource := fs.Bool("by-source", false, "also print one table per source (top-level folder under -data)")
	baseFile := fs.String("baseline", "", "CSV written by shared/tools/baselines.py --csv: compare each source with its method (see -baseline-method)")
	baseMethod := fs.String("baseline-method", forecast.DefaultBaselineMethod, "the baselines.py method to compare with")
	loso := fs.Bool("loso", false, "leave one source out: choose the tuning on the other sources, score the held-out one")
	tuneS := fs.String("tune", "", "grid searched by -loso, e.g. \"margin=0,0.1;outlier=6,inf\" (default: the built-in grid)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	bad := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "forecast eval: "+format+"\n", a...)
		return ExitUsage
	}
	if *dir == "" {
		return bad("-data is required")
	}
	step, err := forecast.ParseSpan(*stepS)
	if err != nil || step <= 0 {
		return bad("-step %q: want a positive duration", *stepS)
	}
	hist, err := forecast.ParseSpan(*historyS)
	if err != nil || hist < step {
		return bad("-history %q: want a duration of at least one step", *historyS)
	}
	var hs []time.Duration
	for _, s := range strings.Split(*horizonsS, ",") {
		d, err := forecast.ParseSpan(s)
		if err != nil || d < step {
			return bad("-horizons: %q is not a duration of at least one step", s)
		}
		hs = append(hs, d)
	}
	if *origins < 1 || !(*testFrac > 0 && *testFrac < 1) {
		return bad("-origins must be ≥ 1 and -test-frac in (0,1)")
	}
	methods := strings.Split(*methodsS, ",")
	grid := forecast.DefaultTuningGrid()
	if *tuneS != "" {
		if grid, err = forecast.ParseTuningGrid(*tuneS); err != nil {
			return bad("-tune: %v", err)
		}
	}
	var base *forecast.Baseline
	if *baseFile != "" {
		fh, err := os.Open(*baseFile)
		if err != nil {
			fmt.Fprintf(stderr, "forecast eval: %v\n", err)
			return ExitError
		}
		base, err = forecast.LoadBaseline(fh, *baseMethod)
		fh.Close()
		if err != nil {
			fmt.Fprintf(stderr, "forecast eval: %s: %v\n", *baseFile, oneLine(err))
			return ExitError
		}
	}
	opt := forecast.EvalOptions{Step: step, Horizons: hs, Origins: *origins, TestFrac: *testFrac, History: hist, Methods: methods}
	// Time fits by the CPU time of this thread: the goal is stated for one
	// core, and wall time on a shared machine mostly measures the others.
	timing := "wall time"
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if clock, ok := cpuclock.Thread(); ok {
		opt.Clock = clock
		timing = "thread CPU time"
	}
	series, err := forecast.LoadEvalDir(*dir, step)
	if err != nil {
		fmt.Fprintf(stderr, "forecast eval: %v\n", oneLine(err))
		return ExitError
	}
	var all []forecast.SeriesResult
	for _, s := range series {
		rs, err := forecast.EvaluateSeries(s, opt)
		if err != nil {
			fmt.Fprintf(stderr, "skip: %v\n", oneLine(err))
			continue
		}
		all = append(all, rs...)
	}
	if len(all) == 0 {
		fmt.Fprintln(stderr, "forecast eval: no series long enough for the protocol")
		return ExitError
	}
	if err := writeEval(stdout, all, methods, hs, base, *perSeries, *bySource); err != nil {
		fmt.Fprintf(stderr, "forecast eval: %v\n", err)
		return ExitError
	}
	if *loso {
		res, err := forecast.LeaveOneSourceOut(series, opt, grid, base, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "forecast eval: %v\n", oneLine(err))
			return ExitError
		}
		if err := writeLOSO(stdout, res, base); err != nil {
			fmt.Fprintf(stderr, "forecast eval: %v\n", err)
			return ExitError
		}
	}
	fmt.Fprintf(stderr, "fit times are %s per fit+forecast, one thread\n", timing)
	return ExitOK
}

// writeEval prints the protocol's tables: per series (optional, with the
// ratio to the baseline), over all series, per source (optional), and the
// comparison of each engine method with the baseline per source.
func writeEval(w io.Writer, all []forecast.SeriesResult, methods []string, hs []time.Duration, base *forecast.Baseline, perSeries, bySource bool) error {
	var b strings.Builder
	if perSeries {
		b.WriteString("| series | method | horizon | MASE | cov95 | over % | model |")
		if base != nil {
			fmt.Fprintf(&b, " %s MASE | ratio |", base.Method)
		}
		b.WriteString("\n|---|---|---|---|---|---|---|")
		if base != nil {
			b.WriteString("---|---|")
		}
		b.WriteString("\n")
		for _, r := range all {
			fmt.Fprintf(&b, "| %s | %s | %v | %.3f | %.3f | %.1f | %s |", r.Series, r.Method, r.Horizon, r.MASE, r.Cov95, r.Over, r.Model)
			if base != nil {
				if s, ok := base.Lookup(r.Series, r.Horizon); ok {
					fmt.Fprintf(&b, " %.3f | %.2f |", s.MASE, r.MASE/s.MASE)
				} else {
					b.WriteString(" – | – |")
				}
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	if err := forecast.WriteTable(w, forecast.Summarise(all, methods, hs)); err != nil {
		return err
	}
	if bySource {
		bySrc := map[string][]forecast.SeriesResult{}
		var srcs []string
		for _, r := range all {
			s := forecast.SourceOf(r.Series)
			if _, ok := bySrc[s]; !ok {
				srcs = append(srcs, s)
			}
			bySrc[s] = append(bySrc[s], r)
		}
		sort.Strings(srcs)
		for _, s := range srcs {
			fmt.Fprintf(w, "\nSource %s:\n\n", s)
			if err := forecast.WriteTable(w, forecast.Summarise(bySrc[s], methods, hs)); err != nil {
				return err
			}
		}
	}
	if base == nil {
		return nil
	}
	for _, m := range methods {
		if strings.HasPrefix(m, "ref-") {
			continue
		}
		fmt.Fprintf(w, "\n%s against %s, per source:\n\n", m, base.Method)
		if err := forecast.WriteSourceReports(w, forecast.CompareSources(all, m, base, hs), base.Method); err != nil {
			return err
		}
	}
	return nil
}

// writeLOSO prints the leave-one-source-out scores and the tunings chosen.
func writeLOSO(w io.Writer, res *forecast.LOSOResult, base *forecast.Baseline) error {
	name := ""
	if base != nil {
		name = base.Method
	}
	fmt.Fprintf(w, "\nLeave one source out (auto; each source scored with the tuning chosen on the others, %d tunings evaluated):\n\n", res.Settings)
	if err := forecast.WriteSourceReports(w, res.Reports, name); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nChosen on all sources: %s (default: %s)\n", res.All, forecast.DefaultTuning())
	return err
}
