package api_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/ledger/api"
	"github.com/stretchr/testify/require"
)

var digest = api.HashToken("t")

func TestTokenFileProblemsNameTheLine(t *testing.T) {
	cases := []struct {
		name, file string
		line       int
		err        error
		want       string
	}{
		{"empty", "", 0, api.ErrEmptyFile, "tokens: no entries"},
		{"only comments", "# nothing\n\n   # still nothing\n", 0, api.ErrEmptyFile, "no entries"},
		{"one field", "# c\n" + digest + "\n", 2, api.ErrSyntax, "line 2: malformed line: want SHA256HEX NAME ROLE"},
		{"no name", digest + " officer\n", 1, api.ErrSyntax, "line 1: malformed line"},
		{"unknown role", digest + " alice reader\n", 1, api.ErrUnknownRole, `line 1: unknown role: "reader"`},
		{"role case", digest + " alice Officer\n", 1, api.ErrUnknownRole, "unknown role"},
		{"short hash", "abcd alice officer\n", 1, api.ErrBadHash, "line 1: not a SHA-256 hex: 4 characters"},
		{"not hex", strings.Repeat("g", 64) + " alice officer\n", 1, api.ErrBadHash, "not a SHA-256 hex"},
		{"a token, not its hash", "s3cret-token alice officer\n", 1, api.ErrBadHash, "not a SHA-256 hex"},
		{"duplicate", digest + " alice officer\n" + strings.ToUpper(digest) + " bob admin\n", 2, api.ErrDuplicate, "line 2: duplicate: the token of line 1"},
		{"control character in the name", digest + " al\x01ice officer\n", 1, api.ErrBadName, "control characters"},
		{"tab inside the name", digest + " al\tice x\tofficer\n", 1, api.ErrBadName, "control characters"},
		{"long name", digest + " " + strings.Repeat("n", api.MaxNameBytes+1) + " officer\n", 1, api.ErrBadName, "longer than"},
		{"not UTF-8", digest + " al\xffice officer\n", 1, api.ErrSyntax, "not UTF-8"},
		{"too large", strings.Repeat("#", api.MaxAuthFileBytes+1), 0, api.ErrFileTooLarge, "file too large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := api.ParseTokens(strings.NewReader(tc.file), "tokens")
			require.Nil(t, tok)
			require.ErrorIs(t, err, tc.err)
			var fe *api.FileError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, tc.line, fe.Line)
			require.Equal(t, "tokens", fe.File)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestTokenFileErrorsNeverShowTheLine(t *testing.T) {
	// A token pasted in place of its hash must not end up in a log through the error.
	_, err := api.ParseTokens(strings.NewReader("the-real-secret-token alice officer\n"), "tokens")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "the-real-secret-token")
}

func TestTokenFile(t *testing.T) {
	tok, err := api.ParseTokens(strings.NewReader(tokenFile), "tokens")
	require.NoError(t, err)
	require.Equal(t, 3, tok.Len())
	for _, c := range []struct {
		header string
		want   api.Principal
		err    error
	}{
		{"Bearer " + officerToken, api.Principal{Name: "alice@compliance", Role: api.RoleOfficer}, nil},
		{"bearer " + auditorToken, api.Principal{Name: "Bob Auditor", Role: api.RoleAuditor}, nil},
		{"Bearer  " + adminToken + " ", api.Principal{Name: "root", Role: api.RoleAdmin}, nil},
		{"", api.Principal{}, api.ErrNoCredentials},
		{"Bearer", api.Principal{}, api.ErrUnauthenticated},
		{"Bearer ", api.Principal{}, api.ErrUnauthenticated},
		{"Basic " + officerToken, api.Principal{}, api.ErrUnauthenticated},
		{"Bearer " + officerToken[:len(officerToken)-1], api.Principal{}, api.ErrUnauthenticated},
		{"Bearer " + api.HashToken(officerToken), api.Principal{}, api.ErrUnauthenticated},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if c.header != "" {
			r.Header.Set("Authorization", c.header)
		}
		p, err := tok.Authenticate(r)
		if c.err != nil {
			require.ErrorIs(t, err, c.err, c.header)
			if c.header != "" {
				require.False(t, errors.Is(err, api.ErrNoCredentials), "a wrong credential is not a missing one")
				require.NotContains(t, err.Error(), officerToken[:10])
			}
			continue
		}
		require.NoError(t, err, c.header)
		require.Equal(t, c.want, p)
	}

	path := filepath.Join(t.TempDir(), "tokens")
	require.NoError(t, os.WriteFile(path, []byte(tokenFile), 0o600))
	tok, err = api.LoadTokens(path)
	require.NoError(t, err)
	require.Equal(t, 3, tok.Len())
	_, err = api.LoadTokens(path + ".missing")
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestRoleFile(t *testing.T) {
	roles, err := api.ParseRoles(strings.NewReader("# certificate names\nAlice Ng officer\naudit@example.com auditor\n"), "roles")
	require.NoError(t, err)
	require.Equal(t, map[string]api.Role{"Alice Ng": api.RoleOfficer, "audit@example.com": api.RoleAuditor}, roles)
	_, err = api.ParseRoles(strings.NewReader("a officer\nb admin\na auditor\n"), "roles")
	require.ErrorIs(t, err, api.ErrDuplicate)
	require.Contains(t, err.Error(), `api: roles: line 3: duplicate: "a" is on line 1`)
	_, err = api.ParseRoles(strings.NewReader("officer\n"), "roles")
	require.ErrorIs(t, err, api.ErrSyntax)
	require.Contains(t, err.Error(), "want NAME ROLE")
}

// FuzzParseTokens: any file parses or fails with a *FileError, never panics; what parses
// authenticates exactly the tokens whose digests it lists, and role files likewise.
func FuzzParseTokens(f *testing.F) {
	f.Add(tokenFile)
	f.Add(digest + " a officer\n" + digest + " b admin\n")
	f.Add("# c\n\n" + digest + "  Alice  Ng   auditor  \r\n")
	f.Add(digest + " \xff officer")
	f.Add("x y z\n")
	f.Fuzz(func(t *testing.T, file string) {
		tok, err := api.ParseTokens(strings.NewReader(file), "f")
		if err != nil {
			var fe *api.FileError
			require.ErrorAs(t, err, &fe)
			require.Nil(t, tok)
		} else {
			require.Positive(t, tok.Len())
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", "Bearer t")
			p, err := tok.Authenticate(r)
			if strings.Contains(strings.ToLower(file), digest) && err == nil {
				require.NotEmpty(t, p.Name)
				require.Contains(t, []api.Role{api.RoleOfficer, api.RoleAuditor, api.RoleAdmin}, p.Role)
			} else if !strings.Contains(strings.ToLower(file), digest) {
				require.ErrorIs(t, err, api.ErrUnauthenticated)
			}
		}
		roles, err := api.ParseRoles(strings.NewReader(file), "f")
		if err != nil {
			var fe *api.FileError
			require.ErrorAs(t, err, &fe)
			return
		}
		for name, role := range roles {
			require.NotEmpty(t, name)
			require.Equal(t, strings.TrimSpace(name), name)
			_, err := api.ParseRole(string(role))
			require.NoError(t, err)
		}
	})
}

// testCA is a certificate authority made for a test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &testCA{cert: cert, key: key}
}

// issue makes a leaf certificate for cn (and emails), for a server when server is set.
func (ca *testCA) issue(t *testing.T, cn string, emails []string, server bool) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, EmailAddresses: emails,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestMutualTLS(t *testing.T) {
	e := newEnv(t)
	ca := newCA(t, "commseal test CA")
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	tokens, err := api.ParseTokens(strings.NewReader(tokenFile), "tokens")
	require.NoError(t, err)
	roles, err := api.ParseRoles(strings.NewReader("Alice Ng officer\naudit@example.com auditor\n"), "roles")
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(api.New(api.Options{Ledger: e.l, Index: e.ix, Signer: e.keys.Signer,
		Auth: api.AnyOf(tokens, &api.Certificates{Roles: roles})}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.issue(t, "api", nil, true)},
		ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()
	e.srv = srv
	client := func(cert *tls.Certificate) *http.Client {
		cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		if cert != nil { // sent whatever CAs the server names
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	officer := ca.issue(t, "Alice Ng", nil, false)
	auditor := ca.issue(t, "unlisted CN", []string{"audit@example.com"}, false)
	stranger := ca.issue(t, "Mallory", []string{"m@example.com"}, false)
	other := newCA(t, "another CA").issue(t, "Alice Ng", nil, false)

	// The officer's certificate searches, sealed under the certificate's name.
	size := e.l.Size()
	resp := e.do(t, client(&officer), "POST", "/v1/search", "", "case 4", map[string]any{"text": "lunch"})
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, size+1, e.l.Size())
	require.Equal(t, "Alice Ng", e.lastAccess(t)["who"])

	// The auditor's certificate (named by its email) reads checkpoints, not content.
	resp = e.do(t, client(&auditor), "GET", "/v1/checkpoint", "", "", nil)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	size = e.l.Size()
	for _, c := range []struct {
		name   string
		cl     *http.Client
		token  string
		status int
	}{
		{"auditor asks for content", client(&auditor), "", 403},
		{"a certificate with no role", client(&stranger), "", 401},
		{"no certificate, no token", client(nil), "", 401},
		{"a wrong token beside a good certificate", client(&officer), "wrong", 401},
	} {
		resp := e.do(t, c.cl, "GET", "/v1/entries/0", c.token, "case 4", nil)
		var v struct{ Error string }
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
		resp.Body.Close()
		require.Equal(t, c.status, resp.StatusCode, c.name)
		require.NotEmpty(t, v.Error)
		require.Equal(t, size, e.l.Size(), "%s: nothing sealed", c.name)
	}
	// A bearer token works without a certificate.
	resp = e.do(t, client(nil), "GET", "/v1/entries/0", officerToken, "case 4", nil)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)

	// A certificate from another CA does not get through the handshake.
	_, err = client(&other).Get(srv.URL + "/v1/status")
	require.Error(t, err)

	// Certificates looks only at verified chains: the same names unverified are refused.
	r := httptest.NewRequest("GET", "/", nil)
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{mustParse(t, officer)}}
	_, err = (&api.Certificates{Roles: roles}).Authenticate(r)
	require.ErrorIs(t, err, api.ErrNoCredentials)
}

func mustParse(t *testing.T, c tls.Certificate) *x509.Certificate {
	t.Helper()
	x, err := x509.ParseCertificate(c.Certificate[0])
	require.NoError(t, err)
	return x
}
