package scan_test

import (
	"fmt"

	"github.com/commseal/commseal/scan"
)

func Example() {
	lex, err := scan.ParseLexicon([]byte(`{
	  "name": "example",
	  "rules": [
	    {"id": "off-channel", "category": "off_channel", "severity": "medium",
	     "terms": ["whatsapp", "微信"], "exclude": ["微信支付"], "word_boundary": true},
	    {"id": "inside", "category": "inside_information", "severity": "high",
	     "terms": ["insider", "insider information", "內幕消息"]}
	  ]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	s, err := scan.Compile(lex)
	if err != nil {
		fmt.Println(err)
		return
	}
	msg := "有内幕消息! Insider information, talk on W.h.a.t.s.A.p.p or 微 信 (not 微信支付)"
	for _, f := range s.ScanString(msg) {
		fmt.Printf("%s %s %q %q\n", f.Rule, f.Severity, f.Term, msg[f.Start:f.End])
	}
	// Output:
	// inside high "內幕消息" "内幕消息"
	// inside high "insider" "Insider"
	// inside high "insider information" "Insider information"
	// off-channel medium "whatsapp" "W.h.a.t.s.A.p.p"
	// off-channel medium "微信" "微 信"
}

func ExampleParseLexicon_error() {
	_, err := scan.ParseLexicon([]byte(`{"name": "bad", "rules": [
	    {"id": "r1", "category": "c", "severity": "urgent", "terms": ["x"]}]}`))
	fmt.Println(err)
	// Output:
	// scan: lexicon "bad": rule "r1": field "severity": unknown severity (want info, low, medium or high): "urgent"
}

func ExampleNormalize() {
	fmt.Println(scan.Normalize("Ｗ h a t s A p p，內幕消息！"))
	// Output:
	// whatsapp内幕消息
}

func ExampleLive() {
	s, err := scan.Default()
	if err != nil {
		fmt.Println(err)
		return
	}
	live, err := scan.NewLive(s)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(live.Scan([]byte("delete this chat"))))
	// A new lexicon swaps in atomically; scans in progress finish on the old one.
	if _, err := live.Reload([]byte(`{"name": "tiny", "rules": [
	    {"id": "t", "category": "c", "severity": "low", "terms": ["lunch"]}]}`)); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(live.Scan([]byte("delete this chat"))), live.Scan([]byte("lunch?"))[0].Rule)
	// Output:
	// 1
	// 0 t
}

func ExampleScanner_ScanBatch() {
	s, err := scan.Default()
	if err != nil {
		fmt.Println(err)
		return
	}
	msgs := [][]byte{[]byte("see you at lunch"), []byte("保證回報，穩賺唔蝕"), []byte("刪咗佢")}
	found := make([][]string, len(msgs))
	s.ScanBatch(msgs, func(i int, f scan.Finding) { found[i] = append(found[i], f.Rule) })
	for i, rules := range found {
		fmt.Println(i, rules)
	}
	// Output:
	// 0 []
	// 1 [guarantee.returns guarantee.returns guarantee.returns]
	// 2 [records.destruction-secrecy]
}
