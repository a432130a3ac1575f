//go:build !unix

package testenv

import "os/exec"

// Process groups are a Unix notion; elsewhere we can only kill the direct
// child and hope it has no descendants.
func setProcessGroup(*exec.Cmd) {}

func killProcessGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	return cmd.Process.Kill()
}
