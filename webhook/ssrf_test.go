package webhook

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/hopperq/hopper"
	"github.com/stretchr/testify/require"
)

func TestIsPublicAddr(t *testing.T) {
	for addr, public := range map[string]bool{
		"93.184.216.34": true, "8.8.8.8": true, "2606:4700::1111": true,
		"127.0.0.1": false, "::1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "100.64.0.1": false, "0.0.0.0": false, "::": false, "224.0.0.1": false,
		"fd00::1": false, "fe80::1": false, "::ffff:127.0.0.1": false, "::ffff:10.0.0.1": false,
		"198.18.0.1": false, "255.255.255.255": false, "fd00:ec2::254": false, "192.0.2.10": false,
	} {
		require.Equal(t, public, IsPublicAddr(netip.MustParseAddr(addr)), addr)
	}
}

// With PublicOnlyClient, a delivery to an endpoint on loopback (standing in
// for an internal service) is refused before any byte is sent, and
// dead-lettered at once.
func TestPublicOnlyClientRefusesInternalAddresses(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	cfg := fastConfig()
	cfg.Client = PublicOnlyClient()
	d := directDispatcher(t, memStore(t, endpoint("ep", rc.srv.URL)), cfg)
	err := d.Handler().ProcessJob(context.Background(), deliveryJob(t, "e", "ep", "t", `{}`))
	require.ErrorIs(t, err, ErrBlockedAddress)
	var pe *hopper.PermanentError
	require.True(t, errors.As(err, &pe), "a blocked address is not retried")
	require.Zero(t, rc.count(), "the receiver got nothing")

	// The default client allows it (endpoints you configure may be internal).
	d = directDispatcher(t, memStore(t, endpoint("ep", rc.srv.URL)), nil)
	require.NoError(t, d.Handler().ProcessJob(context.Background(), deliveryJob(t, "e2", "ep", "t", `{}`)))
	require.Equal(t, 1, rc.count())
}
