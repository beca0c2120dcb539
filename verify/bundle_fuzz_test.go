package verify_test

import (
	"encoding/json"
	"io/fs"
	"reflect"
	"testing"

	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/verify"
)

func FuzzParseBundleOpening(f *testing.F) {
	f.Add([]byte(`{"index":3,"salt":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","plaintext":"e30="}`))
	f.Add([]byte(`{"index":3,"salt":"AAAA","plaintext":""}`))
	f.Add([]byte(`{"index":-1}`))
	f.Add([]byte(`{"index":1,"salt":null,"plaintext":null,"x":1}`))
	f.Add([]byte(`{} {}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		o, err := verify.ParseBundleOpening(line)
		if err != nil {
			return
		}
		if len(o.Salt) != seal.SaltSize {
			t.Fatalf("accepted a salt of %d bytes", len(o.Salt))
		}
		b, err := json.Marshal(&o)
		if err != nil {
			t.Fatal(err)
		}
		again, err := verify.ParseBundleOpening(b)
		if err != nil || again.Index != o.Index || string(again.Salt) != string(o.Salt) || string(again.Plaintext) != string(o.Plaintext) {
			t.Fatalf("round trip: %v %+v %+v", err, o, again)
		}
	})
}

func FuzzParseBundleManifest(f *testing.F) {
	f.Add([]byte(`{"format":"commseal-export/v1","origin":"o","tree_size":3,"verifier_key":"k",` +
		`"request":{"who":"a","why":"b","when":"2026-07-02T09:00:00Z","indexes":1},` +
		`"files":[{"path":"evidence/checkpoint","size":10,"sha256":"039058c6f2c0cb492c533b0a4d14ef77cc0f78abccced5287d84a1a2011cfb81"}]}`))
	f.Add([]byte(`{"format":"commseal-export/v1","files":[{"path":"../x","size":1,"sha256":""}]}`))
	f.Add([]byte(`{"format":"commseal-export/v1","files":[{"path":"manifest.json","size":1,"sha256":""}]}`))
	f.Add([]byte(`{"format":"other"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := verify.ParseBundleManifest(b)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, fd := range m.Files {
			if !fs.ValidPath(fd.Path) || fd.Path == verify.BundleManifest || fd.Path == verify.BundleManifestSig || seen[fd.Path] || fd.Size < 0 || len(fd.SHA256) != 64 {
				t.Fatalf("accepted file %+v", fd)
			}
			seen[fd.Path] = true
		}
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		again, err := verify.ParseBundleManifest(out)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if !reflect.DeepEqual(again.Files, m.Files) || again.Request.Indexes != m.Request.Indexes || again.Origin != m.Origin {
			t.Fatalf("round trip: %+v %+v", m, again)
		}
	})
}
