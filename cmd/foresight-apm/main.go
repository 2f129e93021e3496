// Command foresight-apm is Foresight's Nomad Autoscaler apm plugin. The
// autoscaler runs it from its plugin_dir; see package plugin/apm and the README
// for its config keys.
package main

import (
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad-autoscaler/plugins"

	"github.com/foresight-nomad/foresight/internal/version"
	"github.com/foresight-nomad/foresight/plugin/apm"
)

func main() {
	plugins.Serve(func(log hclog.Logger) interface{} { return apm.New(version.Logged(log)) })
}
