// Command foresight-sim-target is a Nomad Autoscaler target plugin that
// resizes the provider node groups of a simulated cluster (foresight sim).
// Put it in a plugin directory and configure it as driver
// "foresight-sim-target"; see package plugin/simtarget for its config.
package main

import (
	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad-autoscaler/plugins"

	"github.com/foresight-nomad/foresight/internal/version"
	"github.com/foresight-nomad/foresight/plugin/simtarget"
)

func main() {
	plugins.Serve(func(log hclog.Logger) interface{} { return simtarget.New(version.Logged(log)) })
}
