package faultproxy

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// echo starts a line server answering name + ": " + line.
func echo(t *testing.T, name string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(name + ": " + l)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn, r *bufio.Reader, msg string, wait time.Duration) (string, error) {
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	l, err := r.ReadString('\n')
	return strings.TrimSuffix(l, "\n"), err
}

func TestProxyFaults(t *testing.T) {
	a, b := echo(t, "a"), echo(t, "b")
	p, err := New(a)
	require.NoError(t, err)
	defer p.Close()

	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	r := bufio.NewReader(c)
	got, err := roundTrip(c, r, "1", time.Second)
	require.NoError(t, err)
	require.Equal(t, "a: 1", got)

	// Hold: bytes go nowhere, the connection stays open; Heal delivers them.
	p.Hold()
	_, err = roundTrip(c, r, "2", 200*time.Millisecond)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout(), "a held connection times out instead of failing: %v", err)
	p.Heal()
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	l, err := r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "a: 2\n", l, "held bytes arrive after the heal")

	// Reset: open connections fail; new ones work.
	p.Reset()
	_, err = roundTrip(c, r, "3", time.Second)
	require.Error(t, err)
	c2, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c2.Close()
	r2 := bufio.NewReader(c2)
	got, err = roundTrip(c2, r2, "4", time.Second)
	require.NoError(t, err)
	require.Equal(t, "a: 4", got)

	// Down refuses connections; Up listens again on the same address.
	p.Down()
	_, err = roundTrip(c2, r2, "5", time.Second)
	require.Error(t, err)
	_, err = net.DialTimeout("tcp", p.Addr(), 200*time.Millisecond)
	require.Error(t, err)
	require.NoError(t, p.Up())

	// Retarget: new connections reach the other server.
	p.Retarget(b)
	c3, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c3.Close()
	got, err = roundTrip(c3, bufio.NewReader(c3), "6", time.Second)
	require.NoError(t, err)
	require.Equal(t, "b: 6", got)
}
