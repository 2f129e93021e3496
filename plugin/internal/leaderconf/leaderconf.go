// Package leaderconf reads the config keys with which the Foresight
// plugins name the leader, and keeps one leader client per distinct
// config so that a plugin called on every evaluation reuses its
// connections.
package leaderconf

import (
	"strings"
	"sync"
	"time"

	"github.com/foresight-nomad/foresight/leaderapi"
)

// Config keys shared by the plugins that talk to the leader.
const (
	// Address is the leader's HTTP URL (any agent will do: standbys
	// redirect). Default: FORESIGHT_ADDR, else the Consul election key.
	Address = "address"
	// ConsulAddress is the Consul agent used to find the leader when no
	// address is given. Default: CONSUL_HTTP_ADDR.
	ConsulAddress = "consul_address"
	// ConsulToken is the Consul ACL token. Default: CONSUL_HTTP_TOKEN.
	ConsulToken = "consul_token"
	// LeaderKey is the Consul KV key of the leader lock.
	LeaderKey = "leader_key"
)

// Keys are the config keys that name the leader.
var Keys = []string{Address, ConsulAddress, ConsulToken, LeaderKey}

// Timeout bounds one request of a plugin to the leader.
const Timeout = 15 * time.Second

// New builds a leader client from plugin config.
func New(config map[string]string) (*leaderapi.Client, error) {
	return leaderapi.New(leaderapi.Config{
		Address:       config[Address],
		ConsulAddress: config[ConsulAddress],
		ConsulToken:   config[ConsulToken],
		LeaderKey:     config[LeaderKey],
		Timeout:       Timeout,
	})
}

// Names reports whether config names a leader of its own.
func Names(config map[string]string) bool {
	return config[Address] != "" || config[ConsulAddress] != "" || config[LeaderKey] != ""
}

// Cache keeps one leader client per leader address, Consul address, Consul
// token and leader key.
type Cache struct {
	mu sync.Mutex
	m  map[string]*leaderapi.Client
}

// Get returns the client for config, made on first use.
func (c *Cache) Get(config map[string]string) (*leaderapi.Client, error) {
	parts := make([]string, len(Keys))
	for i, k := range Keys {
		parts[i] = config[k]
	}
	key := strings.Join(parts, "\x00")
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.m[key]; ok {
		return l, nil
	}
	l, err := New(config)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]*leaderapi.Client{}
	}
	c.m[key] = l
	return l, nil
}
