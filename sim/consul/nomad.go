package consul

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// Prefixes and meta Nomad puts on what it registers in Consul.
const (
	// NomadTaskPrefix starts the ID of every service Nomad registers for an
	// allocation.
	NomadTaskPrefix = "_nomad-task-"
	// NomadCheckPrefix starts the ID of every check Nomad registers.
	NomadCheckPrefix = "_nomad-check-"
	// ExternalSourceMetaKey is the service meta key Nomad sets to "nomad".
	ExternalSourceMetaKey = "external-source"
)

// scriptCheckTTLBuffer is what Nomad adds to a script check's interval to
// make the TTL of the Consul check it heartbeats.
const scriptCheckTTLBuffer = 31 * time.Second

// NomadService is one service instance a Nomad client registers in Consul
// for an allocation of a job with provider = "consul".
type NomadService struct {
	AllocID string
	// Group is the task group; it names the registration of a group-level
	// service.
	Group string
	// Task is the task of a task-level service, empty for group services.
	Task      string
	Name      string
	PortLabel string
	Address   string
	Port      int
	Tags      []string
	Meta      map[string]string
	Checks    []NomadCheck
}

// NomadCheck is a health check of a NomadService. sim does not probe it:
// its status stays as registered until SetCheckStatus changes it.
type NomadCheck struct {
	// Name defaults to Nomad's `service: "<service>" check`.
	Name string
	// Type is http, tcp, grpc or script. A script check becomes a Consul TTL
	// check of Interval+31s, as Nomad registers it: it goes critical unless
	// SetCheckStatus or SetServiceHealth renews it within that time.
	Type     string
	Path     string // request path of an http check
	Interval time.Duration
	Timeout  time.Duration
	// Status is the initial status; empty means Consul's default, critical.
	Status string
}

// NomadServiceID is the Consul service ID Nomad gives a service of an
// allocation: _nomad-task-<alloc>-group-<group>-<service>-<port label> for a
// group service, _nomad-task-<alloc>-<task>-<service>-<port label> for a
// task service.
func NomadServiceID(allocID, group, task, service, portLabel string) string {
	owner := task
	if owner == "" {
		owner = "group-" + group
	}
	return fmt.Sprintf("%s%s-%s-%s-%s", NomadTaskPrefix, allocID, owner, service, portLabel)
}

// nomadCheckID is the ID Nomad gives a check: a hash of the service ID and
// of the check's definition, so that a changed check gets a new ID.
func nomadCheckID(serviceID string, c NomadCheck) string {
	h := sha1.New()
	for _, part := range []string{serviceID, c.Name, c.Type, c.Path, c.Interval.String(), c.Timeout.String()} {
		_, _ = h.Write([]byte(part))
		_, _ = h.Write([]byte{0})
	}
	return NomadCheckPrefix + hex.EncodeToString(h.Sum(nil))
}

// NomadRegistration is what RegisterNomadService registered.
type NomadRegistration struct {
	ServiceID string
	CheckIDs  []string
}

// RegisterNomadService registers an allocation's service the way a Nomad
// client does: a _nomad-task-… ID, meta external-source = nomad, default
// weights, and _nomad-check-… checks. Registering the same service again
// changes nothing; a changed definition updates it in place.
func (s *Server) RegisterNomadService(svc NomadService) (NomadRegistration, error) {
	if svc.AllocID == "" || svc.Name == "" || svc.PortLabel == "" || (svc.Group == "" && svc.Task == "") {
		return NomadRegistration{}, fmt.Errorf("register nomad service %q: alloc ID, group or task, name and port label are required", svc.Name)
	}
	id := NomadServiceID(svc.AllocID, svc.Group, svc.Task, svc.Name, svc.PortLabel)
	meta := maps.Clone(svc.Meta)
	if meta == nil {
		meta = map[string]string{}
	}
	meta[ExternalSourceMetaKey] = "nomad"
	reg := &api.AgentServiceRegistration{
		ID: id, Name: svc.Name, Tags: slices.Clone(svc.Tags), Port: svc.Port, Address: svc.Address, Meta: meta,
	}
	out := NomadRegistration{ServiceID: id}
	hostPort := net.JoinHostPort(svc.Address, strconv.Itoa(svc.Port))
	for _, c := range svc.Checks {
		if c.Name == "" {
			c.Name = fmt.Sprintf("service: %q check", svc.Name)
		}
		def := &api.AgentServiceCheck{
			CheckID: nomadCheckID(id, c), Name: c.Name, Status: c.Status,
			Interval: c.Interval.String(), Timeout: c.Timeout.String(),
		}
		switch strings.ToLower(c.Type) {
		case "http":
			def.HTTP = "http://" + hostPort + c.Path
		case "tcp":
			def.TCP = hostPort
		case "grpc":
			def.GRPC = hostPort
		case "script":
			// Nomad runs script checks itself and heartbeats their result
			// into a Consul TTL check.
			def.Interval, def.Timeout = "", ""
			def.TTL = (c.Interval + scriptCheckTTLBuffer).String()
		default:
			return NomadRegistration{}, fmt.Errorf("register nomad service %q: check %q: unsupported type %q", id, c.Name, c.Type)
		}
		reg.Checks = append(reg.Checks, def)
		out.CheckIDs = append(out.CheckIDs, def.CheckID)
	}
	if err := s.RegisterService(reg, true); err != nil {
		return NomadRegistration{}, fmt.Errorf("register nomad service %q: %w", id, err)
	}
	return out, nil
}

// DeregisterAlloc removes every service Nomad registered for an allocation,
// as a Nomad client does when the allocation stops. It returns how many it
// removed.
func (s *Server) DeregisterAlloc(allocID string) int {
	prefix := NomadTaskPrefix + allocID + "-"
	s.mu.Lock()
	defer s.unlock()
	t := s.txn()
	n := 0
	for _, sv := range s.catalog.sortedServices(func(sv *service) bool { return strings.HasPrefix(sv.ID, prefix) }) {
		if s.removeServiceLocked(t, sv.ID) {
			n++
		}
	}
	return n
}

// SetServiceHealth sets every check of a service to status, with output,
// as the checks of a healthy or failing allocation would report.
func (s *Server) SetServiceHealth(serviceID, status, output string) error {
	s.mu.Lock()
	_, ok := s.catalog.services[serviceID]
	ids := s.serviceCheckIDsLocked(serviceID)
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("set health of service %q: no such service", serviceID)
	}
	for _, id := range ids {
		if err := s.SetCheckStatus(id, status, output); err != nil {
			return fmt.Errorf("set health of service %q: %w", serviceID, err)
		}
	}
	return nil
}
