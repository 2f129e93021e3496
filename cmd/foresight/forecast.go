package main

import (
	"io"

	"github.com/foresight-nomad/foresight/forecast/cli"
)

// runForecast is `foresight forecast`: forecast a series read from a CSV
// file, or with `eval` score the forecaster over a folder of series. The
// command itself lives in forecast/cli so that it is tested on its own.
func runForecast(args []string, stdout, stderr io.Writer) int {
	return cli.Run(args, stdout, stderr)
}
