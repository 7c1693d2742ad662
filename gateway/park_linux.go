package gateway

import (
	"errors"
	"os"
	"syscall"
)

// poller is the parker's readiness set: an epoll instance whose sockets
// are armed one-shot, so a socket is reported once per park. It is waited
// on through the runtime's own network poller (an epoll descriptor is
// readable while it has events to report), so no thread sits in
// epoll_wait.
type poller struct {
	epfd int      // Static.
	file *os.File // Static: epfd, as the runtime's poller sees it.
}

func newPoller() (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		_ = syscall.Close(epfd)
		return nil, os.NewSyscallError("setnonblock", err)
	}
	return &poller{epfd: epfd, file: os.NewFile(uintptr(epfd), "parker")}, nil
}

// parkEvents are what end a park: bytes to read, the peer's end, an error.
// One-shot: reported once, then disarmed until armed again.
const parkEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLERR | syscall.EPOLLHUP | syscall.EPOLLONESHOT

// arm asks for fd's next readiness, once. added says fd is in the set from
// an earlier park (it stays there, disarmed, until it is closed).
func (p *poller) arm(fd int32, added bool) error {
	ev := syscall.EpollEvent{Events: parkEvents, Fd: fd}
	op := syscall.EPOLL_CTL_ADD
	if added {
		op = syscall.EPOLL_CTL_MOD
	}
	err := syscall.EpollCtl(p.epfd, op, int(fd), &ev)
	if errors.Is(err, syscall.ENOENT) && added {
		err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	}
	return err
}

// run reports the sockets that became ready to ready, until close.
func (p *poller) run(ready func(fds []int32)) {
	raw, err := p.file.SyscallConn()
	if err != nil {
		return
	}
	events := make([]syscall.EpollEvent, 256)
	fds := make([]int32, 0, len(events))
	_ = raw.Read(func(epfd uintptr) bool {
		for {
			n, err := syscall.EpollWait(int(epfd), events, 0)
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				return true // the set is gone
			}
			if n == 0 {
				return false // wait until the set is readable again
			}
			fds = fds[:0]
			for _, ev := range events[:n] {
				fds = append(fds, ev.Fd)
			}
			ready(fds)
		}
	})
}

// close ends run and releases the set.
func (p *poller) close() { _ = p.file.Close() }
