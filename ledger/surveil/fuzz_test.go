package surveil_test

import (
	"encoding/json"
	"testing"

	"github.com/commseal/commseal/ledger/surveil"
)

// FuzzParseAnnotation: any body either is refused or is an annotation that encodes and parses
// back the same.
func FuzzParseAnnotation(f *testing.F) {
	f.Add([]byte(`{"schema":"commseal.findings/v1","lexicon":{"name":"d","version":"sha256:0"},"message":{"index":1,"platform":"dingtalk","id":"m"},"findings":[{"rule":"r","category":"c","severity":"high","term":"t","field":"text","start":0,"end":1}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := surveil.ParseAnnotation(b)
		if err != nil {
			return
		}
		again, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := surveil.ParseAnnotation(again); err != nil {
			t.Fatalf("re-encoded annotation refused: %v", err)
		}
	})
}
