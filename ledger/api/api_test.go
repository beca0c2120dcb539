package api_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"iter"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/commseal/commseal/internal/testio"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/api"
	"github.com/commseal/commseal/ledger/search"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/memstore"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func TestRefusalsSealNothing(t *testing.T) {
	e := newEnv(t)
	q := map[string]any{"text": "whatsapp", "why": "case 1"}
	cases := []struct {
		name         string
		method, path string
		token, why   string
		body         any
		status       int
		want         string
	}{
		{"search without a token", "POST", "/v1/search", "", "", q, 401, "not authenticated"},
		{"search with a wrong token", "POST", "/v1/search", "not-a-token", "", q, 401, "not authenticated"},
		{"search by an auditor", "POST", "/v1/search", auditorToken, "", q, 403, "role auditor"},
		{"search without a reason", "POST", "/v1/search", officerToken, "", map[string]any{"text": "whatsapp"}, 400, "a reason is required"},
		{"search with a blank reason", "POST", "/v1/search", officerToken, "   ", map[string]any{"text": "whatsapp"}, 400, "a reason is required"},
		{"search with a bad query", "POST", "/v1/search", officerToken, "case 1", map[string]any{"text": "(whatsapp"}, 400, "bad query"},
		{"search with an unknown field", "POST", "/v1/search", officerToken, "case 1", map[string]any{"txt": "whatsapp"}, 400, "unknown field"},
		{"search with a malformed body", "POST", "/v1/search", officerToken, "case 1", `{"text":`, 400, "bad request body"},
		{"search with two objects", "POST", "/v1/search", officerToken, "case 1", `{} {}`, 400, "data after"},
		{"search beyond the limit", "POST", "/v1/search", officerToken, "case 1", map[string]any{"limit": search.MaxLimit + 1}, 400, "bad query"},
		{"entry without a token", "GET", "/v1/entries/0", "", "case 1", nil, 401, "not authenticated"},
		{"entry with a wrong token", "GET", "/v1/entries/0", "x" + officerToken, "case 1", nil, 401, "not authenticated"},
		{"entry by an auditor", "GET", "/v1/entries/0", auditorToken, "case 1", nil, 403, "role auditor"},
		{"entry without a reason", "GET", "/v1/entries/0", officerToken, "", nil, 400, "a reason is required"},
		{"entry beyond the ledger", "GET", "/v1/entries/99", officerToken, "case 1", nil, 404, "no entry 99"},
		{"entry with a bad index", "GET", "/v1/entries/-1", officerToken, "case 1", nil, 400, "bad entry index"},
		{"blob by an auditor", "GET", "/v1/blobs/" + strings.Repeat("ab", 32), auditorToken, "case 1", nil, 403, "role auditor"},
		{"blob with a bad digest", "GET", "/v1/blobs/abc", officerToken, "case 1", nil, 400, "bad attachment digest"},
		{"export without a token", "POST", "/v1/export", "", "case 1", map[string]any{"indexes": []int{0}}, 401, "not authenticated"},
		{"export by an auditor", "POST", "/v1/export", auditorToken, "case 1", map[string]any{"indexes": []int{0}}, 403, "role auditor"},
		{"export without a reason", "POST", "/v1/export", officerToken, "", map[string]any{"indexes": []int{0}}, 400, "a reason is required"},
		{"export of nothing", "POST", "/v1/export", officerToken, "case 1", map[string]any{}, 400, "either a query or indexes"},
		{"export of both", "POST", "/v1/export", officerToken, "case 1", map[string]any{"indexes": []int{0}, "query": map[string]any{}}, 400, "either a query or indexes"},
		{"export beyond the ledger", "POST", "/v1/export", officerToken, "case 1", map[string]any{"indexes": []int{0, 99}}, 404, "no entry 99"},
		{"export with a bad query", "POST", "/v1/export", officerToken, "case 1", map[string]any{"query": map[string]any{"text": "NOT"}}, 400, "bad query"},
		{"reason with control characters", "POST", "/v1/search", officerToken, "", map[string]any{"why": "a\x00b"}, 400, "control characters"},
		{"reason too long", "POST", "/v1/search", officerToken, "", map[string]any{"why": strings.Repeat("x", api.MaxWhyBytes+1)}, 400, "longer than"},
		{"body too large", "POST", "/v1/search", officerToken, "case 1", `{"text":"` + strings.Repeat("x", api.DefaultMaxBodyBytes) + `"}`, 413, "larger than"},
		{"checkpoint without a token", "GET", "/v1/checkpoint", "", "", nil, 401, "not authenticated"},
		{"proof with a wrong token", "GET", "/v1/proof/0", "nope", "", nil, 401, "not authenticated"},
		{"verify without a token", "POST", "/v1/verify", "", "", nil, 401, "not authenticated"},
		{"access log without a token", "GET", "/v1/access", "", "", nil, 401, "not authenticated"},
		{"no such endpoint", "GET", "/v1/nothing", officerToken, "case 1", nil, 404, "no such endpoint"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			size := e.l.Size()
			status, body := e.call(t, tc.method, tc.path, tc.token, tc.why, tc.body)
			require.Equal(t, tc.status, status, "body %s", body)
			require.Contains(t, errorOf(t, body), tc.want)
			require.Equal(t, size, e.l.Size(), "a refused request seals nothing")
		})
	}
	entries, err := os.ReadDir(e.tmp)
	require.NoError(t, err)
	require.Empty(t, entries, "no export was staged")
}

func TestBasicAuthIsNotABearerToken(t *testing.T) {
	e := newEnv(t)
	req, err := http.NewRequest("GET", e.srv.URL+"/v1/checkpoint", nil)
	require.NoError(t, err)
	req.SetBasicAuth("officer", officerToken)
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 401, resp.StatusCode)
	require.Equal(t, `Bearer realm="commseal"`, resp.Header.Get("WWW-Authenticate"))
}

func TestSearchIsSealedWithWhoAndWhy(t *testing.T) {
	e := newEnv(t)
	size := e.l.Size()
	status, body := e.call(t, "POST", "/v1/search", officerToken, "", map[string]any{"text": "微信 OR 0700", "why": "SFC request 17"})
	require.Equal(t, 200, status, "body %s", body)
	var res search.Result
	require.NoError(t, json.Unmarshal(body, &res))
	require.Equal(t, 2, res.Total)
	require.Equal(t, []uint64{0, 2}, []uint64{res.Hits[0].Index, res.Hits[1].Index})
	require.Equal(t, size, res.Size, "the query saw the ledger as it was")
	require.Equal(t, size+1, e.l.Size(), "one access entry")
	a := e.lastAccess(t)
	require.Equal(t, "alice@compliance", a["who"])
	require.Equal(t, "SFC request 17", a["why"])
	require.Equal(t, "query", a["op"])
	require.Equal(t, "query", a["for"])
	require.NotContains(t, a["query"], "0700", "the query is encrypted in the entry")

	// The header wins over the body's field; an admin may search.
	status, body = e.call(t, "POST", "/v1/search", adminToken, "from the header", map[string]any{"text": "lunch", "why": "from the body"})
	require.Equal(t, 200, status, "body %s", body)
	a = e.lastAccess(t)
	require.Equal(t, "root", a["who"])
	require.Equal(t, "from the header", a["why"])
}

func TestEntryIsSealedBeforeItIsRead(t *testing.T) {
	e := newEnv(t)
	size := e.l.Size()
	status, body := e.call(t, "GET", "/v1/entries/2", officerToken, "case 9", nil)
	require.Equal(t, 200, status, "body %s", body)
	var got api.Entry
	require.NoError(t, json.Unmarshal(body, &got))
	require.Equal(t, "message", got.Kind)
	require.NotNil(t, got.Message)
	require.Equal(t, "call me on WhatsApp 微信", got.Message.Text)
	require.NotEmpty(t, got.KeyID)
	require.Equal(t, size+1, e.l.Size())
	a := e.lastAccess(t)
	require.Equal(t, "get", a["op"])
	require.Equal(t, "read", a["for"])
	require.EqualValues(t, 2, a["from"])
	require.Equal(t, "case 9", a["why"])

	// An access entry reads back as its body.
	status, body = e.call(t, "GET", "/v1/entries/"+itoa(size), adminToken, "audit of the audit", nil)
	require.Equal(t, 200, status, "body %s", body)
	got = api.Entry{}
	require.NoError(t, json.Unmarshal(body, &got))
	require.Equal(t, "access", got.Kind)
	require.Nil(t, got.Message)
	var body2 map[string]any
	require.NoError(t, json.Unmarshal(got.Body, &body2))
	require.Equal(t, "alice@compliance", body2["who"])
}

func itoa(i uint64) string { return strconv.FormatUint(i, 10) }

// flipped is a store whose entry 2 has one payload byte flipped on the way out.
type flipped struct{ *memstore.Store }

func (f flipped) Entries(ctx context.Context, start, end uint64) iter.Seq2[store.Entry, error] {
	return func(yield func(store.Entry, error) bool) {
		for e, err := range f.Store.Entries(ctx, start, end) {
			if err == nil && e.Index == 2 {
				e.Payload = bytes.Clone(e.Payload)
				e.Payload[len(e.Payload)/2] ^= 1
			}
			if !yield(e, err) {
				return
			}
		}
	}
}

func TestBlobIsSealedBeforeItIsRead(t *testing.T) {
	e := newEnv(t)
	data := []byte("\x89PNG a screenshot")
	sum, err := e.l.PutBlob(context.Background(), data)
	require.NoError(t, err)
	size := e.l.Size()
	status, body := e.call(t, "GET", "/v1/blobs/"+hex.EncodeToString(sum[:]), officerToken, "case 3", nil)
	require.Equal(t, 200, status, "body %s", body)
	require.Equal(t, data, body)
	require.Equal(t, size+1, e.l.Size())
	a := e.lastAccess(t)
	require.Equal(t, "blob", a["op"])
	require.Equal(t, []any{hex.EncodeToString(sum[:])}, a["blobs"])
}

// unzip writes the zip in b to a new directory and returns it.
func unzip(t *testing.T, b []byte) string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	require.NoError(t, err)
	dir := t.TempDir()
	for _, f := range zr.File {
		require.False(t, strings.Contains(f.Name, ".."), f.Name)
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
		rc, err := f.Open()
		require.NoError(t, err)
		data, err := io.ReadAll(rc)
		rc.Close()
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(p, data, 0o600))
	}
	return dir
}

func TestExportByQueryIsAVerifiedBundle(t *testing.T) {
	e := newEnv(t)
	size := e.l.Size()
	status, body := e.call(t, "POST", "/v1/export", officerToken, "", map[string]any{
		"why": "SFC request 17", "query": map[string]any{"text": "HK", "senders": []string{"u0", "u1"}}})
	require.Equal(t, 200, status, "body %s", body)
	rep, err := verify.Bundle(unzip(t, body), e.vkey)
	require.NoError(t, err, "the bundle is intact")
	require.Equal(t, []uint64{0, 3}, rep.Entries)
	require.Equal(t, "alice@compliance", rep.Request.Who)
	require.Equal(t, "SFC request 17", rep.Request.Why)
	require.Contains(t, rep.Request.Query, `"text":"HK"`)
	// One query entry, then one read naming every exported entry, all before the bundle.
	require.Equal(t, size+2, e.l.Size())
	first, err := e.l.Get(context.Background(), size)
	require.NoError(t, err)
	require.Contains(t, string(first.Body), `"op":"query"`)
	require.Contains(t, string(first.Body), `"for":"export"`)
	staged, err := os.ReadDir(e.tmp)
	require.NoError(t, err)
	require.Empty(t, staged, "the staged bundle is removed")
}

func TestExportByIndexesIsAVerifiedBundle(t *testing.T) {
	e := newEnv(t)
	size := e.l.Size()
	resp := e.do(t, e.srv.Client(), "POST", "/v1/export", adminToken, "drill", map[string]any{"indexes": []int{4, 1, 2, 1}})
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "application/zip", resp.Header.Get("Content-Type"))
	require.Equal(t, "3", resp.Header.Get("X-Commseal-Entries"))
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	dir := unzip(t, body)
	rep, err := verify.Bundle(dir, e.vkey)
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2, 4}, rep.Entries)
	require.Equal(t, size+1, e.l.Size(), "one read entry naming the scattered indexes")

	// The unzipped bundle is the bundle: altering it is caught.
	p := filepath.Join(dir, "messages.jsonl")
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, bytes.Replace(b, []byte("lunch"), []byte("LUNCH"), 1), 0o600))
	_, err = verify.Bundle(dir, e.vkey)
	require.ErrorIs(t, err, verify.ErrAltered)
}

func TestExportOfAQueryThatMatchesNothing(t *testing.T) {
	e := newEnv(t)
	size := e.l.Size()
	status, body := e.call(t, "POST", "/v1/export", officerToken, "case", map[string]any{"query": map[string]any{"text": "nothing-like-this"}})
	require.Equal(t, 404, status)
	require.Contains(t, errorOf(t, body), "matched nothing")
	require.Equal(t, size+1, e.l.Size(), "the search itself was sealed")
}

func TestProofsCheckpointsAndConsistencyVerifyIndependently(t *testing.T) {
	e := newEnv(t)
	status, cp1 := e.call(t, "GET", "/v1/checkpoint", auditorToken, "", nil)
	require.Equal(t, 200, status, "body %s", cp1)
	v, err := note.NewVerifier(e.vkey)
	require.NoError(t, err)
	n1, err := note.Open(cp1, note.VerifierList(v))
	require.NoError(t, err)
	old := parseTree(t, n1.Text)
	require.EqualValues(t, 5, old.N)

	status, pb := e.call(t, "GET", "/v1/proof/3", auditorToken, "", nil)
	require.Equal(t, 200, status, "body %s", pb)
	p, err := seal.ParseProof(pb)
	require.NoError(t, err)
	require.EqualValues(t, 3, p.Index)
	require.NoError(t, tlog.CheckRecord(tlog.RecordProof(p.Hashes), old.N, old.Hash, 3, tlog.RecordHash(p.Extra)),
		"the inclusion proof checks with x/mod's tlog")

	for i := 5; i < 12; i++ {
		e.append(t, i, "more")
	}
	_, _, err = e.l.SignCheckpoint(context.Background())
	require.NoError(t, err)
	status, cp2 := e.call(t, "GET", "/v1/checkpoint", officerToken, "", nil)
	require.Equal(t, 200, status)
	n2, err := note.Open(cp2, note.VerifierList(v))
	require.NoError(t, err)
	cur := parseTree(t, n2.Text)

	status, cb := e.call(t, "GET", "/v1/consistency?old=5", auditorToken, "", nil)
	require.Equal(t, 200, status, "body %s", cb)
	var c api.Consistency
	require.NoError(t, json.Unmarshal(cb, &c))
	require.EqualValues(t, 5, c.Old)
	require.Equal(t, uint64(cur.N), c.New)
	require.NoError(t, tlog.CheckTree(tlog.TreeProof(c.Hashes), cur.N, cur.Hash, old.N, old.Hash),
		"the consistency proof checks with x/mod's tlog")

	for _, bad := range []struct {
		q      string
		status int
	}{{"", 400}, {"old=x", 400}, {"old=6&new=5", 400}, {"old=1&new=9999", 404}, {"old=1&new=-1", 400}} {
		status, body := e.call(t, "GET", "/v1/consistency?"+bad.q, auditorToken, "", nil)
		require.Equal(t, bad.status, status, "%s: %s", bad.q, body)
	}
	status, body := e.call(t, "GET", "/v1/proof/9999", auditorToken, "", nil)
	require.Equal(t, 404, status, "body %s", body)
}

// parseTree reads a C2SP checkpoint's body (origin, size, base64 root) by hand.
func parseTree(t *testing.T, text string) tlog.Tree {
	t.Helper()
	lines := strings.Split(text, "\n")
	require.GreaterOrEqual(t, len(lines), 3)
	n, err := strconv.ParseInt(lines[1], 10, 64)
	require.NoError(t, err)
	root, err := base64.StdEncoding.DecodeString(lines[2])
	require.NoError(t, err)
	require.Len(t, root, 32)
	return tlog.Tree{N: n, Hash: tlog.Hash(root)}
}

func TestAProofBeforeTheFirstCheckpointIs404(t *testing.T) {
	e := newEnv(t)
	i := e.append(t, 100, "not yet signed")
	status, body := e.call(t, "GET", "/v1/proof/"+itoa(i), auditorToken, "", nil)
	require.Equal(t, 404, status)
	require.Contains(t, errorOf(t, body), "not covered")
}

func TestStatusAndVerificationWhileTheLedgerGrows(t *testing.T) {
	e := newEnv(t)
	status, body := e.call(t, "GET", "/v1/status", auditorToken, "", nil)
	require.Equal(t, 200, status, "body %s", body)
	var st api.Status
	require.NoError(t, json.Unmarshal(body, &st))
	require.EqualValues(t, 5, st.TreeSize)
	require.EqualValues(t, 5, st.Checkpoint.Size)
	require.EqualValues(t, 5, st.Index.Size)
	require.Equal(t, 5, st.Index.Messages)
	require.Nil(t, st.Verification)

	// Appends and checkpoints go on while the store is verified: the verification sees the
	// store as it was when it began, and finds nothing wrong.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 1000; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// Not require: this goroutine must not call t.FailNow.
			if _, err := e.l.Append(context.Background(), &capture.Message{Platform: capture.PlatformDingTalk, Tenant: "corp",
				ID: "grow-" + strconv.Itoa(i), Kind: capture.KindText, Conversation: capture.Conversation{ID: "cid-grow"},
				Text: "during verification", Raw: []byte(`{}`)}); err != nil {
				t.Error(err)
				return
			}
			if i%7 == 0 {
				if _, _, err := e.l.SignCheckpoint(context.Background()); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	for range 5 {
		status, body = e.call(t, "POST", "/v1/verify", auditorToken, "", nil)
		require.Equal(t, 200, status, "body %s", body)
		var v api.Verification
		require.NoError(t, json.Unmarshal(body, &v))
		require.True(t, v.OK, "error %s", v.Error)
		require.False(t, v.Altered)
		require.Equal(t, v.Size, v.Report.Entries)
	}
	close(stop)
	wg.Wait()

	status, body = e.call(t, "GET", "/v1/status", officerToken, "", nil)
	require.Equal(t, 200, status)
	st = api.Status{}
	require.NoError(t, json.Unmarshal(body, &st))
	require.NotNil(t, st.Verification)
	require.True(t, st.Verification.OK)
	require.Greater(t, st.TreeSize, uint64(5))
}

func TestVerificationReportsAnAlteredStore(t *testing.T) {
	e := newEnv(t)
	tokens, err := api.ParseTokens(strings.NewReader(tokenFile), "tokens")
	require.NoError(t, err)
	h := api.New(api.Options{Ledger: e.l, Auth: tokens, Store: flipped{e.st}})
	e.srv.Config.Handler = h
	status, body := e.call(t, "POST", "/v1/verify", auditorToken, "", nil)
	require.Equal(t, 200, status, "body %s", body)
	var v api.Verification
	require.NoError(t, json.Unmarshal(body, &v))
	require.False(t, v.OK)
	require.True(t, v.Altered)
	require.Contains(t, v.Error, "entry 2")
	status, body = e.call(t, "GET", "/v1/status", auditorToken, "", nil)
	require.Equal(t, 200, status)
	require.Contains(t, string(body), `"altered": true`)

	// Without an index, signer or store, those endpoints say so.
	e.srv.Config.Handler = api.New(api.Options{Ledger: e.l, Auth: tokens})
	for _, c := range []struct{ method, path string }{{"POST", "/v1/verify"}, {"POST", "/v1/search"}, {"POST", "/v1/export"}} {
		status, body := e.call(t, c.method, c.path, adminToken, "case", map[string]any{"indexes": []int{0}})
		if c.path == "/v1/search" {
			status, body = e.call(t, c.method, c.path, adminToken, "case", map[string]any{})
		}
		require.Equal(t, 501, status, "%s: %s", c.path, body)
	}
}

func TestAccessLogListsMetadataToAnAuditor(t *testing.T) {
	e := newEnv(t)
	size := e.l.Size()
	status, _ := e.call(t, "GET", "/v1/entries/0", officerToken, "case 5", nil)
	require.Equal(t, 200, status)
	status, _ = e.call(t, "POST", "/v1/search", officerToken, "case 6", map[string]any{"text": "secret words"})
	require.Equal(t, 200, status)
	status, body := e.call(t, "GET", "/v1/access?from=0", auditorToken, "", nil)
	require.Equal(t, 200, status, "body %s", body)
	require.Equal(t, size+2, e.l.Size(), "listing the access log seals nothing")
	var log api.AccessLog
	require.NoError(t, json.Unmarshal(body, &log))
	require.Equal(t, size+2, log.Next)
	require.Len(t, log.Entries, 2)
	require.Equal(t, api.AccessEntry{Index: size, Who: "alice@compliance", Why: "case 5", Op: "get", For: "read", From: 0, To: 1, At: log.Entries[0].At}, log.Entries[0])
	require.Equal(t, "query", log.Entries[1].Op)
	require.NotContains(t, string(body), "secret words")

	status, body = e.call(t, "GET", "/v1/access?from=0&limit=2", auditorToken, "", nil)
	require.Equal(t, 200, status)
	require.NoError(t, json.Unmarshal(body, &log))
	require.EqualValues(t, 2, log.Next)
	require.Empty(t, log.Entries)
	status, _ = e.call(t, "GET", "/v1/access?limit=0", auditorToken, "", nil)
	require.Equal(t, 400, status)
}

func TestAMisconfiguredHandlerRefusesEverything(t *testing.T) {
	e := newEnv(t)
	e.srv.Config.Handler = api.New(api.Options{Ledger: e.l})
	size := e.l.Size()
	status, body := e.call(t, "POST", "/v1/search", adminToken, "case", map[string]any{})
	require.Equal(t, 500, status)
	require.Contains(t, errorOf(t, body), "misconfigured")
	require.Equal(t, size, e.l.Size())
}

func TestShreddedContentIsGoneButProvable(t *testing.T) {
	e := newEnv(t)
	policy := ledger.RetentionPolicy{Rules: []ledger.RetentionRule{{Name: "1 year", Keep: ledger.Period{Years: 1}}}}
	shreds, err := e.l.ApplyRetention(context.Background(), policy, ledger.ApplyOptions{Authority: "retention job",
		Now: time.Date(2028, 6, 1, 0, 0, 0, 0, time.UTC)})
	require.NoError(t, err)
	require.NotEmpty(t, shreds)
	status, body := e.call(t, "GET", "/v1/entries/1", officerToken, "case 7", nil)
	require.Equal(t, 410, status, "body %s", body)
	require.Contains(t, errorOf(t, body), "shredded")
	require.Equal(t, "get", e.lastAccess(t)["op"], "the attempt is on the record")

	// The export carries the shredded entry's leaf and proof, no content, and verifies.
	status, body = e.call(t, "POST", "/v1/export", officerToken, "case 7", map[string]any{"indexes": []int{1, 2}})
	require.Equal(t, 200, status, "body %s", body)
	rep, err := verify.Bundle(unzip(t, body), e.vkey)
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2, shreds[0].Index}, rep.Entries, "the shred entry is cited and exported beside them")
	require.Equal(t, 2, rep.Shredded)

	// An attachment that is not there is 404.
	status, body = e.call(t, "GET", "/v1/blobs/"+strings.Repeat("00", 32), officerToken, "case 7", nil)
	require.Equal(t, 404, status, "body %s", body)
}

// blocking is a store whose Size waits until release is closed, once entered is signalled.
type blocking struct {
	*memstore.Store
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blocking) Size(ctx context.Context) (uint64, error) {
	b.once.Do(func() { close(b.entered) })
	<-b.release
	return b.Store.Size(ctx)
}

func TestOneVerificationAtATime(t *testing.T) {
	e := newEnv(t)
	tokens, err := api.ParseTokens(strings.NewReader(tokenFile), "tokens")
	require.NoError(t, err)
	st := &blocking{Store: e.st, entered: make(chan struct{}), release: make(chan struct{})}
	e.srv.Config.Handler = api.New(api.Options{Ledger: e.l, Auth: tokens, Store: st})
	first := make(chan int, 1)
	go func() { // no require here: not the test's goroutine
		req, _ := http.NewRequest("POST", e.srv.URL+"/v1/verify", nil)
		req.Header.Set("Authorization", "Bearer "+auditorToken)
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Error(err)
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	<-st.entered
	status, body := e.call(t, "POST", "/v1/verify", adminToken, "", nil)
	require.Equal(t, 409, status)
	require.Contains(t, errorOf(t, body), "already running")
	close(st.release)
	require.Equal(t, 200, <-first)
	status, _ = e.call(t, "POST", "/v1/verify", adminToken, "", nil)
	require.Equal(t, 200, status, "the next one runs")
}

func TestTheLogNamesPrincipalsNotTokensOrReasons(t *testing.T) {
	e := newEnv(t)
	tokens, err := api.ParseTokens(strings.NewReader(tokenFile), "tokens")
	require.NoError(t, err)
	var logged syncBuffer
	log := slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.srv.Config.Handler = api.New(api.Options{Ledger: e.l, Index: e.ix, Auth: tokens, Logger: log})
	e.call(t, "POST", "/v1/search", officerToken, "confidential case name", map[string]any{"text": "whatsapp"})
	e.call(t, "GET", "/v1/entries/0", officerToken+"x", "confidential case name", nil)
	e.call(t, "GET", "/v1/entries/0", auditorToken, "confidential case name", nil)
	out := logged.String()
	require.Contains(t, out, "who=alice@compliance")
	require.Contains(t, out, "status=401")
	require.Contains(t, out, "status=403")
	for _, secret := range []string{officerToken, auditorToken, "confidential", "whatsapp"} {
		require.NotContains(t, out, secret)
	}
}

// syncBuffer is written by the server under test while the test reads it.
type syncBuffer = testio.Buffer

func TestExportPagesAQuery(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		offset  int
		entries string
		want    []uint64
	}{{0, "2", []uint64{0, 1}}, {2, "2", []uint64{2, 3}}, {4, "1", []uint64{4}}} {
		resp := e.do(t, e.srv.Client(), "POST", "/v1/export", officerToken, "case 8",
			map[string]any{"query": map[string]any{"conversations": []string{"cid-desk"}, "offset": c.offset, "limit": 2}})
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode, "body %s", body)
		require.Equal(t, "5", resp.Header.Get("X-Commseal-Matched"))
		require.Equal(t, c.entries, resp.Header.Get("X-Commseal-Entries"))
		rep, err := verify.Bundle(unzip(t, body), e.vkey)
		require.NoError(t, err)
		require.Equal(t, c.want, rep.Entries)
	}
}

// TestExportWithRenderings: the export asks for RSMF and EML and the bundle holds them and
// verifies; an unknown format is refused before anything is read or sealed.
func TestExportWithRenderings(t *testing.T) {
	e := newEnv(t)
	size := e.l.Size()
	status, body := e.call(t, "POST", "/v1/export", officerToken, "case", map[string]any{"indexes": []int{1}, "formats": []string{"pdf"}})
	require.Equal(t, 400, status)
	require.Contains(t, errorOf(t, body), `unknown format "pdf"`)
	require.Equal(t, size, e.l.Size(), "refused before anything is sealed")

	resp := e.do(t, e.srv.Client(), "POST", "/v1/export", officerToken, "case", map[string]any{"indexes": []int{1, 2}, "formats": []string{"rsmf", "eml"}})
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	zipped, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	dir := unzip(t, zipped)
	rep, err := verify.Bundle(dir, e.vkey)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"rsmf", "eml"}, rep.Request.Formats)
	for _, sub := range []string{"rsmf", "eml"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		require.NoError(t, err)
		require.NotEmpty(t, ents, sub)
	}
}
