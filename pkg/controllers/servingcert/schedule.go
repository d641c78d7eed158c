package servingcert

import (
	"crypto/x509"
	"fmt"
	"time"
)

// Schedule is how long the CA and the serving certificate are valid; when
// each is replaced follows from it.
type Schedule struct {
	// CAValidity is the lifetime of a CA.
	CAValidity time.Duration
	// CertValidity is the lifetime of a serving certificate, cut to its
	// CA's expiry.
	CertValidity time.Duration
}

// DefaultSchedule: a CA for ten years (as the cert-manager overlay's and
// hack/deploy-certs.sh's), so that applications holding a copy of ca.crt
// rarely need a new one, and a serving certificate for 90 days (as
// cert-manager's default), so that its key changes every 60.
var DefaultSchedule = Schedule{CAValidity: 10 * 365 * 24 * time.Hour, CertValidity: 90 * 24 * time.Hour}

// MinValidity is the shortest lifetime Validate accepts: short enough for
// tests to watch a whole rotation, long enough that each step has time.
const MinValidity = 30 * time.Second

// backdate: certificates are valid from this long before they are made, for
// clients whose clock is behind the leader's. It is not part of the lifetime.
const backdate = 5 * time.Minute

// maxTrustDelay bounds TrustDelay.
const maxTrustDelay = time.Minute

// Validate reports lifetimes the schedule cannot keep.
func (s Schedule) Validate() error {
	switch {
	case s.CertValidity < MinValidity:
		return fmt.Errorf("serving certificate validity %s: at least %s", s.CertValidity, MinValidity)
	case s.CAValidity < s.CertValidity:
		return fmt.Errorf("CA validity %s: at least the serving certificate's (%s)", s.CAValidity, s.CertValidity)
	}
	return nil
}

// TrustDelay is how long every APIService must have held a new CA before a
// certificate it signed is served: time for each kube-apiserver's aggregator
// to see the new caBundle (its informer, usually well under a second) and
// build its transport from it. A minute, or a tenth of CertValidity if that
// is shorter, so that a certificate due for renewal (a third of its life
// left) always outlives the wait.
func (s Schedule) TrustDelay() time.Duration {
	return min(maxTrustDelay, s.CertValidity/10)
}

// renewAt is when c is replaced: once a third of its lifetime is left. For
// a serving certificate that is renewal; for the newest CA it is when the
// next CA is made and trusted beside it.
func renewAt(c *x509.Certificate) time.Time {
	lifetime := c.NotAfter.Sub(c.NotBefore.Add(backdate))
	return c.NotAfter.Add(-lifetime / 3)
}

// until is how long from now to t, at least a second: a wake-up that is due
// is taken soon, never in a busy loop.
func until(now, t time.Time) time.Duration {
	return max(t.Sub(now), time.Second)
}
