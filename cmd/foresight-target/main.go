// Command foresight-target is Foresight's Nomad Autoscaler target plugin. The
// autoscaler runs it from its plugin_dir; see package plugin/target and the README
// for its config keys.
package main

import (
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad-autoscaler/plugins"

	"github.com/foresight-nomad/foresight/internal/version"
	"github.com/foresight-nomad/foresight/plugin/target"
)

func main() {
	plugins.Serve(func(log hclog.Logger) interface{} { return target.New(version.Logged(log)) })
}
