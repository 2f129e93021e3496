package netns

import "time"

// Rates are the bytes per second a namespace received and sent over the
// interval between two readings.
type Rates struct {
	// RxBPS is received bytes per second (net_rx_bps).
	RxBPS float64
	// TxBPS is transmitted bytes per second (net_tx_bps).
	TxBPS float64
	// Interval is the time between the two readings.
	Interval time.Duration
}

// Rater turns successive Counters of one namespace into Rates. The first
// reading, a reading not after the previous one, and a counter that went
// backwards (the namespace was recreated) give no rates and become the new
// baseline. Use one per allocation; the zero value is ready to use.
type Rater struct {
	prev   Counters
	prevAt time.Time
	have   bool
}

// Update records c taken at at and returns the rates since the previous
// reading; ok is false when there are none.
func (rt *Rater) Update(at time.Time, c Counters) (r Rates, ok bool) {
	prev, prevAt, had := rt.prev, rt.prevAt, rt.have
	rt.prev, rt.prevAt, rt.have = c, at, true
	if !had || !at.After(prevAt) || c.RxBytes < prev.RxBytes || c.TxBytes < prev.TxBytes {
		return Rates{}, false
	}
	dt := at.Sub(prevAt)
	secs := dt.Seconds()
	return Rates{
		RxBPS:    float64(c.RxBytes-prev.RxBytes) / secs,
		TxBPS:    float64(c.TxBytes-prev.TxBytes) / secs,
		Interval: dt,
	}, true
}

// Reset forgets the baseline, so the next reading yields no rates.
func (rt *Rater) Reset() { *rt = Rater{} }
