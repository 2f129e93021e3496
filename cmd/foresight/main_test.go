package main

import (
	"bytes"
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
