package redisstore_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/internal/redistest"
	"github.com/switchboard-go/switchboard/redisstore"
)

// freezer is a TCP proxy in front of a redis-server that can stop
// answering: while frozen it accepts connections and reads requests but
// sends nothing back, as a node hung by SIGSTOP or a black-holed network
// does.
type freezer struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	frozen bool
	thaw   chan struct{}
	wg     sync.WaitGroup
	conns  []net.Conn
}

func startFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target, thaw: make(chan struct{})}
	f.wg.Go(f.accept)
	t.Cleanup(f.close)
	return f
}

func (f *freezer) Addr() string { return f.ln.Addr().String() }

func (f *freezer) accept() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", f.target)
		if err != nil {
			c.Close()
			continue
		}
		f.mu.Lock()
		f.conns = append(f.conns, c, up)
		f.mu.Unlock()
		f.wg.Go(func() { _, _ = io.Copy(up, c) })
		f.wg.Go(func() { f.answer(c, up) })
	}
}

// answer copies the server's answers to the client, holding them while
// frozen.
func (f *freezer) answer(c, up net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := up.Read(buf)
		if n > 0 {
			f.mu.Lock()
			frozen, thaw := f.frozen, f.thaw
			f.mu.Unlock()
			if frozen {
				<-thaw
			}
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (f *freezer) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.frozen, f.thaw = true, make(chan struct{})
}

func (f *freezer) unfreeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frozen {
		f.frozen = false
		close(f.thaw)
	}
}

func (f *freezer) close() {
	f.unfreeze()
	f.ln.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// TestNodeThatNeverAnswers: against a node that accepts and never answers,
// every call returns ErrPartitionUnavailable (with ErrOutcomeUnknown)
// within OpTimeout, even when the client's own timeouts are long, with
// and without automatic pipelining; Resolve answers from the fallback;
// Init fails within the bound too; and Close ends every call.
func TestNodeThatNeverAnswers(t *testing.T) {
	srv := redistest.Start(t)
	for _, pipelining := range []bool{true, false} {
		t.Run(map[bool]string{true: "automatic pipelining", false: "no automatic pipelining"}[pipelining], func(t *testing.T) {
			fz := startFreezer(t, srv.Addr)
			opt := clientOption(fz.Addr())
			opt.ForceSingleClient, opt.DisableAutoPipelining = true, !pipelining
			opt.Dialer.Timeout, opt.ConnWriteTimeout = time.Second, 2*time.Second
			c := newClient(t, opt)
			const bound = 150 * time.Millisecond
			opts := redisstore.Options{KeyPrefix: prefix(t), OpTimeout: bound}
			st, err := redisstore.New(c, opts)
			if err != nil {
				t.Fatal(err)
			}
			m, err := switchboard.New(switchboard.Config{PartitionCount: 2}, switchboard.WithStore(st))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			k := switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: "r"}
			if err := m.Set(ctx, k, switchboard.Route{ExternalRoomID: "x"}); err != nil {
				t.Fatal(err)
			}
			fz.freeze()
			timed := func(name string, fn func() error) {
				t.Helper()
				start := time.Now()
				err := fn()
				if took := time.Since(start); took > bound+300*time.Millisecond {
					t.Errorf("%s against a frozen node took %v, bound %v", name, took, bound)
				}
				if err != nil && (!errors.Is(err, switchboard.ErrPartitionUnavailable) || !errors.Is(err, switchboard.ErrOutcomeUnknown)) {
					t.Errorf("%s: err = %v, want ErrPartitionUnavailable and ErrOutcomeUnknown", name, err)
				}
			}
			timed("Get", func() error { _, err := m.Get(ctx, k); return orFail(err) })
			timed("Set", func() error { return orFail(m.Set(ctx, k, switchboard.Route{ExternalRoomID: "y"})) })
			timed("Resolve", func() error {
				res, err := m.Resolve(ctx, k, switchboard.Route{ExternalRoomID: "fb"})
				if err == nil && res.FallbackReason != switchboard.ReasonSessionUnavailable {
					t.Errorf("Resolve = %+v, want session_unavailable", res)
				}
				return err
			})
			timed("PartitionStatus", func() error {
				ps, err := m.PartitionStatus(ctx, m.RoutePartition(k))
				if err == nil && ps.Available {
					t.Errorf("PartitionStatus = %+v, want unavailable", ps)
				}
				return err
			})
			timed("Init", func() error {
				st2, _ := redisstore.New(c, redisstore.Options{KeyPrefix: prefix(t) + "-2", OpTimeout: bound})
				_, err := switchboard.New(switchboard.Config{PartitionCount: 2}, switchboard.WithStore(st2))
				return orFail(err)
			})
			fz.unfreeze()
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

var errNoError = errors.New("no error")

func orFail(err error) error {
	if err == nil {
		return errNoError
	}
	return err
}

// TestCloseWhileCalling: Close during a storm of calls neither races nor
// loses a call: every call ends, later ones report ErrClosed.
func TestCloseWhileCalling(t *testing.T) {
	c := standaloneClient(t, redistest.Start(t).Addr)
	for round := range 5 {
		st, err := redisstore.New(c, redisstore.Options{KeyPrefix: prefix(t)})
		if err != nil {
			t.Fatal(err)
		}
		m, err := switchboard.New(switchboard.Config{PartitionCount: 2}, switchboard.WithStore(st))
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for w := range 16 {
			wg.Go(func() {
				k := switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: string(rune('a' + w))}
				for range 50 {
					err := m.Set(ctx, k, switchboard.Route{ExternalRoomID: "x"})
					if err != nil && !errors.Is(err, switchboard.ErrClosed) {
						errs <- err
						return
					}
				}
			})
		}
		time.Sleep(time.Duration(round) * time.Millisecond) // vary where Close lands among the calls
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("a call during Close: %v", err)
		}
		if err := st.Close(); !errors.Is(err, switchboard.ErrClosed) {
			t.Fatalf("Close again: %v", err)
		}
	}
}
