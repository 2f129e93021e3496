package profiles

import "math"

// The prior: before (and besides) evidence, a group is expected to run
// better on a class whose traits match its needs.
//
//	μ₀(g, c) = G · clamp(Σₜ needₜ(g) · offerₜ(c), −1, 1) ± P/2
//
// over the traits t = memory, disk, network, where
//
//	needₜ(g)  = tanh(ln Intensityₜ(g))           0 … +1 heavy
//	            L · tanh(ln Intensityₜ(g))       −L … 0 light
//	offer_mem = tanh(ln (MB/MHz of c ÷ MB/MHz of the cluster))
//	offer_net = tanh(ln (Mbit/MHz of c ÷ Mbit/MHz of the cluster))
//	offer_io  = +1 ssd, −1 hdd, 0 unknown
//
// G is Config.PriorGain and P Config.PlatformPreference, added for external
// and taken for provider classes: when all else is equal, the operator's own
// capacity comes first. A light need counts for a fraction L
// (lightNeedWeight) of a heavy one: a memory-light group scores a
// memory-rich class slightly down, which keeps scarce big machines for the
// groups that need them, but a group that does no disk I/O has little to
// gain on rotating disks, so that pull must stay weak. μ₀ is centred over the classes,
// like the evidence, so that 0 is the group's average class.

// offer is what a class brings to each need, −1…1.
type offer struct {
	memory, io, network float64
	platform            float64 // +1 external, −1 provider, 0 unknown
}

// offersOf computes the offers of classes against the cluster they form.
func offersOf(classes []Class) []offer {
	var cpu, mem, netCPU, net float64
	for _, c := range classes {
		cpu += c.CPUMHz
		mem += c.MemoryMB
		if c.NetworkMbits > 0 {
			netCPU += c.CPUMHz
			net += c.NetworkMbits
		}
	}
	rel := func(v, ref float64) float64 {
		if v <= 0 || ref <= 0 {
			return 0
		}
		return math.Tanh(math.Log(v / ref))
	}
	out := make([]offer, len(classes))
	for i, c := range classes {
		o := &out[i]
		o.memory = rel(c.MemoryPerCPU(), ratio(mem, cpu))
		o.network = rel(c.NetworkPerCPU(), ratio(net, netCPU))
		switch c.Traits.Storage {
		case StorageSSD:
			o.io = 1
		case StorageHDD:
			o.io = -1
		}
		switch c.Traits.Platform {
		case PlatformExternal:
			o.platform = 1
		case PlatformProvider:
			o.platform = -1
		}
	}
	return out
}

// lightNeedWeight is L: how much a light need counts against a heavy one.
const lightNeedWeight = 0.25

// needs is what a group asks of each trait, −L…1.
type needs struct{ memory, io, network float64 }

func needsOf(in Intensity) needs {
	n := func(v float64) float64 {
		if v <= 0 {
			return -lightNeedWeight
		}
		t := math.Tanh(math.Log(v))
		if t < 0 {
			t *= lightNeedWeight
		}
		return t
	}
	return needs{memory: n(in.Memory), io: n(in.IO), network: n(in.Network)}
}

// priorTerms are the parts of μ₀, kept apart for the reason.
type priorTerms struct {
	memory, io, network, platform float64
}

func (cfg *Config) prior(n needs, o offer) priorTerms {
	t := priorTerms{
		memory:   n.memory * o.memory,
		io:       n.io * o.io,
		network:  n.network * o.network,
		platform: o.platform * cfg.PlatformPreference / 2,
	}
	sum := t.memory + t.io + t.network
	if a := math.Abs(sum); a > 1 {
		t.memory, t.io, t.network = t.memory/a, t.io/a, t.network/a
	}
	t.memory *= cfg.PriorGain
	t.io *= cfg.PriorGain
	t.network *= cfg.PriorGain
	return t
}

func (t priorTerms) total() float64 { return t.memory + t.io + t.network + t.platform }
