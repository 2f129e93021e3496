package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/foresight-nomad/foresight/agent/node/kfile"
)

// errOverflow reports a counter sum that does not fit in 64 bits, which no
// kernel can produce: the file is corrupt, and the value is not reported.
var errOverflow = errors.New("counter sum overflows 64 bits")

// nextField splits off the first blank-separated field of b.
func nextField(b []byte) (field, rest []byte) {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	j := i
	for j < len(b) && b[j] != ' ' && b[j] != '\t' {
		j++
	}
	return b[i:j], b[j:]
}

// nextKeyValue splits off the first line of a flat-keyed file ("key value"
// lines). A blank line gives an empty key; a line that is not two fields is
// an error.
func nextKeyValue(b []byte) (key, val, rest []byte, err error) {
	line, rest := kfile.NextLine(b)
	key, tail := nextField(line)
	if len(key) == 0 {
		return nil, nil, rest, nil
	}
	val, tail = nextField(tail)
	if extra, _ := nextField(tail); len(val) == 0 || len(extra) > 0 {
		return nil, nil, nil, fmt.Errorf("line %q is not \"key value\"", line)
	}
	return key, val, rest, nil
}

// nextAssignment splits off the first key=value field of b. At the end of
// b, key is empty.
func nextAssignment(b []byte) (key, val, rest []byte, err error) {
	field, rest := nextField(b)
	if len(field) == 0 {
		return nil, nil, rest, nil
	}
	eq := bytes.IndexByte(field, '=')
	if eq <= 0 {
		return nil, nil, nil, fmt.Errorf("field %q is not key=value", field)
	}
	return field[:eq], field[eq+1:], rest, nil
}

// parseUint parses a decimal counter. The string conversion does not escape,
// so it costs no allocation.
func parseUint(b []byte) (uint64, error) {
	return strconv.ParseUint(string(b), 10, 64)
}

// addUint adds two counters, refusing to wrap.
func addUint(a, b uint64) (uint64, error) {
	s := a + b
	if s < a {
		return 0, errOverflow
	}
	return s, nil
}

// micros converts a count of microseconds to a Duration, refusing to wrap.
func micros(us uint64) (time.Duration, error) {
	return scaled(us, uint64(time.Microsecond))
}

// scaled converts n units of unit nanoseconds to a Duration, refusing to wrap.
func scaled(n, unit uint64) (time.Duration, error) {
	if n > math.MaxInt64/unit {
		return 0, errOverflow
	}
	return time.Duration(n * unit), nil
}
