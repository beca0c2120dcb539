package export

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
)

// The RSMF 2.0.0 schema as Relativity publishes it (testdata/rsmf, with its licence), compiled
// once with format assertions on (timestamps must be date-times).
var rsmfSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	f, err := os.Open("testdata/rsmf/rsmf_schema_2_0_0.json")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("rsmf_schema_2_0_0.json", doc); err != nil {
		return nil, err
	}
	return c.Compile("rsmf_schema_2_0_0.json")
})

// RSMFParsed is an RSMF file taken apart by standard parsers.
type RSMFParsed struct {
	Header   mail.Header
	Text     string            // the plain-text body, decoded
	Manifest map[string]any    // rsmf_manifest.json, valid against the schema
	Files    map[string][]byte // the zip's other files
}

// CheckRSMF parses an RSMF file with net/mail, mime/multipart and archive/zip, checks that it
// has one text/plain body and exactly one attachment named rsmf.zip, and validates its
// rsmf_manifest.json against the 2.0.0 schema. Exported for the external tests.
func CheckRSMF(t testing.TB, data []byte) *RSMFParsed {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	require.NoError(t, err)
	require.Equal(t, "2.0.0", msg.Header.Get("X-RSMF-Version"))
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	require.NoError(t, err)
	require.Equal(t, "multipart/mixed", mt)
	out := &RSMFParsed{Header: msg.Header, Files: map[string][]byte{}}
	var zips [][]byte
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		b, err := io.ReadAll(p)
		require.NoError(t, err)
		if p.FileName() != "" {
			require.Equal(t, "rsmf.zip", p.FileName())
			require.Equal(t, "base64", p.Header.Get("Content-Transfer-Encoding"))
			z, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(b), "\r\n", ""))
			require.NoError(t, err)
			zips = append(zips, z)
			continue
		}
		require.True(t, strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain"))
		out.Text = string(b)
	}
	require.Len(t, zips, 1, "exactly one attachment")
	zr, err := zip.NewReader(bytes.NewReader(zips[0]), int64(len(zips[0])))
	require.NoError(t, err)
	for _, f := range zr.File {
		rc, err := f.Open()
		require.NoError(t, err)
		b, err := io.ReadAll(rc)
		require.NoError(t, err)
		rc.Close()
		if f.Name == "rsmf_manifest.json" {
			ValidateRSMFManifest(t, b)
			require.NoError(t, json.Unmarshal(b, &out.Manifest))
			continue
		}
		out.Files[f.Name] = b
	}
	require.NotNil(t, out.Manifest, "rsmf_manifest.json")
	events := out.Manifest["events"].([]any)
	require.Equal(t, strconv.Itoa(len(events)), msg.Header.Get("X-RSMF-EventCount"))
	require.LessOrEqual(t, len(events), MaxRSMFEvents)
	// Every attachment the events name is in the zip, with its size.
	for _, e := range events {
		for _, a := range asSlice(e.(map[string]any)["attachments"]) {
			am := a.(map[string]any)
			b, ok := out.Files[am["id"].(string)]
			require.True(t, ok, "attachment %v in the zip", am["id"])
			require.EqualValues(t, len(b), am["size"])
			h := sha256.Sum256(b)
			require.True(t, strings.HasPrefix(am["id"].(string), hex.EncodeToString(h[:])))
		}
	}
	return out
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// ValidateRSMFManifest validates b against the RSMF 2.0.0 schema.
func ValidateRSMFManifest(t testing.TB, b []byte) {
	t.Helper()
	sch, err := rsmfSchema()
	require.NoError(t, err)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	require.NoError(t, err)
	require.NoError(t, sch.Validate(doc), "rsmf_manifest.json against the 2.0.0 schema")
}

// The schema check is not a rubber stamp.
func TestRSMFSchemaRefusesBadManifests(t *testing.T) {
	sch, err := rsmfSchema()
	require.NoError(t, err)
	for name, doc := range map[string]string{
		"no events":      `{"version":"2.0.0","participants":[],"conversations":[]}`,
		"bad event type": `{"version":"2.0.0","participants":[],"conversations":[],"events":[{"type":"chat"}]}`,
		"bad timestamp":  `{"version":"2.0.0","participants":[],"conversations":[],"events":[{"type":"message","timestamp":"yesterday"}]}`,
		"empty part id":  `{"version":"2.0.0","participants":[{"id":""}],"conversations":[],"events":[]}`,
	} {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
		require.NoError(t, err)
		require.Error(t, sch.Validate(v), name)
	}
}

// A conversation's day of more than MaxRSMFEvents events is split into files of at most that
// many, each valid on its own.
func TestRSMFSplitsAtTheEventLimit(t *testing.T) {
	day := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	tr := &transcript{conv: conversation{id: "cid-busy", title: "Busy desk", kind: capture.ConversationGroup}, day: "2026-06-01"}
	for i := range MaxRSMFEvents + 1 {
		tr.events = append(tr.events, &event{index: uint64(i), at: day.Add(time.Duration(i) * time.Second),
			sender: capture.Party{ID: fmt.Sprint("u", i%3), StaffID: fmt.Sprint("s", i%3), Name: "Trader"}, kind: capture.KindText, text: "tick"})
	}
	files, err := renderRSMF([]*transcript{tr}, rsmfContext{origin: "o.test/l", treeSize: 99, maxEvents: MaxRSMFEvents})
	require.NoError(t, err)
	require.Len(t, files, 2)
	counts := map[string]string{}
	for name, b := range files {
		p := CheckRSMF(t, b)
		counts[name] = p.Header.Get("X-RSMF-EventCount")
		require.Equal(t, p.Header.Get("X-RSMF-EventCollectionID"), p.Manifest["eventcollectionid"], "one collection across the parts")
	}
	require.Equal(t, map[string]string{
		"rsmf/cid-busy-" + hex.EncodeToString(sha(tr.conv.id)[:4]) + "_2026-06-01_1.rsmf": "10000",
		"rsmf/cid-busy-" + hex.EncodeToString(sha(tr.conv.id)[:4]) + "_2026-06-01_2.rsmf": "1",
	}, counts)
}

func sha(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// A conversation of many participants with long non-ASCII names: every header line stays
// short (folded), and the headers decode back to every name and address.
func TestRSMFHeadersFoldForLargeConversations(t *testing.T) {
	day := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	tr := &transcript{conv: conversation{id: "cid-big", title: strings.Repeat("大型交易群組", 10), kind: capture.ConversationGroup}, day: "2026-06-01"}
	for i := range 300 {
		tr.events = append(tr.events, &event{index: uint64(i), at: day.Add(time.Duration(i) * time.Second),
			sender: capture.Party{ID: fmt.Sprint("user", i), Name: fmt.Sprintf("黃大文 Wong Tai Man 第%d號", i)}, kind: capture.KindText, text: "hi"})
	}
	for name, render := range map[string]func() (map[string][]byte, error){
		"rsmf": func() (map[string][]byte, error) {
			return renderRSMF([]*transcript{tr}, rsmfContext{origin: "o.test/l", treeSize: 1, maxEvents: MaxRSMFEvents})
		},
		"eml": func() (map[string][]byte, error) {
			return renderEML([]*transcript{tr}, emlContext{origin: "o.test/l", treeSize: 1})
		},
	} {
		files, err := render()
		require.NoError(t, err)
		for _, b := range files {
			head, _, ok := bytes.Cut(b, []byte("\r\n\r\n"))
			require.True(t, ok)
			for _, l := range strings.Split(string(head), "\r\n") {
				require.LessOrEqual(t, len(l), 200, "%s: %q", name, l)
			}
			msg, err := mail.ReadMessage(bytes.NewReader(b))
			require.NoError(t, err)
			to, err := msg.Header.AddressList("To")
			require.NoError(t, err)
			require.Len(t, to, 300, name)
			require.Equal(t, "黃大文 Wong Tai Man 第299號", to[299].Name)
			subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
			require.NoError(t, err)
			require.Contains(t, subject, strings.Repeat("大型交易群組", 10))
			if name == "rsmf" {
				ps, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("X-RSMF-Participants"))
				require.NoError(t, err)
				require.Len(t, strings.Split(ps, ", "), 300)
				CheckRSMF(t, b)
			}
		}
	}
}
