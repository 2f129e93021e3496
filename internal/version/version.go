// Package version says which build of Foresight is running. `make release`
// sets both values with -ldflags "-X"; a plain `go build` leaves "dev" and
// the commit Go recorded in the binary's build information, if any.
package version

import (
	"fmt"
	"runtime/debug"

	"github.com/hashicorp/go-hclog"
)

// Version is the release, e.g. "0.1.0"; set at build time.
var Version = "dev"

// Commit is the git commit the binary was built from; set at build time.
var Commit = ""

// String is the version and commit in one phrase, as `foresight version`
// and the plugins' start-up log print them.
func String() string {
	commit := Commit
	if commit == "" {
		commit = vcsRevision()
	}
	if commit == "" {
		return Version
	}
	return fmt.Sprintf("%s (commit %s)", Version, commit)
}

// vcsRevision is the commit `go build` stamped, shortened; "" when none.
func vcsRevision() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" && dirty {
		rev += "-dirty"
	}
	return rev
}

// Logged logs the version at start-up and returns log. The Nomad Autoscaler
// plugins call it: base.PluginInfo (autoscaler v0.5.0) has only Name and
// PluginType, and Name must stay the plugin's name, which the autoscaler and
// Foresight's own plugin host check, so the version goes to the log.
func Logged(log hclog.Logger) hclog.Logger {
	log.Info("starting", "version", String())
	return log
}
