package sim

import (
	"cmp"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/sim/consul"
)

// providerNomad marks a service that uses Nomad's own service discovery;
// every other service goes to Consul.
const providerNomad = "nomad"

// Defaults Nomad gives a check that does not set them.
const (
	defaultCheckInterval = 10 * time.Second
	defaultCheckTimeout  = 2 * time.Second
)

// allocServices lists the services an allocation registers, the group's and
// every task's, with tags and metadata interpolated against its node as a
// Nomad client does.
func allocServices(a *simAlloc) []consul.NomadService {
	tg := groupOf(a.api.Job, a.api.TaskGroup)
	if tg == nil {
		return nil
	}
	var out []consul.NomadService
	add := func(task string, s *api.Service) {
		svc := consul.NomadService{
			AllocID: a.api.ID, Group: a.api.TaskGroup, Task: task, Name: s.Name, PortLabel: s.PortLabel,
			Address: a.node.api.Attributes["unique.network.ip-address"], Port: a.portFor(s.PortLabel),
		}
		for _, t := range s.Tags {
			svc.Tags = append(svc.Tags, interpolate(a.node, t))
		}
		if s.Meta != nil {
			svc.Meta = make(map[string]string, len(s.Meta))
			for k, v := range s.Meta {
				svc.Meta[k] = interpolate(a.node, v)
			}
		}
		for _, chk := range s.Checks {
			// sim does not probe: a running allocation is healthy.
			svc.Checks = append(svc.Checks, consul.NomadCheck{
				Name: chk.Name, Type: chk.Type, Path: chk.Path, Status: "passing",
				Interval: cmp.Or(chk.Interval, defaultCheckInterval), Timeout: cmp.Or(chk.Timeout, defaultCheckTimeout),
			})
		}
		out = append(out, svc)
	}
	for _, s := range tg.Services {
		add("", s)
	}
	for _, t := range tg.Tasks {
		for _, s := range t.Services {
			add(t.Name, s)
		}
	}
	return out
}

func isNomadProvider(a *simAlloc, svc consul.NomadService) bool {
	tg := groupOf(a.api.Job, a.api.TaskGroup)
	services := tg.Services
	if svc.Task != "" {
		for _, t := range tg.Tasks {
			if t.Name == svc.Task {
				services = t.Services
			}
		}
	}
	for _, s := range services {
		if s.Name == svc.Name && s.PortLabel == svc.PortLabel {
			return s.Provider == providerNomad
		}
	}
	return false
}

// registerServices registers a's services, in Nomad's own catalog or in
// Consul, as its client does once the allocation runs.
func (c *Cluster) registerServices(a *simAlloc) {
	for _, s := range allocServices(a) {
		id := consul.NomadServiceID(s.AllocID, s.Group, s.Task, s.Name, s.PortLabel)
		if isNomadProvider(a, s) {
			idx := c.bump(tableServices)
			c.services[id] = &api.ServiceRegistration{
				ID: id, ServiceName: s.Name, Namespace: a.api.Namespace, NodeID: a.node.api.ID,
				Datacenter: a.node.api.Datacenter, JobID: a.api.JobID, AllocID: a.api.ID, Tags: s.Tags,
				Address: s.Address, Port: s.Port, CreateIndex: idx, ModifyIndex: idx,
			}
			continue
		}
		if c.consul == nil {
			continue
		}
		if _, err := c.consul.RegisterNomadService(s); err != nil {
			c.log.Warn("register service in Consul", "service", id, "error", err)
		}
	}
	a.registered = true
}

// deregisterServices removes what registerServices added.
func (c *Cluster) deregisterServices(a *simAlloc) {
	if !a.registered {
		return
	}
	a.registered = false
	for _, s := range allocServices(a) {
		id := consul.NomadServiceID(s.AllocID, s.Group, s.Task, s.Name, s.PortLabel)
		if _, ok := c.services[id]; ok {
			c.bump(tableServices)
			delete(c.services, id)
		}
	}
	if c.consul != nil {
		c.consul.DeregisterAlloc(a.api.ID)
	}
}
