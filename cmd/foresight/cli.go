package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/foresight-nomad/foresight/leaderapi"
)

// cliTimeout bounds one CLI request.
const cliTimeout = 30 * time.Second

// leader is the client of the leader's API the CLI commands use: at
// FORESIGHT_ADDR if set, else the leader named in the Consul election key.
func leader() (*leaderapi.Client, error) {
	return leaderapi.New(leaderapi.Config{Timeout: cliTimeout})
}

func runStatus(args []string, stdout, stderr io.Writer) int {
	return readCommand("status", "/v1/status", args, stdout, stderr, func(w io.Writer, st leaderapi.Status) {
		now := time.Now()
		if !st.Now.IsZero() {
			// "… ago" on the leader's clock, which may be sim's.
			now = st.Now
		}
		printStatus(w, st, now)
	})
}

// readCommand is a CLI command that reads one path of the leader's API and
// prints the answer, readably or, with -json, as the leader's JSON.
func readCommand[T any](name, path string, args []string, stdout, stderr io.Writer, print func(io.Writer, T)) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the leader's answer as JSON")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	var answer T
	client, err := leader()
	if err == nil {
		err = client.Do(ctx, http.MethodGet, path, nil, &answer)
	}
	if err != nil {
		fmt.Fprintf(stderr, "foresight %s: %v\n", name, err)
		return exitError
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(answer)
		return exitOK
	}
	print(stdout, answer)
	return exitOK
}

func printStatus(w io.Writer, st leaderapi.Status, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Leader\t%s (%s, since %s)\n", st.Leader.ID, st.Leader.HTTP, st.Leader.Since.Format(time.RFC3339))
	actuation := "active"
	if st.Paused {
		actuation = "paused"
	}
	fmt.Fprintf(tw, "Actuation\t%s\n", actuation)
	fmt.Fprintf(tw, "Groups\t%d\n", st.Groups)
	fmt.Fprintf(tw, "Series\t%d\n", st.Series)
	fmt.Fprintf(tw, "Samples\t%d\n", st.Samples)
	freshest := "none yet"
	if st.FreshestSample != nil {
		freshest = fmt.Sprintf("%s (%s ago)", st.FreshestSample.Format(time.RFC3339), now.Sub(*st.FreshestSample).Round(time.Second))
	}
	fmt.Fprintf(tw, "Freshest sample\t%s\n", freshest)
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Agent\tNode\tLast contact\tSamples")
	for _, a := range st.Agents {
		fmt.Fprintf(tw, "%s\t%s\t%s ago\t%d\n", a.ID, a.Node, now.Sub(a.LastContact).Round(time.Second), a.Samples)
	}
	tw.Flush()
}

func runPause(args []string, stdout, stderr io.Writer) int {
	return setPaused("pause", args, stdout, stderr)
}

func runResume(args []string, stdout, stderr io.Writer) int {
	return setPaused("resume", args, stdout, stderr)
}

func setPaused(name string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	client, err := leader()
	var out leaderapi.PauseResponse
	if err == nil {
		out, err = client.SetPaused(ctx, name == "pause")
	}
	if err != nil {
		fmt.Fprintf(stderr, "foresight %s: %v\n", name, err)
		return exitError
	}
	if out.Paused {
		fmt.Fprintln(stdout, "Actuation paused cluster-wide: Foresight samples, forecasts and recommends, but changes nothing.")
	} else {
		fmt.Fprintln(stdout, "Actuation resumed.")
	}
	return exitOK
}

func runPlan(args []string, stdout, stderr io.Writer) int {
	return readCommand("plan", "/v1/plan", args, stdout, stderr, printPlan)
}

// printPlan shows, per group, what Foresight would change in its job and why.
func printPlan(w io.Writer, decisions []leaderapi.Decision) {
	if len(decisions) == 0 {
		fmt.Fprintln(w, "No changes: every group is as Foresight would have it.")
		return
	}
	for i, d := range decisions {
		if i > 0 {
			fmt.Fprintln(w)
		}
		r := d.Result
		mode := string(r.Decision.Mode)
		if mode == "" {
			mode = "unknown mode"
		}
		fmt.Fprintf(w, "%s (%s)\n", d.Group, mode)
		if d.Error != "" {
			fmt.Fprintf(w, "  error: %s\n", d.Error)
		}
		for _, c := range r.Changes {
			fmt.Fprintf(w, "  %s\n", c)
		}
		for _, why := range r.Decision.Reasons {
			fmt.Fprintf(w, "  why: %s\n", why)
		}
	}
}
