package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/commseal/commseal/capture/dingtalk/dingtalktest"
	"github.com/commseal/commseal/ledger/api"
	"github.com/stretchr/testify/require"
)

// pemCert is a certificate and its key, parsed and as PEM files.
type pemCert struct {
	cert              *x509.Certificate
	key               *ecdsa.PrivateKey
	certFile, keyFile string
	pair              tls.Certificate
}

// makeCert makes a certificate from tmpl (signed by parent, or self-signed) and writes it
// and its key as PEM files name.crt and name.key in dir.
func makeCert(t *testing.T, dir, name string, tmpl *x509.Certificate, parent *pemCert) *pemCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	signer, signKey := tmpl, key
	if parent != nil {
		signer, signKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signKey)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	p := &pemCert{cert: cert, key: key, certFile: filepath.Join(dir, name+".crt"), keyFile: filepath.Join(dir, name+".key"),
		pair: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
	require.NoError(t, os.WriteFile(p.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(p.keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	return p
}

func TestArchiverServesTheAPIOverMutualTLS(t *testing.T) {
	g := dingtalktest.New(dingtalktest.Config{})
	defer g.Close()
	files := t.TempDir()
	ca := makeCert(t, files, "ca", &x509.Certificate{Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil)
	server := makeCert(t, files, "server", &x509.Certificate{Subject: pkix.Name{CommonName: "archiver"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca)
	officer := makeCert(t, files, "officer", &x509.Certificate{Subject: pkix.Name{CommonName: "Alice Ng"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca)
	roles := filepath.Join(files, "roles")
	require.NoError(t, os.WriteFile(roles, []byte("Alice Ng officer\n"), 0o600))

	env := envOf(map[string]string{"DINGTALK_CLIENT_ID": dingtalktest.DefaultClientID, "DINGTALK_CLIENT_SECRET": dingtalktest.DefaultClientSecret})
	args := []string{"-dir", t.TempDir(), "-openapi-host", g.URL, "-api-addr", "127.0.0.1:0",
		"-api-tls-cert", server.certFile, "-api-tls-key", server.keyFile, "-api-client-ca", ca.certFile, "-api-cert-roles", roles}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	urls := make(chan string, 1)
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, env, &stdout, &stderr, func(_, _, a string) { urls <- a }) }()
	var apiURL string
	select {
	case apiURL = <-urls:
	case code := <-done:
		t.Fatalf("archiver exited %d: %s", code, stderr.String())
	}
	require.Regexp(t, `^https://`, apiURL)

	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	client := func(cert *tls.Certificate) *http.Client {
		cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	req, err := http.NewRequest("GET", apiURL+"/v1/checkpoint", nil)
	require.NoError(t, err)
	resp, err := client(&officer.pair).Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Contains(t, []int{200, 404}, resp.StatusCode, "authenticated (404: no checkpoint yet on a new ledger)")

	// Without a client certificate, the handshake fails: -api-client-ca alone requires one.
	_, err = client(nil).Get(apiURL + "/v1/status")
	require.Error(t, err)

	stop()
	require.Equal(t, 0, <-done, stderr.String())
}

func TestBadAPITLSFilesExit2(t *testing.T) {
	files := t.TempDir()
	garbage := filepath.Join(files, "garbage")
	require.NoError(t, os.WriteFile(garbage, []byte("not PEM"), 0o600))
	ca := makeCert(t, files, "ca", &x509.Certificate{Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil)
	roles := filepath.Join(files, "roles")
	require.NoError(t, os.WriteFile(roles, []byte("Alice Ng officer\nAlice Ng auditor\n"), 0o600))
	tokens := filepath.Join(files, "tokens")
	require.NoError(t, os.WriteFile(tokens, []byte(api.HashToken("x")+" alice officer\n"), 0o600))
	creds := envOf(map[string]string{"DINGTALK_CLIENT_ID": "id", "DINGTALK_CLIENT_SECRET": "secret"})
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"bad certificate", []string{"-api-tls-cert", garbage, "-api-tls-key", garbage, "-api-tokens", tokens}, "API TLS certificate"},
		{"bad client CA", []string{"-api-tls-cert", ca.certFile, "-api-tls-key", ca.keyFile, "-api-client-ca", garbage, "-api-cert-roles", roles}, "no PEM certificate"},
		{"duplicate role", []string{"-api-tls-cert", ca.certFile, "-api-tls-key", ca.keyFile, "-api-client-ca", ca.certFile, "-api-cert-roles", roles}, "line 2: duplicate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			var stdout, stderr syncBuffer
			args := append([]string{"-dir", dir, "-api-addr", "127.0.0.1:0"}, c.args...)
			require.Equal(t, 2, run(t.Context(), args, creds, &stdout, &stderr, nil))
			require.Contains(t, stderr.String(), c.want)
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Empty(t, entries, "nothing was opened or laid out")
		})
	}
}
