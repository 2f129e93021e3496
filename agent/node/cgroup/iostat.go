package cgroup

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/foresight-nomad/foresight/agent/node/kfile"
)

// ParseIOStat sums the bytes read and written over the devices of a cgroup v2
// io.stat file, whose lines look like
//
//	259:0 rbytes=90112 wbytes=4096 rios=3 wios=1 dbytes=0 dios=0
//
// skipping the devices in skip (see StackedDevices; nil skips none). Keys
// other than rbytes and wbytes (iocost, iolatency) are ignored. An empty
// file is a cgroup that has done no disk I/O: zero bytes, truthfully.
func ParseIOStat(b []byte, skip map[Device]bool) (read, write uint64, err error) {
	for len(b) > 0 {
		var line []byte
		line, b = kfile.NextLine(b)
		dev, rest := nextField(line)
		if len(dev) == 0 {
			continue
		}
		d, err := parseDevice(dev)
		if err != nil {
			return 0, 0, fmt.Errorf("io.stat: %w", err)
		}
		if skip[d] {
			continue
		}
		var seenR, seenW bool
		for {
			var key, val []byte
			if key, val, rest, err = nextAssignment(rest); err != nil {
				return 0, 0, fmt.Errorf("io.stat: device %s: %w", dev, err)
			}
			if len(key) == 0 {
				break
			}
			var sum *uint64
			switch string(key) {
			case "rbytes":
				sum, seenR = &read, true
			case "wbytes":
				sum, seenW = &write, true
			default:
				continue
			}
			v, err := parseUint(val)
			if err != nil {
				return 0, 0, fmt.Errorf("io.stat: device %s: %s: %w", dev, key, err)
			}
			if *sum, err = addUint(*sum, v); err != nil {
				return 0, 0, fmt.Errorf("io.stat: device %s: %s: %w", dev, key, err)
			}
		}
		if !seenR || !seenW {
			return 0, 0, fmt.Errorf("io.stat: device %s lacks rbytes or wbytes", dev)
		}
	}
	return read, write, nil
}

// ParseBlkio sums the Read and Write bytes over the devices of a cgroup v1
// blkio byte counter (blkio.throttle.io_service_bytes and its kin), whose
// lines look like
//
//	8:0 Read 4096
//	8:0 Write 0
//	Total 4096
//
// The other operations (Sync, Async, Discard, Total) overlap Read and Write
// and are skipped, as are the devices in skip (nil skips none).
func ParseBlkio(b []byte, skip map[Device]bool) (read, write uint64, err error) {
	for len(b) > 0 {
		var line []byte
		line, b = kfile.NextLine(b)
		first, rest := nextField(line)
		if len(first) == 0 {
			continue
		}
		second, rest := nextField(rest)
		third, rest := nextField(rest)
		if extra, _ := nextField(rest); len(extra) > 0 {
			return 0, 0, fmt.Errorf("blkio: line %q has more than three fields", line)
		}
		if string(first) == "Total" && len(third) == 0 {
			if _, err := parseUint(second); err != nil {
				return 0, 0, fmt.Errorf("blkio: Total: %w", err)
			}
			continue
		}
		if len(third) == 0 {
			return 0, 0, fmt.Errorf("blkio: line %q is not \"MAJ:MIN Op bytes\"", line)
		}
		d, err := parseDevice(first)
		if err != nil {
			return 0, 0, fmt.Errorf("blkio: %w", err)
		}
		v, err := parseUint(third)
		if err != nil {
			return 0, 0, fmt.Errorf("blkio: device %s %s: %w", first, second, err)
		}
		if skip[d] {
			continue
		}
		switch string(second) {
		case "Read":
			read, err = addUint(read, v)
		case "Write":
			write, err = addUint(write, v)
		}
		if err != nil {
			return 0, 0, fmt.Errorf("blkio: device %s %s: %w", first, second, err)
		}
	}
	return read, write, nil
}

// Device is a block device number.
type Device struct {
	// Major and Minor are the numbers sysfs and io.stat print as MAJ:MIN.
	Major, Minor uint32
}

// parseDevice parses a "MAJ:MIN" device number.
func parseDevice(b []byte) (Device, error) {
	i := bytes.IndexByte(b, ':')
	if i <= 0 {
		return Device{}, fmt.Errorf("device %q is not MAJ:MIN", b)
	}
	major, err1 := strconv.ParseUint(string(b[:i]), 10, 32)
	minor, err2 := strconv.ParseUint(string(b[i+1:]), 10, 32)
	if err1 != nil || err2 != nil {
		return Device{}, fmt.Errorf("device %q is not MAJ:MIN", b)
	}
	return Device{uint32(major), uint32(minor)}, nil
}

// StackedDevices lists the block devices of a host that sit on other block
// devices: device-mapper (LVM, LUKS) and md RAID, which sysfs (under
// sysRoot) gives slaves. The kernel charges a cgroup for a bio on the
// stacked device and again for each bio it becomes on the disks beneath, so
// summing every line of io.stat or blkio counts the same bytes twice. With
// these devices skipped, the sums are the bytes that reached physical disks
// (a RAID mirror counting each copy). Stacks change rarely; compute the set
// at start and when devices come and go.
func StackedDevices(sysRoot string) (map[Device]bool, error) {
	dir := filepath.Join(sysRoot, "dev", "block")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list block devices: %w", err)
	}
	stacked := make(map[Device]bool)
	for _, e := range entries {
		d, err := parseDevice([]byte(e.Name()))
		if err != nil {
			continue
		}
		slaves, err := os.ReadDir(filepath.Join(dir, e.Name(), "slaves"))
		if err == nil && len(slaves) > 0 {
			stacked[d] = true
		}
	}
	return stacked, nil
}
