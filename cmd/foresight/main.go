// Command foresight is the one Foresight binary: the node agent and leader,
// the simulated cluster, the forecaster and the operator's CLI.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/foresight-nomad/foresight/internal/version"
)

// Exit codes, as the CLI conventions promise.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// command is one subcommand: it reads its own flags from args and returns an
// exit code. Output meant for programs goes to stdout, everything else to
// stderr.
type command struct {
	synopsis string
	run      func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{
	"agent":    {"run the agent: sample this node, ship telemetry, lead when elected", runAgent},
	"backtest": {"replay a trace in sim and compare predictive, reactive and static scaling", runBacktest},
	"demo":     {"run a simulated cluster with Foresight and its dashboard", runDemo},
	"forecast": {"forecast a series from a CSV file", runForecast},
	"pause":    {"stop all actuation cluster-wide", runPause},
	"plan":     {"show what Foresight would change in each job, changing nothing", runPlan},
	"resume":   {"resume actuation", runResume},
	"status":   {"show the leader, agents, groups and freshest sample", runStatus},
	"sim":      {"run a simulated Nomad and Consul cluster", runSim},
	"version":  {"print the version", runVersion},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "foresight: unknown command %q\n", args[0])
		usage(stderr)
		return exitUsage
	}
	return cmd.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: foresight <command> [flags]")
	fmt.Fprintln(w, "\nCommands:")
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-10s %s\n", name, commands[name].synopsis)
	}
}

func runVersion(_ []string, stdout, _ io.Writer) int {
	fmt.Fprintf(stdout, "foresight %s\n", version.String())
	return exitOK
}
