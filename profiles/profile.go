package profiles

import (
	"math"

	"github.com/foresight-nomad/foresight/telemetry"
)

// usage indexes the per-allocation amounts a profile averages.
const (
	uCPU = iota
	uThrottled
	uRSS
	uMemUsage
	uIORead
	uIOWrite
	uNetRx
	uNetTx
	uPSICPU
	uPSIMem
	uPSIIO
	nUsage
)

// usageNames are the metric names of the usage indexes.
var usageNames = [nUsage]string{
	telemetry.CPUMHz, telemetry.CPUThrottledRatio, telemetry.MemRSSBytes, telemetry.MemUsageBytes,
	telemetry.IOReadBPS, telemetry.IOWriteBPS, telemetry.NetRxBPS, telemetry.NetTxBPS,
	telemetry.PSICPUSome, telemetry.PSIMemSome, telemetry.PSIIOSome,
}

// stall indexes the pressure signals whose growth with load is measured.
const (
	sPSICPU = iota
	sPSIMem
	sPSIIO
	sThrottled
	nStall
)

// Profile is what a group needs and how it fares under load.
type Profile struct {
	// Group is "namespace/job/group".
	Group string `json:"group"`
	// AllocHours is the allocation time observed.
	AllocHours float64 `json:"alloc_hours"`
	// Mean is the mean per allocation of every metric, by metric name.
	Mean map[string]float64 `json:"mean"`
	// Intensity is how heavy the group is on memory, disk I/O and network
	// per unit of CPU, against the cluster's groups together: 1 is as
	// heavy as the average (CPU-weighted) group, 2 twice that. Peers, not
	// hardware, are the yardstick because heavy is what competes for the
	// classes that offer more, and Nomad reports no disk bandwidth.
	Intensity Intensity `json:"intensity"`
	// Burstiness describes the group's total CPU demand over rounds.
	Burstiness Burstiness `json:"burstiness"`
	// Sensitivity is how stall grows with load: percentage points of
	// stall (or of throttled periods) per unit of load, where load is the
	// allocation's CPU need (memory for psi_mem_some) over its reservation.
	Sensitivity map[string]float64 `json:"sensitivity"`
}

// Intensity is the use of a resource per MHz of CPU, relative to the
// cluster's reference for it.
type Intensity struct {
	Memory  float64 `json:"memory"`
	IO      float64 `json:"io"`
	Network float64 `json:"network"`
}

// Burstiness describes how a group's total demand varies between rounds.
type Burstiness struct {
	// CV is the coefficient of variation, σ/μ.
	CV float64 `json:"cv"`
	// PeakToMean is the largest round over the mean.
	PeakToMean float64 `json:"peak_to_mean"`
}

// profileStats accumulate a group's profile in one pass.
type profileStats struct {
	seconds float64         // allocation-seconds
	sum     [nUsage]float64 // Σ value·seconds
	// Group total CPU need per round: Welford's running mean and M2.
	rounds            float64
	demandMean, demM2 float64
	demandMax         float64
	// Least squares of stall on load, weighted by seconds.
	fit [nStall]linearFit
}

// linearFit keeps the weighted sums for the slope of y on x.
type linearFit struct{ w, x, y, xx, xy float64 }

func (f *linearFit) add(w, x, y float64) {
	f.w += w
	f.x += w * x
	f.y += w * y
	f.xx += w * x * x
	f.xy += w * x * y
}

// slope is the weighted least-squares slope Σw(x−x̄)(y−ȳ) / Σw(x−x̄)²,
// 0 when the load never varied.
func (f *linearFit) slope() float64 {
	if f.w == 0 {
		return 0
	}
	sxx := f.xx - f.x*f.x/f.w
	if sxx <= 1e-12*f.w {
		return 0
	}
	return (f.xy - f.x*f.y/f.w) / sxx
}

// addAlloc accumulates one observation.
func (s *profileStats) addAlloc(o *Observation) {
	secs := o.Duration.Seconds()
	s.seconds += secs
	v := [nUsage]float64{o.CPUMHz, o.ThrottledRatio, o.MemRSSBytes, o.MemUsageBytes,
		o.IOReadBps, o.IOWriteBps, o.NetRxBps, o.NetTxBps, o.PSICPU, o.PSIMem, o.PSIIO}
	for i, x := range v {
		s.sum[i] += x * secs
	}
	if o.ReservedCPUMHz > 0 {
		load := o.need() / o.ReservedCPUMHz
		s.fit[sPSICPU].add(secs, load, o.PSICPU)
		s.fit[sPSIIO].add(secs, load, o.PSIIO)
		s.fit[sThrottled].add(secs, load, 100*o.ThrottledRatio)
	}
	if o.ReservedMemoryMB > 0 {
		s.fit[sPSIMem].add(secs, o.MemRSSBytes/(o.ReservedMemoryMB*(1<<20)), o.PSIMem)
	}
}

// addRound accumulates the group's total CPU need in one round.
func (s *profileStats) addRound(demand float64) {
	s.rounds++
	d := demand - s.demandMean
	s.demandMean += d / s.rounds
	s.demM2 += d * (demand - s.demandMean)
	s.demandMax = math.Max(s.demandMax, demand)
}

func (s *profileStats) mean(i int) float64 { return ratio(s.sum[i], s.seconds) }

// perCPU is the group's mean use of the summed metrics per MHz of CPU.
func (s *profileStats) perCPU(idx ...int) float64 {
	var v float64
	for _, i := range idx {
		v += s.sum[i]
	}
	return ratio(v, s.sum[uCPU])
}

// references are the cluster's yardsticks for intensity: what all groups
// together use per MHz of CPU.
type references struct {
	memBytesPerMHz float64 // resident memory
	netBpsPerMHz   float64 // network, both directions
	ioBpsPerMHz    float64 // disk, read and write
}

// intensity compares a group's use per MHz with the references. A
// reference of 0 (unknown) gives 1, neutral.
func (s *profileStats) intensity(ref references) Intensity {
	rel := func(v, r float64) float64 {
		if r <= 0 {
			return 1
		}
		return v / r
	}
	return Intensity{
		Memory:  rel(s.perCPU(uRSS), ref.memBytesPerMHz),
		IO:      rel(s.perCPU(uIORead, uIOWrite), ref.ioBpsPerMHz),
		Network: rel(s.perCPU(uNetRx, uNetTx), ref.netBpsPerMHz),
	}
}

// profile renders the accumulated statistics.
func (s *profileStats) profile(group string, ref references) Profile {
	p := Profile{
		Group:       group,
		AllocHours:  s.seconds / 3600,
		Mean:        make(map[string]float64, nUsage),
		Intensity:   s.intensity(ref),
		Sensitivity: make(map[string]float64, nStall),
	}
	for i, n := range usageNames {
		p.Mean[n] = s.mean(i)
	}
	if s.rounds > 1 && s.demandMean > 0 {
		p.Burstiness.CV = math.Sqrt(s.demM2/(s.rounds-1)) / s.demandMean
		p.Burstiness.PeakToMean = s.demandMax / s.demandMean
	}
	for i, n := range [nStall]string{telemetry.PSICPUSome, telemetry.PSIMemSome, telemetry.PSIIOSome, telemetry.CPUThrottledRatio} {
		p.Sensitivity[n] = s.fit[i].slope()
	}
	return p
}
