package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestExitCodes(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no command", nil, exitUsage, "Usage: foresight"},
		{"unknown command", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"sim without config", []string{"sim"}, exitUsage, "Usage: foresight sim"},
		{"sim with bad flag", []string{"sim", "-speed", "fast"}, exitUsage, "invalid value"},
		{"sim with negative speed", []string{"sim", "-config", "x.hcl", "-speed", "-1"}, exitUsage, "-speed must be positive"},
		{"sim with a bad cluster file", []string{"sim", "-config", "testdata/bad-cluster.hcl"}, exitError, "testdata/bad-cluster.hcl:9"},
		{"sim with a missing cluster file", []string{"sim", "-config", "testdata/none.hcl"}, exitError, "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tc.args, &stdout, &stderr); code != tc.code {
				t.Fatalf("exit %d, want %d (stderr: %s)", code, tc.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Fatalf("stderr %q does not say %q", stderr.String(), tc.stderr)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"version"}, &stdout, &stderr); code != exitOK || !strings.HasPrefix(stdout.String(), "foresight ") {
		t.Fatalf("version: exit %d, %q", code, stdout.String())
	}
}

func TestReadCommandsPrintTheLeadersAnswer(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"Leader":{"ID":"node-1","HTTP":"http://10.0.0.1:7460"},"Groups":3,"Series":33,"Samples":594,"Agents":[{"ID":"node-1","Node":"node-1","Samples":132}]}`)
	})
	mux.HandleFunc("GET /v1/plan", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `[{"Group":"default/web/web","Result":{"decision":{"mode":"recommend","reasons":["count needed: 2"]},"changes":["~ count 3 → 2"]}}]`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	t.Setenv("FORESIGHT_ADDR", srv.URL)

	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"status"}, []string{"node-1", "Groups", "33", "132"}},
		{[]string{"status", "-json"}, []string{`"Groups": 3`}},
		{[]string{"plan"}, []string{"default/web/web (recommend)", "~ count 3 → 2", "why: count needed: 2"}},
	}
	for _, tc := range cases {
		var stdout, stderr bytes.Buffer
		if code := run(tc.args, &stdout, &stderr); code != exitOK {
			t.Fatalf("%v: exit %d: %s", tc.args, code, stderr.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(stdout.String(), w) {
				t.Errorf("%v: output lacks %q:\n%s", tc.args, w, stdout.String())
			}
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"status", "extra"}, &stdout, &stderr); code != exitUsage {
		t.Fatalf("status with an argument: exit %d", code)
	}
}
