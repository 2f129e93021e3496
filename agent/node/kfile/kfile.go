// Package kfile reads the small files the kernel generates (procfs, cgroupfs)
// on the node agent's hot path: once per task and round, hundreds of times
// every interval. It opens and reads with plain system calls into a reused
// buffer: such a file needs neither the runtime's poller nor an os.File,
// whose set-up costs as much as the read itself. A read that does not fill
// the buffer ends the file, as it does for these files (and for regular
// files, which the tests' fake hosts are).
package kfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"syscall"
)

// initialBuf fits every file the agent reads on a typical host.
const initialBuf = 4096

// Reader reads whole files into one buffer that it reuses, so a read
// allocates nothing. Not safe for concurrent use.
type Reader struct {
	// Max bounds a file; a larger one is an error. 0 means 1 MiB.
	Max int
	buf []byte
}

// Read returns the whole content of the file at path, valid until the next
// Read. A file that does not exist answers an error wrapping fs.ErrNotExist;
// a process that has gone may also answer ESRCH.
func (r *Reader) Read(path string) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	for errors.Is(err, syscall.EINTR) {
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	limit := r.Max
	if limit <= 0 {
		limit = 1 << 20
	}
	if r.buf == nil {
		r.buf = make([]byte, initialBuf)
	}
	n := 0
	for {
		if n == len(r.buf) {
			if n >= limit {
				return nil, fmt.Errorf("read %s: larger than %d bytes", path, limit)
			}
			grown := make([]byte, 2*n)
			copy(grown, r.buf)
			r.buf = grown
		}
		m, err := syscall.Read(fd, r.buf[n:])
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		n += m
		// The kernel makes these files whole on a read: one that leaves
		// room in the buffer has given everything, and a further read
		// would only answer 0, a quarter of the cost of a small file.
		if m == 0 || n < len(r.buf) {
			return r.buf[:n], nil
		}
	}
}

// NextLine splits off the first line of b, without its newline: how the
// readers of these files walk them without allocating.
func NextLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil
	}
	return b[:i], b[i+1:]
}
