package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/foresight-nomad/foresight/agent/node/kfile"
)

// maxFile bounds what Read accepts from one file; no cgroup interface file
// comes near it, so a larger one is not a cgroup file.
const maxFile = 1 << 20

// Reader reads task cgroups into Readings, reusing one buffer so that a
// sample allocates little. It is not safe for concurrent use: give each
// sampling goroutine its own.
type Reader struct {
	kf   kfile.Reader
	skip map[Device]bool
}

// NewReader returns a Reader. Disk bytes are summed over the devices in
// io.stat or blkio except those in skip, normally StackedDevices; with nil,
// bytes on device-mapper and md devices count twice.
func NewReader(skip map[Device]bool) *Reader {
	return &Reader{kf: kfile.Reader{Max: maxFile}, skip: skip}
}

// Read fills out with every counter of t that the host provides. A file the
// host does not have leaves its field absent without error. A file that
// cannot be read or parsed also leaves its field absent, and is reported in
// the returned error; the fields that are present are valid either way.
// When the cgroup itself has gone (the task exited), Read returns an error
// wrapping ErrNotFound and an empty reading.
func (r *Reader) Read(t *Task, out *Reading) error {
	*out = Reading{}
	var errs []error
	fail := func(err error) { errs = append(errs, err) }

	if b, ok, err := r.file(t, fileIO); err != nil {
		fail(err)
	} else if ok {
		parse := ParseBlkio
		if filepath.Base(t.files[fileIO]) == "io.stat" {
			parse = ParseIOStat
		}
		if out.IOReadBytes, out.IOWriteBytes, err = parse(b, r.skip); err != nil {
			fail(r.parseErr(t, fileIO, err))
		} else {
			out.Present |= FieldIO
		}
	}

	if b, ok, err := r.file(t, fileCPUStat); err != nil {
		fail(err)
	} else if ok {
		if s, err := ParseCPUStat(b); err != nil {
			fail(r.parseErr(t, fileCPUStat, err))
		} else {
			if s.HasThrottle {
				out.CPUPeriods, out.CPUThrottledPeriods, out.CPUThrottledTime = s.Periods, s.ThrottledPeriods, s.ThrottledTime
				out.Present |= FieldThrottle
			}
			if s.HasUsage {
				out.CPUUsage = s.Usage
				out.Present |= FieldCPUUsage
			}
		}
	}

	if b, ok, err := r.file(t, fileCPUQuota); err != nil {
		fail(err)
	} else if ok {
		if out.CPUUnlimited, err = ParseCPUQuota(b); err != nil {
			fail(r.parseErr(t, fileCPUQuota, err))
		} else {
			out.Present |= FieldCPUQuota
		}
	}

	for _, p := range [...]struct {
		f     file
		dst   *Pressure
		field Field
	}{
		{fileCPUPressure, &out.PSICPU, FieldPSICPU},
		{fileMemPressure, &out.PSIMemory, FieldPSIMemory},
		{fileIOPressure, &out.PSIIO, FieldPSIIO},
	} {
		if b, ok, err := r.file(t, p.f); err != nil {
			fail(err)
		} else if ok {
			if *p.dst, err = ParsePressure(b); err != nil {
				fail(r.parseErr(t, p.f, err))
			} else {
				out.Present |= p.field
			}
		}
	}

	for _, v := range [...]struct {
		f     file
		dst   *uint64
		field Field
	}{
		{fileMemCurrent, &out.MemUsageBytes, FieldMemUsage},
		{fileMemSwap, &out.MemSwapBytes, FieldMemSwap},
	} {
		if b, ok, err := r.file(t, v.f); err != nil {
			fail(err)
		} else if ok {
			if *v.dst, err = ParseValue(b); err != nil {
				fail(r.parseErr(t, v.f, err))
			} else {
				out.Present |= v.field
			}
		}
	}

	if b, ok, err := r.file(t, fileMemStat); err != nil {
		fail(err)
	} else if ok {
		if s, err := ParseMemoryStat(b); err != nil {
			fail(r.parseErr(t, fileMemStat, err))
		} else {
			if s.HasRSS {
				out.MemRSSBytes = s.RSS
				out.Present |= FieldMemRSS
			}
			if s.HasCache {
				out.MemCacheBytes = s.Cache
				out.Present |= FieldMemCache
			}
			if s.HasSwap && !out.Has(FieldMemSwap) {
				out.MemSwapBytes = s.Swap
				out.Present |= FieldMemSwap
			}
		}
	}

	// A cgroup removed under the reader answers ENOENT or ENODEV file by
	// file; either way the task has gone.
	if out.Present == 0 && !isDir(t.Dir) {
		return fmt.Errorf("read cgroup %s: %w", t.Dir, ErrNotFound)
	}
	return errors.Join(errs...)
}

// file reads one interface file of t into the Reader's buffer. ok is false
// when the layout or the host has no such file.
func (r *Reader) file(t *Task, f file) (b []byte, ok bool, err error) {
	path := t.files[f]
	if path == "" {
		return nil, false, nil
	}
	b, err = r.kf.Read(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", path, err)
	}
	return b, true, nil
}

func (r *Reader) parseErr(t *Task, f file, err error) error {
	return fmt.Errorf("parse %s: %w", t.files[f], err)
}
