package proc

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"github.com/foresight-nomad/foresight/agent/node/kfile"
)

// The per-process counters are read every round for every task process, and
// procfs's readers cost about three times a plain read of the same file
// (an os.File, then fmt scanning; BenchmarkReadProcess measures both), so
// this hot path parses the three files itself. FuzzParsers holds these
// parsers to procfs's answers on the same bytes.

// errField reports a field that is missing or not a number.
var errField = errors.New("malformed field")

// stat is what the agent uses of /proc/<pid>/stat.
type stat struct {
	ppid                         int
	utime, stime, cutime, cstime uint64
	start                        uint64
}

// parseStat reads /proc/<pid>/stat: "pid (comm) state ppid …", where comm
// may hold spaces and parentheses, so fields are counted after the last
// ')'. utime, stime, cutime and cstime are fields 14–17 and starttime 22
// (proc(5), counting from 1).
func parseStat(b []byte) (stat, error) {
	r := bytes.LastIndexByte(b, ')')
	if r < 0 || bytes.IndexByte(b, '(') < 0 {
		return stat{}, fmt.Errorf("stat: no (comm): %w", errField)
	}
	var s stat
	rest := b[r+1:]
	// Field 3 (state) is the first after ')'.
	for i := 3; i <= 22; i++ {
		var f []byte
		f, rest = nextWord(rest)
		if len(f) == 0 {
			return stat{}, fmt.Errorf("stat: field %d missing: %w", i, errField)
		}
		var dst *uint64
		switch i {
		case 4:
			v, err := strconv.ParseInt(string(f), 10, 32)
			if err != nil || v < 0 {
				return stat{}, fmt.Errorf("stat: ppid %q: %w", f, errField)
			}
			s.ppid = int(v)
			continue
		case 14:
			dst = &s.utime
		case 15:
			dst = &s.stime
		case 16:
			dst = &s.cutime
		case 17:
			dst = &s.cstime
		case 22:
			dst = &s.start
		default:
			continue
		}
		v, err := strconv.ParseUint(string(f), 10, 64)
		if err != nil {
			return stat{}, fmt.Errorf("stat: field %d %q: %w", i, f, errField)
		}
		*dst = v
	}
	return s, nil
}

// parseIO reads read_bytes and write_bytes from /proc/<pid>/io.
func parseIO(b []byte) (read, write uint64, err error) {
	var haveR, haveW bool
	for len(b) > 0 {
		var line []byte
		line, b = kfile.NextLine(b)
		key, val, ok := bytes.Cut(line, []byte(": "))
		if !ok {
			continue
		}
		var dst *uint64
		switch string(key) {
		case "read_bytes":
			dst, haveR = &read, true
		case "write_bytes":
			dst, haveW = &write, true
		default:
			continue
		}
		v, err := strconv.ParseUint(string(bytes.TrimSpace(val)), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("io: %s %q: %w", key, val, errField)
		}
		*dst = v
	}
	if !haveR || !haveW {
		return 0, 0, fmt.Errorf("io: no read_bytes or write_bytes: %w", errField)
	}
	return read, write, nil
}

// parseRSS reads VmRSS from /proc/<pid>/status, in bytes. A kernel thread
// has none: ok is false.
func parseRSS(b []byte) (rss uint64, ok bool, err error) {
	for len(b) > 0 {
		var line []byte
		line, b = kfile.NextLine(b)
		val, found := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !found {
			continue
		}
		num, unit := nextWord(val)
		if u, _ := nextWord(unit); string(u) != "kB" {
			return 0, false, fmt.Errorf("status: VmRSS %q: %w", val, errField)
		}
		kb, err := strconv.ParseUint(string(num), 10, 64)
		if err != nil || kb > 1<<53 {
			return 0, false, fmt.Errorf("status: VmRSS %q: %w", val, errField)
		}
		return kb << 10, true, nil
	}
	return 0, false, nil
}

// nextWord splits off the first blank-separated word of b.
func nextWord(b []byte) (word, rest []byte) {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n') {
		i++
	}
	j := i
	for j < len(b) && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' {
		j++
	}
	return b[i:j], b[j:]
}
