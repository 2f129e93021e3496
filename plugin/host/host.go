// Package host loads Nomad Autoscaler target plugins for Foresight's
// capacity actuator, the way the autoscaler's plugin manager loads external
// plugins: the binary <plugin_dir>/<driver> is started as a go-plugin
// process with the autoscaler's handshake and plugin set over gRPC, its
// PluginInfo must name a target plugin called driver, and SetConfig gets
// the operator's config (merged with Foresight's Nomad config unless
// nomad_config_inherit = "false", as the autoscaler does).
//
// Any target plugin built against the autoscaler's SDK works: the
// autoscaler's own aws-asg, gce-mig, azure-vmss (built from its
// plugins/builtin/target/<name> packages) or a third party's.
package host

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/nomad-autoscaler/plugins"
	"github.com/hashicorp/nomad-autoscaler/plugins/base"
	"github.com/hashicorp/nomad-autoscaler/plugins/target"
	"github.com/hashicorp/nomad-autoscaler/sdk"
	nomadapi "github.com/hashicorp/nomad/api"
)

// Host starts and owns target plugin processes. It is safe for concurrent
// use; Close kills every process it started.
type Host struct {
	dir   string
	nomad *nomadapi.Config
	log   hclog.Logger

	mu      sync.Mutex
	closed  bool
	plugins []*Plugin
}

// New returns a host that loads plugins from dir. nomad, when not nil, is
// merged into each plugin's config as the autoscaler merges its agent's
// Nomad config (nomad_address, nomad_token, …).
func New(dir string, nomad *nomadapi.Config, log hclog.Logger) *Host {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Host{dir: dir, nomad: nomad, log: log.Named("plugins")}
}

// Plugin is one loaded target plugin. It satisfies the autoscaler's
// target.Target; if its process dies, the next call starts it again and
// sets its config before going on.
type Plugin struct {
	h      *Host
	name   string
	driver string
	path   string
	config map[string]string

	mu     sync.Mutex
	client *plugin.Client
	impl   target.Target
}

var _ target.Target = (*Plugin)(nil)

// Open starts the target plugin driver for the capacity target name with
// config. It fails, starting nothing, when the binary is missing or not
// executable, when the plugin is not a target plugin called driver, or when
// it refuses the config.
func (h *Host) Open(name, driver string, config map[string]string) (*Plugin, error) {
	path, err := h.binary(driver)
	if err != nil {
		return nil, fmt.Errorf("capacity target %q: %w", name, err)
	}
	cfg, err := h.pluginConfig(config)
	if err != nil {
		return nil, fmt.Errorf("capacity target %q: %w", name, err)
	}
	p := &Plugin{h: h, name: name, driver: driver, path: path, config: cfg}
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("capacity target %q: plugin host is closed", name)
	}
	p.mu.Lock()
	err = p.launch()
	p.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("capacity target %q: %w", name, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		p.kill()
		return nil, fmt.Errorf("capacity target %q: plugin host is closed", name)
	}
	h.plugins = append(h.plugins, p)
	return p, nil
}

// Close kills every plugin process the host started; plugins opened from it
// fail from then on.
func (h *Host) Close() {
	h.mu.Lock()
	h.closed = true
	ps := h.plugins
	h.plugins = nil
	h.mu.Unlock()
	for _, p := range ps {
		p.mu.Lock()
		p.kill()
		p.mu.Unlock()
	}
}

// binary finds the plugin executable as the autoscaler does: the driver
// name (less a .exe suffix) in the plugin directory.
func (h *Host) binary(driver string) (string, error) {
	if h.dir == "" {
		return "", fmt.Errorf("no plugin dir configured to find driver %q in", driver)
	}
	if driver == "" || driver != filepath.Base(driver) || driver == "." || driver == ".." {
		return "", fmt.Errorf("driver %q must be a plugin binary name, not a path", driver)
	}
	path := filepath.Join(h.dir, strings.TrimSuffix(driver, ".exe"))
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("no plugin binary %s for driver %q in plugin dir %s", filepath.Base(path), driver, h.dir)
	case err != nil:
		return "", fmt.Errorf("plugin binary for driver %q: %w", driver, err)
	case fi.IsDir():
		return "", fmt.Errorf("plugin binary %s for driver %q is a directory", path, driver)
	case fi.Mode().Perm()&0o111 == 0:
		return "", fmt.Errorf("plugin binary %s for driver %q is not executable", path, driver)
	}
	return path, nil
}

// pluginConfig copies config and merges in the host's Nomad config unless
// nomad_config_inherit says not to.
func (h *Host) pluginConfig(config map[string]string) (map[string]string, error) {
	cfg := make(map[string]string, len(config))
	for k, v := range config {
		cfg[k] = v
	}
	inherit := true
	if v, ok := cfg[plugins.ConfigKeyNomadConfigInherit]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("config %s = %q is not a boolean", plugins.ConfigKeyNomadConfigInherit, v)
		}
		inherit = b
	}
	if inherit && h.nomad != nil {
		inheritNomad(cfg, h.nomad)
	}
	return cfg, nil
}

// launch starts the process, checks it and sets its config. p.mu is held.
func (p *Plugin) launch() error {
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: plugins.Handshake,
		Plugins: map[string]plugin.Plugin{
			sdk.PluginTypeBase:   &base.PluginBase{},
			sdk.PluginTypeTarget: &target.PluginTarget{},
		},
		Cmd:              command(p.path),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           p.h.log.Named(p.name),
	})
	fail := func(format string, args ...any) error {
		client.Kill()
		return fmt.Errorf(format, args...)
	}
	rpc, err := client.Client()
	if err != nil {
		return fail("start plugin %s: %v", p.path, err)
	}
	raw, err := rpc.Dispense(sdk.PluginTypeTarget)
	if err != nil {
		return fail("dispense plugin %s: %v", p.path, err)
	}
	impl, ok := raw.(target.Target)
	if !ok {
		return fail("plugin %s (%T) is not a target plugin", p.path, raw)
	}
	info, err := impl.PluginInfo()
	if err != nil {
		return fail("plugin %s: PluginInfo: %v", p.path, err)
	}
	if info.PluginType != sdk.PluginTypeTarget {
		return fail("plugin %s is a %s plugin, not a target plugin", p.path, info.PluginType)
	}
	if info.Name != p.driver {
		return fail("plugin %s calls itself %q, not %q as configured", p.path, info.Name, p.driver)
	}
	if err := impl.SetConfig(p.config); err != nil {
		return fail("plugin %s refused its config: %v", p.path, err)
	}
	p.client, p.impl = client, impl
	p.h.log.Info("launched target plugin", "name", p.name, "driver", p.driver)
	return nil
}

// kill stops the process. p.mu is held.
func (p *Plugin) kill() {
	if p.client != nil {
		p.client.Kill()
		p.client, p.impl = nil, nil
	}
}

// current returns the live plugin, starting it again if its process died.
func (p *Plugin) current() (target.Target, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil && !p.client.Exited() {
		return p.impl, nil
	}
	p.h.mu.Lock()
	closed := p.h.closed
	p.h.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("capacity target %q: plugin host is closed", p.name)
	}
	p.h.log.Warn("target plugin exited; starting it again", "name", p.name, "driver", p.driver)
	p.kill()
	if err := p.launch(); err != nil {
		return nil, fmt.Errorf("capacity target %q: %w", p.name, err)
	}
	return p.impl, nil
}

// PluginInfo is the plugin's own.
func (p *Plugin) PluginInfo() (*base.PluginInfo, error) {
	t, err := p.current()
	if err != nil {
		return nil, err
	}
	return t.PluginInfo()
}

// SetConfig replaces the plugin's config (merged with the host's Nomad
// config as at Open). A refused config leaves the previous one in force.
func (p *Plugin) SetConfig(config map[string]string) error {
	cfg, err := p.h.pluginConfig(config)
	if err != nil {
		return err
	}
	t, err := p.current()
	if err != nil {
		return err
	}
	if err := t.SetConfig(cfg); err != nil {
		return err
	}
	p.mu.Lock()
	p.config = cfg
	p.mu.Unlock()
	return nil
}

// Status calls the plugin's Status.
func (p *Plugin) Status(config map[string]string) (*sdk.TargetStatus, error) {
	t, err := p.current()
	if err != nil {
		return nil, err
	}
	return t.Status(config)
}

// Scale calls the plugin's Scale.
func (p *Plugin) Scale(action sdk.ScalingAction, config map[string]string) error {
	t, err := p.current()
	if err != nil {
		return err
	}
	return t.Scale(action, config)
}

// inheritNomad fills the nomad_* keys of a plugin config that are not set
// from the host's Nomad config: the keys and forms of the autoscaler's
// sdk/helper/nomad.MergeMapWithAgentConfig, which is not imported because it
// drags in the autoscaler agent's config package.
func inheritNomad(m map[string]string, c *nomadapi.Config) {
	set := func(k, v string) {
		if v != "" && m[k] == "" {
			m[k] = v
		}
	}
	addr := c.Address
	if u := c.URL(); addr != "" && u != nil {
		addr = u.String()
	}
	set("nomad_address", addr)
	set("nomad_region", c.Region)
	set("nomad_namespace", c.Namespace)
	set("nomad_token", c.SecretID)
	if t := c.TLSConfig; t != nil {
		set("nomad_ca-cert", t.CACert)
		set("nomad_ca-path", t.CAPath)
		set("nomad_client-cert", t.ClientCert)
		set("nomad_client-key", t.ClientKey)
		set("nomad_tls-server-name", t.TLSServerName)
		if t.Insecure {
			set("nomad_skip-verify", "true")
		}
	}
	if a := c.HttpAuth; a != nil {
		auth := a.Username
		if a.Password != "" {
			auth += ":" + a.Password
		}
		set("nomad_http-auth", auth)
	}
	if c.WaitTime != 0 {
		set("nomad_block-query-wait-time", c.WaitTime.String())
	}
}
