package host

import (
	"os/exec"
	"syscall"
)

// command runs a plugin binary that the kernel kills when the process that
// started it dies, as a leader that is killed outright would otherwise
// leave its plugins running.
func command(path string) *exec.Cmd {
	cmd := exec.Command(path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}
