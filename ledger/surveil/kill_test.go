package surveil_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/scan"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
)

const killChildEnv = "COMMSEAL_SURVEIL_KILL_CHILD"

// TestHelperMonitorChild is the process TestAMonitorKilledMidScanResumes kills: it scans the
// ledger directory with the default lexicon (or the one in the environment), slowly, printing
// the index of each annotation once it is sealed.
func TestHelperMonitorChild(t *testing.T) {
	dir := os.Getenv(killChildEnv)
	if dir == "" {
		t.Skip("helper process for TestAMonitorKilledMidScanResumes")
	}
	ctx := context.Background()
	l, err := ledgerdir.Open(ctx, dir, "", ledger.Options{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	lv := childLexicon(os.Getenv(killChildEnv + "_LEXICON"))
	m, err := surveil.New(l.Ledger, surveil.Options{Lexicon: lv, CursorFile: filepath.Join(dir, layout.CursorFile), Batch: 16, CursorEvery: 20 * time.Millisecond,
		OnSealed: func(_ context.Context, s *surveil.Sealed) error {
			fmt.Println("sealed", s.Index)
			time.Sleep(time.Millisecond)
			return nil
		}})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	for {
		if _, err := m.Step(ctx); err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
	}
}

func childLexicon(name string) *scan.Live {
	lexJSON := scan.DefaultLexiconJSON()
	if name != "" {
		lexJSON = []byte(`{"name":"` + name + `","rules":[{"id":"price","category":"pricing","severity":"low","terms":["報價","whatsapp"]}]}`)
	}
	lex, err := scan.ParseLexicon(lexJSON)
	if err != nil {
		panic(err)
	}
	s, err := scan.Compile(lex)
	if err != nil {
		panic(err)
	}
	lv, err := scan.NewLive(s)
	if err != nil {
		panic(err)
	}
	return lv
}

// TestAMonitorKilledMidScanResumes: a monitor killed with SIGKILL while scanning (and, with a
// second lexicon, while re-scanning history) is resumed by a new one from its cursor file:
// every flagged message ends with exactly one annotation per lexicon version, and the ledger
// verifies.
func TestAMonitorKilledMidScanResumes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGKILL")
	}
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "ledger")
	l, err := ledgerdir.Open(ctx, dir, "", ledger.Options{})
	require.NoError(t, err)
	for i := range 600 {
		_, err := l.Append(ctx, &capture.Message{Platform: "dingtalk", Tenant: "corp1", ID: fmt.Sprint("k", i),
			Conversation: capture.Conversation{ID: fmt.Sprint("cid-", i%5), Type: capture.ConversationGroup},
			Sender:       capture.Party{ID: "u1"}, SentAt: time.Date(2026, 10, 1, 0, 0, i, 0, time.UTC), Kind: capture.KindText,
			Text: texts[i%len(texts)], Raw: []byte("{}")})
		require.NoError(t, err)
	}
	require.NoError(t, l.Close())

	for _, version := range []string{"", "rescan-v2"} { // the default lexicon, then a re-scan
		for round := range 3 {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperMonitorChild$")
			cmd.Env = append(os.Environ(), killChildEnv+"="+dir, killChildEnv+"_LEXICON="+version)
			out, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			sc := bufio.NewScanner(out)
			sealed := 0
			for sealed < 15+round*10 && sc.Scan() {
				line := sc.Text()
				require.False(t, strings.HasPrefix(line, "error"), "child: %s", line)
				if strings.HasPrefix(line, "sealed ") {
					sealed++
				}
			}
			require.NoError(t, cmd.Process.Kill()) // SIGKILL, mid-step
			go func() {
				for sc.Scan() {
				}
			}()
			_ = cmd.Wait()
		}
	}

	// The children were killed part way: not every flagged message has its annotation yet.
	l, err = ledgerdir.Open(ctx, dir, "", ledger.Options{})
	require.NoError(t, err)
	defer l.Close()
	before := map[string]int{}
	for _, a := range annotations(t, l.Ledger) {
		before[a.Lexicon.Name]++
	}
	require.Less(t, before["commseal-hk-securities-conduct"], 300)
	require.Less(t, before["rescan-v2"], 200)
	require.Positive(t, before["rescan-v2"])

	// A new monitor finishes each version from its cursor.
	perVersion := map[string]int{}
	for _, version := range []string{"", "rescan-v2"} {
		m, err := surveil.New(l.Ledger, surveil.Options{Lexicon: childLexicon(version), CursorFile: filepath.Join(dir, layout.CursorFile)})
		require.NoError(t, err)
		catchUp(t, m)
	}
	seen := map[string]bool{}
	for _, a := range annotations(t, l.Ledger) {
		key := a.Lexicon.Version + "/" + a.Message.ID
		require.False(t, seen[key], "one annotation per message and version: %s", key)
		seen[key] = true
		perVersion[a.Lexicon.Name]++
	}
	require.Equal(t, 300, perVersion["commseal-hk-securities-conduct"], "every flagged message (微信, whatsapp, delete this chat), by the default lexicon")
	require.Equal(t, 200, perVersion["rescan-v2"], "報價 and whatsapp, by the second")

	st, err := layout.OpenStore(ctx, dir, true, nil)
	require.NoError(t, err)
	defer st.Close()
	keys, err := ledgerdir.SigningKey(dir, "", false)
	require.NoError(t, err)
	_, err = verify.Ledger(ctx, st, keys.Verifier, verify.Options{AllowUnsigned: true})
	require.NoError(t, err)
}
