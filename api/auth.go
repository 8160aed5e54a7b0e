package api

import (
	"bufio"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
)

// Auth is the credential that mutating requests (POST, PUT, DELETE, PATCH and every
// /_mlb_signal/* endpoint, whatever the method) must carry: a bearer token or a basic-auth user.
// The zero Auth requires none, and then mutating requests are served only while the API
// listens on loopback. Build it with ParseAuth.
type Auth struct {
	// Token is the bearer token ("Authorization: Bearer T").
	Token string
	// User and Password are the basic-auth credentials.
	User     string
	Password string
}

// Enabled reports whether a credential is configured.
func (a Auth) Enabled() bool { return a.Token != "" || a.User != "" }

// String describes the credential with its secret left out, so that logging a Config does not
// leak it.
func (a Auth) String() string {
	switch {
	case a.Token != "":
		return "token:(redacted)"
	case a.User != "":
		return "basic:" + a.User + ":(redacted)"
	}
	return "none"
}

// validate rejects an Auth that ParseAuth would not have built.
func (a Auth) validate() error {
	switch {
	case a.Token != "" && (a.User != "" || a.Password != ""):
		return errors.New("both a token and a basic-auth user are set; give one of them")
	case a.User == "" && a.Password != "":
		return errors.New("a basic-auth password without a user")
	case a.User != "" && a.Password == "":
		return fmt.Errorf("basic-auth user %q has an empty password", a.User)
	case strings.Contains(a.User, ":"):
		return fmt.Errorf("basic-auth user %q contains ':', which basic auth cannot carry", a.User)
	}
	return nil
}

// ParseAuth parses the --api-auth value: "token:T" (bearer token T), "basic:user:pass" (the
// password may contain ':'), or the path of a file whose first line is one of those, so the
// secret stays out of the process list. An empty spec is the zero Auth (no credential). Errors
// never repeat the secret.
func ParseAuth(spec string) (Auth, error) {
	if spec == "" {
		return Auth{}, nil
	}
	if a, ok, err := parseAuthInline(spec); ok {
		if err != nil {
			return Auth{}, fmt.Errorf("api auth: %w", err)
		}
		return a, nil
	}
	line, err := firstLine(spec)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			// Not echoed: a mistyped "tokn:secret" is still a secret.
			return Auth{}, fmt.Errorf("api auth: the value is neither token:T nor basic:user:pass, nor a file that exists: %w", os.ErrNotExist)
		}
		return Auth{}, fmt.Errorf("api auth: the value is neither token:T nor basic:user:pass, and reading it as a file failed: %w", err)
	}
	a, ok, err := parseAuthInline(line)
	if !ok {
		return Auth{}, fmt.Errorf("api auth file %s, line 1: want token:T or basic:user:pass", spec)
	}
	if err != nil {
		return Auth{}, fmt.Errorf("api auth file %s, line 1: %w", spec, err)
	}
	return a, nil
}

// parseAuthInline parses "token:T" or "basic:user:pass"; ok is false when spec has neither
// prefix.
func parseAuthInline(spec string) (a Auth, ok bool, err error) {
	if tok, found := strings.CutPrefix(spec, "token:"); found {
		if tok == "" {
			return Auth{}, true, errors.New("token:T has an empty token")
		}
		if strings.ContainsAny(tok, " \t") {
			return Auth{}, true, errors.New("the token contains white space, which a bearer token cannot carry")
		}
		return Auth{Token: tok}, true, nil
	}
	if rest, found := strings.CutPrefix(spec, "basic:"); found {
		user, pass, hasPass := strings.Cut(rest, ":")
		switch {
		case user == "":
			return Auth{}, true, errors.New("basic:user:pass has an empty user")
		case !hasPass || pass == "":
			return Auth{}, true, fmt.Errorf("basic:%s: has no password (want basic:user:pass)", user)
		}
		return Auth{User: user, Password: pass}, true, nil
	}
	return Auth{}, false, nil
}

// firstLine returns the first line of a file, without its line ending.
func firstLine(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return "", err
		}
		return "", errors.New("the file is empty")
	}
	return strings.TrimRight(sc.Text(), " \t\r"), nil
}

// mutating reports whether a request changes something: it then needs the credential, or a
// loopback listener when none is configured. marathon-lb's /_mlb_signal/* act on GET too.
func mutating(r *http.Request) bool {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch:
		return true
	}
	return strings.HasPrefix(r.URL.Path, "/_mlb_signal/")
}

// authenticate is the router's middleware guarding mutating requests. Reads (GET, HEAD) pass.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !mutating(r) {
			next.ServeHTTP(w, r)
			return
		}
		a := s.cfg.Auth
		if !a.Enabled() {
			if relayed(r) { // through HAProxy's stats port: from anyone (see relayed.go)
				writeError(w, http.StatusForbidden, fmt.Sprintf(
					"%s %s changes lodestar's state and came through HAProxy's stats port, which anyone may reach: "+
						"set --api-auth (token:T or basic:user:pass) and send its credential", r.Method, r.URL.Path))
				return
			}
			if s.local.Load() {
				next.ServeHTTP(w, r)
				return
			}
			writeError(w, http.StatusForbidden, fmt.Sprintf(
				"%s %s changes lodestar's state and the API listens on %s, beyond loopback, without credentials: "+
					"set --api-auth (token:T or basic:user:pass), or listen on 127.0.0.1",
				r.Method, r.URL.Path, s.listenAddr()))
			return
		}
		if a.check(r) {
			next.ServeHTTP(w, r)
			return
		}
		if a.Token != "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lodestar"`)
		} else {
			w.Header().Set("WWW-Authenticate", `Basic realm="lodestar", charset="UTF-8"`)
		}
		writeError(w, http.StatusUnauthorized, fmt.Sprintf(
			"%s %s needs the credentials given by --api-auth (%s)", r.Method, r.URL.Path, a.scheme()))
	})
}

// scheme names the kind of credential a client must send.
func (a Auth) scheme() string {
	if a.Token != "" {
		return "Authorization: Bearer <token>"
	}
	return "basic auth"
}

// check compares the request's credentials in constant time.
func (a Auth) check(r *http.Request) bool {
	if a.Token != "" {
		scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		return ok && strings.EqualFold(scheme, "Bearer") && equalSecret(strings.TrimSpace(tok), a.Token)
	}
	user, pass, ok := r.BasicAuth()
	// Both comparisons always run, so the timing does not tell which one failed.
	userOK := equalSecret(user, a.User)
	passOK := equalSecret(pass, a.Password)
	return ok && userOK && passOK
}

// equalSecret compares in time that depends only on the lengths.
func equalSecret(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// isLoopback reports whether a listener address is reachable from this machine only: a
// loopback IP, "localhost", or a unix socket.
func isLoopback(addr net.Addr) bool {
	if addr.Network() == "unix" {
		return true
	}
	return isLoopbackHostPort(addr.String())
}

// isLoopbackHostPort reports whether host:port names a loopback address. An empty host (all
// interfaces) is not loopback.
func isLoopbackHostPort(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
