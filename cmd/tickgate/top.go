package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/tickgate/tickgate/admin"
)

// `tickgate top`: one or more nodes live in a terminal, as htop shows a
// host. It reads only each node's admin listener (/metrics,
// /v1/connections, /v1/channels), once per interval, and draws the view
// of topview.go with bubbletea (full screen, redrawn in place).

// topFlags are top's flags.
type topFlags struct {
	admins    listFlag
	tokenFile string
	interval  time.Duration
	rows      int
	once      bool
}

func runTop(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f topFlags
	fs := newFlagSet("top", stderr)
	fs.Var(&f.admins, "admin", "admin listener of a node (http://host:port, or host:port); repeatable, or comma separated")
	fs.StringVar(&f.tokenFile, "admin-token-file", "", "file holding the admin token, when the nodes have one")
	fs.DurationVar(&f.interval, "interval", time.Second, "how often the view is refreshed")
	fs.IntVar(&f.rows, "rows", 8, "rows of each table (busiest channels, slowest connections, stale channels)")
	fs.BoolVar(&f.once, "once", false, "print one view (after two readings, one interval apart) and exit, without a full-screen terminal")
	if err := parseToolFlags(fs, args); err != nil {
		return err
	}
	switch {
	case len(f.admins.vals) == 0:
		return usagef("--admin is required")
	case f.interval < 100*time.Millisecond:
		return usagef("--interval must be at least 100ms (got %v)", f.interval)
	case f.rows < 1 || f.rows > 1000:
		return usagef("--rows must be within 1..1000 (got %d)", f.rows)
	}
	token := ""
	if f.tokenFile != "" {
		var err error
		if token, err = admin.ReadTokenFile(f.tokenFile); err != nil {
			return usagef("--admin-token-file: %v", err)
		}
	}
	src := &topSource{rows: f.rows}
	for _, a := range f.admins.vals {
		c, err := admin.NewClient(a, token)
		if err != nil {
			return usagef("--admin: %v", err)
		}
		src.clients = append(src.clients, c)
	}
	if f.once {
		prev := src.read(ctx)
		select {
		case <-time.After(f.interval):
		case <-ctx.Done():
			return nil
		}
		cur := src.read(ctx)
		if _, err := fmt.Fprintln(stdout, render(buildView(prev, cur, f.rows, f.interval), 0, 0)); err != nil {
			return err
		}
		return unreadNodes(cur)
	}
	p := tea.NewProgram(&topModel{src: src, interval: f.interval, rows: f.rows, width: 120},
		tea.WithAltScreen(), tea.WithContext(ctx), tea.WithOutput(stdout))
	_, err := p.Run()
	if ctx.Err() != nil {
		return nil // a signal: a normal end
	}
	return err
}

// unreadNodes is --once's verdict, for a script: an error naming the
// nodes that could not be read (their rows say why), or nil.
func unreadNodes(samples []nodeSample) error {
	var failed []string
	for _, s := range samples {
		if s.err != nil {
			failed = append(failed, s.url)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d node(s) not read: %s", len(failed), len(samples), strings.Join(failed, ", "))
}

// topSource reads every node once per call, in parallel.
type topSource struct {
	clients []*admin.Client // Static after construction.
	rows    int             // Static after construction.
}

// read samples every node; a node that fails has its error in its sample.
func (s *topSource) read(ctx context.Context) []nodeSample {
	out := make([]nodeSample, len(s.clients))
	var wg sync.WaitGroup
	for i, c := range s.clients {
		wg.Go(func() { out[i] = s.readOne(ctx, c) })
	}
	wg.Wait()
	return out
}

func (s *topSource) readOne(ctx context.Context, c *admin.Client) nodeSample {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	n := nodeSample{url: c.Base()}
	n.metrics, n.err = c.Metrics(ctx)
	n.at = time.Now()
	if n.err != nil {
		return n
	}
	if n.conns, n.err = c.Connections(ctx, url.Values{"sort": {"lag"}, "limit": {strconv.Itoa(s.rows)}}); n.err != nil {
		return n
	}
	n.chans, n.err = c.Channels(ctx, nil)
	return n
}

// topModel is the bubbletea program: a reading each interval, the view
// redrawn from the last two.
type topModel struct {
	src      *topSource
	interval time.Duration
	rows     int
	width    int
	height   int
	prev     []nodeSample
	view     topView
	reads    int
}

type (
	topTick    struct{}
	topReading []nodeSample
)

func (m *topModel) Init() tea.Cmd { return m.readCmd() }

// readCmd reads the nodes off the program's goroutine.
func (m *topModel) readCmd() tea.Cmd {
	return func() tea.Msg { return topReading(m.src.read(context.Background())) }
}

func (m *topModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		switch msg.String() {
		case "q", "ctrl+c", "esc":
			return m, tea.Quit
		}
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case topReading:
		m.view = buildView(m.prev, msg, m.rows, m.interval)
		m.prev = msg
		m.reads++
		return m, tea.Tick(m.interval, func(time.Time) tea.Msg { return topTick{} })
	case topTick:
		return m, m.readCmd()
	}
	return m, nil
}

func (m *topModel) View() string {
	if m.reads == 0 {
		return "tickgate top: reading " + strconv.Itoa(len(m.src.clients)) + " node(s)…"
	}
	return render(m.view, m.width, m.height)
}
