package fingerprint

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// CPUInfo is what /proc/cpuinfo says about a node's processors.
type CPUInfo struct {
	// Model names the processor, such as "AMD EPYC 7R13 Processor" or
	// "ARM Neoverse-N1".
	Model string
	// CPUs is the number of logical CPUs, the unit Nomad schedules.
	CPUs int
	// Cores is the number of physical cores, where the kernel reports the
	// topology (x86); elsewhere it equals CPUs.
	Cores int
}

// armParts names the 64-bit Arm server cores by implementer and part number,
// since arm64 kernels print no "model name". Others are named by number.
var armParts = map[[2]uint64]string{
	{0x41, 0xd08}: "ARM Cortex-A72",
	{0x41, 0xd0c}: "ARM Neoverse-N1",
	{0x41, 0xd40}: "ARM Neoverse-V1",
	{0x41, 0xd49}: "ARM Neoverse-N2",
	{0x41, 0xd4f}: "ARM Neoverse-V2",
	{0x41, 0xd8e}: "ARM Neoverse-N3",
	{0xc0, 0xac3}: "Ampere AmpereOne",
}

// ParseCPUInfo reads the model and counts from a /proc/cpuinfo file, in
// either the x86 shape (a "model name" per processor, with "physical id"
// and "core id") or the arm64 shape ("CPU implementer" and "CPU part").
func ParseCPUInfo(b []byte) (CPUInfo, error) {
	var info CPUInfo
	var implementer, part string
	cores := map[[2]string]bool{}
	var physID, coreID string
	flush := func() {
		if physID != "" && coreID != "" {
			cores[[2]string{physID, coreID}] = true
		}
		physID, coreID = "", ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch key {
		case "processor":
			if _, err := strconv.ParseUint(val, 10, 32); err != nil {
				return CPUInfo{}, fmt.Errorf("cpuinfo: processor %q: %w", val, err)
			}
			flush()
			info.CPUs++
		case "model name":
			if info.Model == "" {
				info.Model = strings.Join(strings.Fields(val), " ")
			}
		case "physical id":
			physID = val
		case "core id":
			coreID = val
		case "CPU implementer":
			if implementer == "" {
				implementer = val
			}
		case "CPU part":
			if part == "" {
				part = val
			}
		}
	}
	if err := sc.Err(); err != nil {
		return CPUInfo{}, fmt.Errorf("cpuinfo: %w", err)
	}
	flush()
	if info.CPUs == 0 {
		return CPUInfo{}, fmt.Errorf("cpuinfo: no processor entries")
	}
	info.Cores = info.CPUs
	if len(cores) > 0 && len(cores) <= info.CPUs {
		info.Cores = len(cores)
	}
	if info.Model == "" && implementer != "" && part != "" {
		info.Model = armModel(implementer, part)
	}
	return info, nil
}

// armModel names an Arm core from its hexadecimal implementer and part.
func armModel(implementer, part string) string {
	imp, err1 := strconv.ParseUint(strings.TrimPrefix(implementer, "0x"), 16, 16)
	prt, err2 := strconv.ParseUint(strings.TrimPrefix(part, "0x"), 16, 16)
	if err1 == nil && err2 == nil {
		if name, ok := armParts[[2]uint64{imp, prt}]; ok {
			return name
		}
	}
	return fmt.Sprintf("arm implementer %s part %s", implementer, part)
}
