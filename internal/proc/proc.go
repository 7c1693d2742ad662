// Package proc reads a process's CPU time and memory, and the machine's
// CPU time, from Linux's /proc: the load generator (cmd/tickbench) and the
// attack replay (cmd/tickattack) both report what a gateway process cost
// them, and how busy the shared machine was meanwhile.
package proc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ErrFormat is wrapped by errors about a /proc file that did not parse.
var ErrFormat = errors.New("proc: unexpected format")

// Sample is one reading of a process's CPU time and memory.
type Sample struct {
	At      time.Time
	CPU     time.Duration // user + system
	System  time.Duration // the kernel's part of CPU (stime): syscalls, and the softirq work charged to them
	RSS     int64         // bytes (VmRSS)
	PeakRSS int64         // bytes (VmHWM)
	CPUs    string        // the CPUs it may run on (Cpus_allowed_list), e.g. "0-1"
}

// Reader reads /proc/<pid>/{stat,status}. Static after construction.
type Reader struct {
	pid    int
	clkTck time.Duration // one clock tick, the unit of utime and stime
}

// NewReader returns a reader of process pid.
func NewReader(pid int) *Reader {
	return &Reader{pid: pid, clkTck: ClockTick()}
}

// PID is the process the reader reads.
func (r *Reader) PID() int { return r.pid }

// ClockTick returns one tick of the kernel's USER_HZ (the unit of utime and
// stime) from the auxiliary vector (AT_CLKTCK), or 1/100 s, its value on
// every mainstream Linux, when that cannot be read.
func ClockTick() time.Duration {
	const atClkTck = 17
	hz := int64(100)
	if b, err := os.ReadFile("/proc/self/auxv"); err == nil {
		for i := 0; i+16 <= len(b); i += 16 {
			k, v := binary.NativeEndian.Uint64(b[i:]), binary.NativeEndian.Uint64(b[i+8:])
			if k == atClkTck && v > 0 && v < 1_000_000 {
				hz = int64(v)
				break
			}
		}
	}
	return time.Second / time.Duration(hz)
}

// Sample reads the process's CPU time and RSS now.
func (r *Reader) Sample() (Sample, error) {
	s := Sample{At: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", r.pid))
	if err != nil {
		return s, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// fields are counted after the last ')'. utime and stime are 14 and 15.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, fmt.Errorf("%w: /proc/%d/stat", ErrFormat, r.pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return s, fmt.Errorf("%w: /proc/%d/stat: too few fields", ErrFormat, r.pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("%w: /proc/%d/stat: utime/stime", ErrFormat, r.pid)
	}
	s.CPU = time.Duration(utime+stime) * r.clkTck
	s.System = time.Duration(stime) * r.clkTck
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", r.pid))
	if err != nil {
		return s, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch k {
		case "VmRSS":
			s.RSS = parseKB(v)
		case "VmHWM":
			s.PeakRSS = parseKB(v)
		case "Cpus_allowed_list":
			s.CPUs = strings.TrimSpace(v)
		}
	}
	return s, nil
}

// Cores is the CPU the process used between two samples, in cores (1.0:
// one core busy for the whole interval).
func Cores(from, to Sample) float64 {
	w := to.At.Sub(from.At).Seconds()
	if w <= 0 {
		return 0
	}
	return (to.CPU - from.CPU).Seconds() / w
}

// parseKB parses a /proc/<pid>/status value like "  123456 kB" into bytes.
func parseKB(v string) int64 {
	f := strings.Fields(v)
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(f[0], 10, 64)
	return n << 10
}

// MachineTimes are the machine's CPU times so far, all CPUs together.
type MachineTimes struct {
	// Busy is the time the CPUs ran this machine's work (user, nice,
	// system, irq, softirq).
	Busy time.Duration
	// Steal is the time a virtual machine's CPUs were runnable but the
	// hypervisor ran something else (other guests): on a shared host,
	// what makes an hour slow.
	Steal time.Duration
	// Total is every CPU's time: busy, steal, idle and iowait.
	Total time.Duration
}

// MachineCPU reads the machine's CPU times from /proc/stat, to tell how
// much of the machine other processes used during a window, and how much
// the hypervisor took: a shared machine makes latency noisy.
func MachineCPU() (MachineTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return MachineTimes{}, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return parseMachineCPU(line, ClockTick())
}

// parseMachineCPU reads the "cpu" line of /proc/stat, in ticks of tick:
// user nice system idle iowait irq softirq steal [guest guest_nice].
func parseMachineCPU(line string, tick time.Duration) (MachineTimes, error) {
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return MachineTimes{}, fmt.Errorf("%w: /proc/stat", ErrFormat)
	}
	var busy, steal, total int64
	for i, s := range f[1:] {
		if i >= 8 { // guest and guest_nice are already in user and nice
			break
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return MachineTimes{}, fmt.Errorf("%w: /proc/stat: %v", ErrFormat, err)
		}
		total += n
		switch i {
		case 3, 4: // idle, iowait
		case 7:
			steal = n
		default:
			busy += n
		}
	}
	return MachineTimes{Busy: time.Duration(busy) * tick, Steal: time.Duration(steal) * tick, Total: time.Duration(total) * tick}, nil
}
