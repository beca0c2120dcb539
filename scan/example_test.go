package scan_test

import (
	"errors"
	"fmt"
	"strings"

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

// Lexicons usually live in files; ReadLexicon reads one from any io.Reader (an *os.File in a
// program) and refuses anything larger than MaxLexiconBytes.
func ExampleReadLexicon() {
	file := strings.NewReader(`{"name": "desk", "rules": [
	    {"id": "gifts", "category": "gifts_entertainment", "severity": "low",
	     "terms": ["red packet", "紅包"], "description": "Gifts to or from clients."}]}`)
	lex, err := scan.ReadLexicon(file)
	if err != nil {
		fmt.Println(err)
		return
	}
	s, err := scan.Compile(lex)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Name(), len(lex.Rules), strings.HasPrefix(s.Version(), "sha256:"))
	for _, f := range s.ScanString("收咗個红包, thanks for the Red-Packet") {
		fmt.Println(f.Rule, f.Term, f.Start, f.End)
	}
	// Output:
	// desk 1 true
	// gifts 紅包 9 15
	// gifts red packet 32 42
}

// A firm's own lexicon can start from the default one and add rules in code; Compile validates
// the result.
func ExampleDefaultLexicon() {
	lex := scan.DefaultLexicon()
	lex.Name = "desk-2026"
	lex.Rules = append(lex.Rules, scan.Rule{
		ID: "desk.codeword", Category: "inside_information", Severity: scan.High,
		Terms: []string{"blue bird"}, WordBoundary: true,
	})
	s, err := scan.Compile(lex)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range s.ScanString("the Blue Bird lands tomorrow, bluebirds do not count") {
		fmt.Println(f.Rule, f.Severity, f.Term)
	}
	// Output:
	// desk.codeword high blue bird
}

// Scan reports every term occurrence with byte offsets into the original text. An exclusion
// cancels the hits it covers, and a near rule reports the span from one term to the nearest
// other.
func ExampleScanner_Scan() {
	lex, err := scan.ParseLexicon([]byte(`{"name": "example", "rules": [
	    {"id": "returns", "category": "guarantee_of_returns", "severity": "high",
	     "terms": ["guaranteed return"], "exclude": ["no guaranteed return"]},
	    {"id": "front-run", "category": "front_running", "severity": "high",
	     "near": {"a": ["buy"], "b": ["results"], "within": 15}, "word_boundary": true}]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	s, err := scan.Compile(lex)
	if err != nil {
		fmt.Println(err)
		return
	}
	msg := []byte("No guaranteed return, but a GUARANTEED RETURN if you buy before the results")
	for _, f := range s.Scan(msg) {
		fmt.Printf("%s %q [%d:%d] %q\n", f.Rule, f.Term, f.Start, f.End, msg[f.Start:f.End])
	}
	// Output:
	// returns "guaranteed return" [28:45] "GUARANTEED RETURN"
	// front-run "buy … results" [53:75] "buy before the results"
}

// AppendScan reuses the caller's slice, so a loop over many messages allocates only when a
// message has findings.
func ExampleScanner_AppendScan() {
	s, err := scan.Default()
	if err != nil {
		fmt.Println(err)
		return
	}
	var found []scan.Finding
	for i, msg := range []string{"see you at lunch", "let's take this to WhatsApp", "用微信支付就得"} {
		found = s.AppendScan(found[:0], []byte(msg))
		for _, f := range found {
			fmt.Println(i, f.Rule, f.Term)
		}
	}
	// Output:
	// 1 off-channel.move whatsapp
}

// A bad lexicon never replaces a good one: Reload returns the error and the current scanner
// stays in service.
func ExampleLive_Reload() {
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
	_, err = live.Reload([]byte(`{"name": "broken", "rules": [{"id": "r", "category": "c", "severity": "low", "terms": []}]}`))
	var le *scan.LexiconError
	if !errors.As(err, &le) {
		fmt.Println("unexpected:", err)
		return
	}
	fmt.Println(errors.Is(err, scan.ErrEmptyTerms), le.Rule, le.Field)
	fmt.Println(live.Scanner() == s, live.Scan([]byte("let's take this to WhatsApp"))[0].Lexicon == s.Version())
	// Output:
	// true r terms
	// true true
}
