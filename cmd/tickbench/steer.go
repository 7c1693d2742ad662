package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// loopbackRPS is the receive packet steering mask of the loopback
// device's one receive queue (the kernel's Documentation/networking/
// scaling.rst): the CPUs whose backlog takes the packets the loopback
// receives. Empty (all zeros), the default, processes a packet on the CPU
// that sent it, inside the sender's write(2).
const loopbackRPS = "/sys/class/net/lo/queues/rx-0/rps_cpus"

// errSteerUnavailable is --steer-receive on a machine that cannot take
// it: no such file, or no permission to write it.
var errSteerUnavailable = errors.New("the loopback's receive steering cannot be set here")

// cpuMask is the mask of CPUs from..to (inclusive) as a sysfs cpumask
// file takes it: hexadecimal, most significant group first, a comma
// between groups of 32 CPUs ("2"; "1,00000000" for CPU 32).
func cpuMask(from, to int) string {
	if from < 0 || to < from {
		return "0"
	}
	groups := make([]uint32, to/32+1)
	for c := from; c <= to; c++ {
		groups[c/32] |= 1 << (c % 32)
	}
	var b strings.Builder
	for i := len(groups) - 1; i >= 0; i-- {
		if b.Len() == 0 {
			fmt.Fprintf(&b, "%x", groups[i])
		} else {
			fmt.Fprintf(&b, ",%08x", groups[i])
		}
	}
	return b.String()
}

// readMask is the steering file's content at path, without its newline.
func readMask(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}

// steerReceive writes mask to the steering file at path and returns a
// function that writes back what the file held before. On loopback
// without steering the receiving side of a server's write (the peer's
// TCP receive, waking its reader) runs in the server's own system call
// and is counted in the server's CPU; steered, it runs on the load
// client's CPUs, as it would on the client's machine over a network, but
// the server's write then interrupts those CPUs whenever their backlog
// is idle, which a network does not (docs/benchmarks.md, twenty-fifth
// round).
func steerReceive(path, mask string) (restore func() error, err error) {
	prev, err := readMask(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errSteerUnavailable, err)
	}
	if err := os.WriteFile(path, []byte(mask+"\n"), 0); err != nil {
		return nil, fmt.Errorf("%w: %v", errSteerUnavailable, err)
	}
	return func() error {
		if err := os.WriteFile(path, []byte(prev+"\n"), 0); err != nil {
			return fmt.Errorf("restoring %s to %s: %w", path, prev, err)
		}
		return nil
	}, nil
}

// steeringIn is the steering mask in effect in the file at path, "" when
// none is (all zeros) or the file cannot be read.
func steeringIn(path string) string {
	m, err := readMask(path)
	if err != nil || strings.Trim(m, "0,") == "" {
		return ""
	}
	return m
}

// applySteering is --steer-receive for a comparison on a machine of ncpu
// CPUs: with the flag it steers the receive to the load client's CPUs
// (those after the servers' first cfg.cpus) at cfg.rpsPath and returns
// the restore to defer; without it, it reads what is in effect there, so
// that a machine left steered (by hand, or by a tickbench that was
// killed) is named in the comparison rather than taken for the default.
// mask is the steering in effect during the comparison ("" for none);
// tickbench set it exactly when restore is not nil.
func applySteering(cfg *config, ncpu int) (mask string, restore func() error, err error) {
	if !cfg.steerReceive {
		return steeringIn(cfg.rpsPath), nil, nil
	}
	mask = cpuMask(cfg.cpus, ncpu-1)
	if restore, err = steerReceive(cfg.rpsPath, mask); err != nil {
		return "", nil, err
	}
	return mask, restore, nil
}
