package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/foresight-nomad/foresight/backtest"
)

// runBacktest is `foresight backtest`: replay a trace as one service's
// demand in sim and compare the predictive, reactive and static policies.
// -trace may name a folder, which backtests every CSV file under it (the
// full table); -plot needs a single file.
func runBacktest(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("backtest", flag.ContinueOnError)
	fl.SetOutput(stderr)
	trace := fl.String("trace", "", "CSV trace with a header, or a folder of them (required)")
	column := fl.String("column", "", "name of the value column (default: the second column)")
	policy := fl.String("policy", "all", "predictive, reactive, static or all")
	format := fl.String("format", "table", "table or json")
	plot := fl.String("plot", "", "write an SVG of demand, ready capacity and the forecast band to this file")
	allocStart := fl.Duration("alloc-start", backtest.DefaultAllocStart, "how long an allocation takes to start")
	provision := fl.Duration("provision-delay", backtest.DefaultProvisionDelay, "how long a provider node takes to join")
	warmup := fl.Duration("warmup", backtest.DefaultWarmup, "start of the trace that is forecast history only, not scored")
	sweep := fl.Bool("sweep", false, "also play the predictive policy at every setting of target utilisation and burst hold, scored against the baselines (needs -policy all)")
	capped := fl.Bool("reactive-capped", false, "reactive policy observes CPU used ÷ allocated, capped at 100 %, instead of demand ÷ ready capacity")
	fl.Usage = func() {
		fmt.Fprintln(stderr, "Usage: foresight backtest -trace FILE.csv|DIR [-column NAME] [-policy predictive|reactive|static|all] [-format table|json] [-plot FILE.svg] [-alloc-start 1m] [-provision-delay 4m] [-warmup 24h] [-sweep] [-reactive-capped]")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	usageErr := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "foresight backtest: "+format+"\n", args...)
		return exitUsage
	}
	if fl.NArg() > 0 {
		return usageErr("unexpected argument %q", fl.Arg(0))
	}
	if *trace == "" {
		return usageErr("-trace is required")
	}
	if *format != "table" && *format != "json" {
		return usageErr("-format must be table or json, not %q", *format)
	}
	opt := backtest.Options{AllocStart: *allocStart, ProvisionDelay: *provision, Warmup: *warmup, ReactiveCapped: *capped, Sweep: *sweep, Series: *plot != ""}
	if *policy != "all" {
		opt.Policies = []string{*policy}
	}
	for _, d := range []struct {
		flag string
		v    int64
	}{{"alloc-start", int64(*allocStart)}, {"provision-delay", int64(*provision)}, {"warmup", int64(*warmup)}} {
		if d.v <= 0 {
			return usageErr("-%s must be positive", d.flag)
		}
	}
	if *policy != "all" && !slices.Contains(backtest.PolicyNames, *policy) {
		return usageErr("-policy must be %s or all, not %q", strings.Join(backtest.PolicyNames, ", "), *policy)
	}
	if *sweep && *policy != "all" {
		return usageErr("-sweep compares settings with the baselines: it needs -policy all, not %q", *policy)
	}

	fail := func(err error) int {
		fmt.Fprintf(stderr, "foresight backtest: %s\n", oneLine(err))
		return exitError
	}
	files, folder, err := traceFiles(*trace)
	if err != nil {
		return fail(err)
	}
	if *plot != "" && folder {
		return usageErr("-plot needs one trace file, not a folder")
	}
	var reps []*backtest.Report
	for _, f := range files {
		t, err := backtest.LoadTrace(f, *column)
		if err != nil {
			return fail(err)
		}
		rep, err := backtest.Run(t, opt)
		if err != nil {
			return fail(fmt.Errorf("%s: %w", f, err))
		}
		if folder {
			rep.Trace = relName(*trace, f)
		}
		reps = append(reps, rep)
	}
	if *plot != "" {
		if err := writePlot(*plot, reps[0]); err != nil {
			return fail(err)
		}
	}
	if *format == "json" {
		err = backtest.WriteJSON(stdout, reps)
	} else {
		err = backtest.WriteTable(stdout, reps)
	}
	if err != nil {
		return fail(err)
	}
	return exitOK
}

// traceFiles is path itself, or every .csv file under the folder path,
// sorted.
func traceFiles(path string) (files []string, folder bool, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, false, err
	}
	if !st.IsDir() {
		return []string{path}, false, nil
	}
	var out []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.EqualFold(filepath.Ext(p), ".csv") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, true, err
	}
	if len(out) == 0 {
		return nil, true, fmt.Errorf("%s holds no .csv trace", path)
	}
	sort.Strings(out)
	return out, true, nil
}

func relName(root, f string) string {
	if r, err := filepath.Rel(root, f); err == nil {
		return r
	}
	return f
}

func writePlot(path string, rep *backtest.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := backtest.WritePlot(f, rep); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// oneLine keeps an error to one line, as the CLI conventions promise.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
