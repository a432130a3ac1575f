//go:build unix

package testenv

import (
	"errors"
	"os/exec"
	"syscall"
)

// setProcessGroup puts the child in a process group of its own so that
// killProcessGroup also reaches its descendants. This matters for
// moto_server, which is usually a pyenv/venv shim that execs or forks the
// real Python interpreter: killing only the direct child could leave the
// server running and holding its port.
func setProcessGroup(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
}

// killProcessGroup SIGKILLs every process in the child's group. With
// Setpgid the group id equals the leader's pid, and a negative pid
// addresses the whole group. The group id stays reserved while any member
// is alive, so this is safe even after the leader has been reaped.
func killProcessGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil // everything is already gone
	}
	return err
}
