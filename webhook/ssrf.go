package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrBlockedAddress is returned (wrapped) when PublicOnlyClient refuses to
// connect to an address outside the public Internet. Deliveries failing with
// it are dead-lettered at once: a retry cannot change where a URL points.
var ErrBlockedAddress = errors.New("webhook: address is not public")

// blockedPrefixes are the ranges PublicOnlyClient refuses beyond what
// netip.Addr's own predicates catch (loopback, private, link-local,
// multicast, unspecified).
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("169.254.0.0/16"),  // link-local, incl. cloud metadata 169.254.169.254
	netip.MustParsePrefix("fd00:ec2::/32"),   // AWS IMDS over IPv6
	netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
}

// IsPublicAddr reports whether ip is a public unicast address that
// PublicOnlyClient lets deliveries connect to.
func IsPublicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() ||
		ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range blockedPrefixes {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// publicOnlyControl refuses, at connect time, any address that is not
// public: the check runs on the resolved IP the socket connects to, so DNS
// rebinding (a name that resolves to a public address when checked and a
// private one when used) cannot bypass it.
func publicOnlyControl(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrBlockedAddress, address)
	}
	if !IsPublicAddr(ap.Addr()) {
		return fmt.Errorf("%w: %s", ErrBlockedAddress, ap.Addr())
	}
	return nil
}

// PublicOnlyClient returns an HTTP client for Config.Client that connects
// only to public Internet addresses: a guard against server-side request
// forgery when your customers register endpoint URLs, which could otherwise
// point deliveries at your internal services or a cloud metadata endpoint
// (see the package documentation). Proxies from the environment are not
// used, since the check applies to the address actually dialled.
func PublicOnlyClient() *http.Client {
	d := &net.Dialer{Timeout: DefaultDialTimeout, KeepAlive: 30 * time.Second, Control: publicOnlyControl}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = d.DialContext
	t.TLSHandshakeTimeout = DefaultTLSHandshakeTimeout
	t.MaxIdleConnsPerHost = 8
	return &http.Client{Transport: t}
}
