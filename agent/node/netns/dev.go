// Package netns reads the network traffic of an allocation from inside its
// network namespace: the byte counters of /proc/<pid>/net/dev for a process
// of the allocation, summed over its interfaces except loopback. A task that
// shares the host's namespace has no counters of its own, and is reported
// as such rather than with the host's totals.
package netns

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"github.com/foresight-nomad/foresight/agent/node/kfile"
)

// Counters are the cumulative bytes a network namespace has received and
// sent on its non-loopback interfaces.
type Counters struct {
	// RxBytes is the number of bytes received.
	RxBytes uint64
	// TxBytes is the number of bytes transmitted.
	TxBytes uint64
}

// The positions of the byte counters among the 16 numbers after an
// interface name: eight receive counters, then eight transmit counters.
const (
	devRxBytes = 0
	devTxBytes = 8
	devFields  = 16
)

// errOverflow reports a sum no kernel can produce.
var errOverflow = errors.New("counter sum overflows 64 bits")

// ParseDev sums the received and transmitted bytes over the interfaces of a
// /proc/<pid>/net/dev file, skipping lo. Its two header lines are
// recognised by the '|' that separates their columns; every other line is
// "name: 16 counters". Old kernels print no space between the colon and a
// wide first counter, which is handled.
func ParseDev(b []byte) (Counters, error) {
	var c Counters
	for len(b) > 0 {
		var line []byte
		line, b = kfile.NextLine(b)
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			if len(bytes.TrimSpace(line)) == 0 || bytes.IndexByte(line, '|') >= 0 {
				continue
			}
			return Counters{}, fmt.Errorf("net/dev: line %q has no interface name", line)
		}
		name := bytes.TrimSpace(line[:colon])
		if len(name) == 0 {
			return Counters{}, fmt.Errorf("net/dev: line %q has an empty interface name", line)
		}
		rx, tx, err := devBytes(line[colon+1:])
		if err != nil {
			return Counters{}, fmt.Errorf("net/dev: interface %s: %w", name, err)
		}
		if string(name) == "lo" {
			continue
		}
		if c.RxBytes+rx < c.RxBytes || c.TxBytes+tx < c.TxBytes {
			return Counters{}, fmt.Errorf("net/dev: interface %s: %w", name, errOverflow)
		}
		c.RxBytes += rx
		c.TxBytes += tx
	}
	return c, nil
}

// devBytes reads the receive and transmit byte counters from the 16 numbers
// of one interface line, checking that all of them are numbers.
func devBytes(b []byte) (rx, tx uint64, err error) {
	n := 0
	for {
		i := 0
		for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
			i++
		}
		j := i
		for j < len(b) && b[j] != ' ' && b[j] != '\t' {
			j++
		}
		field := b[i:j]
		b = b[j:]
		if len(field) == 0 {
			break
		}
		if n == devFields {
			return 0, 0, fmt.Errorf("more than %d counters", devFields)
		}
		v, err := strconv.ParseUint(string(field), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("counter %d: %w", n, err)
		}
		switch n {
		case devRxBytes:
			rx = v
		case devTxBytes:
			tx = v
		}
		n++
	}
	if n != devFields {
		return 0, 0, fmt.Errorf("%d counters, want %d", n, devFields)
	}
	return rx, tx, nil
}
