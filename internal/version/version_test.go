package version

import (
	"strings"
	"testing"
)

func TestStringNamesVersionAndCommit(t *testing.T) {
	defer func(v, c string) { Version, Commit = v, c }(Version, Commit)
	Version, Commit = "0.1.0", "0123456789ab"
	if got := String(); got != "0.1.0 (commit 0123456789ab)" {
		t.Fatalf("String() = %q", got)
	}
	Commit = ""
	if got := String(); !strings.HasPrefix(got, "0.1.0") {
		t.Fatalf("String() without a commit = %q", got)
	}
}
