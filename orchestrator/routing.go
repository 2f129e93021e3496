package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/profiles"
	"github.com/foresight-nomad/foresight/telemetry"
)

// Routing names. Consul meta keys cannot hold dots, so the node meta
// foresight.platform reaches a service as foresight_platform.
const (
	// PlatformServiceMeta is the service meta key that carries the platform
	// of the node an instance runs on.
	PlatformServiceMeta = "foresight_platform"
	// PlatformServiceMetaValue is what the service stanza sets it to; Nomad
	// interpolates the node's meta into it.
	PlatformServiceMetaValue = "${meta." + profiles.MetaPlatform + "}"
	// PlatformTagPrefix starts the service tag Fabio routes weigh by (Fabio
	// matches tags, not meta): "foresight_platform=external".
	PlatformTagPrefix = PlatformServiceMeta + "="
	// ManagedByMeta and ManagedByValue mark the config entries Foresight
	// writes; an entry without the mark belongs to the user.
	ManagedByMeta  = "managed-by"
	ManagedByValue = "foresight"
	// DefaultWeightTolerance is how many percentage points a weight must
	// move before a splitter or Fabio line is rewritten.
	DefaultWeightTolerance = 2.0
)

// routePlatforms are the subsets a managed resolver defines, in splitter order.
var routePlatforms = []string{profiles.PlatformExternal, profiles.PlatformProvider}

// splitProtocols are the protocols Consul allows a service-splitter on.
var splitProtocols = []string{"http", "http2", "grpc"}

// Router keeps a group's Consul traffic on the platforms its healthy
// instances run on. Its promise, per Route:
//
//   - It writes only config entries of kind service-resolver and
//     service-splitter named after the group's Consul services, marked
//     Meta {"managed-by": "foresight"}, and, when FabioKey is set, its own
//     "route weight" lines in that KV value. It never edits the
//     _nomad-task-… registrations Nomad owns, nor an entry without the
//     mark, nor another line of the Fabio value.
//   - Every write is a check-and-set on the ModifyIndex read; when Consul
//     refuses one because someone wrote in between, it reads again and
//     decides again, so no concurrent write is lost.
//   - The resolver has subsets external and provider (passing instances
//     whose Service.Meta.foresight_platform says so), each failing over to
//     the other, so that traffic still finds instances when a side empties
//     before the next pass. The splitter sends each side a share
//     proportional to its passing instances, in hundredths of a percent
//     summing to 100 as Consul requires. A side with no instances gets no
//     leg; when every instance is on one side the splitter keeps one leg of
//     100 rather than being deleted: the chain keeps its shape, the next
//     move only changes weights, and the failover covers a side that
//     empties. Weights are rewritten only when one moves by more than
//     Tolerance points or a side appears or empties.
//   - A service it cannot route safely is left alone and the result says
//     why: no platform meta (with the stanza to add), instances without a
//     platform, no passing instance, a protocol Consul cannot split, or an
//     entry that belongs to the user.
//
// Route does not look at modes or pause: the leader calls it only for
// groups it may act on.
type Router struct {
	Consul *consulapi.Client
	// FabioKey, when set, is the Consul KV key of Fabio's manual routes
	// (Fabio's registry.consul.kvpath, "fabio/config" by default) whose
	// route weight lines for the group's services Route maintains.
	FabioKey string
	Log      hclog.Logger
	// Tolerance is in percentage points; 0 means DefaultWeightTolerance.
	Tolerance float64
	// MaxAttempts bounds read-write rounds per entry; 0 means RetryLimit.
	MaxAttempts int

	// beforeWrite, in tests, runs before each check-and-set write; what
	// names the entry ("service-resolver", "service-splitter", "kv").
	beforeWrite func(what string)
}

// RouteResult is what Route did for one group, for the decision log.
type RouteResult struct {
	Group    string         `json:"group"`
	Services []ServiceRoute `json:"services"`
}

// ServiceRoute is what Route did for one Consul service of the group.
type ServiceRoute struct {
	Service string `json:"service"`
	// Instances counts passing instances by platform.
	Instances map[string]int `json:"instances,omitempty"`
	// Before are the splitter's weights as read (percent by platform), nil
	// when there was no managed splitter; After those it has now, or would
	// have had it been written.
	Before map[string]float64 `json:"before,omitempty"`
	After  map[string]float64 `json:"after,omitempty"`
	// Written lists what was written: "service-resolver web",
	// "service-splitter web", "kv fabio/config".
	Written []string `json:"written,omitempty"`
	Reasons []string `json:"reasons"`
}

func (s *ServiceRoute) why(format string, args ...any) {
	s.Reasons = append(s.Reasons, fmt.Sprintf(format, args...))
}

// Route reads the passing instances of each Consul service of job's group
// and writes its resolver, splitter and Fabio lines as promised above. An
// error means Consul could not be read or a write failed; a service left
// alone is not an error (see its Reasons).
func (r *Router) Route(ctx context.Context, job *nomadapi.Job, group string) (RouteResult, error) {
	res := RouteResult{Group: telemetry.GroupRef{Namespace: deref(job.Namespace), Job: deref(job.ID), Group: group}.Key()}
	tg := groupOf(job, group)
	if tg == nil {
		return res, fmt.Errorf("job %q has no group %q", deref(job.ID), group)
	}
	for _, svc := range consulServices(tg) {
		sr, err := r.routeService(ctx, svc)
		res.Services = append(res.Services, sr)
		if err != nil {
			return res, fmt.Errorf("route service %q: %w", svc.Name, err)
		}
		r.log().Debug("routed", "group", res.Group, "service", svc.Name, "written", sr.Written, "reasons", sr.Reasons)
	}
	return res, nil
}

func (r *Router) log() hclog.Logger {
	if r.Log == nil {
		return hclog.NewNullLogger()
	}
	return r.Log
}

// consulServices are tg's services registered in Consul (not provider =
// "nomad"), group-level and task-level, once per name.
func consulServices(tg *nomadapi.TaskGroup) []*nomadapi.Service {
	var out []*nomadapi.Service
	seen := map[string]bool{}
	add := func(svcs []*nomadapi.Service) {
		for _, s := range svcs {
			if s == nil || s.Provider == "nomad" || seen[s.Name] {
				continue
			}
			seen[s.Name] = true
			out = append(out, s)
		}
	}
	add(tg.Services)
	for _, t := range tg.Tasks {
		add(t.Services)
	}
	return out
}

func (r *Router) routeService(ctx context.Context, svc *nomadapi.Service) (ServiceRoute, error) {
	sr := ServiceRoute{Service: svc.Name}
	if _, ok := svc.Meta[PlatformServiceMeta]; !ok {
		sr.why("routing left alone: service %q has no %s meta; add to its service block: meta { %s = %q }",
			svc.Name, PlatformServiceMeta, PlatformServiceMeta, PlatformServiceMetaValue)
		return sr, nil
	}
	q := (&consulapi.QueryOptions{}).WithContext(ctx)
	entries, _, err := r.Consul.Health().Service(svc.Name, "", true, q)
	if err != nil {
		return sr, fmt.Errorf("read passing instances: %w", err)
	}
	sr.Instances = map[string]int{}
	var unknown []string
	for _, e := range entries {
		p := e.Service.Meta[PlatformServiceMeta]
		if !slices.Contains(routePlatforms, p) {
			unknown = append(unknown, fmt.Sprintf("%s (%s = %q)", e.Service.ID, PlatformServiceMeta, p))
			continue
		}
		sr.Instances[p]++
	}
	switch {
	case len(unknown) > 0:
		sr.why("routing left alone: %d passing instances have no platform, so no subset would hold them (node meta %s not published yet?): %s",
			len(unknown), profiles.MetaPlatform, strings.Join(unknown, ", "))
		return sr, nil
	case len(entries) == 0:
		sr.why("routing left alone: no passing instance")
		return sr, nil
	}
	want := splitWeights(sr.Instances)
	sr.After = want

	protocol, err := r.protocol(ctx, svc.Name)
	if err != nil {
		return sr, err
	}
	if !slices.Contains(splitProtocols, protocol) {
		sr.why("Consul entries left alone: service %q speaks %s and Consul splits only %s; set Protocol = \"http\" (or http2, grpc) in its service-defaults",
			svc.Name, protocol, strings.Join(splitProtocols, ", "))
		sr.After = nil
	} else if err := r.writeEntries(ctx, svc.Name, want, &sr); err != nil {
		return sr, err
	}
	if r.FabioKey != "" {
		if err := r.writeFabio(ctx, svc, want, &sr); err != nil {
			return sr, err
		}
	}
	return sr, nil
}

// splitWeights shares 100 between the platforms with instances, in
// proportion to them, in hundredths (largest remainder), as Consul sums
// split weights in hundredths of a percent.
func splitWeights(n map[string]int) map[string]float64 {
	total := 0
	for _, p := range routePlatforms {
		total += n[p]
	}
	type share struct {
		p     string
		units int
		rem   float64
	}
	var shares []share
	left := 10000
	for _, p := range routePlatforms {
		if n[p] == 0 {
			continue
		}
		exact := float64(n[p]) * 10000 / float64(total)
		u := int(math.Floor(exact))
		shares = append(shares, share{p, u, exact - float64(u)})
		left -= u
	}
	sort.SliceStable(shares, func(i, j int) bool { return shares[i].rem > shares[j].rem })
	for i := 0; left > 0; i, left = i+1, left-1 {
		shares[i%len(shares)].units++
	}
	out := make(map[string]float64, len(shares))
	for _, s := range shares {
		out[s.p] = float64(s.units) / 100
	}
	return out
}

// weightsMoved reports whether weights must be rewritten from old to want: a side
// appears or empties, or moves by more than tol points.
func weightsMoved(old, want map[string]float64, tol float64) bool {
	for _, p := range routePlatforms {
		o, w := old[p], want[p]
		if (o == 0) != (w == 0) || math.Abs(o-w) > tol {
			return true
		}
	}
	return false
}

func (r *Router) tolerance() float64 {
	if r.Tolerance > 0 {
		return r.Tolerance
	}
	return DefaultWeightTolerance
}

func (r *Router) attempts() int {
	if r.MaxAttempts > 0 {
		return r.MaxAttempts
	}
	return RetryLimit
}

// protocol is the protocol the service's discovery chain uses: its
// service-defaults, else proxy-defaults global, else tcp.
func (r *Router) protocol(ctx context.Context, name string) (string, error) {
	q := (&consulapi.QueryOptions{}).WithContext(ctx)
	e, err := r.getEntry(consulapi.ServiceDefaults, name, q)
	if err != nil {
		return "", err
	}
	if sd, ok := e.(*consulapi.ServiceConfigEntry); ok && sd.Protocol != "" {
		return strings.ToLower(sd.Protocol), nil
	}
	e, err = r.getEntry(consulapi.ProxyDefaults, consulapi.ProxyConfigGlobal, q)
	if err != nil {
		return "", err
	}
	if pd, ok := e.(*consulapi.ProxyConfigEntry); ok {
		if p, ok := pd.Config["protocol"].(string); ok && p != "" {
			return strings.ToLower(p), nil
		}
	}
	return "tcp", nil
}

// getEntry reads a config entry, nil when there is none.
func (r *Router) getEntry(kind, name string, q *consulapi.QueryOptions) (consulapi.ConfigEntry, error) {
	e, _, err := r.Consul.ConfigEntries().Get(kind, name, q)
	var se consulapi.StatusError
	if errors.As(err, &se) && se.Code == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s %q: %w", kind, name, err)
	}
	return e, nil
}

func managedEntry(meta map[string]string) bool { return meta[ManagedByMeta] == ManagedByValue }

// writeEntries brings the service's resolver, then its splitter, to what
// want needs, each with check-and-set, re-reading after a refusal.
func (r *Router) writeEntries(ctx context.Context, name string, want map[string]float64, sr *ServiceRoute) error {
	q := (&consulapi.QueryOptions{}).WithContext(ctx)
	wo := (&consulapi.WriteOptions{}).WithContext(ctx)
	for attempt := 1; ; attempt++ {
		if attempt > r.attempts() {
			return fmt.Errorf("config entries of %q changed under every one of %d attempts; last weights not written", name, r.attempts())
		}
		e, err := r.getEntry(consulapi.ServiceResolver, name, q)
		if err != nil {
			return err
		}
		res, _ := e.(*consulapi.ServiceResolverConfigEntry)
		e, err = r.getEntry(consulapi.ServiceSplitter, name, q)
		if err != nil {
			return err
		}
		spl, _ := e.(*consulapi.ServiceSplitterConfigEntry)
		if user := userOwned(res, spl); user != "" {
			sr.why("Consul entries left alone: %s %q belongs to the user (no Meta %s = %q); not overwritten", user, name, ManagedByMeta, ManagedByValue)
			sr.After = nil
			return nil
		}
		sr.Before = splitterWeights(spl)

		resolver := wantResolver(name, want)
		if res == nil || !sameResolver(res, resolver) {
			ok, err := r.cas(wo, "service-resolver", resolver, entryIndex(res))
			if err != nil {
				return fmt.Errorf("write service-resolver %q: %w", name, err)
			}
			if !ok {
				sr.why("service-resolver %q changed since it was read: read again", name)
				continue
			}
			sr.Written = append(sr.Written, "service-resolver "+name)
			sr.why("service-resolver %q written: subsets %s, default subset %s, each failing over to the other",
				name, strings.Join(routePlatforms, " and "), resolver.DefaultSubset)
		}

		if spl != nil && !weightsMoved(sr.Before, want, r.tolerance()) {
			sr.After = sr.Before
			sr.why("service-splitter %q kept at %s: wanted %s is within %.4g points", name, weightsString(sr.Before), weightsString(want), r.tolerance())
			return nil
		}
		ok, err := r.cas(wo, "service-splitter", wantSplitter(name, want), entryIndex(spl))
		if err != nil {
			return fmt.Errorf("write service-splitter %q: %w", name, err)
		}
		if !ok {
			sr.why("service-splitter %q changed since it was read: read again", name)
			continue
		}
		sr.Written = append(sr.Written, "service-splitter "+name)
		sr.why("service-splitter %q %s → %s: passing instances %s", name, weightsString(sr.Before), weightsString(want), countsString(sr.Instances))
		return nil
	}
}

// userOwned names the kind of an existing entry without Foresight's mark.
func userOwned(res *consulapi.ServiceResolverConfigEntry, spl *consulapi.ServiceSplitterConfigEntry) string {
	switch {
	case res != nil && !managedEntry(res.Meta):
		return consulapi.ServiceResolver
	case spl != nil && !managedEntry(spl.Meta):
		return consulapi.ServiceSplitter
	}
	return ""
}

func entryIndex(e consulapi.ConfigEntry) uint64 {
	switch v := e.(type) {
	case *consulapi.ServiceResolverConfigEntry:
		if v != nil {
			return v.ModifyIndex
		}
	case *consulapi.ServiceSplitterConfigEntry:
		if v != nil {
			return v.ModifyIndex
		}
	}
	return 0
}

// cas writes e only if its ModifyIndex is still index (0: only if absent).
func (r *Router) cas(wo *consulapi.WriteOptions, what string, e consulapi.ConfigEntry, index uint64) (bool, error) {
	if r.beforeWrite != nil {
		r.beforeWrite(what)
	}
	ok, _, err := r.Consul.ConfigEntries().CAS(e, index, wo)
	return ok, err
}

func subsetFilter(platform string) string {
	return fmt.Sprintf("Service.Meta.%s == %q", PlatformServiceMeta, platform)
}

func wantResolver(name string, want map[string]float64) *consulapi.ServiceResolverConfigEntry {
	def := profiles.PlatformExternal
	if want[def] == 0 {
		def = profiles.PlatformProvider
	}
	e := &consulapi.ServiceResolverConfigEntry{
		Kind: consulapi.ServiceResolver, Name: name, DefaultSubset: def,
		Subsets:  map[string]consulapi.ServiceResolverSubset{},
		Failover: map[string]consulapi.ServiceResolverFailover{},
		Meta:     map[string]string{ManagedByMeta: ManagedByValue},
	}
	for i, p := range routePlatforms {
		e.Subsets[p] = consulapi.ServiceResolverSubset{Filter: subsetFilter(p), OnlyPassing: true}
		e.Failover[p] = consulapi.ServiceResolverFailover{ServiceSubset: routePlatforms[1-i]}
	}
	return e
}

// sameResolver compares what Foresight sets in a resolver.
func sameResolver(a, b *consulapi.ServiceResolverConfigEntry) bool {
	if a.DefaultSubset != b.DefaultSubset || len(a.Subsets) != len(b.Subsets) || len(a.Failover) != len(b.Failover) {
		return false
	}
	for k, s := range b.Subsets {
		if a.Subsets[k] != s {
			return false
		}
	}
	for k, f := range b.Failover {
		if g, ok := a.Failover[k]; !ok || g.ServiceSubset != f.ServiceSubset || g.Service != "" || len(g.Targets) > 0 || len(g.Datacenters) > 0 {
			return false
		}
	}
	return true
}

func wantSplitter(name string, want map[string]float64) *consulapi.ServiceSplitterConfigEntry {
	e := &consulapi.ServiceSplitterConfigEntry{
		Kind: consulapi.ServiceSplitter, Name: name,
		Meta: map[string]string{ManagedByMeta: ManagedByValue},
	}
	for _, p := range routePlatforms {
		if w := want[p]; w > 0 {
			e.Splits = append(e.Splits, consulapi.ServiceSplit{Weight: float32(w), ServiceSubset: p})
		}
	}
	return e
}

// splitterWeights reads a managed splitter's weights back, rounded to the
// hundredths Consul counts in; nil for no splitter.
func splitterWeights(e *consulapi.ServiceSplitterConfigEntry) map[string]float64 {
	if e == nil {
		return nil
	}
	out := map[string]float64{}
	for _, s := range e.Splits {
		out[s.ServiceSubset] += math.Round(float64(s.Weight)*100) / 100
	}
	return out
}

func weightsString(w map[string]float64) string {
	if w == nil {
		return "none"
	}
	var parts []string
	for _, p := range slices.Sorted(maps.Keys(w)) {
		parts = append(parts, fmt.Sprintf("%s %g", p, w[p]))
	}
	return strings.Join(parts, " / ")
}

func countsString(n map[string]int) string {
	var parts []string
	for _, p := range routePlatforms {
		parts = append(parts, fmt.Sprintf("%s %d", p, n[p]))
	}
	return strings.Join(parts, ", ")
}

// Fabio's manual override lines.

// fabioSources are the route sources of svc's urlprefix- tags, as Fabio
// builds them: lower-cased host, then the path; options dropped.
func fabioSources(tags []string) []string {
	var out []string
	for _, t := range tags {
		t = strings.TrimSpace(t)
		rest, ok := strings.CutPrefix(t, "urlprefix-")
		if !ok {
			continue
		}
		src, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
		if host, path, ok := strings.Cut(src, "/"); ok && !strings.HasPrefix(src, ":") {
			src = strings.ToLower(host) + "/" + path
		}
		if src != "" && !slices.Contains(out, src) {
			out = append(out, src)
		}
	}
	return out
}

func fabioLine(svc, src, platform string, weight float64) string {
	return fmt.Sprintf("route weight %s %s weight %.4f tags %q", svc, src, weight/100, PlatformTagPrefix+platform)
}

// ownFabioLine parses a line Foresight writes for svc: its source,
// platform and weight in percent.
func ownFabioLine(line, svc string) (src, platform string, weight float64, ok bool) {
	f := strings.Fields(strings.TrimSpace(line))
	if len(f) != 8 || f[0] != "route" || f[1] != "weight" || f[2] != svc || f[4] != "weight" || f[6] != "tags" {
		return "", "", 0, false
	}
	tag, err := strconv.Unquote(f[7])
	if err != nil {
		return "", "", 0, false
	}
	platform, ok = strings.CutPrefix(tag, PlatformTagPrefix)
	if !ok {
		return "", "", 0, false
	}
	w, err := strconv.ParseFloat(f[5], 64)
	if err != nil {
		return "", "", 0, false
	}
	return f[3], platform, math.Round(w*10000) / 100, true
}

// writeFabio brings svc's route weight lines in the Fabio KV value to
// want, keeping every other line as it is, with check-and-set on the key.
func (r *Router) writeFabio(ctx context.Context, svc *nomadapi.Service, want map[string]float64, sr *ServiceRoute) error {
	srcs := fabioSources(svc.Tags)
	if len(srcs) == 0 {
		sr.why("Fabio left alone: service %q has no urlprefix- tag", svc.Name)
		return nil
	}
	if !slices.Contains(svc.Tags, PlatformTagPrefix+PlatformServiceMetaValue) {
		sr.why("Fabio left alone: Fabio weighs by tags; add to service %q: tags = [%q]", svc.Name, PlatformTagPrefix+PlatformServiceMetaValue)
		return nil
	}
	q := (&consulapi.QueryOptions{}).WithContext(ctx)
	wo := (&consulapi.WriteOptions{}).WithContext(ctx)
	for attempt := 1; attempt <= r.attempts(); attempt++ {
		pair, _, err := r.Consul.KV().Get(r.FabioKey, q)
		if err != nil {
			return fmt.Errorf("read Fabio routes %q: %w", r.FabioKey, err)
		}
		var text string
		var index uint64
		if pair != nil {
			text, index = string(pair.Value), pair.ModifyIndex
		}
		var lines []string
		if text != "" {
			lines = strings.Split(strings.TrimSuffix(text, "\n"), "\n")
		}
		var kept, oldSrcs []string
		var before map[string]float64
		at := -1
		for _, l := range lines {
			src, p, w, ok := ownFabioLine(l, svc.Name)
			if !ok {
				kept = append(kept, l)
				continue
			}
			if at < 0 {
				at = len(kept)
			}
			if before == nil {
				before = map[string]float64{}
			}
			if !slices.Contains(oldSrcs, src) {
				oldSrcs = append(oldSrcs, src)
			}
			if src == srcs[0] {
				before[p] = w
			}
		}
		sameSrcs := len(oldSrcs) == len(srcs) && !slices.ContainsFunc(srcs, func(s string) bool { return !slices.Contains(oldSrcs, s) })
		if before != nil && sameSrcs && !weightsMoved(before, want, r.tolerance()) {
			sr.why("Fabio lines for %q kept at %s", svc.Name, weightsString(before))
			return nil
		}
		var ours []string
		for _, src := range srcs {
			for _, p := range routePlatforms {
				if w := want[p]; w > 0 {
					ours = append(ours, fabioLine(svc.Name, src, p, w))
				}
			}
		}
		if at < 0 {
			at = len(kept)
		}
		next := slices.Concat(kept[:at], ours, kept[at:])
		if r.beforeWrite != nil {
			r.beforeWrite("kv")
		}
		ok, _, err := r.Consul.KV().CAS(&consulapi.KVPair{Key: r.FabioKey, Value: []byte(strings.Join(next, "\n") + "\n"), ModifyIndex: index}, wo)
		if err != nil {
			return fmt.Errorf("write Fabio routes %q: %w", r.FabioKey, err)
		}
		if !ok {
			sr.why("Fabio routes %q changed since they were read: read again", r.FabioKey)
			continue
		}
		sr.Written = append(sr.Written, "kv "+r.FabioKey)
		sr.why("Fabio lines for %q %s → %s in %q", svc.Name, weightsString(before), weightsString(want), r.FabioKey)
		return nil
	}
	return fmt.Errorf("Fabio routes %q changed under every one of %d attempts; lines for %q not written", r.FabioKey, r.attempts(), svc.Name)
}
