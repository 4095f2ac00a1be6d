package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// blocked are the ranges webhooks may not reach unless private addresses are
// allowed: loopback, private, shared (CGNAT), link-local (which holds the
// cloud metadata address 169.254.169.254), unspecified, multicast, and their
// IPv6 counterparts.
var blocked = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("ff00::/8"),
	netip.MustParsePrefix("64:ff9b::/96"),
}

// Private reports whether a is an address webhooks must not reach.
func Private(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range blocked {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ErrPrivateAddress is returned for a host that is, or resolves to, a
// private address.
var ErrPrivateAddress = errors.New("private address")

// CheckHost resolves host and refuses it when any of its addresses is
// private. It returns the addresses it found.
func CheckHost(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		if Private(a) {
			return nil, fmt.Errorf("%w: %s", ErrPrivateAddress, a)
		}
		return []netip.Addr{a}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if Private(a) {
			return nil, fmt.Errorf("%w: %s resolves to %s", ErrPrivateAddress, host, a.Unmap())
		}
	}
	return addrs, nil
}

// Dialer connects webhook requests, refusing at connect time any address
// that is private — whatever DNS said when the webhook was registered — unless
// AllowPrivate is set.
func Dialer(timeout time.Duration, allowPrivate bool) *net.Dialer {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		d.Control = func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("webhook address %q: %w", address, err)
			}
			if Private(ap.Addr()) {
				return fmt.Errorf("%w: %s (start the server with --allow-private-webhook-urls to allow it)", ErrPrivateAddress, ap.Addr())
			}
			return nil
		}
	}
	return d
}
