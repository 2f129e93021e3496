package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/foresight-nomad/foresight/agent"
	"github.com/foresight-nomad/foresight/agent/election"
)

// cliTimeout bounds one CLI request.
const cliTimeout = 30 * time.Second

// leaderURL finds an agent to talk to: FORESIGHT_ADDR if set, else the
// leader named in the Consul election key.
func leaderURL(ctx context.Context, key string) (string, error) {
	if addr := os.Getenv("FORESIGHT_ADDR"); addr != "" {
		return strings.TrimSuffix(addr, "/"), nil
	}
	client, err := consulapi.NewClient(consulapi.DefaultConfig())
	if err != nil {
		return "", fmt.Errorf("consul client: %w", err)
	}
	leader, ok, err := election.Current(ctx, client, key)
	if err != nil {
		return "", fmt.Errorf("find the leader (set FORESIGHT_ADDR to skip Consul): %w", err)
	}
	if !ok {
		return "", errors.New("no Foresight leader is elected (is any agent running?)")
	}
	return strings.TrimSuffix(leader.HTTP, "/"), nil
}

// callAPI sends a request to the leader's API and decodes its JSON answer.
// Standby agents redirect to the leader, and the client follows.
func callAPI(ctx context.Context, method, path string, out any) error {
	base, err := leaderURL(ctx, "")
	if err != nil {
		return err
	}
	return requestJSON(ctx, method, base, path, out)
}

// requestJSON sends a request to an agent's API at base and decodes its
// JSON answer; an error answer's message is the error.
func requestJSON(ctx context.Context, method, base, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, base+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s %s: %s", method, path, e.Error)
		}
		return fmt.Errorf("%s %s: HTTP %d", method, path, resp.StatusCode)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
	}
	return nil
}

func runStatus(args []string, stdout, stderr io.Writer) int {
	return readCommand("status", "/v1/status", args, stdout, stderr, func(w io.Writer, st agent.Status) {
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
	if err := callAPI(ctx, http.MethodGet, path, &answer); err != nil {
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

func printStatus(w io.Writer, st agent.Status, now time.Time) {
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
	var out struct{ Paused bool }
	if err := callAPI(ctx, http.MethodPost, "/v1/"+name, &out); err != nil {
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
func printPlan(w io.Writer, decisions []agent.Decision) {
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
