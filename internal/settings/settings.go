// Package settings parses the values of Foresight's HCL configuration
// blocks the same way everywhere, so that every block's errors read alike.
package settings

import (
	"fmt"
	"time"
)

// Duration parses the setting named name: a positive Go duration such as
// "10s"; empty means def.
func Duration(name, s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s: %q is not a positive duration such as \"10s\"", name, s)
	}
	return d, nil
}
