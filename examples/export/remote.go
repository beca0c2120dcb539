package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/commseal/commseal/internal/durable"
	"github.com/commseal/commseal/ledger/api"
	"github.com/commseal/commseal/ledger/search"
)

// maxBundleBytes bounds the zip a server may send.
const maxBundleBytes = 4 << 30

// remote asks the process that owns the ledger (its ledger/api handler at base) for the export
// and unpacks the bundle into out. The principal the token names is the "who"; why goes with
// the request.
type remote struct {
	base, tokenFile, caFile string
}

func (r *remote) export(ctx context.Context, f *filter, why string, formats []string, out string, stdout, stderr io.Writer) int {
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "export: "+format+"\n", a...)
		return code
	}
	for _, k := range f.kinds {
		if !slices.Contains(messageKinds, k) {
			return fail(exitRefused, "-kind %q with -api: the server exports messages, of kinds %s", k, strings.Join(messageKinds, ", "))
		}
	}
	token, err := os.ReadFile(r.tokenFile)
	if err != nil {
		return fail(exitRefused, "-token-file: %v", err)
	}
	client, err := r.client()
	if err != nil {
		return fail(exitRefused, "%v", err)
	}
	q := search.Query{Text: f.query, Conversations: f.conversations, Senders: f.senders, Kinds: f.kinds, From: f.from, To: f.to}
	body, err := json.Marshal(api.ExportRequest{Query: &q, Why: why, Formats: formats})
	if err != nil {
		return fail(exitFailed, "%v", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(r.base, "/")+"/v1/export", bytes.NewReader(body))
	if err != nil {
		return fail(exitRefused, "-api: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fail(exitFailed, "asking %s: %v", r.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&e)
		code := exitFailed // 404 nothing matched, 410, 5xx: the export failed
		switch resp.StatusCode {
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
			code = exitRefused // the request, the token or its role: refused, nothing exported
		}
		return fail(code, "the server said %s: %s", resp.Status, e.Error)
	}
	zipped, err := io.ReadAll(io.LimitReader(resp.Body, maxBundleBytes+1))
	if err != nil {
		return fail(exitFailed, "reading the bundle: %v", err)
	}
	if len(zipped) > maxBundleBytes {
		return fail(exitFailed, "the bundle is over %d bytes", maxBundleBytes)
	}
	files, err := unpack(out, zipped)
	if err != nil {
		return fail(exitFailed, "unpacking the bundle: %v", err)
	}
	entries, matched := resp.Header.Get("X-Commseal-Entries"), resp.Header.Get("X-Commseal-Matched")
	fmt.Fprintf(stdout, "exported %s entries by %s (%s) into %s: %d files\n", entries, r.base, f, out, files)
	if m, err := strconv.Atoi(matched); err == nil {
		if n, err := strconv.Atoi(entries); err == nil && m > n {
			fmt.Fprintf(stdout, "the query matched %d: the server exports at most %d at once; ask again for the rest\n", m, n)
		}
	}
	fmt.Fprintf(stdout, "check it: go run ./examples/verify -bundle %s -key VKEY (the ledger's verifier key, from its owner)\n", out)
	return exitOK
}

// client is an HTTP client trusting caFile's certificates too, if given.
func (r *remote) client() (*http.Client, error) {
	c := &http.Client{Timeout: 30 * time.Minute}
	if r.caFile == "" {
		return c, nil
	}
	pem, err := os.ReadFile(r.caFile)
	if err != nil {
		return nil, fmt.Errorf("-api-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("-api-ca %s: no PEM certificate", r.caFile)
	}
	c.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	return c, nil
}

// unpack writes the zip's files under a staging directory beside out and renames it to out.
// The whole zip is read and checked first (a name that would leave the directory, or a file
// that does not decompress, is refused before anything is written), and a failure while
// writing overwrites the staged files with zeros before removing them: the bundle's content
// is on disk only as the finished bundle, as with ledger/export's own staging.
func unpack(out string, zipped []byte) (n int, err error) {
	zr, err := zip.NewReader(bytes.NewReader(zipped), int64(len(zipped)))
	if err != nil {
		return 0, err
	}
	files := map[string][]byte{}
	for _, zf := range zr.File {
		if strings.HasSuffix(zf.Name, "/") {
			continue // a directory entry: directories are made for the files in them
		}
		name := filepath.FromSlash(zf.Name)
		if !filepath.IsLocal(name) {
			return 0, fmt.Errorf("%q is not a file inside the bundle", zf.Name)
		}
		rc, err := zf.Open()
		if err != nil {
			return 0, err
		}
		data, err := io.ReadAll(io.LimitReader(rc, maxBundleBytes))
		rc.Close()
		if err != nil {
			return 0, fmt.Errorf("%s: %w", zf.Name, err)
		}
		if _, dup := files[name]; dup {
			return 0, fmt.Errorf("%q is in the bundle twice", zf.Name)
		}
		files[name] = data
	}
	parent := filepath.Dir(filepath.Clean(out))
	if err := durable.MkdirAll(parent); err != nil {
		return 0, err
	}
	stage, err := os.MkdirTemp(parent, "."+filepath.Base(out)+".unpack-")
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			_ = filepath.WalkDir(stage, func(p string, d fs.DirEntry, werr error) error {
				if werr == nil && d.Type().IsRegular() {
					_ = durable.Scrub(p, nil)
				}
				return nil
			})
			os.RemoveAll(stage)
		}
	}()
	for name, data := range files {
		p := filepath.Join(stage, name)
		if err := durable.MkdirAll(filepath.Dir(p)); err != nil {
			return 0, err
		}
		if err := durable.CreateExclusive(p, data); err != nil {
			return 0, err
		}
		n++
	}
	if err := os.Remove(out); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("%s: %w", out, err)
	}
	if err := os.Rename(stage, out); err != nil {
		return 0, err
	}
	return n, durable.SyncDir(parent)
}
