// Command foresight-strategy is Foresight's Nomad Autoscaler strategy plugin. The
// autoscaler runs it from its plugin_dir; see package plugin/strategy and the README
// for its config keys.
package main

import (
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad-autoscaler/plugins"

	"github.com/foresight-nomad/foresight/internal/version"
	"github.com/foresight-nomad/foresight/plugin/strategy"
)

func main() {
	plugins.Serve(func(log hclog.Logger) interface{} { return strategy.New(version.Logged(log)) })
}
