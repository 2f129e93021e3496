// Package simtarget is a Nomad Autoscaler target plugin that resizes the
// provider node groups of a simulated cluster (foresight sim) through sim's
// HTTP API. It is served over go-plugin exactly as the autoscaler's own
// cloud targets are (cmd/foresight-sim-target), so whatever hosts it, the
// Nomad Autoscaler or Foresight's capacity actuator, exercises the real
// plugin path.
//
// Plugin config (SetConfig):
//
//	address  sim's Nomad API URL; default the inherited nomad_address, else
//	         NOMAD_ADDR, else http://127.0.0.1:4646
//
// Target config (Status, Scale):
//
//	node_group  the sim node group to resize (required)
package simtarget

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad-autoscaler/plugins/base"
	"github.com/hashicorp/nomad-autoscaler/plugins/target"
	"github.com/hashicorp/nomad-autoscaler/sdk"
)

// PluginName is the plugin's name, and the name of its binary in a plugin
// directory.
const PluginName = "foresight-sim-target"

// Config keys.
const (
	// ConfigKeyAddress is the plugin config key for sim's URL.
	ConfigKeyAddress = "address"
	// ConfigKeyNodeGroup is the target config key naming the node group.
	ConfigKeyNodeGroup = "node_group"
	// configKeyNomadAddress is what the autoscaler (and Foresight's host)
	// merge into a plugin's config from their own Nomad config.
	configKeyNomadAddress = "nomad_address"
)

// DefaultAddress is used when neither the config nor NOMAD_ADDR name sim.
const DefaultAddress = "http://127.0.0.1:4646"

var _ target.Target = (*Plugin)(nil)

// Plugin is the target plugin. Configure it with SetConfig before use.
type Plugin struct {
	log  hclog.Logger
	http *http.Client

	mu   sync.Mutex
	addr string
}

// New returns an unconfigured plugin.
func New(log hclog.Logger) *Plugin {
	return &Plugin{log: log, http: &http.Client{Timeout: 30 * time.Second}}
}

// PluginInfo says the plugin is the target plugin PluginName.
func (p *Plugin) PluginInfo() (*base.PluginInfo, error) {
	return &base.PluginInfo{Name: PluginName, PluginType: sdk.PluginTypeTarget}, nil
}

// SetConfig sets sim's address: the address key, else nomad_address, else
// NOMAD_ADDR, else DefaultAddress. A malformed address is refused and the
// previous one kept.
func (p *Plugin) SetConfig(config map[string]string) error {
	addr := config[ConfigKeyAddress]
	if addr == "" {
		addr = config[configKeyNomadAddress]
	}
	if addr == "" {
		addr = os.Getenv("NOMAD_ADDR")
	}
	if addr == "" {
		addr = DefaultAddress
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s %q is not an http(s) URL such as %s", ConfigKeyAddress, addr, DefaultAddress)
	}
	p.mu.Lock()
	p.addr = strings.TrimSuffix(addr, "/")
	p.mu.Unlock()
	p.log.Debug("configured", "address", addr)
	return nil
}

// nodeGroup is the part of sim's node group status the plugin reads.
type nodeGroup struct {
	Name         string
	Platform     string
	Desired      int64
	Ready        int64
	Provisioning int64
	Min, Max     int64
	LastEvent    time.Time
}

// Status reports the node group: Count is its desired size, Ready is false
// while any node is still provisioning, and Meta carries the end of its last
// size change as nomad_autoscaler.last_event (Unix nanoseconds), as the
// autoscaler's cloud targets report their last finished activity.
func (p *Plugin) Status(config map[string]string) (*sdk.TargetStatus, error) {
	name, err := nodeGroupOf(config)
	if err != nil {
		return nil, err
	}
	var g nodeGroup
	if err := p.call(http.MethodGet, name, nil, &g); err != nil {
		return nil, err
	}
	st := &sdk.TargetStatus{Ready: g.Provisioning == 0, Count: g.Desired, Meta: map[string]string{}}
	if !g.LastEvent.IsZero() {
		st.Meta[sdk.TargetStatusMetaKeyLastEvent] = strconv.FormatInt(g.LastEvent.UnixNano(), 10)
	}
	return st, nil
}

// Scale sets the node group's desired size to action.Count. New nodes join
// after the group's provisioning delay. On scale-in sim takes the emptiest
// nodes out at once and reschedules their allocations, the outcome of the
// drain a cloud target runs before terminating instances. A dry-run action
// and a count the group already has change nothing.
func (p *Plugin) Scale(action sdk.ScalingAction, config map[string]string) error {
	if action.Count == sdk.StrategyActionMetaValueDryRunCount {
		return nil
	}
	name, err := nodeGroupOf(config)
	if err != nil {
		return err
	}
	if action.Count < 0 {
		return fmt.Errorf("count %d for node group %q is negative", action.Count, name)
	}
	var cur nodeGroup
	if err := p.call(http.MethodGet, name, nil, &cur); err != nil {
		return err
	}
	if cur.Desired == action.Count {
		p.log.Info("scaling not required", "node_group", name, "current_count", cur.Desired, "strategy_count", action.Count)
		return nil
	}
	var after nodeGroup
	if err := p.call(http.MethodPut, name, map[string]int64{"Count": action.Count}, &after); err != nil {
		return fmt.Errorf("failed to perform scaling action: %w", err)
	}
	p.log.Info("scaled node group", "node_group", name, "from", cur.Desired, "to", after.Desired,
		"provisioning", after.Provisioning, "reason", action.Reason)
	return nil
}

func nodeGroupOf(config map[string]string) (string, error) {
	name := strings.TrimSpace(config[ConfigKeyNodeGroup])
	if name == "" {
		return "", fmt.Errorf("required target config %s not found", ConfigKeyNodeGroup)
	}
	return name, nil
}

// call sends one request for node group name to sim and decodes the answer.
func (p *Plugin) call(method, name string, body, out any) error {
	p.mu.Lock()
	addr := p.addr
	p.mu.Unlock()
	if addr == "" {
		return fmt.Errorf("plugin not configured: SetConfig has not been called")
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	u := addr + "/v1/sim/nodegroups/" + url.PathEscape(name)
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return fmt.Errorf("build request for node group %q: %w", name, err)
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return fmt.Errorf("node group %q: %w", name, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("node group %q: read response: %w", name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, strings.TrimSpace(string(data)))
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("node group %q: decode sim's answer: %w", name, err)
	}
	return nil
}
