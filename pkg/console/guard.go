package console

import (
	"crypto/subtle"
	"net"
	"net/http"
	"strings"
)

// SecretHeader carries the per-run secret on every API request the page
// makes. A custom header (never a cookie) is what makes the secret a CSRF
// defence too: another origin cannot set it without a CORS preflight, which
// the console never answers.
const SecretHeader = "X-Flagpole-Console-Secret"

// guard admits a request only when it is for this console and, for the
// API and the session, from its page:
//
//   - Host must name the console's own address (127.0.0.1:<port> or
//     localhost:<port>): a DNS-rebinding page reaches the port under its own
//     name, and is refused;
//   - requests under the API and session paths must come from the
//     console's own page — Origin, when the browser sends one, the
//     console's, and Sec-Fetch-Site, when sent, same-origin: another site's
//     form posts and fetches are refused — and carry the run's secret
//     (SecretHeader), compared in constant time.
//
// Static assets need only the right Host: they hold no data, and the page
// is opened from elsewhere (the file the plugin gives the browser).
type guard struct {
	port   string
	secret []byte
	next   http.Handler
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil || port != g.port || (host != "127.0.0.1" && host != "localhost") {
		refuse(w, http.StatusForbidden, "this console answers only to http://127.0.0.1:"+g.port+" (Host "+r.Host+" refused)")
		return
	}
	if needsSecret(r.URL.Path) {
		if origin := r.Header.Get("Origin"); origin != "" && origin != "http://"+r.Host {
			refuse(w, http.StatusForbidden, "requests from another origin are refused")
			return
		}
		if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
			refuse(w, http.StatusForbidden, "requests from another site are refused")
			return
		}
		given := r.Header.Get(SecretHeader)
		if subtle.ConstantTimeCompare([]byte(given), g.secret) != 1 {
			refuse(w, http.StatusUnauthorized, "open the console with the URL kubectl flagpole console printed (it carries this run's secret)")
			return
		}
	}
	// Nothing the console serves may be framed, cached or leak its URL.
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	g.next.ServeHTTP(w, r)
}

// contentSecurityPolicy lets the page load only its own embedded assets and
// talk only to the console.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

func needsSecret(path string) bool {
	return strings.HasPrefix(path, apiPrefix) || path == sessionPath || path == watchesPath
}

func refuse(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg + "\n"))
}
