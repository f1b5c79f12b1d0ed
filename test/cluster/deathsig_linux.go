package cluster

import (
	"os/exec"
	"syscall"
)

// setDeathSignal kills the broker if the test process dies first (a test
// binary killed by its timeout must not leave brokers running).
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
