package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/foresight-nomad/foresight/internal/wait"
	"github.com/foresight-nomad/foresight/leaderapi"
)

// TestDashboardInBrowser runs `foresight demo` and loads its dashboard in
// headless Chromium: the charts must plot data and a decision must show,
// and a screenshot of each page is kept. Ctrl-C then stops the demo cleanly.
func TestDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: runs the demo and a browser")
	}
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (apt-get install -y chromium; .ci/run does): the dashboard browser test is skipped")
	}
	dir := t.TempDir()
	bind := freePair(t)
	demo := exec.Command(binary, "demo", "-config", "../../examples/sim/hybrid.hcl", "-speed", "60",
		"-bind", bind, "-nomad-addr", freeAddr(t), "-consul-addr", freeAddr(t), "-data-dir", filepath.Join(dir, "data"))
	logFile, err := os.Create(filepath.Join(dir, "demo.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	demo.Stderr = logFile
	stdout, err := demo.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := demo.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = demo.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("--- demo log (last 3000 bytes) ---\n%s", tail(b, 3000))
		}
	})

	// The demo prints where its dashboard is.
	var dashboardURL string
	lines := bufio.NewScanner(stdout)
	for dashboardURL == "" && lines.Scan() {
		if f := strings.Fields(lines.Text()); len(f) == 2 && f[0] == "Dashboard:" {
			dashboardURL = f[1]
		}
	}
	if dashboardURL != "http://"+bind+"/ui/" {
		t.Fatalf("the demo printed dashboard %q, want it on -bind %s", dashboardURL, bind)
	}
	go func() {
		for lines.Scan() { // drain, so the demo never blocks on its output
		}
		exited <- demo.Wait()
	}()
	base := strings.TrimSuffix(dashboardURL, "/ui/")

	// Wait for a decision with its reasons, through the API.
	var decided leaderapi.Decision
	wait.UntilEvery(t, 3*time.Minute, 200*time.Millisecond, "the demo's first decision", func() bool {
		var log []leaderapi.Decision
		if err := get(base, "/v1/decisions", &log); err != nil || len(log) == 0 {
			return false
		}
		decided = log[len(log)-1]
		return len(decided.Result.Decision.Reasons) > 0
	})

	shots, err := os.MkdirTemp("", "foresight-dashboard-")
	if err != nil {
		t.Fatal(err)
	}
	chrome := chromium{path: browser, profile: filepath.Join(dir, "chromium")}

	// The overview, as the browser renders it: capacity charts with data
	// and the decision feed.
	var dom string
	wait.UntilEvery(t, 2*time.Minute, 200*time.Millisecond, "the overview to show capacity and decisions", func() bool {
		dom, err = chrome.dumpDOM(dashboardURL)
		if err != nil {
			t.Logf("chromium: %v", err)
			return false
		}
		return chartsWithData(dom) > 0 && strings.Contains(dom, `class="decision `)
	})
	if !strings.Contains(dom, decided.Group) || !strings.Contains(dom, "Capacity by resource class") {
		t.Fatalf("the overview does not show the decided group %s:\n%s", decided.Group, dom)
	}

	// The decided group's page: usage against the forecast's bands, affinity
	// bars and its decision history.
	groupURL := base + "/ui/group/" + decided.Group
	wait.UntilEvery(t, 2*time.Minute, 200*time.Millisecond, "the group page to chart usage and the forecast", func() bool {
		dom, err = chrome.dumpDOM(groupURL)
		// Bands from a fitted model, not from the fallback that covers
		// the first minutes of history.
		return err == nil && strings.Contains(dom, `data-banded="true"`) && strings.Contains(dom, `class="series usage"`) &&
			!strings.Contains(dom, "too little history")
	})
	if !strings.Contains(dom, `class="chart bars"`) || !strings.Contains(dom, `class="decision `) {
		t.Fatalf("the group page lacks affinity bars or its decisions:\n%s", dom)
	}
	group := filepath.Join(shots, "group.png")
	if err := chrome.screenshot(groupURL, group, 1500); err != nil {
		t.Fatal(err)
	}
	// The overview last, when its capacity charts span the longest.
	overview := filepath.Join(shots, "overview.png")
	if err := chrome.screenshot(dashboardURL, overview, 1800); err != nil {
		t.Fatal(err)
	}
	t.Logf("dashboard screenshots: %s and %s", overview, group)

	// Ctrl-C stops the demo, agents and sim, and it exits cleanly.
	if err := demo.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Fatalf("the demo did not exit cleanly on SIGINT: %v", err)
		}
	case <-time.After(time.Minute): // a hang guard, not a timing assertion
		t.Fatal("the demo did not stop within a minute of SIGINT")
	}
}

// chartsWithData counts the charts on a page that plot at least one point.
func chartsWithData(dom string) int {
	n := 0
	for _, m := range regexp.MustCompile(`<svg class="chart[^"]*"[^>]*data-points="(\d+)"`).FindAllStringSubmatch(dom, -1) {
		if p, _ := strconv.Atoi(m[1]); p > 0 {
			n++
		}
	}
	return n
}

// chromium runs headless Chromium, one page load per call.
type chromium struct {
	path, profile string
}

func (c chromium) run(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang guard
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
		"--no-first-run", "--user-data-dir=" + c.profile}
	cmd := exec.CommandContext(ctx, c.path, append(base, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, errors.New(err.Error() + ": " + tail(stderr.Bytes(), 500))
	}
	return stdout.Bytes(), nil
}

// dumpDOM is the page's DOM once loaded.
func (c chromium) dumpDOM(url string) (string, error) {
	out, err := c.run("--dump-dom", url)
	return string(out), err
}

// screenshot saves the page as a PNG, 1400 pixels wide.
func (c chromium) screenshot(url, path string, height int) error {
	if _, err := c.run("--window-size=1400,"+strconv.Itoa(height), "--screenshot="+path, url); err != nil {
		return err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG")) {
		return errors.New("the screenshot is not a PNG")
	}
	return nil
}
