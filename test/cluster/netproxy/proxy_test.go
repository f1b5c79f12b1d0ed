package netproxy

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// echoServer answers every line with itself.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					if _, err := c.Write(append(sc.Bytes(), '\n')); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

type client struct {
	c  net.Conn
	rd *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{c, bufio.NewReader(c)}
}

// roundTrip sends line and waits up to d for its echo.
func (c *client) roundTrip(line string, d time.Duration) (string, error) {
	c.c.SetDeadline(time.Now().Add(d))
	if _, err := c.c.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	s, err := c.rd.ReadString('\n')
	return s, err
}

func TestProxy(t *testing.T) {
	p, err := Start(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	c := dial(t, p.Addr())
	if got, err := c.roundTrip("one", time.Second); err != nil || got != "one\n" {
		t.Fatalf("through the proxy: %q %v", got, err)
	}

	// Delay: both directions, in order.
	p.Delay(150 * time.Millisecond)
	t0 := time.Now()
	if got, err := c.roundTrip("slow", 2*time.Second); err != nil || got != "slow\n" {
		t.Fatalf("delayed: %q %v", got, err)
	}
	if rt := time.Since(t0); rt < 300*time.Millisecond {
		t.Fatalf("round trip %v with 150 ms each way", rt)
	}
	p.Delay(0)

	// One-way drops: the connection stays, nothing arrives.
	p.DropToTarget(true)
	if got, err := c.roundTrip("lost", 300*time.Millisecond); err == nil {
		t.Fatalf("answer %q while dropping to the target", got)
	}
	p.DropToTarget(false)
	c = dial(t, p.Addr())
	p.DropFromTarget(true)
	if got, err := c.roundTrip("unanswered", 300*time.Millisecond); err == nil {
		t.Fatalf("answer %q while dropping from the target", got)
	}
	p.DropFromTarget(false)
	if got, err := c.roundTrip("again", time.Second); err != nil || got != "again\n" {
		t.Fatalf("after the drops: %q %v", got, err)
	}

	// Cut: open connections end, new ones are refused until Heal.
	p.Cut()
	if _, err := c.roundTrip("cut", time.Second); err == nil {
		t.Fatal("a connection survived the cut")
	}
	if _, err := dial(t, p.Addr()).roundTrip("new", time.Second); err == nil {
		t.Fatal("a new connection worked through a cut link")
	}
	p.Heal()
	if got, err := dial(t, p.Addr()).roundTrip("healed", time.Second); err != nil || got != "healed\n" {
		t.Fatalf("after heal: %q %v", got, err)
	}
}
